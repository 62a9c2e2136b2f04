//! End to end with real processes: `rtse serve --listen` (responder) and
//! `rtse serve --connect` (initiator) exchanging mail through `rtse proxy`,
//! which drops the connection at every Turn-relevant point. With reference
//! MTAs: no anomaly, every message delivered exactly once, every drop
//! injected. With `forgets-given-turn` on the responder: `turn-lost`. The
//! proxy is stopped by SIGINT (the ctrl-c path: summary and files still
//! written), and its pcapng decodes in tshark without a malformed packet.

mod process_support;

use process_support::{count, exactly_once, finish, first_addr, ids, spawn};
use std::path::Path;
use std::process::Command;

struct Run {
    l: (i32, Vec<String>),
    c: (i32, Vec<String>),
    proxy: (i32, Vec<String>),
    /// The responder's and the proxy's listening addresses.
    addrs: [String; 2],
}

impl Run {
    fn proxy_text(&self) -> String {
        self.proxy.1.join("\n")
    }
}

/// L (responder, sends `l_send`) <- proxy(`rules`) <- C (initiator, sends
/// `c_send`); the proxy gets SIGINT once both MTAs exited.
fn run(rules: &[&str], l_extra: &[&str], c_extra: &[&str], l_send: usize, c_send: usize) -> Run {
    let (ls, cs) = (l_send.to_string(), c_send.to_string());
    let mut la = vec!["serve", "--listen", "127.0.0.1:0", "--name", "L", "--send", &ls, "--count", &cs];
    la.extend_from_slice(&["--exit-after-idle", "3s"]);
    la.extend_from_slice(l_extra);
    let l = spawn(&la);
    let l_addr = first_addr(&l);
    let mut pa = vec!["proxy", "--listen", "127.0.0.1:0", "--to", &l_addr, "--color", "never"];
    pa.extend_from_slice(rules);
    let proxy = spawn(&pa);
    let p_addr = first_addr(&proxy);
    let mut ca = vec!["serve", "--connect", &p_addr, "--name", "C", "--send", &cs, "--count", &ls];
    ca.extend_from_slice(&["--exit-after-idle", "3s"]);
    ca.extend_from_slice(c_extra);
    let c = spawn(&ca);
    let c = finish(c, 20);
    let l = finish(l, 10);
    let pid = proxy.child.id().to_string();
    let status = Command::new("kill").args(["-INT", &pid]).status().expect("kill -INT");
    assert!(status.success());
    let proxy = finish(proxy, 10);
    // Every fault the plan decided was applied and logged: none was used
    // up on a TPKT of a connection already being torn down (only a delay
    // can outlive its connection).
    let text = proxy.1.join("\n");
    assert!(!text.contains("faults decided but not applied") || rules.iter().any(|r| r.contains("delay")), "{text}");
    Run { l, c, proxy, addrs: [l_addr, p_addr] }
}

/// Reference MTAs, one drop at `rule`: both MTAs finish, every message
/// once, the fault was injected, no anomaly.
fn survives(rule: &str) {
    // A drop between the CN and the AC's arrival: the initiator never saw
    // the association, so it opens a new one (no recovery); the responder
    // keeps the half-open one for a recovery that cannot come, with
    // whatever `rtse serve` had queued in it. Only the initiator sends.
    let establishing = matches!(rule, "after:CN" | "before:AC");
    let (l_send, c_send) = if establishing { (0, 3) } else { (3, 3) };
    let r = run(&["--drop", rule], &[], &[], l_send, c_send);
    let ctx = format!("rule {rule}\nproxy:\n{}\ninitiator: {:?}\nresponder: {:?}", r.proxy_text(), r.c.1, r.l.1);
    assert_eq!((r.c.0, r.l.0, r.proxy.0), (0, 0, 0), "exit codes\n{ctx}");
    exactly_once(&count(&r.c.1, "received "), &ids("L", l_send), "initiator received", &ctx);
    exactly_once(&count(&r.l.1, "received "), &ids("C", c_send), "responder received", &ctx);
    let text = r.proxy_text();
    assert!(text.contains("faults injected: 1"), "the drop was injected\n{ctx}");
    assert!(text.contains(&format!("[{rule}#1:rst]")), "logged with its rule\n{ctx}");
    assert!(text.contains("anomalies: none"), "{ctx}");
    assert!(text.contains("── rtse proxy summary"), "SIGINT still prints the summary\n{ctx}");
}

macro_rules! survives {
    ($($name:ident: $pdu:literal;)*) => {$(
        #[test]
        fn $name() {
            survives(concat!("before:", $pdu));
            survives(concat!("after:", $pdu));
        }
    )*};
}

survives! {
    drop_around_cn: "CN";
    drop_around_ac: "AC";
    drop_around_pt: "PT";
    drop_around_as: "AS";
    drop_around_dt: "DT";
    drop_around_ae: "AE";
    drop_around_aea: "AEA";
    drop_around_gtc: "GTC";
    drop_around_gta: "GTA";
    drop_around_fn: "FN";
    drop_around_dn: "DN";
}

/// A forged session AB is a user abort, not a transport loss: the MTAs
/// do not recover the association (X.228 recovers provider aborts); the
/// initiator opens a new one and re-sends what was not confirmed. A message
/// whose AEA the abort cut off is then delivered twice by the responder:
/// RTSE promises nothing across an abort. Every message still arrives.
#[test]
fn forged_abort_is_survived_without_recovery() {
    let r = run(&["--drop", "before:AEA:abort"], &[], &[], 3, 3);
    let text = r.proxy_text();
    assert_eq!((r.c.0, r.l.0), (0, 0), "{text}");
    assert!(text.contains("forged session AB sent to both MTAs"), "{text}");
    assert!(!text.contains("recovered #"), "no recovery after an abort: {text}");
    let got = count(&r.l.1, "received ");
    assert_eq!(got.keys().cloned().collect::<Vec<_>>(), ids("C", 3), "{text}");
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.len() <= 1 && twice.iter().all(|(k, n)| **n == 2 && k.ends_with("C-000001")), "{twice:?}\n{text}");
    exactly_once(&count(&r.c.1, "received "), &ids("L", 3), "initiator received", &text);
}

/// The other drop kinds, and drops on the recovery connections too.
#[test]
fn other_kinds_and_repeated_drops_are_survived() {
    for rules in [
        &["--drop", "after:GTC:fin"][..],
        &["--drop", "before:AE:mid-tpkt"],
        &["--drop", "after:AEA#2", "--drop", "after:AEA#4:fin"],
    ] {
        let r = run(rules, &[], &[], 3, 3);
        let ctx = format!("{rules:?}\n{}", r.proxy_text());
        assert_eq!((r.c.0, r.l.0), (0, 0), "{ctx}");
        exactly_once(&count(&r.c.1, "received "), &ids("L", 3), "initiator received", &ctx);
        exactly_once(&count(&r.l.1, "received "), &ids("C", 3), "responder received", &ctx);
        assert!(r.proxy_text().contains("anomalies: none"), "{ctx}");
        assert!(!r.proxy_text().contains("faults injected: 0"), "{ctx}");
    }
}

/// The field failure: the responder's GTC is lost; the flawed responder
/// resolves the recovery's Token Setting from its memory (it gave the
/// Turn) and ignores the initiator's please: `turn-lost` on the
/// association that recovers the one the drop killed.
#[test]
fn forgets_given_turn_shows_turn_lost_at_the_injected_drop() {
    let r = run(
        &["--drop", "before:GTC@responder", "--please-timeout", "0.5", "--fail-on-anomaly"],
        &["--flaw", "forgets-given-turn"],
        &["--turn", "responder"],
        2,
        3,
    );
    let text = r.proxy_text();
    assert_eq!(r.proxy.0, 3, "--fail-on-anomaly\n{text}");
    let fault = text.lines().find(|l| l.contains("FAULT")).expect(&text);
    assert!(fault.contains("c0") && fault.contains("rst before GTC"), "{fault}");
    let lost = text.lines().find(|l| l.contains("!! #1 turn-lost")).expect(&text);
    assert!(lost.contains("lost association #0"), "turn-lost on the recovery of the dropped association: {lost}");
    assert!(text.contains("#1 recovered #0"), "{text}");
    // Live: while the recovery connection is still open (the MTAs give up
    // only after 3 s idle), not at its close.
    let at = |needle: &str| text.lines().position(|l| l.contains(needle)).expect(needle);
    assert!(at("!! #1 turn-lost") < at("c1   closed"), "{text}");
    // The MTAs do not finish: the initiator never gets the Turn back.
    assert_ne!(r.c.0, 0);
}

/// The pcapng of a run with a drop and a recovery decodes in tshark
/// without a malformed packet or an expert error.
#[test]
fn pcapng_decodes_in_tshark() {
    if !rtse_conformance::tshark::available() {
        assert!(
            !std::env::var("RTSE_REQUIRE_TOOLS").is_ok_and(|v| v == "1"),
            "tshark is required (RTSE_REQUIRE_TOOLS=1) but not installed"
        );
        eprintln!("note: tshark not installed; proxy pcapng not checked");
        return;
    }
    let dir = std::env::temp_dir().join(format!("rtse-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("run.pcapng");
    let json = dir.join("run.json");
    let svg = dir.join("run.svg");
    let p = pcap.to_str().unwrap();
    let tl = format!("json={}", json.to_str().unwrap());
    let r = run(
        &[
            "--drop",
            "after:GTC",
            "--drop",
            "before:AE#4:mid-tpkt",
            "--pcapng",
            p,
            "--timeline",
            &tl,
            "--svg",
            svg.to_str().unwrap(),
        ],
        &[],
        &[],
        3,
        3,
    );
    assert_eq!((r.c.0, r.l.0, r.proxy.0), (0, 0, 0), "{}", r.proxy_text());
    let ports: Vec<String> =
        r.addrs.iter().map(|a| format!("tcp.port=={},tpkt", a.rsplit(':').next().unwrap())).collect();
    check_tshark(&pcap, &ports);
    // The timeline JSON holds the recovery link; the SVG was drawn.
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let assocs = doc["associations"].as_array().unwrap();
    // Every connection a fault killed is recovered by an association of
    // its own. Usually that is two (c0 after the GTC, c1 before L's first
    // AE), but the drop after the GTC races with L's answer: when L's
    // GTA, AS, DT and AE reach the proxy before the reset, the AE rule
    // fires on c0 too, and one recovery follows both faults.
    let text = r.proxy_text();
    let killed: std::collections::BTreeSet<&str> =
        text.lines().filter(|l| l.contains(" FAULT ")).filter_map(|l| l.split_whitespace().nth(1)).collect();
    assert!(!killed.is_empty(), "{text}");
    assert_eq!(
        assocs.len(),
        killed.len() + 1,
        "one association, and one more per connection a fault killed ({killed:?})\n{text}\ninitiator: {:?}\nresponder: {:?}",
        r.c.1,
        r.l.1
    );
    assert!(assocs.iter().any(|a| a["recovers"] == 0), "{doc}");
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
    let _ = std::fs::remove_dir_all(&dir);
}

fn check_tshark(path: &Path, decode_as: &[String]) {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(path);
    for d in decode_as {
        cmd.args(["-d", d]);
    }
    let rows = cmd
        .args(["-T", "fields", "-e", "frame.number", "-e", "tcp.stream", "-e", "_ws.col.Protocol"])
        .args(["-e", "_ws.col.Info", "-e", "_ws.malformed", "-e", "_ws.expert.severity"])
        .output()
        .unwrap();
    assert!(rows.status.success(), "{}", String::from_utf8_lossy(&rows.stderr));
    let text = String::from_utf8_lossy(&rows.stdout);
    let mut cotp = 0;
    let mut resumed = std::collections::BTreeSet::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        let (stream, proto, info) = (f.get(1).copied(), f.get(2).copied(), f.get(3).copied().unwrap_or(""));
        if info.contains("ACTIVITY RESUME") {
            resumed.insert(stream);
        }
        if proto.is_some_and(|p| p != "TCP") {
            cotp += 1;
        }
        let malformed = info.contains("Malformed") || f.get(4).is_some_and(|m| !m.is_empty());
        // Wireshark's RTSE reassembly cannot start in the middle of an
        // APDU (what a resumed activity carries): its limitation, as in
        // the simulator's export test. The mid-TPKT cut's half TPKT is a
        // TCP segment tshark leaves undissected. Anything else fails.
        if malformed {
            assert!(proto == Some("RTSE") && resumed.contains(&stream), "frame {l}");
        }
        // Severity 8388608 = error ("Malformed", checksum errors...).
        let error = f.get(5).is_some_and(|s| s.split(',').any(|x| x == "8388608"));
        assert!(!error || (proto == Some("RTSE") && resumed.contains(&stream)), "expert error: {l}");
    }
    assert!(cotp > 20, "tshark dissected the OSI stack: {cotp} frames\n{text}");
}
