//! Random event sequences: the tracker never panics, and its holder is
//! always the one its token state implies.

use proptest::prelude::*;
use rtse_conformance::tracker::*;

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Initiator), Just(Side::Responder)]
}

fn conn_ref() -> impl Strategy<Value = ConnRef> {
    (0u8..3, 0u8..3).prop_map(|(a, b)| ConnRef::new(&format!("A/{a}"), &format!("25010100000{b}Z")))
}

fn setting() -> impl Strategy<Value = Option<u8>> {
    prop_oneof![
        3 => prop_oneof![Just(0x00u8), Just(0x15), Just(0x2a)].prop_map(Some),
        1 => any::<u8>().prop_map(Some),
        1 => Just(None),
    ]
}

fn small() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 0u32..5, 1 => any::<u32>()]
}

fn event() -> impl Strategy<Value = TurnEvent> {
    let label = (0u8..4).prop_map(|n| TurnEvent::TransferLabel { label: format!("MSG-{n}") });
    prop_oneof![
        1 => Just(TurnEvent::TransportOpen),
        1 => prop_oneof![Just(CloseHow::Fin), Just(CloseHow::Rst), Just(CloseHow::Eof), Just(CloseHow::Gap)]
            .prop_map(|how| TurnEvent::TransportClosed { how }),
        2 => (setting(), proptest::option::of(conn_ref()), proptest::option::of(conn_ref()), any::<bool>(),
              proptest::option::of(0u32..3), proptest::option::of(0u32..4), proptest::option::of(any::<u16>()))
            .prop_map(|(ts, r, rec, twa, c, w, req)| TurnEvent::Connect(Box::new(Connect {
                token_setting: ts,
                conn_ref: r,
                recover: rec,
                dialogue: Some(if twa { Dialogue::Twa } else { Dialogue::Monologue }),
                mode: Some(Mode::Normal),
                checkpoint_size: c,
                window_size: w,
                session_requirements: req.filter(|r| r % 3 == 0),
            }))),
        2 => (setting(), any::<bool>(), proptest::option::of(0u32..3), proptest::option::of(0u32..4))
            .prop_map(|(ts, rec, c, w)| TurnEvent::Accept(Accept {
                token_setting: ts,
                recover: rec,
                checkpoint_size: c,
                window_size: w,
                session_requirements: None,
            })),
        1 => any::<bool>().prop_map(|r| TurnEvent::Refuse { reason: None, recovery_refused: r }),
        4 => (any::<u8>(), proptest::option::of(-1i64..4))
            .prop_map(|(t, p)| TurnEvent::PleaseTokens { tokens: t, priority: p }),
        1 => any::<u8>().prop_map(|t| TurnEvent::GiveTokens { tokens: t }),
        4 => Just(TurnEvent::GiveControl),
        4 => Just(TurnEvent::GiveControlAck),
        4 => (0u64..4).prop_map(|n| TurnEvent::ActivityStart { id: ActivityId::number(n) }),
        2 => (proptest::option::of(conn_ref()), 0u64..4, small(), 0u64..4).prop_map(|(c, o, s, n)| {
            TurnEvent::ActivityResume(Box::new(Resume {
                old_conn: c,
                old_id: ActivityId::number(o),
                serial: s,
                new_id: ActivityId::number(n),
            }))
        }),
        4 => any::<usize>().prop_map(|n| TurnEvent::Data { octets: n }),
        4 => (small(), any::<bool>()).prop_map(|(s, c)| TurnEvent::MinorSync { serial: s, confirm_required: c }),
        4 => small().prop_map(|s| TurnEvent::MinorSyncAck { serial: s }),
        4 => small().prop_map(|s| TurnEvent::ActivityEnd { serial: s }),
        4 => small().prop_map(|s| TurnEvent::ActivityEndAck { serial: s }),
        1 => Just(TurnEvent::ActivityInterrupt { reason: None }),
        1 => Just(TurnEvent::ActivityInterruptAck),
        1 => Just(TurnEvent::ActivityDiscard { reason: Some(0) }),
        1 => Just(TurnEvent::ActivityDiscardAck),
        1 => Just(TurnEvent::ExceptionReport { reason: None }),
        2 => label,
        1 => Just(TurnEvent::Release),
        1 => Just(TurnEvent::Disconnect),
        1 => Just(TurnEvent::NotFinished),
        1 => any::<bool>().prop_map(|u| TurnEvent::Abort { user: u, reason: None }),
        1 => Just(TurnEvent::AbortAccept),
        1 => Just(TurnEvent::Malformed { detail: "x".to_owned() }),
        1 => Just(TurnEvent::Other { name: "TD" }),
    ]
}

fn observed() -> impl Strategy<Value = Vec<(Side, TurnEvent, u64)>> {
    proptest::collection::vec((side(), event(), 0u64..20_000_000_000), 0..80)
}

/// The checks every state must pass.
fn consistent(t: &TurnTracker) {
    let tokens = t.tokens_owner();
    let h = t.holder();
    assert_eq!(h, holder_from(t.phase(), &tokens));
    match t.phase() {
        Phase::Established | Phase::Releasing => {}
        Phase::Unobserved => assert_eq!(h, TurnHolder::Unknown),
        _ => assert_eq!(h, TurnHolder::None),
    }
    let turn: Vec<TokenOwner> = tokens.turn_tokens().collect();
    match h {
        TurnHolder::Initiator => {
            assert!(!turn.is_empty() && turn.iter().all(|o| *o == TokenOwner::Initiator))
        }
        TurnHolder::Responder => {
            assert!(!turn.is_empty() && turn.iter().all(|o| *o == TokenOwner::Responder))
        }
        TurnHolder::InTransit => {
            assert!(t.give_in_flight().is_some());
            assert!(turn.iter().all(|o| *o == TokenOwner::InTransit));
        }
        TurnHolder::Unknown => {
            assert!(t.phase() == Phase::Unobserved || turn.contains(&TokenOwner::Unknown))
        }
        TurnHolder::None => {}
    }
    if t.give_in_flight().is_some() && t.phase().connected() && !turn.is_empty() {
        assert_eq!(h, TurnHolder::InTransit);
    }
    if let Some(a) = t.activity() {
        assert!(t.transfers().iter().any(|x| x.no == a.transfer));
    }
    // Transfers stay ordered by number (binary search relies on it).
    assert!(t.transfers().windows(2).all(|w| w[0].no < w[1].no));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_the_holder_consistent(
        evs in observed(),
        max_events in proptest::option::of(0u64..5),
        establish in proptest::option::of((setting(), setting())),
    ) {
        let cfg = TrackerConfig { please_max_events: max_events, max_anomalies: 50, ..TrackerConfig::default() };
        let mut t = TurnTracker::new(cfg);
        let mut time = 0u64;
        // Half the runs start with an established twa connection, so that
        // the random tail exercises the Turn rules rather than the phases.
        let mut all = Vec::new();
        if let Some((cn, ac)) = establish {
            all.push((Side::Initiator, TurnEvent::Connect(Box::new(Connect {
                token_setting: cn,
                dialogue: Some(Dialogue::Twa),
                window_size: Some(2),
                checkpoint_size: Some(1),
                ..Connect::default()
            })), 0));
            all.push((Side::Responder, TurnEvent::Accept(Accept {
                token_setting: ac,
                window_size: Some(2),
                checkpoint_size: Some(1),
                ..Accept::default()
            }), 0));
        }
        all.extend(evs.iter().cloned());
        for (i, (from, event, dt)) in all.iter().enumerate() {
            time = time.saturating_add(*dt);
            let ev = Observed { seq: i as u64, time_ns: time, from: *from, event: event.clone() };
            let before = t.anomalies().len();
            let step = t.observe(&ev);
            prop_assert_eq!(step.turn, t.holder());
            prop_assert_eq!(step.anomalies.start, before);
            prop_assert!(step.anomalies.end <= t.anomalies().len());
            prop_assert!(t.anomalies().len() <= 50);
            let row = t.row(&ev, &step);
            serde_json::to_string(&row).unwrap();
            consistent(&t);
        }
        t.finish();
        let n = t.anomalies().len();
        t.finish();
        prop_assert_eq!(n, t.anomalies().len());
        consistent(&t);
        serde_json::to_string(t.anomalies()).unwrap();
        serde_json::to_string(t.transfers()).unwrap();
        serde_json::to_string(&t.inheritance()).unwrap();
    }

    #[test]
    fn random_linked_associations_never_panic(
        evs in proptest::collection::vec((0u32..3, side(), event()), 0..120)
    ) {
        let mut l = AssociationLinker::new(TrackerConfig::default());
        let ids: Vec<AssocId> = (0..3).map(|i| l.open(Some(if i == 1 { "b" } else { "a" }))).collect();
        for (i, (a, from, event)) in evs.iter().enumerate() {
            let id = ids[*a as usize];
            let ev = Observed { seq: i as u64, time_ns: i as u64, from: *from, event: event.clone() };
            let step = l.observe(id, &ev).unwrap();
            let t = l.tracker(id).unwrap();
            prop_assert_eq!(step.turn, t.holder());
            prop_assert!(step.anomalies.end <= t.anomalies().len());
            consistent(t);
        }
        l.finish();
        for id in l.ids() {
            consistent(l.tracker(id).unwrap());
            if let Some(old) = l.recovers(id) {
                prop_assert!(old != id);
            }
        }
        let _ = l.anomalies().count();
    }

    #[test]
    fn deterministic(evs in observed()) {
        let run = || {
            let mut t = TurnTracker::default();
            let rows: Vec<String> = evs.iter().enumerate().map(|(i, (from, event, dt))| {
                let ev = Observed { seq: i as u64, time_ns: *dt, from: *from, event: event.clone() };
                let s = t.observe(&ev);
                serde_json::to_string(&t.row(&ev, &s)).unwrap()
            }).collect();
            t.finish();
            (rows, t.anomalies().to_vec())
        };
        prop_assert_eq!(run(), run());
    }
}
