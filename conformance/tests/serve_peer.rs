//! `rtse serve --listen` and `rtse serve --connect` as two processes
//! exchanging messages both ways over loopback TCP: every message is
//! delivered exactly once, in both modes, and across a real connection
//! reset (the initiator recovers the association with RTORQ recover).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Proc {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(args: &[&str]) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rtse"))
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rtse serve");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    Proc { child, lines: rx }
}

fn listen(args: &[&str]) -> (Proc, String) {
    let mut a = vec!["--listen", "127.0.0.1:0"];
    a.extend_from_slice(args);
    let p = spawn(&a);
    let first = p.lines.recv_timeout(Duration::from_secs(5)).expect("listening line");
    let addr = first.strip_prefix("listening on ").expect(&first).to_owned();
    (p, addr)
}

/// Wait for the exit (within `secs`); its code and its `sent` / `received` lines.
fn finish(mut p: Proc, secs: u64) -> (i32, BTreeMap<String, u32>, BTreeMap<String, u32>) {
    let until = Instant::now() + Duration::from_secs(secs);
    let code = loop {
        if let Some(s) = p.child.try_wait().unwrap() {
            break s.code().unwrap_or(-1);
        }
        assert!(Instant::now() < until, "rtse serve did not exit within {secs} s");
        std::thread::sleep(Duration::from_millis(10));
    };
    let (mut sent, mut received) = (BTreeMap::new(), BTreeMap::new());
    while let Ok(l) = p.lines.recv_timeout(Duration::from_millis(500)) {
        if let Some(x) = l.strip_prefix("sent ") {
            *sent.entry(x.to_owned()).or_insert(0) += 1;
        } else if let Some(x) = l.strip_prefix("received ") {
            *received.entry(x.to_owned()).or_insert(0) += 1;
        }
    }
    (code, sent, received)
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("/C=GB/A= /P=ACME/;{prefix}-{i:06}")).collect()
}

/// Every id of `want` exactly once in `got`, nothing else.
fn exactly_once(got: &BTreeMap<String, u32>, want: &[String], what: &str) {
    let dup: Vec<_> = got.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dup.is_empty(), "{what}: delivered more than once: {dup:?}");
    let keys: Vec<&String> = got.keys().collect();
    let want: Vec<&String> = want.iter().collect();
    assert_eq!(keys, want, "{what}");
}

fn exchange(mode: &str, ls: usize, cs: usize) {
    let (l, addr) = listen(&[
        "--mode",
        mode,
        "--name",
        "L",
        "--send",
        &ls.to_string(),
        "--count",
        &cs.to_string(),
        "--exit-after-idle",
        "10s",
    ]);
    let c = spawn(&[
        "--connect",
        &addr,
        "--mode",
        mode,
        "--name",
        "C",
        "--send",
        &cs.to_string(),
        "--count",
        &ls.to_string(),
        "--exit-after-idle",
        "10s",
    ]);
    let (cc, c_sent, c_recv) = finish(c, 15);
    let (lc, l_sent, l_recv) = finish(l, 5);
    assert_eq!((cc, lc), (0, 0), "both reach --count and exit 0");
    exactly_once(&c_recv, &ids("L", ls), "initiator received");
    exactly_once(&l_recv, &ids("C", cs), "listener received");
    exactly_once(&c_sent, &ids("C", cs), "initiator confirmed");
    exactly_once(&l_sent, &ids("L", ls), "listener confirmed");
}

#[test]
fn two_processes_exchange_messages_both_ways_exactly_once() {
    exchange("normal", 30, 25);
}

#[test]
fn two_processes_exchange_messages_in_x410_mode() {
    exchange("x410", 6, 9);
}

/// Forwards loopback connections to `to`; resets the first one (both
/// sides, SO_LINGER 0) once `cut` octets went from client to server.
fn cutting_proxy(to: String, cut: usize) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let conns = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&conns);
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(client) = c else { continue };
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let Ok(server) = TcpStream::connect(&to) else { continue };
            let limit = if n == 0 { cut } else { usize::MAX };
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (c3, s3) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || pipe(c2, s2, limit, Some((c3, s3))));
            std::thread::spawn(move || pipe(server, client, usize::MAX, None));
        }
    });
    (addr, conns)
}

fn pipe(mut from: TcpStream, mut to: TcpStream, limit: usize, reset: Option<(TcpStream, TcpStream)>) {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let take = n.min(limit - total);
        if to.write_all(&buf[..take]).is_err() {
            break;
        }
        total += take;
        if total >= limit {
            if let Some((a, b)) = &reset {
                for s in [a, b] {
                    let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
                    let _ = s.shutdown(Shutdown::Both);
                }
            }
            return;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[test]
fn a_reset_connection_is_recovered_and_nothing_is_lost_or_duplicated() {
    let (l, addr) = listen(&["--name", "L", "--send", "8", "--count", "12", "--exit-after-idle", "10s"]);
    // Past CR, CN and a few messages of the initiator: mid-exchange.
    let (proxy, conns) = cutting_proxy(addr, 1500);
    let c = spawn(&["--connect", &proxy, "--name", "C", "--send", "12", "--count", "8", "--exit-after-idle", "10s"]);
    let (cc, _, c_recv) = finish(c, 20);
    let (lc, _, l_recv) = finish(l, 5);
    assert!(conns.load(Ordering::SeqCst) >= 2, "the initiator reconnected");
    assert_eq!((cc, lc), (0, 0));
    exactly_once(&c_recv, &ids("L", 8), "initiator received");
    exactly_once(&l_recv, &ids("C", 12), "listener received");
}

#[test]
fn serve_help_teaches_both_sides() {
    let o = Command::new(env!("CARGO_BIN_EXE_rtse")).args(["serve", "--help"]).output().unwrap();
    let h = String::from_utf8_lossy(&o.stdout);
    for flag in ["--listen", "--connect", "--send", "--send-every", "--count", "--exit-after-idle", "received MTS-ID"] {
        assert!(h.contains(flag), "{flag} missing from rtse serve --help");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_rtse")).args(["serve"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "neither --listen nor --connect");
    let o = Command::new(env!("CARGO_BIN_EXE_rtse"))
        .args(["serve", "--connect", "127.0.0.1:1", "--send-every", "2h"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
