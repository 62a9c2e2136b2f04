//! The observer of `rtse proxy` alone, in quiet mode (`-q`, as `rtse bench
//! proxy` runs it), fed reads of a fixed size: its share of the proxy's
//! CPU, without sockets, threads or scheduling noise. Two workloads:
//!
//! * `bench`: the traffic of `rtse bench proxy` (CR, CN, AS, then DT
//!   segments of 16 KiB into a sink that never answers: an association
//!   never accepted, so each DT is an `unexpected-event`, printed even in
//!   quiet mode until the tracker's cap on anomalies);
//! * `accepted`: the same transfer after CC and AC from the responder (no
//!   anomaly, nothing printed).
//!
//! `cargo bench -p rtse-conformance --bench observer [-- bench|accepted]`
//! prints MB/s; `RTSE_BENCH_MB=n` sets the megabytes (256),
//! `RTSE_BENCH_READ=n` the read size in KiB (128). The workload is fixed,
//! so `valgrind --tool=callgrind --toggle-collect='*Observer*handle*'`
//! counts the observer's instructions.
use rtse_codec::stack::Sender;
use rtse_conformance::proxy::bench::transfer_block;
use rtse_conformance::proxy::observe::Observer;
use rtse_conformance::proxy::relay::{now, Chunk, Msg};
use rtse_conformance::synth::{Ac, Cn, ConnId, Pdus};
use rtse_conformance::timeline::{text::Style, Settings};
use rtse_conformance::tracker::Mode;
use std::time::Instant;

fn main() {
    let names: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let on = |what: &str| names.is_empty() || names.iter().any(|n| n == what);
    let env = |k: &str, d: usize| std::env::var(k).ok().and_then(|s| s.parse().ok()).unwrap_or(d);
    let mb = env("RTSE_BENCH_MB", 256);
    let read = env("RTSE_BENCH_READ", 128) << 10;
    for (name, accepted) in [("bench", false), ("accepted", true)] {
        if on(name) {
            run(name, accepted, mb, read);
        }
    }
}

fn run(name: &str, accepted: bool, mb: usize, read: usize) {
    let (head, block) = transfer_block();
    let mut stream = head;
    while stream.len() < mb << 20 {
        stream.extend_from_slice(&block);
    }
    let mut out = std::io::sink();
    let mut obs = Observer::new(Settings::default(), None, &mut out, Style { color: false }).unwrap();
    obs.set_verbose_rows(false);
    let a = "127.0.0.1:1".parse().unwrap();
    let data = |from, received: Chunk| {
        let forwarded = received.len();
        Msg::Data { conn: 0, from, received, forwarded, time: now(), fault: None }
    };
    // The responder's CC and AC, each after the PDU it answers (the head
    // is CR, CN, AS).
    let mut replies = Vec::new();
    if accepted {
        let p = Pdus { mode: Mode::Normal };
        let (cr, cn) = (p.cr().len(), p.cn(&Cn::open(ConnId::new("BENCH", "251125000000Z"))).len());
        let ac = p.ac(&Ac::to(&Cn::open(ConnId::new("BENCH", "251125000000Z"))));
        replies = vec![(cr, p.cc()), (cr + cn, ac)];
    }
    // Reads as the pumps hand them over, made before the clock starts.
    let mut msgs = Vec::new();
    let mut at = 0;
    for (end, reply) in replies {
        msgs.push(data(Sender::Initiator, stream[at..end].to_vec().into()));
        msgs.push(data(Sender::Responder, reply.into()));
        at = end;
    }
    msgs.extend(stream[at..].chunks(read).map(|r| data(Sender::Initiator, r.to_vec().into())));
    let t = Instant::now();
    obs.handle(Msg::Open { conn: 0, client: a, listen: a, local: a, upstream: a, time: now() });
    for m in msgs {
        obs.handle(m);
    }
    obs.handle(Msg::Close { conn: 0, rst: false, time: now(), reason: String::new() });
    let s = t.elapsed().as_secs_f64();
    let (totals, ..) = obs.finish();
    println!(
        "observer, {name:<8}: {:.0} MB/s ({} MB in reads of {} KiB, {} Turn rows, {} anomalies printed)",
        stream.len() as f64 / (1 << 20) as f64 / s,
        stream.len() >> 20,
        read >> 10,
        totals.rows,
        totals.anomaly_list.len()
    );
}
