//! The fault plan of `rtse proxy`: which PDU to drop the connection before
//! or after, withhold or delay. Sans-IO: [`FaultPlan::decide`] is fed the
//! Turn-relevant PDU names of each TPKT (from the codec through
//! [`observe::events`](crate::observe::events)) with its sender, and
//! returns what to do with it; the relay carries that out.
//!
//! # Rules
//!
//! CLI form `WHEN:PDU[@SIDE][#N[+]][:KIND]`:
//! * `WHEN` is `before` (the PDU is not forwarded) or `after` (it is, then
//!   the connection goes).
//! * `PDU` is a tracker event name (`CN`, `AC`, `GTC`, `GTA`, `PT`, `GT`,
//!   `AS`, `AR`, `DT`, `MIP`, `MIA`, `AE`, `AEA`, `FN`, `DN`, `AB`, ...;
//!   `LABEL` is the end of a P1 transfer). A TSDU spread over several
//!   TPKTs (a transfer's DT segments) is matched at the TPKT that ends it.
//! * `@initiator` / `@responder` (or `@i` / `@r`): only PDUs from that side.
//! * `#N`: the N-th such PDU the proxy relays (counted over the whole run,
//!   all connections; default 1); `#N+`: the N-th and every later one.
//! * `KIND`: `rst` (default), `fin`, `abort` (a forged session AB, with
//!   Transport Disconnect "release", to both MTAs, then FIN) or `mid-tpkt`
//!   (the first half of the PDU's TPKT is forwarded, then RST; `before`
//!   only).
//!
//! `withhold:PDU[@SIDE][#N[+]]` swallows the PDU and keeps the connection;
//! `delay:PDU[@SIDE][#N[+]]:MS` holds it (and whatever follows it in that
//! direction) for MS milliseconds.
//!
//! Random faults (`--drop-rate P --seed S`): each TPKT carrying a
//! Turn-relevant PDU that no rule touched draws from a seeded generator;
//! with probability P the connection is dropped before or after it (half
//! each), of a kind drawn among the allowed ones. The draw sequence is a
//! pure function of the seed and the PDU sequence the proxy sees.
//!
//! When several rules match one TPKT, the strongest effect wins: drop
//! before > withhold > delay > drop after. Every matching rule still counts
//! the PDU. `max_faults` caps the faults of a run (rules and random).

use crate::tracker::Side;
use serde::Deserialize;
use std::fmt;

/// How the connection is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropKind {
    /// FIN to both MTAs.
    Fin,
    /// RST to both MTAs (SO_LINGER 0).
    Rst,
    /// A forged session AB (user abort, "release") to both, then FIN.
    Abort,
    /// The first half of the PDU's TPKT, then RST.
    MidTpkt,
}

impl DropKind {
    pub const ALL: [DropKind; 4] = [DropKind::Fin, DropKind::Rst, DropKind::Abort, DropKind::MidTpkt];

    pub const fn name(self) -> &'static str {
        match self {
            DropKind::Fin => "fin",
            DropKind::Rst => "rst",
            DropKind::Abort => "abort",
            DropKind::MidTpkt => "mid-tpkt",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "fin" => Ok(DropKind::Fin),
            "rst" | "reset" => Ok(DropKind::Rst),
            "abort" | "ab" => Ok(DropKind::Abort),
            "mid-tpkt" | "mid" => Ok(DropKind::MidTpkt),
            other => Err(format!("unknown drop kind {other:?} (fin, rst, abort, mid-tpkt)")),
        }
    }
}

/// What a rule does to the PDU it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Drop the connection instead of forwarding the PDU.
    DropBefore(DropKind),
    /// Forward the PDU, then drop the connection.
    DropAfter(DropKind),
    /// Swallow the PDU; the connection stays.
    Withhold,
    /// Forward it after this many milliseconds.
    Delay(u64),
}

impl Effect {
    /// Strength when several rules match one TPKT.
    const fn rank(self) -> u8 {
        match self {
            Effect::DropBefore(_) => 4,
            Effect::Withhold => 3,
            Effect::Delay(_) => 2,
            Effect::DropAfter(_) => 1,
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::DropBefore(k) => write!(f, "{} before", k.name()),
            Effect::DropAfter(k) => write!(f, "{} after", k.name()),
            Effect::Withhold => f.write_str("withhold"),
            Effect::Delay(ms) => write!(f, "delay {ms} ms"),
        }
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Upper-case event name (`GTC`).
    pub pdu: String,
    /// Only PDUs from this side.
    pub from: Option<Side>,
    /// The occurrence (1-based) that fires.
    pub nth: u64,
    /// Every occurrence from `nth` on fires.
    pub repeat: bool,
    pub effect: Effect,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = match self.from {
            Some(Side::Initiator) => "@initiator",
            Some(Side::Responder) => "@responder",
            None => "",
        };
        let plus = if self.repeat { "+" } else { "" };
        match self.effect {
            Effect::DropBefore(k) => write!(f, "before:{}{side}#{}{plus}:{}", self.pdu, self.nth, k.name()),
            Effect::DropAfter(k) => write!(f, "after:{}{side}#{}{plus}:{}", self.pdu, self.nth, k.name()),
            Effect::Withhold => write!(f, "withhold:{}{side}#{}{plus}", self.pdu, self.nth),
            Effect::Delay(ms) => write!(f, "delay:{}{side}#{}{plus}:{ms}", self.pdu, self.nth),
        }
    }
}

/// `PDU[@SIDE][#N[+]]`.
fn parse_target(s: &str) -> Result<(String, Option<Side>, u64, bool), String> {
    let (head, count) = match s.split_once('#') {
        Some((h, c)) => (h, Some(c)),
        None => (s, None),
    };
    let (pdu, side) = match head.split_once('@') {
        Some((p, side)) => (p, Some(parse_side(side)?)),
        None => (head, None),
    };
    if pdu.is_empty() || !pdu.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!("{s:?}: expected a PDU name such as GTC, PT, AS, DT, MIP, AEA"));
    }
    let (nth, repeat) = match count {
        None => (1, false),
        Some(c) => {
            let (n, repeat) = match c.strip_suffix('+') {
                Some(n) => (n, true),
                None => (c, false),
            };
            let n: u64 = n.parse().map_err(|_| format!("{s:?}: #N needs a count from 1"))?;
            if n == 0 {
                return Err(format!("{s:?}: occurrences count from 1"));
            }
            (n, repeat)
        }
    };
    Ok((pdu.to_ascii_uppercase(), side, nth, repeat))
}

fn parse_side(s: &str) -> Result<Side, String> {
    match s.to_ascii_lowercase().as_str() {
        "i" | "initiator" => Ok(Side::Initiator),
        "r" | "responder" => Ok(Side::Responder),
        other => Err(format!("unknown side {other:?} (initiator, responder)")),
    }
}

impl Rule {
    /// `--drop WHEN:PDU[@SIDE][#N[+]][:KIND]`.
    pub fn parse_drop(s: &str) -> Result<Rule, String> {
        let (when, rest) = s.split_once(':').ok_or_else(|| format!("{s:?}: expected before:PDU or after:PDU"))?;
        let (target, kind) = match rest.split_once(':') {
            Some((t, k)) => (t, DropKind::parse(k)?),
            None => (rest, DropKind::Rst),
        };
        let (pdu, from, nth, repeat) = parse_target(target)?;
        let effect = match when.to_ascii_lowercase().as_str() {
            "before" => Effect::DropBefore(kind),
            "after" if kind == DropKind::MidTpkt => {
                return Err(format!("{s:?}: mid-tpkt cuts the matched PDU's own TPKT: use before:{pdu}"))
            }
            "after" => Effect::DropAfter(kind),
            other => return Err(format!("{s:?}: {other:?} is neither before nor after")),
        };
        Ok(Rule { pdu, from, nth, repeat, effect })
    }

    /// `--withhold PDU[@SIDE][#N[+]]`.
    pub fn parse_withhold(s: &str) -> Result<Rule, String> {
        let (pdu, from, nth, repeat) = parse_target(s)?;
        Ok(Rule { pdu, from, nth, repeat, effect: Effect::Withhold })
    }

    /// `--delay PDU[@SIDE][#N[+]]:MS`.
    pub fn parse_delay(s: &str) -> Result<Rule, String> {
        let (target, ms) = s.rsplit_once(':').ok_or_else(|| format!("{s:?}: expected PDU:MILLISECONDS"))?;
        let ms: u64 = ms.parse().map_err(|_| format!("{s:?}: {ms:?} is not a number of milliseconds"))?;
        let (pdu, from, nth, repeat) = parse_target(target)?;
        Ok(Rule { pdu, from, nth, repeat, effect: Effect::Delay(ms) })
    }
}

/// A rules file (`--rules FILE`):
///
/// ```toml
/// seed = 7             # random faults
/// drop_rate = 0.05
/// drop_kinds = ["rst", "fin"]
/// max_faults = 20
///
/// [[rule]]
/// action = "rst"       # fin | rst | abort | mid-tpkt | withhold | delay
/// when = "after"       # before | after (drops only)
/// pdu = "GTC"
/// from = "initiator"   # optional
/// nth = 2              # optional, default 1
/// repeat = false       # optional: every occurrence from nth on
/// delay_ms = 200       # delay only
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub drop_rate: Option<f64>,
    #[serde(default)]
    pub drop_kinds: Option<Vec<String>>,
    #[serde(default)]
    pub max_faults: Option<u64>,
    #[serde(default)]
    pub rule: Vec<RuleEntry>,
}

/// One `[[rule]]` of a [`RulesFile`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleEntry {
    pub action: String,
    #[serde(default)]
    pub when: Option<String>,
    pub pdu: String,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub nth: Option<u64>,
    #[serde(default)]
    pub repeat: bool,
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

impl RuleEntry {
    pub fn to_rule(&self) -> Result<Rule, String> {
        let mut target = self.pdu.clone();
        if let Some(f) = &self.from {
            target.push('@');
            target.push_str(f);
        }
        target.push_str(&format!("#{}", self.nth.unwrap_or(1)));
        if self.repeat {
            target.push('+');
        }
        match self.action.to_ascii_lowercase().as_str() {
            "withhold" => Rule::parse_withhold(&target),
            "delay" => {
                let ms = self.delay_ms.ok_or_else(|| format!("rule on {}: delay needs delay_ms", self.pdu))?;
                Rule::parse_delay(&format!("{target}:{ms}"))
            }
            kind => {
                let when = self.when.as_deref().ok_or_else(|| format!("rule on {}: a drop needs when", self.pdu))?;
                Rule::parse_drop(&format!("{when}:{target}:{kind}"))
            }
        }
    }
}

impl RulesFile {
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

/// SplitMix64: small, seedable, the same on every platform.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Random faults.
#[derive(Debug, Clone)]
pub struct RandomFaults {
    pub rate: f64,
    pub seed: u64,
    /// Kinds drawn from (non-empty).
    pub kinds: Vec<DropKind>,
}

/// What to do with one TPKT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub effect: Option<Effect>,
    /// The rule that fired (`after:GTC#1:rst`) or `random(seed 7)`.
    pub why: String,
}

impl Decision {
    const FORWARD: Decision = Decision { effect: None, why: String::new() };
}

#[derive(Debug, Clone)]
struct Armed {
    rule: Rule,
    seen: u64,
}

/// The fault plan of a run (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct FaultPlan {
    rules: Vec<Armed>,
    random: Option<(RandomFaults, Rng)>,
    max_faults: Option<u64>,
    injected: u64,
}

impl FaultPlan {
    pub fn new(rules: Vec<Rule>, random: Option<RandomFaults>, max_faults: Option<u64>) -> Self {
        FaultPlan {
            rules: rules.into_iter().map(|rule| Armed { rule, seen: 0 }).collect(),
            random: random.filter(|r| r.rate > 0.0 && !r.kinds.is_empty()).map(|r| {
                let rng = Rng(r.seed);
                (r, rng)
            }),
            max_faults,
            injected: 0,
        }
    }

    /// No rule and no random faults: a plain relay.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.random.is_none()
    }

    /// Faults decided so far.
    pub fn injected(&self) -> u64 {
        self.injected
    }

    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|a| &a.rule)
    }

    /// The TPKT from `from` carries the Turn-relevant PDUs `names` (tracker
    /// event names; empty for a TPKT that does not end a TSDU): forward it
    /// (`effect: None`) or inject a fault.
    pub fn decide(&mut self, from: Side, names: &[&str]) -> Decision {
        if names.is_empty() || self.max_faults.is_some_and(|m| self.injected >= m) {
            // Still count occurrences, so `#N` means the N-th relayed.
            self.count_only(from, names);
            return Decision::FORWARD;
        }
        let mut best: Option<(Effect, String)> = None;
        for a in &mut self.rules {
            let r = &a.rule;
            if r.from.is_some_and(|s| s != from) || !names.iter().any(|n| n.eq_ignore_ascii_case(&r.pdu)) {
                continue;
            }
            a.seen += 1;
            let fires = if r.repeat { a.seen >= r.nth } else { a.seen == r.nth };
            if fires && best.as_ref().is_none_or(|(e, _)| r.effect.rank() > e.rank()) {
                best = Some((r.effect, r.to_string()));
            }
        }
        if best.is_none() {
            if let Some((r, rng)) = self.random.as_mut() {
                // Only TPKTs with a PDU that moves or asks for the Turn, or
                // opens, checkpoints or closes an activity: what matters
                // to recovery. (Always one draw per such TPKT.)
                if rng.unit() < r.rate {
                    let kind = r.kinds[(rng.next() % r.kinds.len() as u64) as usize];
                    let before = rng.next() & 1 == 0 || kind == DropKind::MidTpkt;
                    let effect = if before { Effect::DropBefore(kind) } else { Effect::DropAfter(kind) };
                    best = Some((effect, format!("random(seed {}, rate {})", r.seed, r.rate)));
                }
            }
        }
        match best {
            Some((effect, why)) => {
                self.injected += 1;
                Decision { effect: Some(effect), why }
            }
            None => Decision::FORWARD,
        }
    }

    fn count_only(&mut self, from: Side, names: &[&str]) {
        for a in &mut self.rules {
            let r = &a.rule;
            if r.from.is_none_or(|s| s == from) && names.iter().any(|n| n.eq_ignore_ascii_case(&r.pdu)) {
                a.seen += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_specs_parse_and_print_back() {
        let r = Rule::parse_drop("after:GTC#2:fin").unwrap();
        assert_eq!(
            r,
            Rule { pdu: "GTC".into(), from: None, nth: 2, repeat: false, effect: Effect::DropAfter(DropKind::Fin) }
        );
        assert_eq!(r.to_string(), "after:GTC#2:fin");
        let r = Rule::parse_drop("before:pt@r#3+:mid-tpkt").unwrap();
        assert_eq!(r.pdu, "PT");
        assert_eq!(r.from, Some(Side::Responder));
        assert!(r.repeat);
        assert_eq!(r.effect, Effect::DropBefore(DropKind::MidTpkt));
        assert_eq!(Rule::parse_drop("before:AS").unwrap().effect, Effect::DropBefore(DropKind::Rst));
        assert_eq!(Rule::parse_delay("GTA@i:250").unwrap().effect, Effect::Delay(250));
        assert_eq!(Rule::parse_withhold("MIA#4").unwrap().nth, 4);
    }

    #[test]
    fn bad_specs_say_why() {
        for (s, want) in [
            ("GTC", "before:PDU"),
            ("during:GTC", "neither before nor after"),
            ("after:GTC:mid-tpkt", "use before:GTC"),
            ("after:GTC#0", "count from 1"),
            ("after:GTC#x", "#N"),
            ("after:GTC:boom", "unknown drop kind"),
            ("after:GTC@x", "unknown side"),
            ("after::rst", "PDU name"),
        ] {
            let e = Rule::parse_drop(s).unwrap_err();
            assert!(e.contains(want), "{s}: {e}");
        }
        assert!(Rule::parse_delay("GTC").unwrap_err().contains("MILLISECONDS"));
    }

    #[test]
    fn nth_occurrence_fires_once_and_counts_per_side() {
        let mut p = FaultPlan::new(vec![Rule::parse_drop("after:GTC@initiator#2").unwrap()], None, None);
        assert_eq!(p.decide(Side::Initiator, &["GTC"]).effect, None);
        assert_eq!(p.decide(Side::Responder, &["GTC"]).effect, None, "other side not counted");
        assert_eq!(p.decide(Side::Initiator, &["PT"]).effect, None);
        let d = p.decide(Side::Initiator, &["GTC"]);
        assert_eq!(d.effect, Some(Effect::DropAfter(DropKind::Rst)));
        assert_eq!(d.why, "after:GTC@initiator#2:rst");
        assert_eq!(p.decide(Side::Initiator, &["GTC"]).effect, None, "fires once");
        assert_eq!(p.injected(), 1);
    }

    #[test]
    fn repeat_fires_from_nth_on_and_max_faults_caps() {
        let mut p = FaultPlan::new(vec![Rule::parse_withhold("MIA#2+").unwrap()], None, Some(2));
        let fired: Vec<bool> = (0..5).map(|_| p.decide(Side::Responder, &["MIA"]).effect.is_some()).collect();
        assert_eq!(fired, [false, true, true, false, false]);
    }

    #[test]
    fn strongest_effect_wins_and_every_rule_counts() {
        let rules = vec![
            Rule::parse_drop("after:GTC").unwrap(),
            Rule::parse_delay("GTC:10").unwrap(),
            Rule::parse_drop("before:GTC#2:fin").unwrap(),
        ];
        let mut p = FaultPlan::new(rules, None, None);
        assert_eq!(p.decide(Side::Initiator, &["GTC"]).effect, Some(Effect::Delay(10)));
        assert_eq!(p.decide(Side::Initiator, &["GTC"]).effect, Some(Effect::DropBefore(DropKind::Fin)));
    }

    #[test]
    fn tpkts_without_turn_pdus_are_forwarded_untouched() {
        let random = RandomFaults { rate: 1.0, seed: 1, kinds: DropKind::ALL.to_vec() };
        let mut p = FaultPlan::new(vec![], Some(random), None);
        assert_eq!(p.decide(Side::Initiator, &[]), Decision::FORWARD);
        assert!(p.decide(Side::Initiator, &["DT"]).effect.is_some());
    }

    #[test]
    fn random_faults_follow_the_seed_and_the_rate() {
        let run = |seed| {
            let random = RandomFaults { rate: 0.1, seed, kinds: DropKind::ALL.to_vec() };
            let mut p = FaultPlan::new(vec![], Some(random), None);
            (0..2000).filter_map(|i| p.decide(Side::Initiator, &["DT"]).effect.map(|e| (i, e))).collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7), "same seed, same faults");
        assert_ne!(a, run(8));
        assert!((150..250).contains(&a.len()), "rate 0.1 of 2000: {}", a.len());
        assert!(a.iter().all(|(_, e)| !matches!(e, Effect::DropAfter(DropKind::MidTpkt))));
        for k in DropKind::ALL {
            assert!(a.iter().any(|(_, e)| matches!(e, Effect::DropBefore(x) if *x == k)), "{k:?} drawn");
        }
    }

    proptest::proptest! {
        /// Any text: a rule or an error, never a panic; a parsed rule
        /// prints back to a spec that parses to the same rule.
        #[test]
        fn any_spec_parses_or_errs(s in ".{0,40}") {
            for r in [Rule::parse_drop(&s), Rule::parse_withhold(&s), Rule::parse_delay(&s)].into_iter().flatten() {
                let again = match r.effect {
                    Effect::DropBefore(_) | Effect::DropAfter(_) => Rule::parse_drop(&r.to_string()),
                    Effect::Withhold => Rule::parse_withhold(r.to_string().trim_start_matches("withhold:")),
                    Effect::Delay(_) => Rule::parse_delay(r.to_string().trim_start_matches("delay:")),
                };
                proptest::prop_assert_eq!(again, Ok(r));
            }
        }

        /// Over any PDU sequence: at most `max_faults` faults, a rule
        /// without `+` fires at most once, on its nth match exactly.
        #[test]
        fn plan_bounds_hold(
            seq in proptest::collection::vec((0..2u8, 0..4usize), 0..200),
            nth in 1..5u64,
            rate in 0.0..1.0f64,
            max in proptest::option::of(0..6u64),
        ) {
            const NAMES: [&str; 4] = ["GTC", "PT", "DT", "AEA"];
            let rule = Rule::parse_drop(&format!("after:GTC#{nth}")).unwrap();
            let random = RandomFaults { rate, seed: 1, kinds: DropKind::ALL.to_vec() };
            let mut p = FaultPlan::new(vec![rule.clone()], Some(random), max);
            let (mut gtcs, mut rule_fired) = (0u64, 0u64);
            for (side, n) in seq {
                let side = if side == 0 { Side::Initiator } else { Side::Responder };
                let d = p.decide(side, &[NAMES[n]]);
                if NAMES[n] == "GTC" {
                    gtcs += 1;
                }
                if d.why == rule.to_string() {
                    rule_fired += 1;
                    proptest::prop_assert_eq!(gtcs, nth);
                }
            }
            proptest::prop_assert!(rule_fired <= 1);
            if let Some(m) = max {
                proptest::prop_assert!(p.injected() <= m);
            }
        }
    }

    #[test]
    fn rules_file() {
        let f = RulesFile::parse(
            r#"
seed = 7
drop_rate = 0.05
drop_kinds = ["rst"]
[[rule]]
action = "abort"
when = "after"
pdu = "gtc"
from = "responder"
nth = 2
[[rule]]
action = "delay"
pdu = "PT"
delay_ms = 30
"#,
        )
        .unwrap();
        let rules: Vec<String> = f.rule.iter().map(|r| r.to_rule().unwrap().to_string()).collect();
        assert_eq!(rules, ["after:GTC@responder#2:abort", "delay:PT#1:30"]);
        assert_eq!(f.seed, Some(7));
        assert!(RulesFile::parse("[[rule]]\naction='rst'\npdu='GTC'\nbogus=1").unwrap_err().contains("bogus"));
        let e = RulesFile::parse("[[rule]]\naction='rst'\npdu='GTC'").unwrap().rule[0].to_rule().unwrap_err();
        assert!(e.contains("needs when"), "{e}");
    }
}
