//! The observer of `rtse proxy` alone, fed the traffic of `rtse bench
//! proxy` (CR, CN, AS, then DT segments of 16 KiB) as reads of a fixed
//! size, in quiet mode (`-q`, as the bench runs it): the observer's share
//! of the proxy's CPU, without sockets, threads or scheduling noise.
//!
//! `cargo bench -p rtse-conformance --bench observer` prints MB/s;
//! `RTSE_BENCH_MB=n` sets the megabytes (256), `RTSE_BENCH_READ=n` the
//! read size in KiB (128). The workload is fixed, so
//! `valgrind --tool=callgrind` counts the instructions per MB.
use rtse_codec::stack::Sender;
use rtse_conformance::proxy::bench::transfer_block;
use rtse_conformance::proxy::observe::Observer;
use rtse_conformance::proxy::relay::{now, Chunk, Msg};
use rtse_conformance::timeline::{text::Style, Settings};
use std::time::Instant;

fn main() {
    let env = |k: &str, d: usize| std::env::var(k).ok().and_then(|s| s.parse().ok()).unwrap_or(d);
    let mb = env("RTSE_BENCH_MB", 256);
    let read = env("RTSE_BENCH_READ", 128) << 10;
    let (head, block) = transfer_block();
    let mut stream = head;
    while stream.len() < mb << 20 {
        stream.extend_from_slice(&block);
    }
    let mut out = std::io::sink();
    let mut obs = Observer::new(Settings::default(), None, &mut out, Style { color: false }).unwrap();
    obs.set_verbose_rows(false);
    let a = "127.0.0.1:1".parse().unwrap();
    // Reads as the pumps hand them over, made before the clock starts.
    let reads: Vec<Chunk> = stream.chunks(read).map(|r| r.to_vec().into()).collect();
    let t = Instant::now();
    obs.handle(Msg::Open { conn: 0, client: a, listen: a, local: a, upstream: a, time: now() });
    for received in reads {
        let r = received.len();
        obs.handle(Msg::Data { conn: 0, from: Sender::Initiator, received, forwarded: r, time: now(), fault: None });
    }
    obs.handle(Msg::Close { conn: 0, rst: false, time: now(), reason: String::new() });
    let s = t.elapsed().as_secs_f64();
    let (totals, ..) = obs.finish();
    println!(
        "observer: {:.0} MB/s ({} MB in reads of {} KiB, {} Turn rows)",
        stream.len() as f64 / (1 << 20) as f64 / s,
        stream.len() >> 20,
        read >> 10,
        totals.rows
    );
}
