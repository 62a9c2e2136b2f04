//! In-process throughput of every fuzz target: each seed of
//! `corpus/<target>/` through `rtse_conformance::fuzz::<target>`, in a loop,
//! on one thread, for about `RTSE_BENCH_SECS` (default 1) per target.
//! Prints executions per second. Seeds are valid PDUs that decode through
//! every oracle, so this is the slow end; libFuzzer's own figure (fuzz/bench.sh)
//! mixes in the many mutants that are rejected early.
//!
//! `cargo bench -p rtse-conformance --bench fuzz_targets [-- TARGET...]`

use rtse_conformance::fuzz::Target;
use std::path::Path;
use std::time::{Duration, Instant};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let secs: f64 = std::env::var("RTSE_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let wanted: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    println!("{:<18} {:>6} {:>10} {:>14} {:>12}", "target", "seeds", "avg octets", "exec/s", "MB/s");
    for t in Target::ALL {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == t.name()) {
            continue;
        }
        let dir = root.join("corpus").join(t.name());
        let mut seeds: Vec<Vec<u8>> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd.filter_map(|e| std::fs::read(e.ok()?.path()).ok()).collect(),
            Err(e) => {
                println!("{:<18} {}: {e}", t.name(), dir.display());
                continue;
            }
        };
        seeds.sort();
        if seeds.is_empty() {
            continue;
        }
        let budget = Duration::from_secs_f64(secs);
        let (mut execs, mut octets) = (0u64, 0u64);
        let start = Instant::now();
        while start.elapsed() < budget {
            for s in &seeds {
                if t == Target::FlawHunt {
                    // Detecting the flaw panics (that is the target's
                    // point); time the run without the panic.
                    std::hint::black_box(rtse_conformance::fuzz::scenario::hunt(std::hint::black_box(s)));
                } else {
                    std::hint::black_box(t.run(std::hint::black_box(s)));
                }
                execs += 1;
                octets += s.len() as u64;
            }
        }
        let el = start.elapsed().as_secs_f64();
        let avg = seeds.iter().map(Vec::len).sum::<usize>() / seeds.len();
        println!(
            "{:<18} {:>6} {:>10} {:>14.0} {:>12.1}",
            t.name(),
            seeds.len(),
            avg,
            execs as f64 / el,
            octets as f64 / el / 1e6
        );
    }
}
