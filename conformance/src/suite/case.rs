//! Test cases as data: the TOML model, its validation and the embedded
//! case files (`conformance/cases/*.toml`, compiled in with
//! `include_str!` so `rtse run` works from any directory).
//!
//! A file holds `[[case]]` tables; a case with a `vary` table is a family:
//! one case per combination of the listed values, `{name}` in any string
//! of the case (its id included) replaced by the value.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// The case files, by file name (the area is the id's first component).
pub const FILES: &[(&str, &str)] = &[
    ("establish.toml", include_str!("../../cases/establish.toml")),
    ("transfer.toml", include_str!("../../cases/transfer.toml")),
    ("turn.toml", include_str!("../../cases/turn.toml")),
    ("release.toml", include_str!("../../cases/release.toml")),
    ("abort.toml", include_str!("../../cases/abort.toml")),
    ("recovery.toml", include_str!("../../cases/recovery.toml")),
    ("malformed.toml", include_str!("../../cases/malformed.toml")),
];

/// How much a case matters to an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Importance {
    /// Interoperability fails (lost mail, stuck Turn) if it does not hold.
    High,
    /// A standard's MUST whose breach is usually survivable.
    Medium,
    /// Robustness or a SHOULD.
    Low,
}

/// RTSE mode a case needs (`any`: the IUT's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModeNeed {
    #[default]
    Any,
    Normal,
    X410,
}

/// Which role the IUT plays in the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoleNeed {
    /// The tester opens the association (the IUT accepts).
    #[default]
    Responder,
    /// The IUT opens it (the tester listens).
    Initiator,
}

/// What the IUT must support for the case to apply (else `skipped`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Needs {
    #[serde(default)]
    pub mode: ModeNeed,
    #[serde(default)]
    pub role: RoleNeed,
    /// Needs two-way-alternate dialogue (default true: P1 is twa).
    #[serde(default = "yes")]
    pub twa: bool,
    /// Needs monologue dialogue support.
    #[serde(default)]
    pub monologue: bool,
    /// Needs the IUT to accept recovery (`true`), or to refuse it (`false`,
    /// a case about refusal), or either (absent).
    #[serde(default)]
    pub recovery: Option<bool>,
}

fn yes() -> bool {
    true
}

/// The IUT's starting state, set by the upper tester.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    /// Messages (content octets each) the IUT has to send when the
    /// association opens.
    #[serde(default)]
    pub mail: Vec<u32>,
    /// IUT as initiator: who gets the Turn in its CN (`initiator` /
    /// `responder`).
    #[serde(default)]
    pub turn: Option<String>,
}

/// One step of the tester's script, as written (one main key per table).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StepSpec {
    /// Macro: connect, CR/CC, CN (Turn to `initiator`/`responder`/`choice`
    /// or `absent`), expect AC. A preamble: its failure is inconclusive.
    pub open: Option<String>,
    /// Macro: connect, CR/CC, CN `recover` quoting the last connection
    /// with this Token Setting (hex: `00`, `15`, `2A`), expect AC.
    pub recover: Option<String>,
    /// Open a transport connection to the IUT.
    pub connect: Option<bool>,
    /// Send a PDU by name (see [`super::run`]).
    pub send: Option<String>,
    /// Expect one of these from the IUT.
    pub expect: Option<OneOrMany>,
    /// Answer the IUT's transfer (MIA per MIP, AEA at AE) until it ends.
    pub answer: Option<String>,
    /// End the transport: `fin`, `rst` or `abort` (AB, then FIN).
    pub drop: Option<String>,
    /// Let time pass (the IUT's timers run).
    pub wait: Option<String>,
    // --- fields of the above
    /// PDUs the IUT may send before the expected one (consumed, observed).
    pub skip: Option<Vec<String>>,
    /// Bound of an expect (`500ms`, `2s`); default 1s.
    pub within: Option<String>,
    /// Token Setting the expected CN/AC must carry (hex).
    pub setting: Option<String>,
    /// Serial number (MIP/MIA/AE/AEA/AR), or what an expected one must carry.
    pub n: Option<u32>,
    /// Activity identifier (AS/AR new).
    pub id: Option<u64>,
    /// AR: the old activity identifier.
    pub old: Option<u64>,
    /// RT-TURN-PLEASE priority.
    pub priority: Option<i64>,
    /// CN: checkpointSize / windowSize / dialogue.
    pub checkpoint: Option<i64>,
    pub window: Option<i64>,
    pub monologue: Option<bool>,
    /// `transfer`/`dt`: message content octets.
    pub size: Option<u32>,
    /// `raw`: the octets, hex.
    pub hex: Option<String>,
    /// A preamble step: its failure gives `inconclusive` (`open` always is).
    pub preamble: Option<bool>,
}

/// A string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// The strings.
    #[must_use]
    pub fn list(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// One test case.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// `area.group.name`, unique.
    pub id: String,
    /// The clause of the standard or the spec/ section.
    pub clause: String,
    /// The requirement, in words.
    pub requirement: String,
    pub importance: Importance,
    #[serde(default)]
    pub needs: Needs,
    #[serde(default)]
    pub iut: Setup,
    /// Invariants checked over the observed PDUs (names of
    /// [`crate::tracker::Invariant`]); default: one-holder,
    /// only-holder-sends, holder-after-recovery.
    #[serde(default)]
    pub invariants: Option<Vec<String>>,
    /// Tracker procedure checks this case tolerates from the IUT
    /// (see [`super::run::PROCEDURE_CHECKS`]).
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    pub steps: Vec<StepSpec>,
    /// File it came from (set by the loader).
    #[serde(skip_deserializing, default)]
    pub file: String,
}

impl Case {
    /// The area: the id's first component (`turn`, `recovery`...).
    #[must_use]
    pub fn area(&self) -> &str {
        self.id.split('.').next().unwrap_or("")
    }
}

/// A case file that does not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError(pub String);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for LoadError {}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    case: Vec<toml::Table>,
}

/// Load the cases of one file's text, families expanded.
pub fn load_str(name: &str, text: &str) -> Result<Vec<Case>, LoadError> {
    let f: File = toml::from_str(text).map_err(|e| LoadError(format!("{name}: {e}")))?;
    let mut out = Vec::new();
    for mut t in f.case {
        let vary = t.remove("vary");
        let combos = match vary {
            None => vec![BTreeMap::new()],
            Some(toml::Value::Table(v)) => combinations(&v).map_err(|e| LoadError(format!("{name}: {e}")))?,
            Some(_) => return Err(LoadError(format!("{name}: `vary` must be a table of lists"))),
        };
        for combo in combos {
            let mut v = toml::Value::Table(t.clone());
            substitute(&mut v, &combo);
            let mut c: Case = v.try_into().map_err(|e: toml::de::Error| {
                let id = t.get("id").and_then(|i| i.as_str()).unwrap_or("?");
                LoadError(format!("{name}: case {id}: {e}"))
            })?;
            if c.id.contains('{') {
                return Err(LoadError(format!("{name}: case {}: unsubstituted placeholder", c.id)));
            }
            c.file = name.to_owned();
            out.push(c);
        }
    }
    Ok(out)
}

fn combinations(v: &toml::Table) -> Result<Vec<BTreeMap<String, String>>, String> {
    let mut acc = vec![BTreeMap::new()];
    for (k, vals) in v {
        let vals = vals.as_array().ok_or_else(|| format!("vary.{k} must be a list"))?;
        let mut next = Vec::new();
        for a in &acc {
            for x in vals {
                let s = match x {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let mut m: BTreeMap<String, String> = a.clone();
                m.insert(k.clone(), s);
                next.push(m);
            }
        }
        acc = next;
    }
    Ok(acc)
}

fn substitute(v: &mut toml::Value, combo: &BTreeMap<String, String>) {
    match v {
        toml::Value::String(s) => {
            for (k, x) in combo {
                let pat = format!("{{{k}}}");
                if s == &pat {
                    // A whole-value placeholder keeps the value's type when
                    // it is a number.
                    if let Ok(n) = x.parse::<i64>() {
                        *v = toml::Value::Integer(n);
                        return;
                    }
                }
                if s.contains(&pat) {
                    *s = s.replace(&pat, x);
                }
            }
        }
        toml::Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, combo)),
        toml::Value::Table(t) => t.iter_mut().for_each(|(_, x)| substitute(x, combo)),
        _ => {}
    }
}

/// Every built-in case, in file order; ids are checked unique.
pub fn builtin() -> Result<Vec<Case>, LoadError> {
    let mut all = Vec::new();
    for (name, text) in FILES {
        all.extend(load_str(name, text)?);
    }
    let all = per_mode(all);
    let mut seen = std::collections::BTreeSet::new();
    for c in &all {
        if !seen.insert(c.id.clone()) {
            return Err(LoadError(format!("{}: duplicate case id {}", c.file, c.id)));
        }
    }
    Ok(all)
}

/// The mode matrix: a case for any mode runs in each, as `ID` (normal
/// mode) and `ID@x410` (X.410-1984 mode); the IUT's capabilities skip the
/// modes it does not speak. Mode-specific cases stay as they are.
#[must_use]
pub fn per_mode(cases: Vec<Case>) -> Vec<Case> {
    let mut out = Vec::with_capacity(cases.len() * 2);
    let mut x410 = Vec::new();
    for mut c in cases {
        if c.needs.mode == ModeNeed::Any {
            let mut x = c.clone();
            x.id = format!("{}@x410", c.id);
            x.needs.mode = ModeNeed::X410;
            x410.push(x);
            c.needs.mode = ModeNeed::Normal;
        }
        out.push(c);
    }
    out.extend(x410);
    out
}

/// Does `id` match a selection pattern: exact, a prefix ending in `.`, or
/// a glob with `*`.
#[must_use]
pub fn matches(pattern: &str, id: &str) -> bool {
    if !pattern.contains('*') {
        return id == pattern || (id.starts_with(pattern) && id[pattern.len()..].starts_with('.'));
    }
    glob(pattern.as_bytes(), id.as_bytes())
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_expand_with_typed_values() {
        let t = r#"
[[case]]
id = "a.drop.{how}.{n}"
clause = "x"
requirement = "drop by {how}"
importance = "low"
vary = { how = ["fin", "rst"], n = [1, 2] }
steps = [{ drop = "{how}" }, { send = "mia", n = "{n}" }]
"#;
        let cs = load_str("t.toml", t).unwrap();
        assert_eq!(cs.len(), 4);
        assert_eq!(cs[0].id, "a.drop.fin.1");
        assert_eq!(cs[3].id, "a.drop.rst.2");
        assert_eq!(cs[3].steps[0].drop.as_deref(), Some("rst"));
        assert_eq!(cs[3].steps[1].n, Some(2));
        assert_eq!(cs[1].requirement, "drop by fin");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let t = "[[case]]\nid='a'\nclause='x'\nrequirement='r'\nimportance='low'\nsteps=[{ sned = 'pt' }]\n";
        let e = load_str("t.toml", t).unwrap_err();
        assert!(e.0.contains("sned"), "{e}");
    }

    #[test]
    fn selection_patterns() {
        assert!(matches("turn", "turn.please.idle"));
        assert!(!matches("tur", "turn.please.idle"));
        assert!(matches("turn.please.idle", "turn.please.idle"));
        assert!(matches("*.idle", "turn.please.idle"));
        assert!(matches("turn.*.idle", "turn.please.idle"));
        assert!(!matches("turn.*.busy", "turn.please.idle"));
    }
}
