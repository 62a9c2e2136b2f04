//! Timelines of synthetic captures written from the codec's `emit`
//! (`synth`): the field failure, a clean exchange, and each anomaly the
//! timeline exists to show, in normal and X.410-1984 mode.

mod timeline_support;

use rtse_conformance::synth::scenario::{self, Place};
use rtse_conformance::synth::Pdus;
use rtse_conformance::tracker::{AnomalyKind as K, Mode, Side, TurnHolder};
use timeline_support::{kinds, rows, run_convs};

fn modes() -> [(Pdus, Mode); 2] {
    [(Pdus::normal(), Mode::Normal), (Pdus::x410(), Mode::X410)]
}

#[test]
fn field_failure_is_turn_lost_on_the_recovery_linked_to_the_lost_association() {
    for (pdus, mode) in modes() {
        for gtc_captured in [true, false] {
            let what = format!("{mode:?}, GTC captured: {gtc_captured}");
            let v = run_convs(&scenario::field_failure(&Place::default(), pdus, gtc_captured, 0x15));
            assert_eq!(v.len(), 2, "{what}");
            let (lost, rec) = (&v[0], &v[1]);
            assert_eq!(lost.mode, Some(mode), "{what}");
            // Different TCP connections and ports, linked by the quoted
            // session Connection Identifier.
            assert_ne!(lost.initiator, rec.initiator);
            assert_eq!(rec.recovers, Some(lost.id), "{what}");
            assert_eq!(lost.info.recovered_by, Some(rec.id), "{what}");
            // The lost association: A held the Turn; the GTC (when seen) put
            // it in transit; the reset left nobody.
            let r = rows(lost);
            let tail: Vec<&str> = r.iter().rev().take(2).rev().map(String::as_str).collect();
            if gtc_captured {
                assert_eq!(tail, ["initiator GTC in-transit", "initiator T-RST none"], "{what}");
            } else {
                assert_eq!(tail, ["responder AEA initiator", "initiator T-RST none"], "{what}");
            }
            assert!(kinds(lost).is_empty(), "{what}: {:?}", lost.anomalies);
            // The recovery: Token Setting 15 gives B the Turn; A's please is
            // ignored: turn-lost, B at fault.
            assert_eq!(
                rows(rec),
                [
                    "initiator T-OPEN none",
                    "initiator CN none",
                    "responder AC responder",
                    "initiator PT responder",
                    "initiator AB none",
                    "initiator T-FIN none"
                ],
                "{what}"
            );
            assert_eq!(kinds(rec), [K::PleaseUnanswered, K::TurnLost], "{what}");
            let tl = &rec.anomalies[1];
            assert_eq!(tl.by, Some(Side::Responder));
            assert!(tl.detail.contains(&format!("#{}", lost.id)), "{}", tl.detail);
            assert_eq!(tl.detail.contains("GTC from initiator in flight"), gtc_captured, "{}", tl.detail);
        }
    }
}

#[test]
fn field_failure_with_setting_00_blames_the_initiator_at_once() {
    let v = run_convs(&scenario::field_failure(&Place::default(), Pdus::normal(), true, 0x00));
    let rec = &v[1];
    let pt = rec.events.iter().find(|e| e.pdus == ["PT"]).expect("PT row");
    assert_eq!(pt.turn, TurnHolder::Initiator);
    assert!(pt.anomalies.contains(&K::TurnLost), "{:?}", pt.anomalies);
    let tl = rec.anomalies.iter().find(|a| a.kind == K::TurnLost).expect("turn-lost");
    assert_eq!(tl.by, Some(Side::Initiator));
    assert_eq!(tl.frame, pt.frame);
}

#[test]
fn clean_two_way_alternate_exchange_has_no_anomaly_and_the_turn_moves() {
    for (pdus, mode) in modes() {
        let v = run_convs(&scenario::clean_twa(&Place::default(), pdus));
        assert_eq!(v.len(), 1);
        let a = &v[0];
        assert!(a.anomalies.is_empty(), "{mode:?}: {:?}", a.anomalies);
        let moves: Vec<String> = rows(a)
            .into_iter()
            .filter(|r| ["PT", "GTC", "GTA", "FN", "DN", "AC"].iter().any(|p| r.contains(&format!(" {p} "))))
            .collect();
        assert_eq!(
            moves,
            [
                "responder AC initiator",
                "responder PT initiator",
                "initiator GTC in-transit",
                "responder GTA responder",
                "initiator PT responder",
                "responder GTC in-transit",
                "initiator GTA initiator",
                "initiator FN initiator",
                "responder DN none"
            ],
            "{mode:?}"
        );
        // Each side's transfer rows show its own holding.
        let mut b_data = a.events.iter().filter(|e| e.from == Side::Responder && e.pdus == ["DT"]);
        assert!(b_data.clone().count() >= 1);
        assert!(b_data.all(|e| e.turn == TurnHolder::Responder));
    }
}

#[test]
fn two_holders_and_data_without_turn() {
    for (pdus, mode) in modes() {
        let v = run_convs(&scenario::two_holders(&Place::default(), pdus));
        let row = v[0].events.iter().find(|e| e.from == Side::Responder && e.pdus == ["AS"]).unwrap();
        assert!(row.anomalies.contains(&K::TwoHolders), "{mode:?}: {:?}", row.anomalies);
        assert!(row.anomalies.contains(&K::DataWithoutTurn), "{mode:?}: {:?}", row.anomalies);
        assert_eq!(row.turn, TurnHolder::Initiator, "the tokens did not move");

        let v = run_convs(&scenario::data_without_turn(&Place::default(), pdus));
        let k = kinds(&v[0]);
        assert_eq!(k.first(), Some(&K::DataWithoutTurn), "{mode:?}: {k:?}");
        assert_eq!(k.iter().filter(|x| **x == K::DataWithoutTurn).count(), 1, "reported once: {k:?}");
        assert_eq!(v[0].anomalies[0].by, Some(Side::Responder));
    }
}

#[test]
fn lost_transfer_across_recovery() {
    for (pdus, mode) in modes() {
        let v = run_convs(&scenario::lost_transfer(&Place::default(), pdus));
        assert_eq!(v[1].recovers, Some(0));
        assert!(kinds(&v[0]).is_empty(), "{mode:?}: {:?}", v[0].anomalies);
        assert_eq!(kinds(&v[1]), [K::TransferLost], "{mode:?}");
        assert!(v[1].anomalies[0].detail.contains("neither resumed"), "{}", v[1].anomalies[0].detail);
    }
}

#[test]
fn duplicated_transfer_across_recovery() {
    for (pdus, mode) in modes() {
        let v = run_convs(&scenario::duplicated_transfer(&Place::default(), pdus));
        assert_eq!(v[1].recovers, Some(0));
        assert!(kinds(&v[0]).is_empty(), "{mode:?}: {:?}", v[0].anomalies);
        assert_eq!(kinds(&v[1]), [K::TransferDuplicated], "{mode:?}");
        let d = &v[1].anomalies[0];
        assert!(d.detail.contains("A-MSG-0001"), "{}", d.detail);
        let aea = v[1].events.iter().find(|e| e.pdus == ["AEA"]).unwrap();
        assert_eq!(d.frame, aea.frame);
    }
}

#[test]
fn associations_are_reported_as_they_settle() {
    use rtse_conformance::timeline::{from_capture, Settings};
    let p = Place::default();
    let order = |convs: &[rtse_conformance::synth::Conversation], settle_ns: u64| {
        let cap = rtse_conformance::synth::write_pcapng(convs);
        let mut order = Vec::new();
        from_capture(&cap[..], Settings { settle_ns, ..Settings::default() }, |a| order.push((a.id, a.recovers)))
            .unwrap();
        order
    };
    // A lost association waits for its recovery's AC, then goes out
    // before the recovery (reported at its close).
    let mut convs = scenario::field_failure(&p, Pdus::normal(), true, 0x15);
    let later =
        Place { a: rtse_conformance::synth::addr(3, 50_000), tag: "B".into(), start: convs[1].end(), ..p.clone() };
    convs.extend(scenario::clean_twa(&later, Pdus::normal()));
    assert_eq!(order(&convs, 300_000_000_000), [(0, None), (1, Some(0)), (2, None)]);
    // A lost association never recovered waits for --settle (here: to the
    // end), while a released one later in the capture is out at its close.
    let mut convs = scenario::two_holders(&p, Pdus::normal());
    let later = Place { start: convs[0].end(), ..later };
    convs.extend(scenario::clean_twa(&later, Pdus::normal()));
    assert_eq!(order(&convs, 300_000_000_000), [(1, None), (0, None)]);
    assert_eq!(order(&convs, 0), [(0, None), (1, None)]);
}

#[test]
fn a_recovery_after_the_lost_association_was_reported_still_links_and_inherits() {
    use rtse_conformance::timeline::{from_capture, Settings};
    // settle 0: the lost association is reported (and retired) at its
    // reset; its recovery still finds it and judges its transfer.
    let cap = rtse_conformance::synth::write_pcapng(&scenario::lost_transfer(&Place::default(), Pdus::normal()));
    let mut v = Vec::new();
    from_capture(&cap[..], Settings { settle_ns: 0, ..Settings::default() }, |a| v.push(a)).unwrap();
    assert_eq!(v[0].id, 0);
    assert_eq!(v[0].info.recovered_by, None, "reported before the recovery");
    assert_eq!(v[1].recovers, Some(0));
    assert_eq!(kinds(&v[1]), [K::TransferLost]);
    let cap =
        rtse_conformance::synth::write_pcapng(&scenario::field_failure(&Place::default(), Pdus::x410(), true, 0x15));
    let mut v = Vec::new();
    from_capture(&cap[..], Settings { settle_ns: 0, ..Settings::default() }, |a| v.push(a)).unwrap();
    let tl = v[1].anomalies.iter().find(|a| a.kind == K::TurnLost).expect("turn-lost");
    assert!(tl.detail.contains("GTC from initiator in flight"), "{}", tl.detail);
}

#[test]
fn retention_bounds_what_a_late_recovery_can_find() {
    use rtse_codec::capture::Timestamp;
    use rtse_conformance::timeline::{from_capture, Settings};
    // The field failure with its recovery 100 s later, and three clean
    // associations that end in between.
    let p = Place::default();
    let mut convs = scenario::field_failure(&p, Pdus::normal(), true, 0x15);
    let lost_end = convs[0].end();
    convs[1].start = Timestamp::new(lost_end.secs + 100, lost_end.nanos);
    for k in 0..3u8 {
        let at = Place {
            a: rtse_conformance::synth::addr(10 + k, 50_000),
            tag: format!("C{k}"),
            start: Timestamp::new(lost_end.secs + 1 + 20 * u64::from(k), 0),
            ..p.clone()
        };
        convs.extend(scenario::clean_twa(&at, Pdus::normal()));
    }
    let cap = rtse_conformance::synth::write_pcapng(&convs);
    let run = |retention: usize| {
        let mut v = Vec::new();
        from_capture(&cap[..], Settings { settle_ns: 0, retention, ..Settings::default() }, |a| v.push(a)).unwrap();
        v.into_iter().find(|a| a.events.iter().any(|e| e.note.contains("recover"))).expect("the recovery")
    };
    // Four associations are reported before the recovery, the lost one
    // first. Remembering 4: it is still there, and the recovery inherits
    // the give in flight.
    let rec = run(4);
    assert_eq!(rec.recovers, Some(0));
    assert!(kinds(&rec).contains(&K::TurnLost), "{:?}", rec.anomalies);
    // Remembering 3: the lost one is forgotten; the recovery is reported
    // unlinked rather than linked to a wrong one.
    let rec = run(3);
    assert_eq!(rec.recovers, None);
    assert!(kinds(&rec).contains(&K::RecoveryUnlinked), "{:?}", rec.anomalies);
}
