//! Writes every synthetic scenario as a pcapng into a directory:
//! `cargo run -p rtse-conformance --example synth_scenarios -- DIR`.
use rtse_conformance::synth::{scenario, write_pcapng, Pdus};

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    for (mode, pdus) in [("normal", Pdus::normal()), ("x410", Pdus::x410())] {
        for (name, convs) in scenario::all(&scenario::Place::default(), pdus) {
            let path = format!("{dir}/{name}-{mode}.pcapng");
            std::fs::write(&path, write_pcapng(&convs)).expect("write");
            println!("{path}");
        }
    }
}
