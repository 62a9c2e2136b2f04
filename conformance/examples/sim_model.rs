//! Model check: reference, then forgets-given-turn on A; prints states,
//! states/s and the counterexample.
use rtse_conformance::flaw::Flaw;
use rtse_conformance::sim::model::{check, ModelConfig};
use std::time::Instant;

fn main() {
    for flaws in [[None, None], [Some(Flaw::ForgetsGivenTurn), None]] {
        let t = Instant::now();
        let r = check(&ModelConfig::small(flaws));
        let s = t.elapsed().as_secs_f64();
        println!(
            "{:?}: {} states, {} final, {:.3} s, {:.0} states/s, truncated {}",
            flaws[0],
            r.states,
            r.finals,
            s,
            r.states as f64 / s,
            r.truncated
        );
        if let Some((inv, detail, steps)) = r.counterexample {
            println!("  {inv}: {detail}\n  {}", steps.join("\n  "));
        }
    }
}
