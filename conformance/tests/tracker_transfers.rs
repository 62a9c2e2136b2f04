//! Reliable transfer across recovery: lost, duplicated, resumed,
//! restarted (turn-and-recovery.md §4.9-§4.12).

mod tracker_dsl;

use rtse_conformance::tracker::*;
use tracker_dsl::run;

/// Association #0: A sends MSG-1 with checkpoints; B confirmed checkpoint 1;
/// the connection resets after MIP 2, before its MIA.
const CUT_BEFORE_ANY_ACTIVITY: &str = "
    #0 I CN ts=00 ref=MTA-A/0001,250101115500Z twa ckpt=1 win=3
    #0 R AC ts=00 ckpt=1 win=3          => initiator
    #0 I T-RST                          => none
    #1 I CN ts=00 ref=MTA-A/0002,250101120500Z recover=MTA-A/0001,250101115500Z twa ckpt=1 win=3
    #1 R AC ts=00 recover ckpt=1 win=3  => initiator
";

const CUT_MID_TRANSFER: &str = "
    #0 I CN ts=00 ref=MTA-A/0001,250101115500Z twa ckpt=1 win=3
    #0 R AC ts=00 ckpt=1 win=3          => initiator
    #0 I AS id=1
    #0 I LABEL l=MSG-1
    #0 I DT n=1024
    #0 I MIP s=1
    #0 R MIA s=1
    #0 I DT n=1024
    #0 I MIP s=2
    #0 I T-RST                          => none
    #1 I CN ts=00 ref=MTA-A/0002,250101120500Z recover=MTA-A/0001,250101115500Z twa ckpt=1 win=3
    #1 R AC ts=00 recover ckpt=1 win=3  => initiator
";

#[test]
fn resume_from_last_acked_checkpoint() {
    // Example 5: AR quoting the old connection, old activity 1, serial 1.
    let r = run(&format!(
        "{CUT_MID_TRANSFER}
        #1 I AR old=1 serial=1 new=2 conn=MTA-A/0001,250101115500Z => initiator
        #1 I DT n=1024
        #1 I MIP s=2
        #1 R MIA s=2
        #1 I DT n=10
        #1 I AE s=3
        #1 R AEA s=3
        "
    ));
    assert!(r.all_kinds().is_empty(), "{:?}", r.all_kinds());
    let t = r.tracker(1);
    let inh = t.inherited().unwrap();
    assert_eq!(inh.activity.map(|a| (a.last_sent, a.last_acked)), Some((2, 1)));
    assert_eq!(t.delivered()["MSG-1"].assoc, Some(AssocId(1)));
    assert!(t.check_exactly_once().is_ok());
}

#[test]
fn resume_from_an_earlier_checkpoint_is_fine() {
    let r = run(&format!(
        "{CUT_MID_TRANSFER}
        #1 I AR old=1 serial=0 new=2
        #1 I DT
        #1 I AE s=1
        #1 R AEA s=1
        "
    ));
    assert!(r.all_kinds().is_empty(), "{:?}", r.all_kinds());
}

#[test]
fn resume_beyond_the_checkpoint() {
    // The receiver confirmed only 1; the sender resumes after 2.
    let r = run(&format!(
        "{CUT_MID_TRANSFER}
        #1 I AR old=1 serial=2 new=2 conn=MTA-A/0001,250101115500Z ! resume-beyond-checkpoint
        #1 I DT
        #1 I AE s=3
        #1 R AEA s=3
        "
    ));
    let a = &r.anomalies(1)[0];
    assert!(a.detail.contains("only up to 1 before the loss"), "{}", a.detail);
}

#[test]
fn resume_of_an_unknown_activity() {
    run(&format!(
        "{CUT_MID_TRANSFER}
        #1 I AR old=9 serial=0 new=2 ! activity-violation
        #1 R AB provider
        "
    ));
    // Serial 0 of an activity the lost connection never showed (its AS was
    // lost with it): a start, not a violation.
    run(&format!(
        "{CUT_BEFORE_ANY_ACTIVITY}
        #1 I AR old=9 serial=0 new=2
        "
    ));
    // Wrong old connection in the Linking Information.
    run(&format!(
        "{CUT_MID_TRANSFER}
        #1 I AR old=1 serial=1 new=2 conn=MTA-Z/0001,250101115500Z ! activity-violation
        "
    ));
}

#[test]
fn transfer_lost_when_never_resumed() {
    // After recovery A sends another message and releases: MSG-1 is gone.
    let r = run(&format!(
        "{CUT_MID_TRANSFER}
        #1 I AS id=2
        #1 I LABEL l=MSG-2
        #1 I DT
        #1 I AE s=1
        #1 R AEA s=1
        #1 I FN
        #1 R DN
        "
    ));
    assert_eq!(r.kinds(0), vec![]);
    assert_eq!(r.kinds(1), vec![AnomalyKind::TransferLost]);
    let a = &r.anomalies(1)[0];
    assert!(a.detail.contains("MSG-1"), "{}", a.detail);
    assert!(a.detail.contains("neither resumed"), "{}", a.detail);
    assert_eq!(a.by, Some(Side::Initiator));
    assert!(r.linker.check(Invariant::ExactlyOnce).is_err());
}

#[test]
fn restart_without_labels_is_matched_by_order() {
    let r = run("
        #0 I CN ts=00 ref=A/1,250101000000Z twa
        #0 R AC ts=00
        #0 I AS id=1
        #0 I DT
        #0 I AE s=1
        #0 I T-RST
        #1 I CN ts=00 ref=A/2,250101000100Z recover=A/1,250101000000Z twa
        #1 R AC ts=00 recover
        #1 I AS id=1
        #1 I DT
        #1 I AE s=1
        #1 R AEA s=1
    ");
    assert!(r.all_kinds().is_empty(), "{:?}", r.all_kinds());
}

#[test]
fn restart_with_another_label_does_not_count() {
    // A restarts, but with MSG-2; MSG-1 is never re-sent.
    let r = run(&format!(
        "{CUT_MID_TRANSFER}
        #1 I AS id=2
        #1 I DT
        #1 I LABEL l=MSG-2
        #1 I AE s=1
        #1 R AEA s=1
        #1 I AB user
        "
    ));
    assert_eq!(r.kinds(1), vec![AnomalyKind::TransferLost]);
    // ... and with MSG-1 after MSG-2, it counts.
    let r = run(&format!(
        "{CUT_MID_TRANSFER}
        #1 I AS id=2
        #1 I LABEL l=MSG-2
        #1 I AE s=1
        #1 R AEA s=1
        #1 I AS id=3
        #1 I LABEL l=MSG-1
        #1 I AE s=1
        #1 R AEA s=1
        #1 I AB user
        "
    ));
    assert!(r.all_kinds().is_empty(), "{:?}", r.all_kinds());
}

#[test]
fn transfer_duplicated_across_recovery() {
    // B delivered MSG-1 (AEA sent), the AEA is lost with the connection;
    // after recovery A restarts MSG-1 and B delivers it again.
    let r = run("
        #0 I CN ts=00 ref=A/1,250101000000Z twa
        #0 R AC ts=00
        #0 I AS id=1
        #0 I LABEL l=MSG-1
        #0 I DT
        #0 I AE s=1
        #0 R AEA s=1
        #0 R T-RST
        #1 I CN ts=00 ref=A/2,250101000100Z recover=A/1,250101000000Z twa
        #1 R AC ts=00 recover
        #1 I AS id=1
        #1 I LABEL l=MSG-1
        #1 I DT
        #1 I AE s=1
        #1 R AEA s=1 ! transfer-duplicated
    ");
    let a = &r.anomalies(1)[0];
    assert!(a.detail.contains("across recovery"), "{}", a.detail);
    assert!(a.detail.contains("association #0"), "{}", a.detail);
    assert_eq!(a.by, Some(Side::Initiator));
    assert!(r.kinds(0).is_empty());
}

#[test]
fn duplicate_within_an_association_and_label_after_aea() {
    run("
        I CN ts=00 twa
        R AC ts=00
        I AS id=1
        I DT
        I AE s=1
        R AEA s=1
        I LABEL l=M
        I AS id=2
        I DT
        I AE s=1
        R AEA s=1
        I LABEL l=M ! transfer-duplicated
    ");
}

#[test]
fn lost_without_recovery_and_resent_on_a_fresh_association() {
    // Cut after AE before AEA, no recovery.
    let script = "
        #0 I CN ts=00 ref=A/1,250101000000Z twa
        #0 R AC ts=00
        #0 I AS id=1
        #0 I LABEL l=MSG-1
        #0 I DT
        #0 I AE s=1
        #0 I T-FIN
    ";
    let r = run(script);
    assert_eq!(r.kinds(0), vec![AnomalyKind::TransferLost]);
    // P1 re-sends it on a fresh association: not lost.
    let r = run(&format!(
        "{script}
        #1 I CN ts=00 ref=A/2,250101000100Z twa
        #1 R AC ts=00
        #1 I AS id=1
        #1 I LABEL l=MSG-1
        #1 I DT
        #1 I AE s=1
        #1 R AEA s=1
        "
    ));
    assert!(r.all_kinds().is_empty(), "{:?}", r.all_kinds());
    // Delivered on #0 (AEA lost), re-sent on a fresh association #1.
    let r = run("
        #0 I CN ts=00 ref=A/1,250101000000Z twa
        #0 R AC ts=00
        #0 I AS id=1
        #0 I LABEL l=MSG-1
        #0 I AE s=1
        #0 R AEA s=1
        #0 I T-RST
        #1 I CN ts=00 ref=A/2,250101000100Z twa
        #1 R AC ts=00
        #1 I AS id=1
        #1 I LABEL l=MSG-1
        #1 I AE s=1
        #1 R AEA s=1 ! transfer-duplicated
    ");
    assert!(r.anomalies(1)[0].detail.contains("association #0"));
}

#[test]
fn in_progress_at_capture_end_is_not_lost() {
    let r = run("
        I CN ts=00 twa
        R AC ts=00
        I AS id=1
        I DT
    ");
    assert!(r.all_kinds().is_empty());
    let r = run("
        I CN ts=00 twa
        R AC ts=00
        I AS id=1
        I DT
        I T-GAP => unknown
    ");
    assert!(r.all_kinds().is_empty());
}

#[test]
fn many_transfers_are_pruned() {
    let cfg = TrackerConfig { max_kept_transfers: 8, ..TrackerConfig::default() };
    let mut t = TurnTracker::new(cfg);
    let mut seq = 0;
    let mut feed = |t: &mut TurnTracker, from, event| {
        seq += 1;
        t.observe(&Observed { seq, time_ns: 0, from, event })
    };
    feed(
        &mut t,
        Side::Initiator,
        TurnEvent::Connect(Box::new(Connect { token_setting: Some(0), ..Connect::default() })),
    );
    feed(&mut t, Side::Responder, TurnEvent::Accept(Accept { token_setting: Some(0), ..Accept::default() }));
    for i in 0..1000u64 {
        feed(&mut t, Side::Initiator, TurnEvent::ActivityStart { id: ActivityId::number(i) });
        feed(&mut t, Side::Initiator, TurnEvent::TransferLabel { label: format!("M{i}") });
        feed(&mut t, Side::Initiator, TurnEvent::ActivityEnd { serial: 1 });
        feed(&mut t, Side::Responder, TurnEvent::ActivityEndAck { serial: 1 });
    }
    assert!(t.transfers().len() <= 9, "{}", t.transfers().len());
    assert_eq!(t.delivered().len(), 1000);
    assert!(t.anomalies().is_empty());
}

#[test]
fn observation_resumes_after_a_gap_with_the_holder_unknown() {
    // The GTA went missing: the holder is unknown until B behaves as one.
    let r = run("
        I CN ts=00 twa
        R AC ts=00 => initiator
        I GTC => in-transit
        R T-GAP => unknown
        R AS id=1 => responder
        R DT => responder
        R AE s=1 => responder
        I AEA s=1 => responder
        I T-RST => none
    ");
    assert!(r.all_kinds().is_empty(), "{:?}", r.all_kinds());
    // A transfer open when data went missing is not judged lost (its AEA
    // may be in the gap); one started after the gap is.
    let r = run("
        I CN ts=00 twa
        R AC ts=00
        I AS id=1
        I DT
        I T-GAP => unknown
        I AS id=2 => initiator
        I DT
        I T-RST => none
    ");
    assert_eq!(r.kinds(0), vec![AnomalyKind::TransferLost]);
    assert!(r.anomalies(0)[0].detail.contains("activity 2"), "{}", r.anomalies(0)[0].detail);
    // A gap before the CN: the connect goes on normally.
    let r = run("
        I T-OPEN
        I T-GAP => unknown
        I CN ts=00 twa => none
        R AC ts=00 => initiator
    ");
    assert!(r.all_kinds().is_empty(), "{:?}", r.all_kinds());
}
