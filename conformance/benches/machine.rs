//! Throughput of the protocol machine: two reference MTAs back to back
//! through the loopback pump, exchanging messages (AS, DT, AE, AEA and the
//! please/give between the directions), and the cost of cloning and
//! hashing their state (what a model checker pays per state).
//!
//! `cargo bench -p rtse-conformance --bench machine` prints the figures.

use rtse_codec::presentation::Mode;
use rtse_conformance::loopback::Loopback;
use rtse_conformance::machine::{Apdu, Input, Request};
use rtse_conformance::mta::{MtaConfig, ReferenceMta};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::hint::black_box;
use std::time::Instant;

fn pair(mode: Mode, checkpoint: u16) -> Loopback<ReferenceMta> {
    let mk = |name: &str, opener: bool| {
        let mut c = MtaConfig::new(name, opener);
        c.machine.mode = mode;
        c.machine.checkpoint_size = checkpoint;
        c.backlog_threshold = usize::MAX;
        ReferenceMta::new(c)
    };
    Loopback::new(mk("MTA-A", true), mk("MTA-B", false)).unrecorded()
}

fn exchange(mode: Mode, per_side: usize, content: usize, checkpoint: u16) {
    let msgs: Vec<[Apdu; 2]> = (0..per_side)
        .map(|i| {
            let body = vec![b'x'; content];
            [Apdu::message(&format!("A-{i}"), &body), Apdu::message(&format!("B-{i}"), &body)]
        })
        .collect();
    let mut p = pair(mode, checkpoint);
    p.feed(0, Input::Request(Request::Open));
    p.run(usize::MAX);
    let (s0, _) = p.counts();
    let t = Instant::now();
    for [a, b] in msgs {
        p.submit(0, a);
        p.submit(1, b);
        p.run(usize::MAX);
    }
    let dt = t.elapsed().as_secs_f64();
    let (s1, _) = p.counts();
    let pdus = (s1 - s0) as f64;
    assert_eq!(p.ends[0].deliveries() + p.ends[1].deliveries(), 2 * per_side as u64);
    println!(
        "exchange {mode:?} {content}-octet messages, checkpoint {checkpoint}: {:>10.0} PDUs/s  {:>9.0} messages/s  ({} PDUs in {:.3} s)",
        pdus / dt,
        (2 * per_side) as f64 / dt,
        s1 - s0,
        dt
    );
}

fn clone_and_hash() {
    // A state mid-transfer (the heaviest: a reassembly buffer).
    let mut p = pair(Mode::Normal, 1);
    p.feed(0, Input::Request(Request::Open));
    p.run(usize::MAX);
    p.submit(0, Apdu::message("M", &[1u8; 100]));
    p.submit(1, Apdu::message("N", &[1u8; 100]));
    p.step();
    p.step();
    let state = (p.ends[0].clone(), p.ends[1].clone());
    let n = 1_000_000;
    let t = Instant::now();
    let mut acc = 0u64;
    for _ in 0..n {
        let s = black_box(&state).clone();
        let mut h = DefaultHasher::new();
        s.hash(&mut h);
        acc = acc.wrapping_add(h.finish());
    }
    let dt = t.elapsed().as_secs_f64();
    black_box(acc);
    println!("clone + hash of a two-MTA state: {:>10.0} states/s", n as f64 / dt);
}

fn main() {
    // `cargo bench --bench machine -- exchange` runs only the matching parts.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let on = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    if on("exchange") {
        exchange(Mode::Normal, 20_000, 200, 1);
        exchange(Mode::X410, 20_000, 200, 1);
        exchange(Mode::Normal, 2_000, 8_000, 1);
        exchange(Mode::Normal, 20_000, 200, 0);
    }
    if on("state") {
        clone_and_hash();
    }
}
