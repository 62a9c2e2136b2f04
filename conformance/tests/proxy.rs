//! `rtse proxy` over real loopback sockets: scripted MTAs on either side
//! (synthetic PDUs from `synth`), the proxy run through the CLI entry point
//! in a thread. What each side receives is compared byte for byte with
//! what the other sent, and each fault's effect on the wire is checked.

use rtse_conformance::sim::SplitMix64;
use rtse_conformance::synth::{Ac, Cn, ConnId, Pdus};
use rtse_conformance::tracker::Mode;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Sends each complete output line over a channel.
struct Lines {
    tx: mpsc::Sender<String>,
    part: Vec<u8>,
}

impl Write for Lines {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.part.extend_from_slice(b);
        while let Some(i) = self.part.iter().position(|&c| c == b'\n') {
            let line: Vec<u8> = self.part.drain(..=i).collect();
            let _ = self.tx.send(String::from_utf8_lossy(&line).trim_end().to_string());
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Proxy {
    addr: SocketAddr,
    rx: mpsc::Receiver<String>,
    first: Vec<String>,
    handle: JoinHandle<(u8, String)>,
}

impl Proxy {
    fn start(upstream: SocketAddr, extra: &[&str]) -> Proxy {
        let (tx, rx) = mpsc::channel();
        let mut args: Vec<String> = ["rtse", "proxy", "--listen", "127.0.0.1:0", "--to", &upstream.to_string()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(["--color", "never", "--exit-idle", "20"].iter().map(|s| s.to_string()));
        args.extend(extra.iter().map(|s| s.to_string()));
        let handle = std::thread::spawn(move || {
            let mut out = Lines { tx, part: Vec::new() };
            let mut err = Vec::new();
            let code = rtse_conformance::cli::main_with(args.iter().map(std::ffi::OsString::from), &mut out, &mut err);
            (code, String::from_utf8_lossy(&err).to_string())
        });
        let first = rx.recv_timeout(Duration::from_secs(5)).expect("proxy prints its address");
        let addr = first.split_whitespace().nth(4).unwrap().trim_end_matches(',').parse().unwrap();
        Proxy { addr, rx, first: vec![first], handle }
    }

    /// Wait for the end (the caller passed --exit-after); all output.
    fn finish(self) -> (u8, String) {
        let (code, err) = self.handle.join().unwrap();
        let mut all = self.first;
        all.extend(self.rx.try_iter());
        (code, all.join("\n") + "\n" + &err)
    }
}

/// One scripted upstream MTA for one connection.
fn upstream(script: impl FnOnce(TcpStream) + Send + 'static) -> (SocketAddr, JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        script(s);
    });
    (addr, h)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut v = vec![0; n];
    s.read_exact(&mut v).unwrap();
    v
}

/// Everything until EOF or reset.
fn read_rest(s: &mut TcpStream) -> (Vec<u8>, bool) {
    let mut v = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (v, false),
            Ok(n) => v.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (v, true),
            Err(e) => panic!("read: {e}"),
        }
    }
}

struct Script {
    cr: Vec<u8>,
    cc: Vec<u8>,
    cn: Vec<u8>,
    ac: Vec<u8>,
    pt: Vec<u8>,
    gtc: Vec<u8>,
}

fn script() -> Script {
    let p = Pdus { mode: Mode::Normal };
    let cn = Cn::open(ConnId::new("A", "251125000000Z"));
    Script { cr: p.cr(), cc: p.cc(), ac: p.ac(&Ac::to(&cn)), cn: p.cn(&cn), pt: p.pt(1), gtc: p.gtc() }
}

fn noise(n: usize, seed: u64) -> Vec<u8> {
    SplitMix64::new(seed).bytes(n)
}

/// Both directions arrive exactly as sent, garbage included, with and
/// without a fault plan (the plan makes the pumps frame and decode).
#[test]
fn relays_exactly_what_it_receives_garbage_included() {
    let plans = [&[][..], &["--drop", "before:ZZZ"][..]];
    for (plan, relay) in plans.iter().flat_map(|p| RELAYS.iter().map(move |r| (*p, *r))) {
        let s = script();
        let up_data: Vec<u8> = [s.cc.clone(), s.ac.clone(), noise(70_000, 3)].concat();
        let down_data: Vec<u8> = [s.cr.clone(), s.cn.clone(), s.pt.clone(), noise(50_000, 5), s.gtc.clone()].concat();
        let (want_up, want_down) = (down_data.clone(), up_data.clone());
        let (addr, server) = upstream(move |mut c| {
            let (got, reset) = {
                // The client half-closes after its data.
                let mut v = Vec::new();
                let mut buf = [0u8; 8192];
                let mut sent = false;
                loop {
                    if !sent && v.len() >= s.cr.len() + s.cn.len() {
                        c.write_all(&up_data).unwrap();
                        c.shutdown(Shutdown::Write).unwrap();
                        sent = true;
                    }
                    match c.read(&mut buf) {
                        Ok(0) => break (v, false),
                        Ok(n) => v.extend_from_slice(&buf[..n]),
                        Err(_) => break (v, true),
                    }
                }
            };
            assert!(!reset);
            assert!(got == want_up, "upstream got {} octets, {} sent", got.len(), want_up.len());
        });
        let p = Proxy::start(addr, &[&["--exit-after", "1", "-q", "--relay", relay], plan].concat());
        let mut c = connect(p.addr);
        c.write_all(&down_data).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let (got, reset) = read_rest(&mut c);
        assert!(!reset);
        assert!(got == want_down, "client got {} octets, {} sent", got.len(), want_down.len());
        server.join().unwrap();
        let (code, out) = p.finish();
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("faults injected: 0"), "{out}");
        if !plan.is_empty() {
            assert!(out.contains("stop framing as TPKTs"), "garbage reported: {out}");
        }
    }
}

/// The ways the pumps move octets (`--relay`): every relay test runs with
/// each, and they must agree octet for octet.
const RELAYS: [&str; 3] = ["copy", "splice", "auto"];

/// The outcome of one run of [`after_establish_with`].
type Outcome = (Vec<u8>, bool, Vec<u8>, bool, String, Duration);

/// [`after_establish_with`] under every `--relay` mode: the octets each
/// MTA got, the resets and the fault and summary lines are the same;
/// returns the splice run's outcome.
fn after_establish(rule: &[&str], last: Vec<Vec<u8>>) -> Outcome {
    let key = |o: &Outcome| {
        let lines: Vec<String> = o
            .4
            .lines()
            .filter(|l| l.contains("FAULT") || l.starts_with("faults injected") || l.starts_with("anomalies"))
            // Without the clock and frame numbers (reads differ in size).
            .map(|l| {
                l.split_whitespace().filter(|w| !w.contains(':') || w.starts_with('[')).collect::<Vec<_>>().join(" ")
            })
            .collect();
        (o.0.clone(), o.1, o.2.clone(), o.3, lines)
    };
    let mut runs: Vec<Outcome> = RELAYS.iter().map(|r| after_establish_with(r, rule, last.clone())).collect();
    let splice = runs.remove(1);
    for (r, o) in RELAYS.iter().filter(|r| **r != "splice").zip(&runs) {
        assert!(key(o) == key(&splice), "--relay {r} and --relay splice differ:\n{}\n---\n{}", o.4, splice.4);
    }
    splice
}

/// CR/CC and CN/AC pass, then the client sends `last`: returns what the
/// upstream MTA received after the AC (and whether it was reset) and what
/// the client did.
fn after_establish_with(relay: &str, rule: &[&str], last: Vec<Vec<u8>>) -> Outcome {
    let s = script();
    let (cr, cn, cc, ac) = (s.cr.clone(), s.cn.clone(), s.cc.clone(), s.ac.clone());
    let (tx, rx) = mpsc::channel();
    let (addr, server) = upstream(move |mut c| {
        assert_eq!(read_n(&mut c, cr.len()), cr);
        c.write_all(&cc).unwrap();
        assert_eq!(read_n(&mut c, cn.len()), cn);
        c.write_all(&ac).unwrap();
        let t = Instant::now();
        let (rest, reset) = read_rest(&mut c);
        tx.send((rest, reset, t.elapsed())).unwrap();
    });
    let p = Proxy::start(addr, &[&["--exit-after", "1", "--relay", relay], rule].concat());
    let mut c = connect(p.addr);
    c.write_all(&s.cr).unwrap();
    assert_eq!(read_n(&mut c, s.cc.len()), s.cc);
    c.write_all(&s.cn).unwrap();
    assert_eq!(read_n(&mut c, s.ac.len()), s.ac);
    for b in &last {
        c.write_all(b).unwrap();
    }
    // Long enough for the proxy to act before the half-close.
    std::thread::sleep(Duration::from_millis(50));
    let _ = c.shutdown(Shutdown::Write);
    let (client_got, client_reset) = read_rest(&mut c);
    server.join().unwrap();
    let (up_got, up_reset, took) = rx.recv().unwrap();
    let (code, out) = p.finish();
    assert_eq!(code, 0, "{out}");
    (up_got, up_reset, client_got, client_reset, out, took)
}

#[test]
fn drop_before_pt_never_forwards_it_and_resets_both_mtas() {
    let s = script();
    let (up, up_reset, client, client_reset, out, _) = after_establish(&["--drop", "before:PT"], vec![s.pt.clone()]);
    assert!(up.is_empty(), "the PT was not forwarded: {up:02x?}");
    assert!(up_reset && client_reset, "RST both ways\n{out}");
    assert!(client.is_empty());
    assert!(out.contains("FAULT") && out.contains("rst before PT") && out.contains("[before:PT#1:rst]"), "{out}");
    assert!(out.contains("T-RST"), "the tracker sees the loss: {out}");
    assert!(out.contains("faults injected: 1"), "{out}");
}

#[test]
fn drop_after_gtc_by_fin_forwards_it_then_closes() {
    let s = script();
    let (up, up_reset, _, client_reset, out, _) =
        after_establish(&["--drop", "after:GTC:fin"], vec![s.gtc.clone(), s.pt.clone()]);
    assert_eq!(up, s.gtc, "the GTC and nothing after it");
    assert!(!up_reset && !client_reset, "FIN, not RST\n{out}");
    assert!(out.contains("fin after GTC"), "{out}");
    assert!(out.contains("GTC") && out.contains("-> in-transit"), "live holder after GTC: {out}");
}

/// A megabyte of DT TPKTs, then a GTC, with a plan: the pumps frame and
/// decode every TPKT while reads cut TPKTs anywhere (in splice mode the
/// incomplete tail leaves the pipe and is written from the buffer); all of
/// it arrives, up to the fault, whatever the relay mode.
#[test]
fn bulk_transfer_with_a_plan_arrives_whole_up_to_the_fault() {
    let s = script();
    let p = Pdus { mode: Mode::Normal };
    // In an activity, as a transfer is.
    let dts = (0..64u32).flat_map(|i| p.dt(&(0..16_000 + i * 7).map(|j| (j ^ i) as u8).collect::<Vec<_>>()));
    let bulk: Vec<u8> = p.as_(1).into_iter().chain(dts).collect();
    let (up, up_reset, _, _, out, _) =
        after_establish(&["--drop", "after:GTC:fin"], vec![bulk.clone(), s.gtc.clone(), s.pt.clone()]);
    assert!(up == [bulk, s.gtc.clone()].concat(), "{} octets upstream\n{out}", up.len());
    assert!(!up_reset, "{out}");
    assert!(out.contains("fin after GTC"), "{out}");
    // The GTC inside the activity, and the transfer the FIN cuts off: the
    // same in every relay mode (`after_establish` compares them).
    assert!(out.contains("anomalies: gtc-during-activity 1, transfer-lost 1"), "{out}");
}

#[test]
fn mid_tpkt_cut_forwards_the_first_half_then_resets() {
    let s = script();
    let (up, up_reset, _, _, out, _) = after_establish(&["--drop", "before:PT:mid-tpkt"], vec![s.pt.clone()]);
    assert_eq!(up, s.pt[..s.pt.len() / 2], "half the PT's TPKT");
    assert!(up_reset, "{out}");
}

#[test]
fn forged_abort_reaches_both_mtas() {
    let s = script();
    let (up, _, client, _, out, _) = after_establish(&["--drop", "after:PT:abort"], vec![s.pt.clone()]);
    let ab = rtse_conformance::proxy::relay::forged_abort();
    assert_eq!(up, [s.pt.clone(), ab.clone()].concat(), "PT, then the AB");
    assert_eq!(client, ab);
    let dec = rtse_codec::stack::decode_tpkt(&mut Default::default(), rtse_codec::stack::Sender::Initiator, &ab);
    let kinds: Vec<_> = dec.unwrap().0.spdu_kinds().map(|k| k.name()).collect();
    assert_eq!(kinds, ["AB"]);
    assert!(out.contains("forged session AB"), "{out}");
}

#[test]
fn withheld_pdu_is_swallowed_and_the_connection_stays() {
    let s = script();
    let (up, up_reset, _, _, out, _) =
        after_establish(&["--withhold", "PT@initiator"], vec![s.pt.clone(), s.gtc.clone()]);
    assert_eq!(up, s.gtc, "the GTC after the withheld PT");
    assert!(!up_reset);
    assert!(out.contains("withheld PT"), "{out}");
}

#[test]
fn delayed_pdu_arrives_late_and_intact() {
    let s = script();
    let (up, _, _, _, out, took) = after_establish(&["--delay", "PT:300"], vec![s.pt.clone()]);
    assert_eq!(up, s.pt);
    assert!(took >= Duration::from_millis(250), "held {took:?}");
    assert!(out.contains("delayed PT by 300 ms"), "{out}");
}

/// Many connections at once, each echoed exactly.
#[test]
fn many_concurrent_connections() {
    const N: usize = 64;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let mut hs = Vec::new();
        for _ in 0..N {
            let (mut c, _) = l.accept().unwrap();
            hs.push(std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => c.write_all(&buf[..n]).unwrap(),
                    }
                }
                let _ = c.shutdown(Shutdown::Write);
            }));
        }
        for h in hs {
            h.join().unwrap();
        }
    });
    let p = Proxy::start(addr, &["--exit-after", &N.to_string(), "-q", "--drop", "before:ZZZ"]);
    let clients: Vec<_> = (0..N)
        .map(|i| {
            let a = p.addr;
            std::thread::spawn(move || {
                let s = script();
                let data = [s.cr.clone(), s.cn.clone(), noise(2000 + i * 37, i as u64)].concat();
                let mut c = connect(a);
                let w = c.try_clone().unwrap();
                let d2 = data.clone();
                let writer = std::thread::spawn(move || {
                    let mut w = w;
                    w.write_all(&d2).unwrap();
                    w.shutdown(Shutdown::Write).unwrap();
                });
                let (got, _) = read_rest(&mut c);
                writer.join().unwrap();
                assert!(got == data, "connection {i}: {} of {} octets", got.len(), data.len());
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    server.join().unwrap();
    let (code, out) = p.finish();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("connections {N} ")), "{out}");
}

/// Bad arguments: exit 2 with the reason, before anything listens.
#[test]
fn bad_arguments_are_usage_errors() {
    for (args, want) in [
        (&["--drop", "during:GTC"][..], "neither before nor after"),
        (&["--drop", "after:GTC:mid-tpkt"], "use before:GTC"),
        (&["--drop-rate", "1.5"], "between 0 and 1"),
        (&["--drop-kinds", "boom", "--drop-rate", "0.1"], "unknown drop kind"),
        (&["--timeline", "xml=out.xml"], "json=PATH or text=PATH"),
        (&["--rules", "/nonexistent/rules.toml"], "/nonexistent/rules.toml"),
    ] {
        let mut argv: Vec<String> =
            ["rtse", "proxy", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:9"].iter().map(|s| s.to_string()).collect();
        argv.extend(args.iter().map(|s| s.to_string()));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = rtse_conformance::cli::main_with(argv.iter().map(std::ffi::OsString::from), &mut out, &mut err);
        let err = String::from_utf8_lossy(&err);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(out.is_empty(), "nothing printed before the arguments are checked");
    }
}

/// An unreachable upstream MTA: the client's connection is closed and
/// the failure reported; the proxy keeps serving.
#[test]
fn unreachable_upstream_is_reported() {
    // A port with nothing listening: bind, read the port, close.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let p = Proxy::start(dead, &["--exit-after", "2"]);
    for _ in 0..2 {
        let mut c = connect(p.addr);
        let (got, _) = read_rest(&mut c);
        assert!(got.is_empty());
    }
    let (code, out) = p.finish();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("upstream MTA unreachable"), "{out}");
    assert!(out.contains("connections 0 (2 upstream failures)"), "{out}");
}
