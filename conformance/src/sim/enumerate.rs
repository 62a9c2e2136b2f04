//! Exhaustive drop points: for a scenario, every PDU boundary (before each
//! TPKT the healthy run delivers, and after the last) times every way of
//! losing the association ([`How`]) told to / done by A, B or both.

use super::{run, Dirs, Fault, How, Outcome, Scenario, When};
use std::sync::Arc;

/// One drop point and what came of it.
#[derive(Debug, Clone)]
pub struct Point {
    /// The fault injected.
    pub fault: Fault,
    /// The run.
    pub outcome: Outcome,
}

/// The drop points of `sc` (its own faults removed): `(boundaries, faults)`.
/// `step` > 1 takes every `step`-th boundary only (a smaller sweep).
#[must_use]
pub fn points(sc: &Scenario, seed: u64, step: usize) -> (u32, Vec<Fault>) {
    let mut healthy = sc.clone();
    healthy.faults.clear();
    let base = run(seed, &Arc::new(healthy));
    // TPKTs delivered (last of each TSDU) during the fault phase.
    let n = base
        .trace
        .iter()
        .filter(|t| t.time < sc.fault_phase)
        .filter(|t| matches!(&t.kind, crate::loopback::TraceKind::Pdu { info, delivered: true, .. } if info.eot))
        .count() as u32;
    let mut faults = Vec::new();
    let step = step.max(1);
    let mut whens: Vec<When> = (1..=n).step_by(step).map(|i| When::Before { pdu: None, n: i }).collect();
    whens.push(When::After { pdu: None, n });
    for when in whens {
        for how in How::ALL {
            let dirs: &[Dirs] = match how {
                How::Cut => &[Dirs::Both],
                _ => &[Dirs::A, Dirs::B, Dirs::Both],
            };
            if how == How::Cut && matches!(when, When::After { .. }) {
                continue;
            }
            for &d in dirs {
                faults.push(Fault { when: when.clone(), how, dirs: d });
            }
        }
    }
    (n, faults)
}

/// Run every drop point of `sc` (see [`points`]).
#[must_use]
pub fn enumerate(sc: &Scenario, seed: u64, step: usize) -> Vec<Point> {
    let (_, faults) = points(sc, seed, step);
    faults
        .into_iter()
        .map(|f| {
            let mut s = sc.clone();
            s.faults = vec![f.clone()];
            Point { outcome: run(seed, &Arc::new(s)), fault: f }
        })
        .collect()
}
