//! Simulator figures: simulated PDUs/s (unrecorded runs of the random
//! scenario), complete seed-scenario runs/s (recorded, invariants judged),
//! and exhaustive drop-point enumeration time per built-in scenario.
use rtse_conformance::sim::enumerate::enumerate;
use rtse_conformance::sim::scenario::{Scenario, BUILTIN};
use rtse_conformance::sim::Sim;
use std::sync::Arc;
use std::time::Instant;

/// `cargo bench --bench sim -- [sim] [runs] [model] [enum]`: only the
/// named sections (all without a name; cargo's own `--bench` flag is
/// ignored). `RTSE_BENCH_SECS` sets the time per timed section (2 s);
/// `RTSE_BENCH_SEEDS=n` runs seeds `0..n` of `sim` instead (a fixed
/// workload, for instruction counts: `valgrind --tool=callgrind`).
fn main() {
    let names: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let on = |what: &str| names.is_empty() || names.iter().any(|n| n == what);
    let secs: f64 = std::env::var("RTSE_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let sc = Arc::new(Scenario::builtin("random").unwrap());
    if on("sim") {
        sim(&sc, secs);
    }
    if on("runs") {
        runs(&sc, secs);
    }
    if on("model") {
        model();
    }
    if on("enum") {
        enumeration();
    }
}

fn sim(sc: &Arc<Scenario>, secs: f64) {
    let t = Instant::now();
    let mut pdus = 0;
    let mut n = 0u64;
    let seeds: Option<u64> = std::env::var("RTSE_BENCH_SEEDS").ok().and_then(|s| s.parse().ok());
    while seeds.map_or(t.elapsed().as_secs_f64() < secs, |k| n < k) {
        let o = Sim::new(n, sc.clone()).unrecorded().run();
        pdus += o.pdus;
        n += 1;
    }
    let s = t.elapsed().as_secs_f64();
    println!("sim: {:.0} simulated PDUs/s (unrecorded, scenario random, {n} seeds, {pdus} PDUs)", pdus as f64 / s);
}

fn runs(sc: &Arc<Scenario>, secs: f64) {
    let t = Instant::now();
    let mut runs = 0u64;
    while t.elapsed().as_secs_f64() < secs {
        let o = rtse_conformance::sim::run(runs, sc);
        std::hint::black_box(o.ok());
        runs += 1;
    }
    println!(
        "sim: {:.0} seed-scenario runs/s (random, recorded, invariants judged)",
        runs as f64 / t.elapsed().as_secs_f64()
    );
}

/// Each check is timed over repeated runs: one run is 1-50 ms, too short
/// for one timing to mean much on a shared machine. The figure is the
/// median run (first and best beside it); every run starts from nothing
/// (no cache outlives `check`). `RTSE_BENCH_MODEL_RUNS=n` fixes the count
/// (1 for instruction counts under callgrind); by default it runs for a
/// quarter of `RTSE_BENCH_SECS` per check, at least 5 times.
fn model() {
    let secs: f64 = std::env::var("RTSE_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let fixed: Option<usize> = std::env::var("RTSE_BENCH_MODEL_RUNS").ok().and_then(|s| s.parse().ok());
    for all in [false, true] {
        for (what, flaws) in [
            ("reference", [None, None]),
            ("forgets-given-turn", [Some(rtse_conformance::flaw::Flaw::ForgetsGivenTurn), None]),
        ] {
            let mut cfg = rtse_conformance::sim::model::ModelConfig::small(flaws);
            if all {
                cfg = cfg.all_drops();
            }
            let begun = Instant::now();
            let mut times = Vec::new();
            let mut last = None;
            while fixed
                .map_or(times.len() < 5 || begun.elapsed().as_secs_f64() < secs / 4.0, |n| times.len() < n.max(1))
            {
                let t = Instant::now();
                let r = rtse_conformance::sim::model::check(&cfg);
                times.push(t.elapsed().as_secs_f64());
                last = Some(r);
            }
            let Some(r) = last else { continue };
            let first = times[0];
            times.sort_by(f64::total_cmp);
            let (median, best) = (times[times.len() / 2], times[0]);
            let per = |s: f64| r.states as f64 / s;
            println!(
                "model check ({what}, {} drops): {} states in {:.1} ms, {:.0} states/s (median of {} runs; first {:.0}, best {:.0}), {} MTA states, {} TPKTs{}",
                if all { "rst/fin/u-abort" } else { "rst" },
                r.states,
                median * 1e3,
                per(median),
                times.len(),
                per(first),
                per(best),
                r.interned.0,
                r.interned.1,
                if r.counterexample.is_some() { ", time to the counterexample" } else { ", no violation" }
            );
        }
    }
}

fn enumeration() {
    for name in BUILTIN {
        if name == "random" {
            continue;
        }
        let sc = Scenario::builtin(name).unwrap();
        let t = Instant::now();
        let pts = enumerate(&sc, 0, 1);
        println!("sim: enumeration of {name}: {} drop points in {:.1} ms", pts.len(), t.elapsed().as_secs_f64() * 1e3);
    }
}
