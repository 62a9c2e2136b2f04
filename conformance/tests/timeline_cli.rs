//! `rtse timeline` as a command: the JSON contract, exit codes, colour,
//! hex input, and bad input (a clear error, never a panic).

use rtse_conformance::cli::{exit, main_with};
use rtse_conformance::sim::SplitMix64;
use rtse_conformance::synth::scenario::{self, Place};
use rtse_conformance::synth::{write_pcapng, Pdus};
use serde_json::Value;

fn rtse(args: &[&str]) -> (u8, String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut argv = vec!["rtse".to_string(), "timeline".to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let code = main_with(argv.into_iter().map(Into::into), &mut out, &mut err);
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

fn temp(name: &str, data: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("rtse-timeline-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p.to_string_lossy().into_owned()
}

fn real(name: &str) -> String {
    format!("{}/../corpus/captures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

/// The JSON of a capture of hundreds of associations (written in
/// chunks of many associations) is, octet for octet, each association's
/// serde text in report order, in the documented envelope.
#[test]
fn json_of_many_associations_is_each_ones_in_order() {
    use rtse_conformance::timeline::{from_capture, Settings};
    let mut convs = Vec::new();
    for k in 0..40u16 {
        let place = Place {
            a: rtse_conformance::synth::addr(1 + (k % 7) as u8, 20_000 + 100 * k),
            tag: format!("P{k}"),
            ..Place::default()
        };
        for (_, c) in scenario::all(&place, if k % 2 == 0 { Pdus::normal() } else { Pdus::x410() }) {
            convs.extend(c);
        }
    }
    let cap = write_pcapng(&convs);
    let mut want = String::from("{\"associations\": [");
    let mut n = 0;
    from_capture(&cap[..], Settings { notes: false, ..Settings::default() }, |a| {
        want.push_str(if n == 0 { "\n" } else { ",\n" });
        want.push_str(&serde_json::to_string(&a).unwrap());
        n += 1;
    })
    .unwrap();
    want.push_str("\n]}\n");
    assert!(n >= 400 && want.len() > 3 << 16, "{n} associations, {} octets", want.len());
    let f = temp("many.pcapng", &cap);
    let (code, out, err) = rtse(&[&f, "--format", "json"]);
    assert!(code == exit::OK || code == exit::ANOMALY, "{code} {err}");
    assert_eq!(out, want);
}

#[test]
fn json_is_exactly_the_documented_contract() {
    let cap = write_pcapng(&scenario::field_failure(&Place::default(), Pdus::normal(), true, 0x15));
    let f = temp("ff.pcapng", &cap);
    let (code, out, err) = rtse(&[&f, "--format", "json"]);
    assert_eq!(code, exit::OK, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(keys(&v), ["associations"]);
    let a = v["associations"].as_array().unwrap();
    assert_eq!(a.len(), 2);
    for x in a {
        assert_eq!(keys(x), ["id", "endpoints", "mode", "initiator", "responder", "recovers", "events", "anomalies"]);
        for e in x["events"].as_array().unwrap() {
            assert_eq!(keys(e), ["frame", "time", "from", "pdus", "turn"]);
            assert!(["initiator", "responder"].contains(&e["from"].as_str().unwrap()));
            assert!(["initiator", "responder", "in-transit", "none", "unknown"].contains(&e["turn"].as_str().unwrap()));
            assert!(e["time"].as_str().unwrap().contains('.'));
        }
        for an in x["anomalies"].as_array().unwrap() {
            assert_eq!(keys(an), ["kind", "frame", "detail"]);
        }
    }
    assert_eq!(a[0]["mode"], "normal");
    assert_eq!(a[0]["endpoints"], "10.0.0.1:40001 -> 10.0.0.2:102");
    assert_eq!(a[0]["initiator"], "10.0.0.1:40001");
    assert_eq!(a[0]["responder"], "10.0.0.2:102");
    assert_eq!(a[0]["recovers"], Value::Null);
    assert_eq!(a[1]["recovers"], 0);
    let kinds: Vec<&str> = a[1]["anomalies"].as_array().unwrap().iter().map(|x| x["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["please-unanswered", "turn-lost"]);
    // --fail-on-anomaly turns the finding into exit 3.
    let (code, ..) = rtse(&[&f, "--format", "json", "--fail-on-anomaly"]);
    assert_eq!(code, exit::ANOMALY);
    let (code, ..) = rtse(&[&real("x400-ping-success.pcap"), "--fail-on-anomaly"]);
    assert_eq!(code, exit::OK);
}

#[test]
fn text_output_colours_anomalies_only_when_asked() {
    let cap = write_pcapng(&scenario::two_holders(&Place::default(), Pdus::normal()));
    let f = temp("th.pcapng", &cap);
    let (code, plain, _) = rtse(&[&f, "--color", "never"]);
    assert_eq!(code, exit::OK);
    assert!(!plain.contains('\x1b'));
    assert!(plain.contains("◀ data-without-turn, two-holders"), "{plain}");
    assert!(plain.contains("✗ two-holders frame"), "{plain}");
    let (_, colour, _) = rtse(&[&f, "--color", "always"]);
    assert!(colour.contains("\x1b[1;31m✗ two-holders\x1b[0m"), "{colour}");
}

#[test]
fn hex_tpkt_stream_is_one_association_with_given_senders() {
    let ex4 = format!("{}/../corpus/examples/ex4_turn_please_give_normal.hex", env!("CARGO_MANIFEST_DIR"));
    let (code, out, err) = rtse(&[&ex4, "--from", "rir", "--format", "json"]);
    assert_eq!(code, exit::OK, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let ev = v["associations"][0]["events"].as_array().unwrap();
    let got: Vec<String> = ev.iter().map(|e| format!("{} {} {}", e["from"], e["pdus"][0], e["turn"])).collect();
    assert_eq!(
        got,
        [r#""responder" "PT" "initiator""#, r#""initiator" "GTC" "in-transit""#, r#""responder" "GTA" "responder""#]
    );
    assert_eq!(ev[0]["time"], Value::Null);
    assert_eq!(v["associations"][0]["endpoints"], Value::Null);
    let (code, _, err) = rtse(&[&ex4, "--from", "rxr"]);
    assert_eq!(code, exit::USAGE, "{err}");
}

#[test]
fn svg_is_written() {
    let cap = write_pcapng(&scenario::field_failure(&Place::default(), Pdus::normal(), true, 0x15));
    let f = temp("ff2.pcapng", &cap);
    let svg = temp("ff2.svg", b"");
    let (code, _, err) = rtse(&[&f, "--svg", &svg, "--format", "json"]);
    assert_eq!(code, exit::OK, "{err}");
    let doc = std::fs::read_to_string(&svg).unwrap();
    assert!(doc.starts_with("<svg"), "{doc}");
    assert!(doc.contains("turn-lost"), "anomalies are drawn");
    assert!(doc.contains("recovers #0"), "the recovery link is drawn");
    assert!(doc.trim_end().ends_with("</svg>"));
}

#[test]
fn bad_input_is_a_clear_error_never_a_panic() {
    let good = std::fs::read(real("x400-ping-success.pcap")).unwrap();
    // Truncated inside a record: what came before is reported, exit 1.
    let f = temp("trunc.pcap", &good[..good.len() - 10]);
    let (code, out, err) = rtse(&[&f, "--color", "never"]);
    assert_eq!(code, exit::FAIL, "{err}");
    assert!(err.contains("capture @"), "{err}");
    assert!(out.contains("association #0"), "{out}");
    // Only a header.
    let f = temp("header.pcap", &good[..24]);
    let (code, _, err) = rtse(&[&f]);
    assert_eq!(code, exit::OK, "{err}");
    assert!(err.contains("no RTSE association"), "{err}");
    // Wrong magic: not a capture, and not a TPKT stream either.
    let mut bad = good.clone();
    bad[0] ^= 0xff;
    let f = temp("magic.pcap", &bad);
    let (code, _, err) = rtse(&[&f]);
    assert_eq!(code, exit::FAIL, "{err}");
    assert!(err.contains("tpkt @ 0"), "{err}");
    // Absurd record length (caplen 0x7fffffff).
    let mut bad = good.clone();
    bad[32..36].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let f = temp("caplen.pcap", &bad);
    let (code, _, err) = rtse(&[&f]);
    assert_eq!(code, exit::FAIL, "{err}");
    assert!(err.contains("capture @ 0x20") && err.contains("2147483647"), "{err}");
    // Absurd snap length in the header: records are still framed by their own lengths.
    let mut bad = good.clone();
    bad[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    let f = temp("snaplen.pcap", &bad);
    let (code, _, err) = rtse(&[&f]);
    assert!(code == exit::OK || code == exit::FAIL, "{err}");
    // pcapng with an absurd block length.
    let mut ng = write_pcapng(&scenario::clean_twa(&Place::default(), Pdus::normal()));
    let epb = 28 + 20; // SHB, IDB
    ng[epb + 4..epb + 8].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let f = temp("block.pcapng", &ng);
    let (code, _, err) = rtse(&[&f]);
    assert_eq!(code, exit::FAIL, "{err}");
    assert!(err.contains("capture @"), "{err}");
    // Random bytes, after a pcap magic and without.
    let mut rng = SplitMix64::new(0x9e37_79b9_7f4a_7c15);
    for i in 0..20 {
        let mut b = rng.bytes(2000);
        if i % 2 == 0 {
            b[..24].copy_from_slice(&good[..24]);
        }
        let f = temp("random.bin", &b);
        let (code, _, _) = rtse(&[&f]);
        assert!(code == exit::OK || code == exit::FAIL, "random input {i}: exit {code}");
    }
    // Missing file, empty file: usage/IO.
    assert_eq!(rtse(&["/nonexistent/x.pcap"]).0, exit::USAGE);
    assert_eq!(rtse(&[&temp("empty", b"")]).0, exit::USAGE);
}

#[test]
fn help_teaches() {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = main_with(["rtse", "timeline", "--help"].map(Into::into), &mut out, &mut err);
    assert_eq!(code, exit::OK);
    let h = String::from_utf8(out).unwrap();
    for needle in ["turn-lost", "Exit codes", "--fail-on-anomaly", "recover", "--svg", "\"associations\""] {
        assert!(h.contains(needle), "{needle} missing from --help");
    }
}
