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

/// Run `cases` on `jobs` threads, each with its own IUT adapter from
/// `make` (over TCP: its own connections to the same server); results in
/// case order. `done` is told each finished case (progress). Real-time
/// bounds make more than a few jobs on few cores a source of timeouts.
pub fn run_parallel(
    cases: &[Case],
    make: &(dyn Fn() -> Result<Box<dyn Iut>, String> + Sync),
    caps: &Capabilities,
    seed: Option<u64>,
    jobs: usize,
    done: &(dyn Fn(&CaseResult) + Sync),
) -> Result<Vec<CaseResult>, String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<CaseResult>>> = cases.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let errors = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, 64) {
            s.spawn(|| {
                let mut iut = match make() {
                    Ok(i) => i,
                    Err(e) => {
                        errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(e);
                        return;
                    }
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(c) = cases.get(i) else { break };
                    let r = run_case(c, iut.as_mut(), caps, seed);
                    done(&r);
                    *slots[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(r);
                }
            });
        }
    });
    if let Some(e) = errors.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner).into_iter().next() {
        return Err(e);
    }
    slots
        .into_iter()
        .map(|m| {
            m.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner).ok_or_else(|| "a case did not run".into())
        })
        .collect()
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

/// Run `cases` against the in-process reference and every flaw, in the
/// modes `caps` speaks.
#[must_use]
pub fn matrix(cases: &[Case], caps: &Capabilities) -> Matrix {
    let mode = Mode::Normal;
    // One thread per IUT: each run is independent and deterministic.
    std::thread::scope(|s| {
        let reference = s.spawn(|| run_all(cases, &mut InProcessIut::new(mode, None), caps, None));
        let flaws: Vec<_> = Flaw::ALL
            .into_iter()
            .map(|f| {
                s.spawn(move || {
                    let rs = run_all(cases, &mut InProcessIut::new(mode, Some(f)), caps, None);
                    (f, rs.into_iter().filter(|r| r.verdict == Verdict::Fail).map(|r| r.id).collect())
                })
            })
            .collect();
        Matrix {
            reference: reference.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            flaws: flaws.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect(),
        }
    })
}
