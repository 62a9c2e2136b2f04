//! Scenarios as data: which MTAs, which mode, what each side submits and
//! when, which faults, and how long the fault phase and the healthy phase
//! last. Built-in ones by name ([`Scenario::builtin`], [`BUILTIN`]) and TOML
//! files (`conformance/scenarios/*.toml`, [`Scenario::from_toml`]):
//!
//! ```toml
//! name = "field-failure"
//! mode = "normal"            # or "x410"
//! dialogue = "twa"           # or "monologue"
//! flaw_a = "forgets-given-turn"   # optional, either side
//! fault_phase_ms = 10000
//! healthy_ms = 120000
//! latency_ms = 1
//! jitter_ms = 0
//! [[submit]]
//! side = "B"
//! count = 1
//! at_ms = 0
//! [[fault]]
//! before = "GTC"   # or after = "AEA"; with n = 2 for the 2nd; index = 7 for the 7th TPKT overall
//! how = "rst"      # fin | rst | session-abort | u-abort | cut
//! dirs = "both"    # a | b | both: who is told (fin/rst), who aborts (session-abort/u-abort)
//! ```
//!
//! Times are virtual; submissions and faults are in milliseconds.

use crate::flaw::Flaw;
use crate::machine::{Dialogue, Tick};
use rtse_codec::presentation::Mode;
use serde::Deserialize;
use std::fmt;
use std::sync::Arc;

const MS: Tick = 1_000_000;

/// Who is told of a loss / who aborts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dirs {
    /// MTA A.
    A,
    /// MTA B.
    B,
    /// Both.
    Both,
}

/// How the association dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum How {
    /// TCP FIN (in-flight data still delivered).
    Fin,
    /// TCP RST (in-flight data lost).
    Rst,
    /// Session provider abort: AB (release) from the side in `dirs`, then close.
    SessionAbort,
    /// The RTSE user of the side in `dirs` requests RT-U-ABORT.
    UAbort,
    /// Half of the TPKT reaches the peer, then RST (with `before` only).
    Cut,
}

impl How {
    /// Every kind.
    pub const ALL: [How; 5] = [How::Fin, How::Rst, How::SessionAbort, How::UAbort, How::Cut];
    /// Kebab-case name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            How::Fin => "fin",
            How::Rst => "rst",
            How::SessionAbort => "session-abort",
            How::UAbort => "u-abort",
            How::Cut => "cut",
        }
    }
}

/// When a fault fires (only in the fault phase).
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    /// Before the `n`-th (from 1) TPKT named `pdu` (`GTC`, `PT`, `AS`,
    /// `DT`, `MIP`, `MIA`, `AE`, `AEA`, `CN`, `AC`, `FN`, `CR`...; counted
    /// over the whole run, both directions, last TPKT of each TSDU), or
    /// the `n`-th TPKT of any kind (`pdu: None`): it is not delivered.
    Before { pdu: Option<String>, n: u32 },
    /// Right after it is delivered.
    After { pdu: Option<String>, n: u32 },
    /// At a virtual time.
    At(Tick),
    /// Before or after each TPKT with this probability (a random kind and
    /// direction from the seeded PRNG).
    Random { rate: f64 },
}

/// One fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// When.
    pub when: When,
    /// How.
    pub how: How,
    /// Who is told / aborts.
    pub dirs: Dirs,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = match self.dirs {
            Dirs::A => "A",
            Dirs::B => "B",
            Dirs::Both => "both",
        };
        let w = |p: &Option<String>, n: u32| format!("{} #{n}", p.as_deref().unwrap_or("TPKT"));
        match &self.when {
            When::Before { pdu, n } => write!(f, "{} {d} before {}", self.how.name(), w(pdu, *n)),
            When::After { pdu, n } => write!(f, "{} {d} after {}", self.how.name(), w(pdu, *n)),
            When::At(t) => write!(f, "{} {d} at {} ms", self.how.name(), t / MS),
            When::Random { .. } => write!(f, "{} {d} (random)", self.how.name()),
        }
    }
}

/// What the network does to one PDU (fault phase only): what a broken
/// middlebox, a buggy TCP stack or a peer's framing bug does. TCP itself
/// never does any of these; the receiver is expected to see a protocol
/// violation and abort. The association it happens on is *tampered*: the
/// tracker's anomalies on it are excused (the network broke the protocol,
/// not the MTAs), and if it is still open when the fault phase ends the
/// network resets it, so the healthy phase judges the recovery after it
/// (a forgery RTSE cannot detect, such as a valid PDU changed into another
/// valid one, would otherwise leave the peers disagreeing for good: RTSE
/// has no integrity check).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tamper {
    /// Deliver the PDU twice.
    Duplicate,
    /// Deliver it with the octet at `offset % len` XORed with `xor`
    /// (0 counts as 0xff).
    Mutate {
        /// Octet (modulo the PDU's length).
        offset: usize,
        /// XOR mask.
        xor: u8,
    },
    /// Hold it (and everything behind it on the connection) back for this
    /// long: head-of-line blocking, timers run meanwhile.
    Withhold(Tick),
    /// Deliver the next PDU on the same connection first.
    Reorder,
}

/// A [`Tamper`] on the `n`-th (from 1) TPKT named `pdu` (or the `n`-th
/// TPKT of any kind), counted as [`When::Before`] counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TamperAt {
    /// PDU name (`GTC`, `DT`...); `None`: any.
    pub pdu: Option<String>,
    /// Which one.
    pub n: u32,
    /// What.
    pub what: Tamper,
}

/// Messages a side submits: `count` of them, the first at `at`, then one
/// every `every`, each `size` octets of content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit {
    /// 0 = A, 1 = B.
    pub side: usize,
    /// How many.
    pub count: u32,
    /// First at.
    pub at: Tick,
    /// Then every.
    pub every: Tick,
    /// Content octets.
    pub size: usize,
}

/// A scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Name (for the replay command: a built-in name or a file path).
    pub name: String,
    /// Mode of both MTAs.
    pub mode: Mode,
    /// Dialogue mode proposed.
    pub dialogue: Dialogue,
    /// Flaw of A and of B.
    pub flaws: [Option<Flaw>; 2],
    /// Who opens associations when it has mail (default A only).
    pub opener: [bool; 2],
    /// Backlog threshold of both MTAs.
    pub backlog_threshold: usize,
    /// Submissions.
    pub submit: Vec<Submit>,
    /// Faults.
    pub faults: Vec<Fault>,
    /// PDUs tampered with (fault phase only).
    pub tamper: Vec<TamperAt>,
    /// Faults fire only before this time.
    pub fault_phase: Tick,
    /// After the fault phase, everything must be delivered within this.
    pub healthy_bound: Tick,
    /// Network latency.
    pub latency: Tick,
    /// Added latency, uniform in `0..jitter` (never reorders).
    pub jitter: Tick,
    /// The messages built so far, shared by every run of this scenario
    /// (and its clones): building a P1 message costs as much as carrying
    /// it, and a message is the same in every run.
    pub(crate) messages: MessageCache,
    /// Spare machine outputs, shared by the runs of this scenario (and
    /// its clones) as the messages are: see [`OutputPool`].
    pub(crate) outputs: OutputPool,
}

/// Messages by `(side, number, size)`; bounded by the scenario's
/// submissions. Not part of a scenario's identity (always equal).
#[derive(Clone, Default)]
pub(crate) struct MessageCache(Arc<std::sync::Mutex<Messages>>);

type Messages = std::collections::HashMap<(usize, u32, usize), crate::machine::Apdu>;

impl MessageCache {
    /// The message, built by `make` the first time.
    pub(crate) fn get(
        &self,
        key: (usize, u32, usize),
        make: impl FnOnce() -> crate::machine::Apdu,
    ) -> crate::machine::Apdu {
        let Ok(mut m) = self.0.lock() else { return make() };
        m.entry(key).or_insert_with(make).clone()
    }
}

impl PartialEq for MessageCache {
    fn eq(&self, _: &MessageCache) -> bool {
        true
    }
}

impl fmt::Debug for MessageCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageCache")
    }
}

/// Machine outputs ([`crate::machine::Output`]) left by finished runs, for
/// the next ones: an output keeps its buffers and its memo of PDUs built
/// and decoded (`machine::emit::Memo`), which a run fills in its first
/// hundred PDUs and a fresh output would fill again. A memo entry is a
/// function of its key, so which output a run gets changes nothing but
/// the speed. Not part of a scenario's identity (always equal).
#[derive(Clone, Default)]
pub(crate) struct OutputPool(Arc<std::sync::Mutex<Vec<crate::machine::Output>>>);

impl OutputPool {
    /// Outputs kept at most (one per thread running this scenario).
    const MAX: usize = 8;

    /// A spare output, or a new one.
    pub(crate) fn take(&self) -> crate::machine::Output {
        self.0.lock().ok().and_then(|mut v| v.pop()).unwrap_or_default()
    }

    /// Give back an output for a later run.
    pub(crate) fn put(&self, mut out: crate::machine::Output) {
        out.clear();
        if let Ok(mut v) = self.0.lock() {
            if v.len() < Self::MAX {
                v.push(out);
            }
        }
    }
}

impl PartialEq for OutputPool {
    fn eq(&self, _: &OutputPool) -> bool {
        true
    }
}

impl fmt::Debug for OutputPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OutputPool")
    }
}

impl Scenario {
    /// A scenario with no submission and no fault: normal mode, twa, A
    /// opens, 10 s of faults then 120 s to recover, 1 ms latency.
    #[must_use]
    pub fn new(name: &str) -> Self {
        Scenario {
            name: name.to_owned(),
            messages: MessageCache::default(),
            outputs: OutputPool::default(),
            mode: Mode::Normal,
            dialogue: Dialogue::Twa,
            flaws: [None, None],
            opener: [true, false],
            backlog_threshold: 50,
            submit: Vec::new(),
            faults: Vec::new(),
            tamper: Vec::new(),
            fault_phase: 10_000 * MS,
            healthy_bound: 120_000 * MS,
            latency: MS,
            jitter: 0,
        }
    }

    /// Add `count` messages of `size` octets from `side`, starting at
    /// `at_ms`, one every `every_ms`.
    #[must_use]
    pub fn submit(mut self, side: usize, count: u32, at_ms: u64, every_ms: u64, size: usize) -> Self {
        self.submit.push(Submit { side, count, at: at_ms * MS, every: every_ms * MS, size });
        self
    }

    /// Add a fault.
    #[must_use]
    pub fn fault(mut self, f: Fault) -> Self {
        self.faults.push(f);
        self
    }

    /// With these flaws.
    #[must_use]
    pub fn flaws(mut self, a: Option<Flaw>, b: Option<Flaw>) -> Self {
        self.flaws = [a, b];
        self
    }

    /// A built-in scenario by name (see [`BUILTIN`]).
    #[must_use]
    pub fn builtin(name: &str) -> Option<Scenario> {
        let s = Scenario::new(name);
        Some(match name {
            // A sends two, B one: open, transfers, please, give, both ways.
            "exchange" => s.submit(0, 2, 0, 0, 40).submit(1, 1, 0, 0, 40),
            // B asks for the Turn; A gives it; later A asks it back: the
            // give/please phases of the field failure, without faults.
            "turn-give" => s.submit(1, 1, 0, 0, 40).submit(0, 1, 0, 0, 40).submit(0, 1, 2_000, 0, 40),
            // Checkpointed transfers (MIP/MIA, window) in both directions.
            "large" => s.submit(0, 1, 0, 0, 6_000).submit(1, 1, 0, 0, 2_500),
            // exchange in X.410-1984 mode.
            "x410" => {
                let mut s = s.submit(0, 2, 0, 0, 40).submit(1, 1, 0, 0, 40);
                s.mode = Mode::X410;
                s
            }
            // The field failure: the GTC is lost with the connection.
            "field-failure" => s.submit(1, 1, 0, 0, 40).submit(0, 1, 2_000, 0, 40).fault(Fault {
                when: When::Before { pdu: Some("GTC".into()), n: 1 },
                how: How::Rst,
                dirs: Dirs::Both,
            }),
            // Random faults at 5 % per TPKT, many messages both ways.
            "random" => s.submit(0, 6, 0, 700, 1_500).submit(1, 6, 300, 900, 600).fault(Fault {
                when: When::Random { rate: 0.05 },
                how: How::Rst,
                dirs: Dirs::Both,
            }),
            _ => return None,
        })
    }

    /// Parse a TOML scenario (`name` defaults to `default_name`).
    ///
    /// # Errors
    /// A message naming the bad field.
    pub fn from_toml(text: &str, default_name: &str) -> Result<Scenario, String> {
        let raw: Raw = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut s = Scenario::new(raw.name.as_deref().unwrap_or(default_name));
        if let Some(m) = raw.mode.as_deref() {
            s.mode = match m {
                "normal" => Mode::Normal,
                "x410" | "x410-1984" => Mode::X410,
                _ => return Err(format!("mode: expected normal or x410, found {m:?}")),
            };
        }
        if let Some(d) = raw.dialogue.as_deref() {
            s.dialogue = match d {
                "twa" => Dialogue::Twa,
                "monologue" => Dialogue::Monologue,
                _ => return Err(format!("dialogue: expected twa or monologue, found {d:?}")),
            };
        }
        let flaw = |f: &Option<String>| f.as_deref().map(str::parse::<Flaw>).transpose().map_err(|e| e.to_string());
        s.flaws = [flaw(&raw.flaw_a)?, flaw(&raw.flaw_b)?];
        if let Some(o) = raw.opener {
            s.opener = [o.contains(&"A".to_owned()), o.contains(&"B".to_owned())];
        }
        if let Some(t) = raw.backlog_threshold {
            s.backlog_threshold = t.max(1);
        }
        if let Some(v) = raw.fault_phase_ms {
            s.fault_phase = v * MS;
        }
        if let Some(v) = raw.healthy_ms {
            s.healthy_bound = v * MS;
        }
        if let Some(v) = raw.latency_ms {
            s.latency = v * MS;
        }
        if let Some(v) = raw.jitter_ms {
            s.jitter = v * MS;
        }
        for (i, r) in raw.submit.iter().enumerate() {
            let side = side(&r.side).ok_or_else(|| format!("submit[{i}].side: expected A or B, found {:?}", r.side))?;
            s.submit.push(Submit {
                side,
                count: r.count.unwrap_or(1),
                at: r.at_ms.unwrap_or(0) * MS,
                every: r.every_ms.unwrap_or(0) * MS,
                size: r.size.unwrap_or(40),
            });
        }
        for (i, r) in raw.fault.iter().enumerate() {
            let n = r.n.unwrap_or(1);
            let when = match (&r.before, &r.after, r.index, r.at_ms, r.rate) {
                (Some(p), None, None, None, None) => When::Before { pdu: Some(p.clone()), n },
                (None, Some(p), None, None, None) => When::After { pdu: Some(p.clone()), n },
                (None, None, Some(ix), None, None) => When::Before { pdu: None, n: ix },
                (None, None, None, Some(t), None) => When::At(t * MS),
                (None, None, None, None, Some(rate)) => When::Random { rate },
                _ => return Err(format!("fault[{i}]: exactly one of before, after, index, at_ms, rate")),
            };
            s.faults.push(Fault { when, how: r.how, dirs: r.dirs.unwrap_or(Dirs::Both) });
        }
        Ok(s)
    }

    /// A built-in name, or a TOML file path.
    ///
    /// # Errors
    /// Unknown name, unreadable file, bad TOML.
    pub fn load(name_or_file: &str) -> Result<Arc<Scenario>, String> {
        if let Some(s) = Scenario::builtin(name_or_file) {
            return Ok(Arc::new(s));
        }
        let p = std::path::Path::new(name_or_file);
        if !p.exists() {
            return Err(format!(
                "unknown scenario {name_or_file:?}: neither a built-in ({}) nor a file",
                BUILTIN.join(", ")
            ));
        }
        let text = std::fs::read_to_string(p).map_err(|e| format!("{name_or_file}: {e}"))?;
        let mut s = Scenario::from_toml(&text, name_or_file).map_err(|e| format!("{name_or_file}: {e}"))?;
        // The replay command must name the file, whatever the TOML calls it.
        s.name = name_or_file.to_owned();
        Ok(Arc::new(s))
    }
}

/// Names of the built-in scenarios.
pub const BUILTIN: [&str; 6] = ["exchange", "turn-give", "large", "x410", "field-failure", "random"];

fn side(s: &str) -> Option<usize> {
    match s {
        "A" | "a" => Some(0),
        "B" | "b" => Some(1),
        _ => None,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Option<String>,
    mode: Option<String>,
    dialogue: Option<String>,
    flaw_a: Option<String>,
    flaw_b: Option<String>,
    opener: Option<Vec<String>>,
    backlog_threshold: Option<usize>,
    fault_phase_ms: Option<u64>,
    healthy_ms: Option<u64>,
    latency_ms: Option<u64>,
    jitter_ms: Option<u64>,
    #[serde(default)]
    submit: Vec<RawSubmit>,
    #[serde(default)]
    fault: Vec<RawFault>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubmit {
    side: String,
    count: Option<u32>,
    at_ms: Option<u64>,
    every_ms: Option<u64>,
    size: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    before: Option<String>,
    after: Option<String>,
    index: Option<u32>,
    n: Option<u32>,
    at_ms: Option<u64>,
    rate: Option<f64>,
    how: How,
    dirs: Option<Dirs>,
}
