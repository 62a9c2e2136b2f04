//! The conformance suite: cases as data ([`case`]), the tester and its
//! verdicts ([`run`]), implementations under test ([`iut`], [`tcp`]),
//! per-IUT declarations ([`declare`]), reports ([`report`]) and the
//! `rtse run | cases | serve` commands ([`cmd`]). docs/conformance.md is
//! the user's guide.

pub mod case;
pub mod cmd;
pub mod declare;
pub mod iut;
pub mod peer;
pub mod report;
pub mod run;
pub mod tcp;

pub use case::{Case, Importance};
pub use iut::{InProcessIut, Iut, IutError, IutEvent};
pub use run::{run_case, Capabilities, CaseResult, Verdict};

use crate::flaw::Flaw;
use rtse_codec::presentation::Mode;

/// Run `cases` against `iut`, in order.
pub fn run_all(cases: &[Case], iut: &mut dyn Iut, caps: &Capabilities, seed: Option<u64>) -> Vec<CaseResult> {
    cases.iter().map(|c| run_case(c, iut, caps, seed)).collect()
}

/// The mutation matrix: the reference and each flaw, in process.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// The reference MTA's results (normal mode).
    pub reference: Vec<CaseResult>,
    /// Per flaw, the ids of the cases it fails (verdict fail).
    pub flaws: Vec<(Flaw, Vec<String>)>,
}

impl Matrix {
    /// Flaws no case catches.
    #[must_use]
    pub fn survivors(&self) -> Vec<Flaw> {
        self.flaws.iter().filter(|(_, c)| c.is_empty()).map(|(f, _)| *f).collect()
    }
    /// Caught flaws / all flaws.
    #[must_use]
    pub fn score(&self) -> f64 {
        let caught = self.flaws.iter().filter(|(_, c)| !c.is_empty()).count();
        caught as f64 / self.flaws.len().max(1) as f64
    }
}

/// Run `cases` against the in-process reference (in `mode`) and every flaw.
#[must_use]
pub fn matrix(cases: &[Case], mode: Mode) -> Matrix {
    let caps = Capabilities::all(mode);
    let reference = run_all(cases, &mut InProcessIut::new(mode, None), &caps, None);
    let flaws = Flaw::ALL
        .into_iter()
        .map(|f| {
            let rs = run_all(cases, &mut InProcessIut::new(mode, Some(f)), &caps, None);
            (f, rs.into_iter().filter(|r| r.verdict == Verdict::Fail).map(|r| r.id).collect())
        })
        .collect();
    Matrix { reference, flaws }
}
