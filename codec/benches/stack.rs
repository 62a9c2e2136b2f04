//! Whole-stack decode throughput (issue: codec foundation).
//!
//! `cargo bench -p rtse-codec --bench stack` prints, besides divan's timing
//! table, a summary with MB/s and PDU stacks/s for:
//! * `rttr`: TPKT+DT+GT+DT+P-DATA+RTTR transfer PDUs (target >= 1 GB/s),
//! * `token`: TPKT+DT+GT/PT/GTC token stacks, PT carrying RTTP (target >=
//!   5 M/s),
//! * `examples`: every TPKT of the worked examples,
//!
//! each three ways: `fresh` (a new `Context` per stack, what a one-shot
//! `decode_tpkt` caller pays), `reused` (`decode_tpkt` with one `Context`
//! kept across the stacks of an association) and `stream`
//! (`AssociationDecoder::push`, one TPKT per push, framing included: what
//! capture decoding does). It also prints the heap allocations made while
//! decoding token stacks (target 0), counted by a global allocator wrapper,
//! and the sizes of the types every decode returns by value.

use rtse_codec::stack::{self, AssociationDecoder, Context, Sender};
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

/// Fresh context per stack: what a one-shot `decode_tpkt` caller pays
/// (the context is built and dropped around every decode).
fn decode_one(b: &[u8]) -> usize {
    let mut ctx = Context::with_mode(rtse_codec::presentation::Mode::Normal);
    decode_with(&mut ctx, b)
}

/// `decode_tpkt` with a context kept across stacks, as a decoder of one
/// association does.
fn decode_with(ctx: &mut Context, b: &[u8]) -> usize {
    // Looked at in place, as a caller inspecting the stack does (moving the
    // stack out of the `Result` would add a copy of it to the figure).
    match &stack::decode_tpkt(ctx, Sender::Initiator, b) {
        Ok((s, _)) => s.spdu_kinds().count(),
        Err(_) => 0,
    }
}

/// The stream decoder of one association (`AssociationDecoder::push`, TPKT
/// framing included), one TPKT per push.
fn push_one(dec: &mut AssociationDecoder, b: &[u8]) -> usize {
    let mut n = 0;
    dec.push(Sender::Initiator, b, |d| {
        if let Ok(s) = &d.result {
            n += s.spdu_kinds().count();
        }
    });
    n
}

fn stream_decoder() -> AssociationDecoder {
    let mut dec = AssociationDecoder::new();
    dec.ctx = Context::with_mode(rtse_codec::presentation::Mode::Normal);
    dec
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
fn token_stream(b: divan::Bencher) {
    let pdus = token_pdus();
    let mut dec = stream_decoder();
    b.counter(divan::counter::ItemsCount::new(pdus.len())).bench_local(|| {
        for p in &pdus {
            black_box(push_one(&mut dec, black_box(p)));
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

/// Stacks per second decoding `pdus` in turn with `f`.
fn rate(iters: u64, pdus: &[Vec<u8>], mut f: impl FnMut(&[u8]) -> usize) -> f64 {
    let s = best(iters, || {
        for p in pdus {
            black_box(f(black_box(p)));
        }
    });
    pdus.len() as f64 / s
}

fn allocs_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.load(Ordering::Relaxed);
    f();
    ALLOCS.load(Ordering::Relaxed) - before
}

fn summary(scale: u64) {
    use rtse_codec::{session, stack::SessionStack, stack::Stack, stack::Upper};
    println!("\n== rtse-codec whole-stack decode (one core) ==");
    println!(
        "fresh = new Context per stack (one-shot decode_tpkt); reused = decode_tpkt with one Context kept \
         across stacks; stream = AssociationDecoder::push, one TPKT per push (framing included)"
    );
    println!(
        "sizes (octets moved per decode): Stack {}, SessionStack {}, Upper {}, Tsdu {}",
        std::mem::size_of::<Stack>(),
        std::mem::size_of::<SessionStack>(),
        std::mem::size_of::<Upper>(),
        std::mem::size_of::<session::Tsdu>()
    );
    for len in [1024usize, 8192, 65000] {
        let pdu = vec![rttr_pdu(len)];
        let mut ctx = Context::with_mode(rtse_codec::presentation::Mode::Normal);
        let mut dec = stream_decoder();
        let r = [
            ("fresh", rate(20_000 / scale, &pdu, decode_one)),
            ("reused", rate(20_000 / scale, &pdu, |b| decode_with(&mut ctx, b))),
            ("stream", rate(20_000 / scale, &pdu, |b| push_one(&mut dec, b))),
        ];
        for (what, r) in r {
            println!(
                "rttr transfer PDU {:>6} octets, {what:<6}: {:>8.0} MB/s {:>10.0} stacks/s   (target >= 1000 MB/s)",
                pdu[0].len(),
                pdu[0].len() as f64 * r / 1e6,
                r
            );
        }
    }
    let pdus = token_pdus();
    let mut ctx = Context::with_mode(rtse_codec::presentation::Mode::Normal);
    let mut dec = stream_decoder();
    let r = [
        ("fresh", rate(200_000 / scale, &pdus, decode_one)),
        ("reused", rate(200_000 / scale, &pdus, |b| decode_with(&mut ctx, b))),
        ("stream", rate(200_000 / scale, &pdus, |b| push_one(&mut dec, b))),
    ];
    for (what, r) in r {
        println!("token stacks (PT+RTTP, GTC, GTA, GT+MIA), {what:<6}: {r:>10.0} stacks/s   (target >= 5000000)");
    }
    let n = 1000 * pdus.len();
    let fresh = allocs_during(|| {
        for _ in 0..1000 {
            for p in &pdus {
                black_box(decode_one(black_box(p)));
            }
        }
    });
    let stream = allocs_during(|| {
        for _ in 0..1000 {
            for p in &pdus {
                black_box(push_one(&mut dec, black_box(p)));
            }
        }
    });
    println!("heap allocations decoding {n} token stacks: fresh {fresh}, stream {stream}   (target 0)");
    let tpkt_pdu = rttr_pdu(1024);
    let a = allocs_during(|| {
        black_box(decode_one(&tpkt_pdu));
    });
    println!("heap allocations decoding one RTTR transfer PDU (fresh): {a}");
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this
    // (unoptimised) without it: then only a quick pass over the summary
    // code, as divan runs each bench once.
    let scale = if std::env::args().any(|a| a == "--bench") { 1 } else { 1000 };
    summary(scale);
    divan::main();
}
