//! The observer of `rtse proxy` alone, fed a fixed script of pump messages
//! (the timeline scenarios of `synth` in both modes, cut into reads at
//! arbitrary points, with faults, resets, a forged abort, an upstream that
//! cannot be reached, octets that stop framing, and the traffic of `rtse
//! bench proxy`), verbose and quiet: its live lines, summary and timeline
//! JSON must stay exactly what `corpus/proxy/observer_*.txt` holds
//! (verbose, quiet, verbose in colour). The
//! golden files were written by the observer before its output path was
//! made cheaper; `RTSE_BLESS=1` rewrites them.

use rtse_codec::capture::Timestamp;
use rtse_codec::stack::Sender;
use rtse_conformance::proxy::bench::transfer_block;
use rtse_conformance::proxy::fault::{DropKind, Effect};
use rtse_conformance::proxy::observe::Observer;
use rtse_conformance::proxy::relay::{forged_abort, FaultNote, Msg};
use rtse_conformance::sim::SplitMix64;
use rtse_conformance::synth::scenario::{self, Place};
use rtse_conformance::synth::{addr, Pdus, Step};
use rtse_conformance::timeline::{text::Style, Settings};
use rtse_conformance::tracker::{Mode, Side};

const fn sender(s: Side) -> Sender {
    match s {
        Side::Initiator => Sender::Initiator,
        Side::Responder => Sender::Responder,
    }
}

/// The pump messages of the script, in order.
fn script() -> Vec<Msg> {
    let mut rng = SplitMix64::new(8);
    let mut msgs = Vec::new();
    let listen = addr(9, 10_102);
    let local = addr(9, 50_000);
    let mut conn = 0u64;
    // `bytes` from `from` as one to three reads, cut at random points.
    let mut reads = |msgs: &mut Vec<Msg>, conn: u64, from: Sender, bytes: &[u8], time: Timestamp| {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = if rng.next_u64() % 3 == 0 { rest.len() } else { 1 + (rng.next_u64() as usize) % rest.len() };
            let (now, later) = rest.split_at(n);
            let received = now.to_vec().into();
            msgs.push(Msg::Data { conn, from, received, forwarded: n, time, fault: None });
            rest = later;
        }
    };
    for mode in [Mode::Normal, Mode::X410] {
        for (_, convs) in scenario::all(&Place::default(), Pdus { mode }) {
            for c in convs {
                let mut time = c.start;
                let later = |t: Timestamp, ns: u64| Timestamp::from_nanos(t.as_nanos() + ns);
                msgs.push(Msg::Open { conn, client: c.client, listen, local, upstream: c.server, time });
                let mut closed = false;
                for step in &c.steps {
                    time = later(time, 1_000_000);
                    match step {
                        Step::Send(side, b) | Step::Unseen(side, b) => reads(&mut msgs, conn, sender(*side), b, time),
                        // The proxy withheld what the peer never got.
                        Step::Lost { from, bytes, .. } => msgs.push(Msg::Data {
                            conn,
                            from: sender(*from),
                            received: bytes.clone().into(),
                            forwarded: 0,
                            time,
                            fault: Some(FaultNote {
                                effect: Effect::Withhold,
                                why: "withhold GTC".into(),
                                pdus: vec!["GTC"],
                            }),
                        }),
                        Step::Pause(ns) => time = later(time, *ns),
                        Step::Rst(_) => {
                            msgs.push(Msg::Close { conn, rst: true, time, reason: "fault".into() });
                            closed = true;
                        }
                        Step::Fin => {
                            msgs.push(Msg::Fin { conn, from: Sender::Initiator, time });
                            msgs.push(Msg::Fin { conn, from: Sender::Responder, time });
                            msgs.push(Msg::Close { conn, rst: false, time, reason: "closed by both MTAs".into() });
                            closed = true;
                        }
                    }
                }
                if !closed {
                    msgs.push(Msg::Close { conn, rst: false, time, reason: "idle".into() });
                }
                conn += 1;
            }
        }
    }
    let time = Timestamp::new(1_735_740_000, 5_000);
    // The bench's traffic: a transfer on an association never accepted.
    let (head, block) = transfer_block();
    msgs.push(Msg::Open { conn, client: addr(1, 41_000), listen, local, upstream: addr(2, 102), time });
    // With a TPKT whose TSDU does not decode (a GT longer than its TSDU).
    let bad = [3, 0, 0, 11, 2, 0xf0, 0x80, 1, 5, 0xff, 0xff];
    reads(&mut msgs, conn, Sender::Initiator, &[&head[..], &bad, &block[..200_000]].concat(), time);
    msgs.push(Msg::Data {
        conn,
        from: Sender::Initiator,
        received: block[200_000..300_000].to_vec().into(),
        forwarded: 50_000,
        time,
        fault: Some(FaultNote {
            effect: Effect::DropBefore(DropKind::Abort),
            why: "before:DT".into(),
            pdus: vec!["DT"],
        }),
    });
    msgs.push(Msg::Forged { conn, bytes: forged_abort(), time });
    msgs.push(Msg::Close { conn, rst: false, time, reason: "fault".into() });
    conn += 1;
    // Octets that stop framing.
    let p = Pdus { mode: Mode::Normal };
    msgs.push(Msg::Open { conn, client: addr(1, 41_001), listen, local, upstream: addr(2, 102), time });
    reads(&mut msgs, conn, Sender::Initiator, &p.cr(), time);
    msgs.push(Msg::Unframed { conn, from: Sender::Initiator, at: p.cr().len() as u64, error: "bad TPKT".into() });
    reads(&mut msgs, conn, Sender::Initiator, &SplitMix64::new(3).bytes(3000), time);
    msgs.push(Msg::Close { conn, rst: true, time, reason: "fault".into() });
    msgs.push(Msg::ConnectFailed { conn: conn + 1, client: addr(1, 41_002), error: "refused".into() });
    msgs
}

/// Fault lines carry the proxy's clock (when they were printed): masked.
fn masked(out: &str) -> String {
    out.lines()
        .map(|l| match l.find(" FAULT f").and_then(|_| l.find("  c")) {
            Some(i) if i >= 15 => format!("{}hh:mm:ss.uuuuuu{}\n", &l[..i - 15], &l[i..]),
            _ => format!("{l}\n"),
        })
        .collect()
}

fn run(verbose: bool, color: bool) -> String {
    let mut out = Vec::new();
    let mut obs = Observer::new(Settings::default(), None, &mut out, Style { color }).unwrap();
    obs.set_verbose_rows(verbose);
    for m in script() {
        obs.handle(m);
    }
    let (totals, reported, ..) = obs.finish();
    rtse_conformance::proxy::summary(&totals, &mut out);
    let doc = serde_json::json!({ "associations": reported });
    masked(&format!("{}{doc}\n", String::from_utf8_lossy(&out)))
}

#[test]
fn live_output_is_unchanged() {
    for (verbose, color, name) in [(true, false, "verbose"), (false, false, "quiet"), (true, true, "color")] {
        let got = run(verbose, color);
        let path = format!("{}/../corpus/proxy/observer_{name}.txt", env!("CARGO_MANIFEST_DIR"));
        if std::env::var("RTSE_BLESS").is_ok_and(|v| v == "1") {
            std::fs::create_dir_all(std::path::Path::new(&path).parent().unwrap()).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap();
        if got != want {
            let first = got.lines().zip(want.lines()).position(|(g, w)| g != w);
            panic!(
                "{name}: the observer's output changed at line {first:?} ({} lines, {} expected):\n{}",
                got.lines().count(),
                want.lines().count(),
                first
                    .map(|i| format!("got  {}\nwant {}", got.lines().nth(i).unwrap(), want.lines().nth(i).unwrap()))
                    .unwrap_or_default()
            );
        }
    }
}
