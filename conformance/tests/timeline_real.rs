//! Timelines of the real captures in corpus/captures.

mod timeline_support;

use rtse_conformance::tracker::{AnomalyKind as K, Mode};
use timeline_support::{kinds, rows, run};

fn capture(name: &str) -> Vec<u8> {
    let p = format!("{}/../corpus/captures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[test]
fn x400_ping_refuse() {
    let v = run(&capture("x400-ping-refuse.pcap"));
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].mode, Some(Mode::Normal));
    assert_eq!(v[0].initiator.as_deref(), Some("192.168.0.3:2278"));
    assert_eq!(
        rows(&v[0]),
        ["initiator T-OPEN none", "initiator CN none", "responder RF none", "initiator T-RST none"]
    );
    assert!(v[0].anomalies.is_empty(), "{:?}", v[0].anomalies);
}

#[test]
fn x400_ping_success() {
    let v = run(&capture("x400-ping-success.pcap"));
    assert_eq!(
        rows(&v[0]),
        [
            "initiator T-OPEN none",
            "initiator CN none",
            "responder AC initiator",
            "initiator FN initiator",
            "responder DN none",
            "initiator T-RST none"
        ]
    );
    assert!(v[0].anomalies.is_empty(), "{:?}", v[0].anomalies);
    let fr: Vec<u64> = v[0].events.iter().map(|e| e.frame).collect();
    assert_eq!(fr, [1, 6, 7, 8, 9, 12], "frames as tshark numbers them");
}

#[test]
fn p772_recovery_refused_then_a_transfer() {
    let v = run(&capture("p772-transfer-success.pcap"));
    assert_eq!(v.len(), 2);
    // Stream 0: a recovery of a connection the capture does not show,
    // refused (busy). Only that can be said about it.
    assert_eq!(v[0].info.stream, Some(0));
    assert_eq!(kinds(&v[0]), [K::RecoveryUnlinked]);
    assert_eq!(v[0].recovers, None);
    assert!(v[0].events[1].note.contains("recover Percival"), "{}", v[0].events[1].note);
    assert_eq!(rows(&v[0])[2], "responder RF none");
    // Stream 1: open, one transfer (monologue: the initiator holds the Turn
    // throughout), confirmed, released.
    assert_eq!(v[1].info.stream, Some(1));
    assert!(v[1].anomalies.is_empty(), "{:?}", v[1].anomalies);
    assert_eq!(
        rows(&v[1]),
        [
            "initiator T-OPEN none",
            "initiator CN none",
            "responder AC initiator",
            "initiator AS initiator",
            "initiator DT initiator",
            "initiator AE initiator",
            "responder AEA initiator",
            "initiator FN initiator",
            "responder DN none",
            "initiator T-RST none"
        ]
    );
    let ae = v[1].events.iter().find(|e| e.pdus == ["AE"]).unwrap();
    assert!(ae.note.contains("/C=gb/A= /P=smhs/;percival"), "{}", ae.note);
}

#[test]
fn every_capture_gives_a_timeline_without_panic() {
    let dir = format!("{}/../corpus/captures", env!("CARGO_MANIFEST_DIR"));
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".txt") || name.ends_with(".md") || name.contains("_bench") {
            continue;
        }
        let data = std::fs::read(&p).unwrap();
        let mut n = 0;
        let summary = rtse_conformance::timeline::from_capture(&data[..], Default::default(), |a| {
            n += 1;
            assert!(a.events.windows(2).all(|w| w[0].frame <= w[1].frame), "{name}: rows in frame order");
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        // Only the X.400 captures carry RTSE; the MMS ones carry sessions
        // without it (not shown, counted); S7comm and bare COTP carry none.
        let rtse = name.contains("x400") || name.contains("p772");
        assert_eq!(n > 0, rtse, "{name}: {n} associations");
        let lower = name.to_lowercase();
        let mms = lower.contains("mms") && name != "mmsX.pcap" || name.starts_with("iec") || name.contains("piccolo");
        assert_eq!(summary.other_sessions > 0, mms, "{name}: {summary:?}");
    }
}

/// The hand-written JSON of `rtse timeline --format json` is the text
/// serde would write, on every association of every capture we have and of
/// every synthetic scenario (both modes), anomalies included.
#[test]
fn fast_json_equals_serde_on_every_capture() {
    use rtse_conformance::synth::{scenario, write_pcapng, Pdus};
    let mut caps: Vec<(String, Vec<u8>)> = Vec::new();
    for dir in ["captures", "examples"] {
        let d = format!("{}/../corpus/{dir}", env!("CARGO_MANIFEST_DIR"));
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "pcap" || e == "pcapng") {
                caps.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    for pdus in [Pdus::normal(), Pdus::x410()] {
        for (name, convs) in scenario::all(&scenario::Place::default(), pdus) {
            caps.push((name.to_string(), write_pcapng(&convs)));
        }
    }
    let (mut seen, mut anomalies) = (0, 0);
    for (name, cap) in &caps {
        for a in run(cap) {
            let mut fast = Vec::new();
            a.write_json(&mut fast);
            let serde = serde_json::to_vec(&a).unwrap();
            assert_eq!(String::from_utf8(fast).unwrap(), String::from_utf8(serde).unwrap(), "{name}");
            seen += 1;
            anomalies += a.anomalies.len();
        }
    }
    assert!(seen >= 30 && anomalies >= 10, "{seen} associations, {anomalies} anomalies");
}

/// Decoding on a second thread (the default) reports exactly what the
/// single-threaded engine does, in the same order, on captures of many
/// batches.
#[test]
fn pipeline_reports_what_the_single_thread_does() {
    use rtse_conformance::synth::{scenario, write_pcapng, Pdus};
    use rtse_conformance::timeline::{from_capture, Settings};
    let mut convs = Vec::new();
    for k in 0..40u16 {
        let place = scenario::Place {
            a: rtse_conformance::synth::addr(1 + (k % 7) as u8, 20_000 + 100 * k),
            tag: format!("P{k}"),
            ..scenario::Place::default()
        };
        let pdus = if k % 2 == 0 { Pdus::normal() } else { Pdus::x410() };
        for (_, c) in scenario::all(&place, pdus) {
            convs.extend(c);
        }
    }
    let mut caps = vec![write_pcapng(&convs)];
    let d = format!("{}/../corpus/captures", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(&d).unwrap() {
        caps.push(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let json = |cap: &[u8], parallel: bool| {
        let mut out = Vec::new();
        let r = from_capture(cap, Settings { parallel, settle_ns: 1_000_000_000, ..Settings::default() }, |a| {
            out.push(serde_json::to_string(&a).unwrap());
        });
        (out, r.map(|s| (s.associations, s.anomalies, s.malformed, s.capture)).map_err(|e| e.to_string()))
    };
    // Damaged mid-way: the error comes after the same associations.
    let cut = caps[0][..caps[0].len() * 2 / 3].to_vec();
    caps.push(cut);
    let (many, _) = json(&caps[0], true);
    assert!(many.len() >= 400, "{} associations", many.len());
    // A sink that gives each report back (its rows are reused) sees the
    // same reports.
    let lent = |cap: &[u8]| {
        use rtse_conformance::timeline::{capture_into, Lend};
        let mut out = Vec::new();
        let settings = Settings { settle_ns: 1_000_000_000, ..Settings::default() };
        let r = capture_into(cap, settings, Lend(|a: &_| out.push(serde_json::to_string(a).unwrap())));
        (out, r.map(|s| (s.associations, s.anomalies, s.malformed, s.capture)).map_err(|e| e.to_string()))
    };
    for cap in &caps {
        assert_eq!(json(cap, true), json(cap, false));
        assert_eq!(lent(cap), json(cap, true));
    }
    let (before_damage, res) = json(caps.last().unwrap(), true);
    assert!(res.is_err() && !before_damage.is_empty(), "{res:?}");
}
