//! The field failure and other recoveries (turn-and-recovery.md §2-§3).

mod tracker_dsl;

use rtse_conformance::tracker::*;
use tracker_dsl::{run, run_with};

/// t0..t2 of the field failure: association #0, A (initiator) holds the
/// Turn, gives it (GTC) and the connection resets before B's GTA.
const LOST_GIVE: &str = "
    #0 I T-OPEN                                                         => none
    #0 I CN ts=00 ref=MTA-A/0001,250101115500Z twa normal ckpt=1 win=3 => none
    #0 R AC ts=00 ckpt=1 win=3                                          => initiator
    #0 I GTC                                                            => in-transit
    #0 I T-RST                                                          => none
    #1 I T-OPEN                                                         => none
";

#[test]
fn field_failure_setting_00_initiator_asks_for_its_own_turn() {
    let script = format!(
        "{LOST_GIVE}
        #1 I CN ts=00 ref=MTA-A/0002,250101120500Z recover=MTA-A/0001,250101115500Z twa ckpt=1 win=3 => none
        #1 R AC ts=00 recover ckpt=1 win=3 => initiator
        # A owns the tokens by the recovery AC but believes B has the Turn:
        #1 I PT p=0 => initiator ! please-from-holder, turn-lost
        # B ignores it; A finally aborts (backlog threshold)
        #1 I AB user => none
        "
    );
    let r = run(&script);
    assert_eq!(r.linker.recovers(AssocId(1)), Some(AssocId(0)));
    assert_eq!(r.linker.recovered_by(AssocId(0)), Some(AssocId(1)));
    let lost = r.anomalies(1).into_iter().find(|a| a.kind == AnomalyKind::TurnLost).expect("turn-lost");
    assert_eq!(lost.by, Some(Side::Initiator), "A is at fault with setting 00");
    assert!(lost.detail.contains("GTC from initiator in flight"), "{}", lost.detail);
    assert!(lost.detail.contains("Token Setting 00"), "{}", lost.detail);
    // Nothing is blamed on the lost association itself.
    assert!(r.kinds(0).is_empty(), "{:?}", r.anomalies(0));
    // A's PT shows A behaves as non-holder though the tokens are A's.
    let inh = r.tracker(1).inherited().expect("inherited");
    assert_eq!(inh.give_in_flight.map(|g| g.from), Some(Side::Initiator));
    assert_eq!(inh.holder_at_loss, Some(TurnHolder::InTransit));
    assert!(r.linker.check(Invariant::HolderAfterRecovery).is_err());
    assert!(r.linker.check(Invariant::OneHolder).is_ok());
}

#[test]
fn field_failure_setting_15_responder_ignores_the_please() {
    let script = format!(
        "{LOST_GIVE}
        #1 I CN ts=15 ref=MTA-A/0002,250101120500Z recover=MTA-A/0001,250101115500Z twa => none
        #1 R AC ts=15 recover => responder
        # A correctly asks B, which owns the tokens by the recovery AC:
        #1 I PT p=0 => responder
        # ... and B never answers: the capture ends.
        "
    );
    let r = run(&script);
    assert_eq!(r.kinds(1), vec![AnomalyKind::PleaseUnanswered, AnomalyKind::TurnLost]);
    let a = r.anomalies(1);
    assert_eq!(a[0].by, Some(Side::Responder));
    assert_eq!(a[1].by, Some(Side::Responder), "B is at fault with setting 15");
    assert!(a[1].detail.contains("ignores the please"), "{}", a[1].detail);
    assert!(r.kinds(0).is_empty());
    assert_eq!(r.tracker(1).holder(), TurnHolder::Responder);
    assert!(r.tracker(1).please_outstanding().is_some());
}

#[test]
fn field_failure_time_bound_reports_before_the_end() {
    let script = format!(
        "{LOST_GIVE}
        #1 I CN ts=15 ref=MTA-A/0002,250101120500Z recover=MTA-A/0001,250101115500Z twa t=1s
        #1 R AC ts=15 recover t=1s
        #1 I PT p=1 t=2s => responder
        #1 I PT p=0 t=20s => responder
        #1 I PT p=0 t=33s => responder ! please-unanswered, turn-lost
        #1 I AB user t=60s => none
        "
    );
    let r = run(&script);
    // Reported once, not again at finish.
    assert_eq!(r.kinds(1), vec![AnomalyKind::PleaseUnanswered, AnomalyKind::TurnLost]);
    assert_eq!(r.tracker(1).please_outstanding().map(|p| p.priority), Some(0));
}

#[test]
fn recovery_done_right_has_no_anomaly() {
    // Setting 15: B gives the Turn when asked.
    let r = run(&format!(
        "{LOST_GIVE}
        #1 I CN ts=15 ref=MTA-A/0002,250101120500Z recover=MTA-A/0001,250101115500Z twa
        #1 R AC ts=15 recover => responder
        #1 I PT p=0 => responder
        #1 R GTC => in-transit
        #1 I GTA => initiator
        #1 I AS id=5 => initiator
        #1 I DT
        #1 I AE s=1
        #1 R AEA s=1 => initiator
        "
    ));
    assert!(r.all_kinds().is_empty(), "{:?}", r.all_kinds());
    // Setting 00: A holds and sends at once.
    let r = run(&format!(
        "{LOST_GIVE}
        #1 I CN ts=00 ref=MTA-A/0002,250101120500Z recover=MTA-A/0001,250101115500Z twa
        #1 R AC ts=00 recover => initiator
        #1 I AS id=5 => initiator
        #1 I DT
        #1 I AE s=1
        #1 R AEA s=1
        "
    ));
    assert!(r.all_kinds().is_empty(), "{:?}", r.all_kinds());
    // Setting 2A resolved by B (which never saw the GTC) to 00.
    let r = run(&format!(
        "{LOST_GIVE}
        #1 I CN ts=2a ref=MTA-A/0002,250101120500Z recover=MTA-A/0001,250101115500Z twa
        #1 R AC ts=00 recover => initiator
        #1 I AS id=5 => initiator
        "
    ));
    assert!(r.all_kinds().is_empty(), "{:?}", r.all_kinds());
}

#[test]
fn responder_acting_on_pre_loss_memory_is_data_without_turn() {
    // The GTC did reach B before the loss (GTA seen); recovery gives the
    // tokens to A (00): B, going by memory, sends AS.
    let r = run("
        #0 I CN ts=00 ref=MTA-A/0001,250101115500Z twa
        #0 R AC ts=00 => initiator
        #0 I GTC => in-transit
        #0 R GTA => responder
        #0 R T-RST => none
        #1 I CN ts=00 ref=MTA-A/0002,250101120500Z recover=MTA-A/0001,250101115500Z twa
        #1 R AC ts=00 recover => initiator
        #1 R AS id=1 => initiator ! data-without-turn
        #1 I AS id=1 => initiator ! two-holders, activity-violation
    ");
    let a = r.anomalies(1);
    assert!(a[0].detail.contains("recovery's Token Setting"), "{}", a[0].detail);
    assert!(r.linker.check(Invariant::OneHolder).is_err());
    assert!(r.linker.check(Invariant::OnlyHolderSends).is_err());
}

#[test]
fn unlinked_and_by_responder_recoveries() {
    let r = run("
        #0 I CN ts=00 recover=MTA-X/0009,240101000000Z twa ! recovery-unlinked
        #0 R AC ts=00 recover => initiator
    ");
    assert_eq!(r.linker.recovers(AssocId(0)), None);
    assert!(r.tracker(0).is_recovery());

    let r = run("
        #0 open host=10.0.0.1
        #0 I CN ts=00 ref=MTA-A/0001,250101115500Z twa
        #0 R AC ts=00
        #0 I T-RST
        #1 open host=10.0.0.2
        #1 I CN ts=00 ref=MTA-B/0001,250101120000Z recover=MTA-A/0001,250101115500Z twa ! recovery-by-responder
        #1 R AC ts=00 recover => initiator
    ");
    assert_eq!(r.linker.recovers(AssocId(1)), Some(AssocId(0)));
}

#[test]
fn refused_recovery_takes_nothing_over_and_a_later_one_does() {
    let r = run("
        #0 I CN ts=00 ref=MTA-A/0001,250101115500Z twa ckpt=1 win=3
        #0 R AC ts=00 ckpt=1 win=3
        #0 I AS id=1
        #0 I LABEL l=MSG-1
        #0 I DT
        #0 I MIP s=1
        #0 R MIA s=1
        #0 I DT
        #0 I T-RST => none
        #1 I CN ts=00 ref=MTA-A/0002,250101120000Z recover=MTA-A/0001,250101115500Z twa
        #1 R RF recovery => none
        #2 I CN ts=00 ref=MTA-A/0003,250101120100Z recover=MTA-A/0001,250101115500Z twa
        #2 R AC ts=00 recover => initiator
        #2 I AR old=1 serial=1 new=2 conn=MTA-A/0001,250101115500Z => initiator
        #2 I DT
        #2 I AE s=2
        #2 R AEA s=2
    ");
    assert!(r.all_kinds().is_empty(), "{:?}", r.all_kinds());
    assert_eq!(r.linker.recovers(AssocId(2)), Some(AssocId(0)));
    assert_eq!(r.linker.recovered_by(AssocId(0)), Some(AssocId(2)));
    assert!(r.tracker(1).transfers().is_empty());
    let t = r.tracker(2).transfers();
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].state, TransferState::Pending);
    assert_eq!(t[0].continued_by, Some(t[1].no));
    assert_eq!(t[1].state, TransferState::Confirmed);
    assert_eq!(t[1].label.as_deref(), Some("MSG-1"));
    assert!(t[1].resumed);
    assert_eq!(r.tracker(0).transfers()[0].state, TransferState::HandedOver);
}

#[test]
fn chain_of_recoveries_follows_the_latest_link() {
    // #2 quotes the original connection; it must take over from #1, which
    // already recovered #0 (and inherit #1's state).
    let r = run("
        #0 I CN ts=00 ref=A/1,250101000000Z twa
        #0 R AC ts=00
        #0 I GTC
        #0 I T-RST
        #1 I CN ts=15 ref=A/2,250101000100Z recover=A/1,250101000000Z twa
        #1 R AC ts=15 recover => responder
        #1 R AS id=1
        #1 R T-RST
        #2 I CN ts=15 ref=A/3,250101000200Z recover=A/1,250101000000Z twa
        #2 R AC ts=15 recover => responder
        #2 R AS id=2
        #2 R DT
        #2 R AE s=1
        #2 I AEA s=1
    ");
    assert!(r.all_kinds().is_empty(), "{:?}", r.all_kinds());
    assert_eq!(r.linker.recovers(AssocId(2)), Some(AssocId(1)));
    // #1's unfinished transfer was restarted on #2.
    let t2 = r.tracker(2).transfers();
    assert_eq!(t2[0].inherited_from, Some(AssocId(1)));
    assert!(t2[1].guessed_link);
}

#[test]
fn please_outstanding_at_loss_is_context_for_turn_lost() {
    let r = run("
        #0 I CN ts=15 ref=A/1,250101000000Z twa
        #0 R AC ts=15 => responder
        #0 I PT p=2 => responder
        #0 I T-FIN => none
        #1 I CN ts=00 ref=A/2,250101000100Z recover=A/1,250101000000Z twa
        #1 R AC ts=00 recover => initiator
        #1 I PT p=2 => initiator ! please-from-holder, turn-lost
    ");
    let lost = r.anomalies(1).into_iter().find(|a| a.kind == AnomalyKind::TurnLost).unwrap();
    assert!(lost.detail.contains("please from initiator outstanding"), "{}", lost.detail);
    // The lost association's please died with it: not reported there.
    assert!(r.kinds(0).is_empty(), "{:?}", r.anomalies(0));
}

#[test]
fn standalone_trackers_can_hand_over_without_a_linker() {
    let ev = |seq, from, event| Observed { seq, time_ns: 0, from, event };
    let mut old = TurnTracker::default();
    old.observe(&ev(
        1,
        Side::Initiator,
        TurnEvent::Connect(Box::new(Connect {
            token_setting: Some(0),
            conn_ref: Some(ConnRef::new("A/1", "250101000000Z")),
            dialogue: Some(Dialogue::Twa),
            ..Connect::default()
        })),
    ));
    old.observe(&ev(2, Side::Responder, TurnEvent::Accept(Accept { token_setting: Some(0), ..Accept::default() })));
    old.observe(&ev(3, Side::Initiator, TurnEvent::GiveControl));
    old.observe(&ev(4, Side::Initiator, TurnEvent::TransportClosed { how: CloseHow::Rst }));
    let mut new = TurnTracker::default();
    new.inherit(old.inheritance());
    old.mark_recovered_by(AssocId(1));
    new.observe(&ev(
        5,
        Side::Initiator,
        TurnEvent::Connect(Box::new(Connect {
            token_setting: Some(0x15),
            recover: Some(ConnRef::new("A/1", "250101000000Z")),
            dialogue: Some(Dialogue::Twa),
            ..Connect::default()
        })),
    ));
    let s = new.observe(&ev(
        6,
        Side::Responder,
        TurnEvent::Accept(Accept { token_setting: Some(0x15), recover: true, ..Accept::default() }),
    ));
    assert_eq!(s.turn, TurnHolder::Responder);
    new.observe(&ev(7, Side::Initiator, TurnEvent::PleaseTokens { tokens: 1, priority: Some(0) }));
    new.finish();
    old.finish();
    assert!(old.anomalies().is_empty());
    assert!(matches!(new.check_holder_after_recovery(), Err(a) if a.kind == AnomalyKind::TurnLost));
    assert!(new.check_please_answered().is_err());
}

#[test]
fn event_bound_for_please() {
    let cfg = TrackerConfig { please_max_events: Some(2), please_max_ns: None, ..TrackerConfig::default() };
    // A fresh association: please-unanswered but no turn-lost.
    let r = run_with(
        cfg,
        "
        I CN ts=15 twa
        R AC ts=15 => responder
        I PT
        I PT
        I PT
        I PT ! please-unanswered
        I PT
    ",
    );
    assert_eq!(r.kinds(0), vec![AnomalyKind::PleaseUnanswered]);
}

/// A resume (AR) continues the same APDU (spec/turn-and-recovery.md 10):
/// a different label on the resumed transfer is an activity-violation (the
/// simulator's judge excuses it only on the recovery of a tampered
/// association, where a forged label is the tamper's doing).
#[test]
fn a_resume_re_sending_a_different_apdu_is_an_activity_violation() {
    let r = run("
        #0 I CN ts=00 ref=MTA-A/0001,250101115500Z twa ckpt=1 win=3
        #0 R AC ts=00 ckpt=1 win=3
        #0 I AS id=1
        #0 I LABEL l=MSG-1
        #0 I DT
        #0 I MIP s=1
        #0 R MIA s=1
        #0 I DT
        #0 I T-RST => none
        #1 I CN ts=00 ref=MTA-A/0002,250101120000Z recover=MTA-A/0001,250101115500Z twa
        #1 R AC ts=00 recover => initiator
        #1 I AR old=1 serial=1 new=2 conn=MTA-A/0001,250101115500Z => initiator
        #1 I LABEL l=MSG-2 ! activity-violation
        #1 I DT
        #1 I AE s=2
        #1 R AEA s=2
    ");
    assert_eq!(r.tracker(1).transfers()[1].label.as_deref(), Some("MSG-1"));
}
