//! Model check: reference, then forgets-given-turn on A; prints states,
//! states/s and the counterexample.
use rtse_conformance::flaw::Flaw;
use rtse_conformance::sim::model::{check, ModelConfig};
use std::time::Instant;

fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    for flaws in [[None, None], [Some(Flaw::ForgetsGivenTurn), None]] {
        let mut cfg = ModelConfig::small(flaws);
        if which.contains("all") {
            cfg = cfg.all_drops();
        }
        if which.contains("x410") {
            cfg = cfg.mode(rtse_codec::presentation::Mode::X410);
        }
        let t = Instant::now();
        let r = check(&cfg);
        let s = t.elapsed().as_secs_f64();
        println!(
            "{:?}: {} states, {} final, {:?} interned, {:.3} s, {:.0} states/s, truncated {}",
            flaws[0],
            r.states,
            r.finals,
            r.interned,
            s,
            r.states as f64 / s,
            r.truncated
        );
        if let Some(c) = r.counterexample {
            println!("  {}: {}\n  steps:\n    {}", c.invariant, c.detail, c.steps.join("\n    "));
            println!("  PDU sequence:\n    {}", c.pdus.join("\n    "));
        }
    }
}
