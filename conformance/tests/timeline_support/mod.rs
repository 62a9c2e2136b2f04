//! Shared helpers of the timeline tests.
#![allow(dead_code)]

use rtse_codec::capture::write::Frame;
use rtse_conformance::synth::{self, Conversation};
use rtse_conformance::timeline::{self, Association, Settings};
use rtse_conformance::tracker::AnomalyKind;

/// Timeline of a capture, associations by id (and the order reported).
pub fn run(cap: &[u8]) -> Vec<Association> {
    let mut v = Vec::new();
    timeline::from_capture(cap, Settings::default(), |a| v.push(a)).expect("capture reads");
    v.sort_by_key(|a| a.id);
    v
}

pub fn run_convs(convs: &[Conversation]) -> Vec<Association> {
    run(&synth::write_pcapng(convs))
}

pub fn run_frames(frames: &[Frame]) -> Vec<Association> {
    run(&synth::pcapng_of(frames))
}

/// `from PDUs turn` per row, e.g. `initiator GTC in-transit`.
pub fn rows(a: &Association) -> Vec<String> {
    a.events.iter().map(|e| format!("{} {} {}", e.from, e.pdus.join(","), e.turn)).collect()
}

pub fn kinds(a: &Association) -> Vec<AnomalyKind> {
    a.anomalies.iter().map(|x| x.kind).collect()
}

/// What must not change when only the TCP segmentation changes: rows,
/// anomaly kinds, links, mode.
pub fn shape(v: &[Association]) -> Vec<String> {
    v.iter()
        .map(|a| format!("#{} {:?} recovers={:?}\n{}\n{:?}", a.id, a.mode, a.recovers, rows(a).join("\n"), kinds(a)))
        .collect()
}

/// Source port and TCP payload length of a synthesised Ethernet/IPv4 frame.
pub fn tcp_info(f: &Frame) -> (u16, usize) {
    let d = &f.data;
    let port = u16::from_be_bytes([d[34], d[35]]);
    let ihl = usize::from(d[14] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([d[16], d[17]]));
    let doff = usize::from(d[14 + ihl + 12] >> 4) * 4;
    (port, total - ihl - doff)
}

pub fn is_data(f: &Frame) -> bool {
    tcp_info(f).1 > 0
}
