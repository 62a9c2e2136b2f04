//! The suite end to end over loopback TCP against the `rtse serve` binary:
//! the TCP adapter (real FIN and RST drops) and the server (recovery
//! handed to the MTA that lost the association) together. The whole suite
//! over TCP takes ~20 s: it is the ignored test below (and `rtse bench
//! suite`); the default test runs the recovery, abort and malformed cases.

use rtse_conformance::suite::{self, case, cmd, Verdict};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rtse"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn rtse serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on ").expect("listening line").to_owned();
    Server { child, addr }
}

fn run(addr: &str, patterns: &[&str]) -> Vec<suite::CaseResult> {
    let all = case::builtin().unwrap();
    let sel = cmd::select(&all, &patterns.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
    assert!(!sel.is_empty());
    let mode = rtse_codec::presentation::Mode::Normal;
    let (mut iut, caps) = cmd::iut_with(&format!("tcp://{addr}"), mode, Some(launch(mode))).unwrap();
    sel.iter().map(|c| suite::run_case(c, iut.as_mut(), &caps, None)).collect()
}

/// Cases with the IUT as initiator: the tester listens and launches
/// `rtse serve --connect` per case (the declaration's [initiator] command).
fn launch(mode: rtse_codec::presentation::Mode) -> suite::tcp::InitiatorLaunch {
    suite::tcp::InitiatorLaunch {
        command: format!(
            "'{}' serve --connect {{addr}} --mode {{mode}} --send {{count}} --size {{size}} --turn {{turn}}",
            env!("CARGO_BIN_EXE_rtse")
        ),
        listen: "127.0.0.1:0".into(),
        mode,
    }
}

fn failures(rs: &[suite::CaseResult]) -> String {
    rs.iter()
        .filter(|r| !matches!(r.verdict, Verdict::Pass | Verdict::Skipped))
        .map(|r| {
            let t: Vec<String> = r.trace.iter().map(ToString::to_string).collect();
            format!("{} {:?}: {}\n{}", r.id, r.verdict, r.reason.as_deref().unwrap_or(""), t.join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[test]
fn recovery_abort_and_malformed_cases_pass_against_rtse_serve() {
    let s = serve(&[]);
    let rs = run(&s.addr, &["turn.recovery", "recovery.turn", "abort", "malformed.tpkt", "malformed.order"]);
    assert!(rs.len() >= 30, "{}", rs.len());
    let bad = failures(&rs);
    assert!(bad.is_empty(), "{bad}");
}

#[test]
fn initiator_cases_run_over_tcp_with_rtse_serve_connect() {
    let s = serve(&[]);
    let rs = run(&s.addr, &["establish.initiator", "recovery.initiator"]);
    assert!(rs.len() >= 9, "{}", rs.len());
    assert!(rs.iter().all(|r| r.verdict != Verdict::Skipped), "none skipped: the tester listens");
    let bad = failures(&rs);
    assert!(bad.is_empty(), "{bad}");
}

#[test]
fn the_field_failure_case_fails_against_a_flawed_server() {
    let s = serve(&["--flaw", "forgets-given-turn"]);
    let rs = run(&s.addr, &["turn.recovery.field-failure"]);
    assert_eq!(rs[0].verdict, Verdict::Fail, "{}", failures(&rs));
    assert!(rs[0].reason.as_deref().unwrap_or("").contains("timeout"), "{:?}", rs[0].reason);
}

#[test]
fn the_server_survives_garbage_slow_clients_and_many_connections() {
    let s = serve(&[]);
    // Garbage: closed (or answered with an abort), never a crash.
    for junk in [&b"GET / HTTP/1.1\r\n\r\n"[..], &[0x03, 0, 0xff, 0xff, 1, 2, 3][..], &[0u8; 5000][..]] {
        let mut c = TcpStream::connect(&s.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let _ = c.write_all(junk);
        let mut b = Vec::new();
        let _ = c.read_to_end(&mut b);
    }
    // Many at once, one of them slow (a CR a byte at a time).
    let mut idle: Vec<TcpStream> = (0..40).map(|_| TcpStream::connect(&s.addr).unwrap()).collect();
    let mut slow = TcpStream::connect(&s.addr).unwrap();
    let cr = rtse_conformance::synth::Pdus::normal().cr();
    for b in &cr {
        slow.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    slow.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut hdr = [0u8; 4];
    slow.read_exact(&mut hdr).unwrap();
    assert_eq!(hdr[0], 3, "a TPKT (CC) back to the slow client");
    // And a full association still works.
    let rs = run(&s.addr, &["turn.please.idle-holder", "transfer.iut.size-3000"]);
    assert!(failures(&rs).is_empty(), "{}", failures(&rs));
    idle.clear();
}

#[test]
#[ignore = "~20 s: the whole suite over TCP (rtse bench suite measures it)"]
fn the_whole_suite_passes_against_rtse_serve() {
    let s = serve(&[]);
    let rs = run(&s.addr, &[]);
    let bad = failures(&rs);
    assert!(bad.is_empty(), "{bad}");
    // The initiator cases run over TCP too.
    let skipped: Vec<&str> = rs
        .iter()
        .filter(|r| r.verdict == Verdict::Skipped && r.reason.as_deref().unwrap_or("").contains("initiator"))
        .map(|r| r.id.as_str())
        .collect();
    assert!(skipped.is_empty(), "skipped over TCP: {skipped:?}");
}

#[test]
fn rtse_run_against_tcp_writes_reports_and_exits_by_contract() {
    let s = serve(&[]);
    let dir = std::env::temp_dir().join(format!("rtse-suite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let decl = dir.join("iut.toml");
    std::fs::write(&decl, "name = \"rtse serve\"\n[capabilities]\nmode = \"normal\"\nroles = [\"responder\"]\n")
        .unwrap();
    let (j, x, h) = (dir.join("r.json"), dir.join("r.xml"), dir.join("r.html"));
    let out = Command::new(env!("CARGO_BIN_EXE_rtse"))
        .args(["run", "--iut", &format!("tcp://{}", s.addr), "--declare"])
        .arg(&decl)
        .args(["turn.recovery.field-failure", "establish.initiator", "--color", "never"])
        .arg("--report")
        .arg(format!("json={}", j.display()))
        .arg("--report")
        .arg(format!("junit={}", x.display()))
        .arg("--report")
        .arg(format!("html={}", h.display()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();
    assert_eq!(json["iut"], "rtse serve");
    assert_eq!(json["summary"]["pass"], 1);
    assert_eq!(json["summary"]["skipped"], 3);
    let xml = std::fs::read_to_string(&x).unwrap();
    assert!(xml.contains("<skipped"), "{xml}");
    assert!(std::fs::read_to_string(&h).unwrap().contains("rtse serve"));
    // A declared divergence that passes is unexpected: exit 1.
    std::fs::write(
        &decl,
        "[[expected]]\ncase = \"turn.recovery.field-failure\"\nverdict = \"fail\"\nreason = \"ticket 1\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rtse"))
        .args(["run", "--iut", &format!("tcp://{}", s.addr), "--declare"])
        .arg(&decl)
        .args(["turn.recovery.field-failure", "--color", "never"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("UNEXPECTED PASS"));
    let _ = std::fs::remove_dir_all(&dir);
}
