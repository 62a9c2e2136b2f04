//! Whole-stack decode throughput (issue: codec foundation).
//!
//! `cargo bench -p rtse-codec --bench stack` prints, besides divan's timing
//! table, a summary with MB/s and PDU stacks/s for:
//! * `rttr`: TPKT+DT+GT+DT+P-DATA+RTTR transfer PDUs (target >= 1 GB/s),
//! * `token`: TPKT+DT+GT/PT/GTC token stacks, PT carrying RTTP (target >= 5 M/s),
//! * `examples`: every TPKT of the worked examples,
//! and the heap allocations made while decoding a token stack (target 0),
//! counted by a global allocator wrapper.

use rtse_codec::stack::{self, Context, Sender};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}
#[global_allocator]
static A: Counting = Counting;

fn hex_file(name: &str) -> Vec<Vec<u8>> {
    let path = format!("{}/../corpus/examples/{name}.hex", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| rtse_codec::hex::decode(l).unwrap())
        .collect()
}

/// An RTTR transfer PDU as an MTA sends it: one DT carrying a P-DATA with
/// `len` octets of RTTR (the size of a checkpoint piece).
fn rttr_pdu(len: usize) -> Vec<u8> {
    use rtse_codec::ber;
    let mut rttr = Vec::new();
    ber::write_prim(&mut rttr, ber::OCTET_STRING, &vec![0x5a; len]);
    let mut ud = Vec::new();
    ber::write_tlv(&mut ud, ber::Tag::app_c(1), |o| {
        ber::write_tlv(o, ber::SEQUENCE, |o| {
            ber::write_int(o, ber::INTEGER, 3);
            ber::write_tlv(o, ber::Tag::ctx_c(0), |o| o.extend_from_slice(&rttr));
        })
    });
    let mut payload = rtse_codec::cotp::dt_header(true).to_vec();
    payload.extend_from_slice(&[0x01, 0x00, 0x01, 0x00]);
    payload.extend_from_slice(&ud);
    let mut out = Vec::new();
    rtse_codec::tpkt::emit(&rtse_codec::tpkt::Tpkt::new(&payload), &mut out);
    out
}

fn token_pdus() -> Vec<Vec<u8>> {
    let ex4 = hex_file("ex4_turn_please_give_normal");
    // PT+RTTP, GTC, GTA, and an empty GT + MIA (a GT-prefixed category-2).
    let mut v = ex4;
    v.push(rtse_codec::hex::decode("0300000e02f080010032032a0131").unwrap());
    v
}

fn decode_one(b: &[u8]) -> usize {
    let mut ctx = Context::with_mode(rtse_codec::presentation::Mode::Normal);
    match stack::decode_tpkt(&mut ctx, Sender::Initiator, b) {
        Ok((s, _)) => s.spdu_kinds().count(),
        Err(_) => 0,
    }
}

#[divan::bench(args = [1024, 8192, 65000])]
fn rttr(b: divan::Bencher, len: usize) {
    let pdu = rttr_pdu(len);
    b.counter(divan::counter::BytesCount::new(pdu.len())).bench(|| decode_one(black_box(&pdu)));
}

#[divan::bench]
fn token(b: divan::Bencher) {
    let pdus = token_pdus();
    b.counter(divan::counter::ItemsCount::new(pdus.len())).bench(|| {
        for p in &pdus {
            black_box(decode_one(black_box(p)));
        }
    });
}

#[divan::bench]
fn examples(b: divan::Bencher) {
    let pdus: Vec<Vec<u8>> = [
        "ex1_cotp_cr_cc",
        "ex2_connect_normal",
        "ex3_transfer_normal",
        "ex4_turn_please_give_normal",
        "ex5_recovery_normal",
        "ex6_x410_mode",
        "ex7_abort_normal",
    ]
    .iter()
    .flat_map(|n| hex_file(n))
    .collect();
    let bytes: usize = pdus.iter().map(Vec::len).sum();
    b.counter(divan::counter::BytesCount::new(bytes)).bench(|| {
        for p in &pdus {
            black_box(decode_one(black_box(p)));
        }
    });
}

/// Time `f` over `iters` iterations, best of 5 runs; returns seconds per iteration.
fn best<F: FnMut()>(iters: u64, mut f: F) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() / iters as f64);
    }
    best
}

fn summary() {
    println!("\n== rtse-codec whole-stack decode (one core) ==");
    for len in [1024usize, 8192, 65000] {
        let pdu = rttr_pdu(len);
        let s = best(20_000, || {
            black_box(decode_one(black_box(&pdu)));
        });
        println!(
            "rttr transfer PDU {:>6} octets: {:>8.0} MB/s  {:>10.0} stacks/s   (target >= 1000 MB/s)",
            pdu.len(),
            pdu.len() as f64 / s / 1e6,
            1.0 / s
        );
    }
    let pdus = token_pdus();
    let s = best(200_000, || {
        for p in &pdus {
            black_box(decode_one(black_box(p)));
        }
    }) / pdus.len() as f64;
    println!("token stacks (PT+RTTP, GTC, GTA, GT+MIA): {:>10.0} stacks/s   (target >= 5000000)", 1.0 / s);
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        for p in &pdus {
            black_box(decode_one(black_box(p)));
        }
    }
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    println!("heap allocations decoding {} token stacks: {allocs}   (target 0)", 1000 * pdus.len());
    let tpkt_pdu = rttr_pdu(1024);
    let before = ALLOCS.load(Ordering::Relaxed);
    black_box(decode_one(&tpkt_pdu));
    println!("heap allocations decoding one RTTR transfer PDU: {}", ALLOCS.load(Ordering::Relaxed) - before);
}

fn main() {
    summary();
    divan::main();
}
