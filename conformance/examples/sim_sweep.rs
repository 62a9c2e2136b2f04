//! Sweep every drop point of every built-in scenario with the reference
//! MTA (or `--flaw NAME` on side A/B) and print the failing points.
use rtse_conformance::flaw::Flaw;
use rtse_conformance::sim::enumerate::enumerate;
use rtse_conformance::sim::scenario::{Scenario, BUILTIN};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flaw: Option<Flaw> = args.get(1).map(|s| s.parse().expect("flaw"));
    let side: usize = args.get(2).map_or(0, |s| s.parse().expect("side"));
    for name in BUILTIN {
        if name == "random" {
            continue;
        }
        let mut sc = Scenario::builtin(name).expect("builtin");
        sc.faults.clear();
        sc.flaws[side] = flaw;
        let t = std::time::Instant::now();
        let pts = enumerate(&sc, 0, 1);
        let bad: Vec<_> = pts.iter().filter(|p| !p.outcome.ok()).collect();
        println!("{name}: {} points, {} failing, {:?}", pts.len(), bad.len(), t.elapsed());
        for p in bad.iter().take(usize::MAX) {
            println!(
                "  {} -> {}",
                p.fault,
                p.outcome
                    .violations
                    .iter()
                    .map(|v| format!("{}: {}", v.invariant, v.detail))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
        }
    }
}
