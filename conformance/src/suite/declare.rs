//! Per-IUT declaration (TOML): what the implementation supports and which
//! verdicts are expected where it knowingly diverges, each with a reason.
//! Grading follows webpki's limbo exceptions: a declared divergence that
//! now passes (unexpected pass) and an entry that names no case (stale)
//! fail the run, so the file cannot rot.
//!
//! ```toml
//! name = "ACME MTA 4.2"
//! [capabilities]
//! mode = "normal"            # normal | x410
//! dialogue = ["twa"]         # twa, monologue
//! recovery = true            # accepts recovery (false: refuses it)
//! roles = ["responder"]      # responder, initiator
//! [initiator]                # over TCP, how the tester makes the IUT connect:
//! command = "acme-mta --peer {addr} --queue {count}x{size} --mode {mode}"
//! listen = "127.0.0.1:0"     # where the tester listens (default)
//! [[expected]]
//! case = "turn.recovery.field-failure*"   # id, area prefix or glob
//! verdict = "fail"
//! reason = "ticket 1234: trusts its memory of the Turn after recovery"
//! ```

use super::case::{matches, Case};
use super::run::{Capabilities, CaseResult, Verdict};
use rtse_codec::presentation::Mode;
use serde::Deserialize;

/// A parsed declaration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    /// Name shown in reports.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub capabilities: CapsSpec,
    #[serde(default)]
    pub expected: Vec<Expected>,
    /// Over TCP: the command that makes the IUT connect to the tester.
    #[serde(default)]
    pub initiator: Option<InitiatorSpec>,
}

/// How the tester makes the IUT connect (the IUT as association-initiator
/// over TCP): a command run per case, as Autobahn's fuzzingclient. See
/// [`super::tcp::InitiatorLaunch`] for the placeholders.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitiatorSpec {
    /// Command template (`{addr}`, `{mail}`, `{count}`, `{size}`, `{turn}`, `{mode}`, `{rtse}`).
    pub command: String,
    /// Where the tester listens (`127.0.0.1:0`: a fresh port per case).
    #[serde(default = "local0")]
    pub listen: String,
}

fn local0() -> String {
    "127.0.0.1:0".into()
}

/// Capabilities as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapsSpec {
    #[serde(default = "normal")]
    pub mode: String,
    #[serde(default = "twa")]
    pub dialogue: Vec<String>,
    #[serde(default = "yes")]
    pub recovery: bool,
    #[serde(default = "responder")]
    pub roles: Vec<String>,
}

impl Default for CapsSpec {
    fn default() -> Self {
        CapsSpec { mode: normal(), dialogue: twa(), recovery: true, roles: responder() }
    }
}

fn normal() -> String {
    "normal".into()
}
fn twa() -> Vec<String> {
    vec!["twa".into()]
}
fn yes() -> bool {
    true
}
fn responder() -> Vec<String> {
    vec!["responder".into()]
}

/// A known divergence.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// Case id, area/group prefix, or glob.
    pub case: String,
    pub verdict: Verdict,
    /// Why (required: a divergence without a reason is not accepted).
    pub reason: String,
}

impl Declaration {
    /// Parse and validate.
    pub fn parse(text: &str) -> Result<Self, String> {
        let d: Declaration = toml::from_str(text).map_err(|e| e.to_string())?;
        d.capabilities()?;
        if let Some(i) = &d.initiator {
            super::tcp::split_command(&i.command).map_err(|e| format!("initiator.command: {e}"))?;
        }
        for e in &d.expected {
            if e.reason.trim().is_empty() {
                return Err(format!("expected entry {:?}: a reason is required", e.case));
            }
        }
        Ok(d)
    }

    /// The capabilities.
    pub fn capabilities(&self) -> Result<Capabilities, String> {
        let c = &self.capabilities;
        let mode = match c.mode.as_str() {
            "normal" => Mode::Normal,
            "x410" => Mode::X410,
            m => return Err(format!("capabilities.mode {m:?}: normal or x410")),
        };
        for d in &c.dialogue {
            if d != "twa" && d != "monologue" {
                return Err(format!("capabilities.dialogue {d:?}: twa or monologue"));
            }
        }
        for r in &c.roles {
            if r != "responder" && r != "initiator" {
                return Err(format!("capabilities.roles {r:?}: responder or initiator"));
            }
        }
        Ok(Capabilities {
            mode,
            twa: c.dialogue.iter().any(|d| d == "twa"),
            monologue: c.dialogue.iter().any(|d| d == "monologue"),
            recovery: c.recovery,
            responder: c.roles.iter().any(|r| r == "responder"),
            initiator: c.roles.iter().any(|r| r == "initiator"),
        })
    }

    /// The declared verdict for a case (first matching entry).
    #[must_use]
    pub fn expected_for(&self, id: &str) -> Option<&Expected> {
        self.expected.iter().find(|e| matches(&e.case, id))
    }

    /// Entries that name no case of the suite.
    #[must_use]
    pub fn stale(&self, all: &[Case]) -> Vec<&Expected> {
        self.expected.iter().filter(|e| !all.iter().any(|c| matches(&e.case, &c.id))).collect()
    }
}

/// How a result compares with what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Grade {
    /// Passed, as expected.
    Pass,
    /// Skipped for a capability not declared.
    Skip,
    /// The declared divergence happened.
    KnownDivergence,
    /// Expected to pass, did not.
    UnexpectedFailure,
    /// Declared to diverge, but passed: update the declaration.
    UnexpectedPass,
}

impl Grade {
    /// Does this grade fail the run?
    #[must_use]
    pub const fn unexpected(self) -> bool {
        matches!(self, Grade::UnexpectedFailure | Grade::UnexpectedPass)
    }
}

/// Grade one result.
#[must_use]
pub fn grade(r: &CaseResult, expected: Option<&Expected>) -> Grade {
    match (r.verdict, expected) {
        (Verdict::Skipped, _) => Grade::Skip,
        (v, Some(e)) if v == e.verdict => Grade::KnownDivergence,
        (Verdict::Pass, Some(_)) => Grade::UnexpectedPass,
        (Verdict::Pass, None) => Grade::Pass,
        _ => Grade::UnexpectedFailure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(v: Verdict) -> CaseResult {
        CaseResult { id: "a.b".into(), verdict: v, kind: None, reason: None, seed: 0, trace: Vec::new(), time_ns: 0 }
    }

    #[test]
    fn grading_follows_the_exceptions() {
        let e = Expected { case: "a.b".into(), verdict: Verdict::Fail, reason: "known".into() };
        assert_eq!(grade(&result(Verdict::Pass), None), Grade::Pass);
        assert_eq!(grade(&result(Verdict::Fail), None), Grade::UnexpectedFailure);
        assert_eq!(grade(&result(Verdict::Fail), Some(&e)), Grade::KnownDivergence);
        assert_eq!(grade(&result(Verdict::Pass), Some(&e)), Grade::UnexpectedPass);
        assert_eq!(grade(&result(Verdict::Inconclusive), Some(&e)), Grade::UnexpectedFailure);
        assert_eq!(grade(&result(Verdict::Skipped), None), Grade::Skip);
    }

    #[test]
    fn declarations_validate() {
        let d = Declaration::parse(
            "name='x'\n[capabilities]\nmode='x410'\nroles=['responder','initiator']\n[[expected]]\ncase='turn.*'\nverdict='fail'\nreason='r'\n",
        )
        .unwrap();
        let c = d.capabilities().unwrap();
        assert_eq!(c.mode, Mode::X410);
        assert!(c.initiator && c.responder && c.twa && !c.monologue);
        assert!(d.expected_for("turn.please.idle-holder").is_some());
        assert!(Declaration::parse("[[expected]]\ncase='a'\nverdict='fail'\nreason=' '\n").is_err());
        assert!(Declaration::parse("[capabilities]\nmode='x400'\n").is_err());
        let d = Declaration::parse("[initiator]\ncommand=\"mta --to {addr}\"\n").unwrap();
        assert_eq!(d.initiator.unwrap().listen, "127.0.0.1:0");
        assert!(Declaration::parse("[initiator]\ncommand=\"mta 'x\"\n").is_err());
        assert!(Declaration::parse("[[expected]]\ncase='a'\nverdict='broken'\nreason='r'\n").is_err());
        let all = crate::suite::case::builtin().unwrap();
        let d = Declaration::parse("[[expected]]\ncase='no.such.case'\nverdict='fail'\nreason='r'\n").unwrap();
        assert_eq!(d.stale(&all).len(), 1);
    }
}
