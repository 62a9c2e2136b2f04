//! `rtse serve --listen` and `rtse serve --connect` as two processes
//! exchanging messages both ways over loopback TCP: every message is
//! delivered exactly once, in both modes, and across a real connection
//! reset (the initiator recovers the association with RTORQ recover).

mod process_support;

use process_support::{count, first_addr, ids, Proc};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn spawn(args: &[&str]) -> Proc {
    let mut a = vec!["serve"];
    a.extend_from_slice(args);
    process_support::spawn(&a)
}

fn listen(args: &[&str]) -> (Proc, String) {
    let mut a = vec!["--listen", "127.0.0.1:0"];
    a.extend_from_slice(args);
    let p = spawn(&a);
    let addr = first_addr(&p);
    (p, addr)
}

/// Waits for the exit (within `secs`): its code and its `sent` / `received`
/// lines.
fn finish(p: Proc, secs: u64) -> (i32, BTreeMap<String, u32>, BTreeMap<String, u32>) {
    let (code, lines) = process_support::finish(p, secs);
    (code, count(&lines, "sent "), count(&lines, "received "))
}

fn exactly_once(got: &BTreeMap<String, u32>, want: &[String], what: &str) {
    process_support::exactly_once(got, want, what, "");
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
