//! `rtse` as a child process in end-to-end tests (`rtse serve`, `rtse
//! proxy`): its output lines on a channel, its exit awaited with a bound,
//! and the exactly-once check on the `sent` / `received` lines of `rtse
//! serve`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `rtse`, killed when dropped.
pub struct Proc {
    pub child: Child,
    /// Its stdout and stderr lines, as they come.
    pub lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `rtse ARGS`.
pub fn spawn(args: &[&str]) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rtse"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rtse");
    let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let tx2 = tx.clone();
    std::thread::spawn(move || BufReader::new(out).lines().map_while(Result::ok).try_for_each(|l| tx.send(l)));
    std::thread::spawn(move || BufReader::new(err).lines().map_while(Result::ok).try_for_each(|l| tx2.send(l)));
    Proc { child, lines: rx }
}

/// The address in the first line (`listening on A`, `rtse proxy: listening
/// on A, ...`).
pub fn first_addr(p: &Proc) -> String {
    let l = p.lines.recv_timeout(Duration::from_secs(10)).expect("first line");
    let a = l.split("listening on ").nth(1).expect(&l);
    a.split(',').next().unwrap().trim().to_string()
}

/// Waits for the exit (within `secs`): its code and every line.
pub fn finish(mut p: Proc, secs: u64) -> (i32, Vec<String>) {
    let until = Instant::now() + Duration::from_secs(secs);
    let code = loop {
        if let Some(s) = p.child.try_wait().unwrap() {
            break s.code().unwrap_or(-1);
        }
        assert!(Instant::now() < until, "did not exit within {secs} s");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut lines = Vec::new();
    while let Ok(l) = p.lines.recv_timeout(Duration::from_millis(300)) {
        lines.push(l);
    }
    (code, lines)
}

/// How many times each line starting with `prefix` came (prefix removed).
pub fn count(lines: &[String], prefix: &str) -> BTreeMap<String, u32> {
    let mut m = BTreeMap::new();
    for l in lines {
        if let Some(x) = l.strip_prefix(prefix) {
            *m.entry(x.to_owned()).or_insert(0) += 1;
        }
    }
    m
}

/// The MTS identifiers `rtse serve --name PREFIX --send N` gives its
/// messages.
pub fn ids(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("/C=GB/A= /P=ACME/;{prefix}-{i:06}")).collect()
}

/// Every identifier of `want` once, and nothing else.
pub fn exactly_once(got: &BTreeMap<String, u32>, want: &[String], what: &str, ctx: &str) {
    let dup: Vec<_> = got.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dup.is_empty(), "{what}: delivered more than once: {dup:?}\n{ctx}");
    let keys: Vec<&String> = got.keys().collect();
    assert_eq!(keys, want.iter().collect::<Vec<_>>(), "{what}\n{ctx}");
}
