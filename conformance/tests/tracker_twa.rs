//! Two-way-alternate exchanges on one association: the clean case and the
//! Turn rule violations.

mod tracker_dsl;

use rtse_conformance::tracker::*;
use tracker_dsl::run;

#[test]
fn clean_exchange_with_please_and_give() {
    // Examples 2-4 put together, plus a transfer back and a release.
    let r = run("
        I T-OPEN                                                => none
        I CN ts=00 ref=MTA-A/0001,250101115500Z twa normal ckpt=1 win=3 => none
        R AC ts=00 ckpt=1 win=3                                 => initiator
        # A transfers one message with one checkpoint (example 3)
        I AS id=1                                               => initiator
        I LABEL l=/C=GB/A=_/P=ACME/;MSG-0001                    => initiator
        I DT n=1024                                             => initiator
        I MIP s=1                                               => initiator
        R MIA s=1                                               => initiator
        I DT n=200                                              => initiator
        I AE s=2                                                => initiator
        R AEA s=2                                               => initiator
        # B asks for the Turn (example 4) and A gives it
        R PT p=0                                                => initiator
        I GTC                                                   => in-transit
        R GTA                                                   => responder
        R AS id=1                                               => responder
        R DT                                                    => responder
        R AE s=1                                                => responder
        R LABEL l=/C=GB/A=_/P=BETA/;REP-0001                    => responder
        I AEA s=1                                               => responder
        # A wants to close: asks with priority 0, B gives, A releases
        I PT p=0                                                => responder
        R GTC                                                   => in-transit
        I GTA                                                   => initiator
        I FN                                                    => initiator
        R DN                                                    => none
        I T-FIN                                                 => none
    ");
    assert!(r.all_kinds().is_empty(), "{:?}", r.all_kinds());
    let t = r.tracker(0);
    assert_eq!(t.phase(), Phase::Released);
    assert_eq!(t.transfers().len(), 2);
    assert!(t.transfers().iter().all(|x| x.state == TransferState::Confirmed));
    assert_eq!(t.delivered().len(), 2);
    assert_eq!(t.delivered()["/C=GB/A=_/P=BETA/;REP-0001"].receiver, Side::Initiator);
    for inv in Invariant::ALL {
        assert!(t.check(inv).is_ok(), "{}", inv.name());
    }
    // Timeline JSON rows.
    let json = serde_json::to_string(&r.rows[12]).unwrap();
    assert_eq!(json, r#"{"assoc":0,"seq":13,"time_ns":0,"from":"initiator","event":"GTC","turn":"in-transit"}"#);
}

#[test]
fn queries_follow_the_state() {
    let mut t = TurnTracker::default();
    let mut seq = 0;
    let mut feed = |t: &mut TurnTracker, from, event| {
        seq += 1;
        t.observe(&Observed { seq, time_ns: seq * 1000, from, event })
    };
    feed(
        &mut t,
        Side::Initiator,
        TurnEvent::Connect(Box::new(Connect {
            token_setting: Some(0x15),
            dialogue: Some(Dialogue::Twa),
            window_size: Some(3),
            checkpoint_size: Some(1),
            ..Connect::default()
        })),
    );
    assert_eq!(t.phase(), Phase::Connecting);
    feed(
        &mut t,
        Side::Responder,
        TurnEvent::Accept(Accept {
            token_setting: Some(0x15),
            window_size: Some(2),
            checkpoint_size: Some(1),
            ..Accept::default()
        }),
    );
    assert_eq!(t.holder(), TurnHolder::Responder);
    assert_eq!(t.token_source(), TokenSource::Setting);
    assert_eq!(
        t.tokens_owner(),
        Tokens {
            data: Some(TokenOwner::Responder),
            minor: Some(TokenOwner::Responder),
            major: Some(TokenOwner::Responder),
            release: None
        }
    );
    assert_eq!(t.window_size(), Some(2));
    feed(&mut t, Side::Initiator, TurnEvent::PleaseTokens { tokens: 0x15, priority: Some(3) });
    let p = t.please_outstanding().unwrap();
    assert_eq!((p.from, p.priority, p.tokens), (Side::Initiator, 3, 0x15));
    assert_eq!(t.belief(Side::Initiator), Belief::NotHolder);
    feed(&mut t, Side::Initiator, TurnEvent::PleaseTokens { tokens: 0x01, priority: Some(1) });
    assert_eq!(t.please_outstanding().unwrap().priority, 1);
    feed(&mut t, Side::Responder, TurnEvent::ActivityStart { id: ActivityId::number(7) });
    assert_eq!(t.activity().unwrap().id.as_number(), Some(7));
    assert_eq!(t.belief(Side::Responder), Belief::Holder);
    feed(&mut t, Side::Responder, TurnEvent::Data { octets: 1000 });
    feed(&mut t, Side::Responder, TurnEvent::MinorSync { serial: 1, confirm_required: true });
    feed(&mut t, Side::Responder, TurnEvent::MinorSync { serial: 2, confirm_required: true });
    let a = t.activity().unwrap();
    assert_eq!((a.last_sent, a.last_acked, a.octets), (2, 0, 1000));
    feed(&mut t, Side::Initiator, TurnEvent::MinorSyncAck { serial: 2 });
    assert_eq!(t.activity().unwrap().last_acked, 2);
    feed(&mut t, Side::Responder, TurnEvent::ActivityEnd { serial: 3 });
    assert_eq!(t.activity().unwrap().end_serial, Some(3));
    assert_eq!(t.transfers()[0].state, TransferState::Ended);
    feed(&mut t, Side::Initiator, TurnEvent::ActivityEndAck { serial: 3 });
    assert!(t.activity().is_none());
    let s = feed(&mut t, Side::Responder, TurnEvent::GiveControl);
    assert_eq!(s.turn, TurnHolder::InTransit);
    assert_eq!(t.give_in_flight().unwrap().from, Side::Responder);
    assert!(t.please_outstanding().is_none(), "GTC answers the please");
    assert_eq!(t.tokens_owner().data, Some(TokenOwner::InTransit));
    feed(&mut t, Side::Initiator, TurnEvent::GiveControlAck);
    assert_eq!(t.holder(), TurnHolder::Initiator);
    assert_eq!(t.token_source(), TokenSource::Moved);
    t.finish();
    assert!(t.anomalies().is_empty(), "{:?}", t.anomalies());
}

#[test]
fn two_holders() {
    run("
        I CN ts=00 twa
        R AC ts=00                 => initiator
        I AS id=1                  => initiator
        I DT
        I AE s=1
        R AEA s=1
        # B never got the Turn but starts a transfer of its own
        R AS id=1                  => initiator ! data-without-turn, two-holders
        # reported once per token epoch
        R DT                       => initiator
        R AE s=1                   => initiator
        I AEA s=1
    ");
}

#[test]
fn data_without_turn() {
    let r = run("
        I CN ts=00 twa
        R AC ts=00                 => initiator
        R DT                       => initiator ! data-without-turn, activity-violation
        R DT                       => initiator ! activity-violation
        # A behaves as holder too (it is: B was wrong)
        I GTC                      => in-transit ! two-holders
        # the giver keeps sending after GTC
        I DT                       => in-transit ! data-without-turn, activity-violation
        R GTA                      => responder
        # and the old holder again, after GTA
        I AS id=2                  => responder ! data-without-turn
    ");
    let a = r.anomalies(0);
    assert_eq!(a[0].by, Some(Side::Responder));
    assert!(a[0].detail.contains("does not own the data token"), "{}", a[0].detail);
    assert!(r.linker.check(Invariant::OnlyHolderSends).is_err());
}

#[test]
fn turn_procedure_violations() {
    run("
        I CN ts=00 twa ckpt=1 win=2
        R AC ts=00 ckpt=1 win=2    => initiator
        I PT                       => initiator ! please-from-holder
        I AS id=1
        I DT
        I MIP s=1
        I MIP s=2
        I MIP s=3                  ! window-exceeded
        R MIA s=5                  ! serial-error
        R MIA s=3
        I MIP s=7                  ! serial-error, window-exceeded
        I GTC                      => in-transit ! gtc-during-activity
        R GTA                      => responder
        # the transfer is still open: the new holder may not start one
        R AS id=1                  => responder ! activity-violation
    ");
    run("
        I CN ts=00 twa
        R AC ts=00                 => initiator
        I GTC                      => in-transit
        I GTC                      => in-transit ! gtc-while-pending
        I GTA                      => in-transit ! session-violation
        R GTA                      => responder
        R GTA                      => responder ! session-violation
        R ED                       ! session-violation
        I FN                       => responder ! release-without-turn
    ");
    run("
        I CN ts=15 twa
        R AC ts=15                 => responder
        R FN                       ! release-without-turn
        I NF                       => responder
        R AEA                      ! activity-violation
        I MIA                      ! activity-violation
        R AS id=3
        R AS id=4                  ! activity-violation
        I AE s=1                   ! data-without-turn, two-holders, activity-violation
        R AE s=9                   ! serial-error
        R AEA s=9                  ! activity-violation
        I AEA s=9
        I AIA                      ! activity-violation
        R AB user                  => none
        I DT                       => none ! unexpected-event
    ");
}

#[test]
fn gtc_answered_please_then_unanswered_one() {
    let r = run("
        I CN ts=15 twa
        R AC ts=15                 => responder
        # B is busy: the please waits without a bound running
        R AS id=1
        I PT p=1
        R DT t=40s
        R AE s=1
        I AEA s=1 t=41s
        # B is idle from 41s to 50s (9s), then from 80s: the bound runs out at 110s
        R AS id=2 t=50s
        R AE s=1 t=80s
        I AEA s=1 t=80s
        I PT p=0 t=100s
        I PT p=0 t=111s            ! please-unanswered
        R T-FIN
    ");
    let a = r.anomalies(0);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0].by, Some(Side::Responder));
}

#[test]
fn interrupt_and_resume_within_the_association() {
    let r = run("
        I CN ts=00 twa ref=A/1,250101000000Z ckpt=1 win=3
        R AC ts=00 ckpt=1 win=3
        I AS id=1
        I DT
        I MIP s=1
        R MIA s=1
        I DT
        R ED
        I AI
        R AIA                      => initiator
        I AR old=1 serial=1 new=2  => initiator
        I DT
        I AE s=2
        R AEA s=2
    ");
    assert!(r.all_kinds().is_empty(), "{:?}", r.all_kinds());
    let t = r.tracker(0).transfers();
    assert_eq!(t[0].state, TransferState::Interrupted);
    assert_eq!(t[0].continued_by, Some(1));
    assert_eq!(t[1].state, TransferState::Confirmed);
    // Discard is a negative confirmation: not lost at the end.
    let r = run("
        I CN ts=00 twa
        R AC ts=00
        I AS id=1
        I DT
        I AD
        R ADA
        I FN
        R DN
    ");
    assert!(r.all_kinds().is_empty(), "{:?}", r.all_kinds());
    assert_eq!(r.tracker(0).transfers()[0].state, TransferState::Discarded);
}

#[test]
fn token_setting_edge_cases() {
    run("
        I CN ts=2a twa
        R AC ts=2a                 => unknown ! invalid-token-setting, invalid-token-setting, invalid-token-setting
    ");
    run("
        I CN ts=2a twa
        R AC                       => unknown ! invalid-token-setting
        R AS id=1                  => responder
    ");
    run("
        I CN ts=00 twa
        R AC ts=15                 => responder ! invalid-token-setting, invalid-token-setting, invalid-token-setting
    ");
    run("
        I CN ts=05 twa
        R AC ts=05                 => none ! split-tokens
    ");
    run("
        I CN ts=03 twa             ! invalid-token-setting
        R AC ts=00                 => initiator
    ");
    // CN fixed it, AC silent: the CN value stands.
    run("
        I CN ts=15 twa
        R AC                       => responder
    ");
    // Requirements without activity management / minor sync: only the data
    // token makes the Turn.
    run("
        I CN ts=01 twa req=0001
        R AC ts=01 req=0001        => responder
        R DT                       => responder ! activity-violation
    ");
    // GT moves single tokens (not used by RTSE): a split is reported.
    run("
        I CN ts=00 twa
        R AC ts=00                 => initiator
        I GT tokens=01             => none ! split-tokens
        I GT tokens=14             => responder
    ");
}

#[test]
fn anomalies_serialize_kebab_case() {
    let r = run("
        I CN ts=00 twa
        R AC ts=00
        I PT ! please-from-holder
    ");
    let a = &r.anomalies(0)[0];
    let v: serde_json::Value = serde_json::to_value(a).unwrap();
    assert_eq!(v["kind"], "please-from-holder");
    assert_eq!(v["by"], "initiator");
    assert_eq!(v["seq"], 3);
    for (k, name) in [
        (AnomalyKind::TurnLost, "turn-lost"),
        (AnomalyKind::GtcWhilePending, "gtc-while-pending"),
        (AnomalyKind::ResumeBeyondCheckpoint, "resume-beyond-checkpoint"),
    ] {
        assert_eq!(serde_json::to_value(k).unwrap(), name);
        assert_eq!(k.name(), name);
    }
    for (h, name) in [
        (TurnHolder::Initiator, "initiator"),
        (TurnHolder::Responder, "responder"),
        (TurnHolder::InTransit, "in-transit"),
        (TurnHolder::None, "none"),
        (TurnHolder::Unknown, "unknown"),
    ] {
        assert_eq!(serde_json::to_value(h).unwrap(), name);
    }
    let ev = TurnEvent::PleaseTokens { tokens: 1, priority: Some(0) };
    assert_eq!(serde_json::to_string(&ev).unwrap(), r#"{"event":"PT","tokens":1,"priority":0}"#);
    let cn = TurnEvent::Connect(Box::new(Connect {
        recover: Some(ConnRef::new("MTA-A/0001", "250101115500Z")),
        ..Connect::default()
    }));
    assert_eq!(
        serde_json::to_string(&cn).unwrap(),
        r#"{"event":"CN","recover":{"calling":"MTA-A/0001","common":"250101115500Z"}}"#
    );
}

/// A responder holding the Turn, idle, asked by the initiator at 1 s.
fn asked_idle_holder() -> TurnTracker {
    let mut t = TurnTracker::default();
    let s = 1_000_000_000;
    let connect = Connect { token_setting: Some(0x15), dialogue: Some(Dialogue::Twa), ..Connect::default() };
    for (seq, from, event) in [
        (1, Side::Initiator, TurnEvent::Connect(Box::new(connect))),
        (2, Side::Responder, TurnEvent::Accept(Accept { token_setting: Some(0x15), ..Accept::default() })),
        (3, Side::Initiator, TurnEvent::PleaseTokens { tokens: 0x15, priority: Some(0) }),
    ] {
        t.observe(&Observed { seq, time_ns: seq * s / 3, from, event });
    }
    t
}

#[test]
fn advancing_time_judges_an_unanswered_please_without_an_event() {
    let s = 1_000_000_000u64;
    let mut t = asked_idle_holder();
    assert!(t.advance(30 * s).is_empty(), "29 s after the please: within the 30 s bound");
    let r = t.advance(32 * s);
    let kinds: Vec<_> = t.anomalies()[r].iter().map(|a| a.kind).collect();
    assert_eq!(kinds, [AnomalyKind::PleaseUnanswered]);
    assert!(t.advance(60 * s).is_empty(), "reported once");
}

#[test]
fn a_please_past_its_bound_is_judged_at_the_close() {
    let s = 1_000_000_000u64;
    for (close_at, reported) in [(20 * s, false), (40 * s, true)] {
        let mut t = asked_idle_holder();
        let ev = TurnEvent::TransportClosed { how: CloseHow::Fin };
        t.observe(&Observed { seq: 4, time_ns: close_at, from: Side::Initiator, event: ev });
        let kinds: Vec<_> = t.anomalies().iter().map(|a| a.kind).collect();
        assert_eq!(kinds.contains(&AnomalyKind::PleaseUnanswered), reported, "closed at {close_at}: {kinds:?}");
    }
}
