//! Monologue, X.410-1984 mode, captures starting mid-association, absent
//! Token Setting.

mod tracker_dsl;

use rtse_conformance::tracker::*;
use tracker_dsl::{run, run_with};

#[test]
fn monologue() {
    // Only the initiator ever has the Turn; it transfers and releases.
    let r = run("
        I CN ts=00 mono
        R AC ts=00              => initiator
        I AS id=1               => initiator
        I DT
        I AE s=1
        R AEA s=1
        I FN                    => initiator
        R DN                    => none
    ");
    assert!(r.all_kinds().is_empty(), "{:?}", r.all_kinds());
    assert_eq!(r.tracker(0).dialogue(), Some(Dialogue::Monologue));
    // Please and give are not allowed; a responder-held Turn neither.
    run("
        I CN ts=00 mono
        R AC ts=00              => initiator
        R PT                    => initiator ! turn-in-monologue
        I GTC                   => in-transit ! turn-in-monologue
        R GTA                   => responder
    ");
    run("
        I CN ts=15 mono         ! turn-in-monologue
        R AC ts=15              => responder ! turn-in-monologue
    ");
}

#[test]
fn x410_mode_example_6() {
    // Example 6: CN/AC (session v1, setting 00), PT from B with bare
    // priority 0, GTC, GTA; then B transfers raw octets.
    let r = run("
        I T-OPEN
        I CN ts=00 x410 twa ckpt=0 win=3 ref=MTA-A,250101000000Z => none
        R AC ts=00 ckpt=0 win=3  => initiator
        R PT p=0                 => initiator
        I GTC                    => in-transit
        R GTA                    => responder
        R AS id=0                => responder
        R DT n=300
        R AE s=1
        R LABEL l=/C=GB/A=_/P=BETA/;X-1
        I AEA s=1                => responder
        # no checkpointing was accepted: a MIP is an RTSE violation
        R AS id=1
        R MIP s=1                ! activity-violation
        R AE s=2
        I AEA s=2
    ");
    assert_eq!(r.tracker(0).mode(), Some(Mode::X410));
    assert_eq!(r.tracker(0).checkpoint_size(), Some(0));
    // In X.410 mode aborts are provider aborts: the association counts as
    // lost (recoverable), and what was in flight is inherited.
    let r = run("
        #0 I CN ts=00 x410 twa ref=MTA-A,250101000000Z
        #0 R AC ts=00
        #0 I GTC
        #0 R AB provider          => none
        #1 I CN ts=15 x410 twa ref=MTA-A,250101000100Z recover=MTA-A,250101000000Z
        #1 R AC ts=15 recover     => responder
        #1 I PT p=0               => responder
        #1 R GTC                  => in-transit
        #1 I GTA                  => initiator
    ");
    assert!(r.all_kinds().is_empty(), "{:?}", r.all_kinds());
    assert_eq!(r.tracker(0).phase(), Phase::Lost);
    assert!(r.tracker(1).inherited().unwrap().turn_at_risk());
}

#[test]
fn capture_starting_mid_association() {
    // Non-revealing SPDUs: unknown; then a PT reveals that the peer holds it.
    let r = run("
        I TD                    => unknown
        R CD                    => unknown
        I PT p=1                => responder
        R AS id=1               => responder
        R AE s=1
        I AEA s=1
        R GTC                   => in-transit
        I GTA                   => initiator
    ");
    assert!(r.tracker(0).mid_association());
    assert!(r.all_kinds().is_empty(), "{:?}", r.all_kinds());
    // In the middle of a transfer: the activity is learnt, not flagged.
    let r = run("
        I MALFORMED             => none ! malformed
        I DT                    => initiator
        I MIP s=4               => initiator
        R MIA s=4
        I DT
        I MIP s=5
        R MIA s=5
        I AE s=6
        R AEA s=6               => initiator
        R PT                    => initiator
        I GTC                   => in-transit
        R GTA                   => responder
        # from here on the rules apply in full
        R MIP s=1               => responder ! activity-violation
    ");
    let t = &r.tracker(0).transfers()[0];
    assert_eq!(t.state, TransferState::Confirmed);
    // Receiver behaviour reveals the sender as holder.
    run("
        R MIA s=2               => initiator
        I AE s=3
        R AEA s=3
    ");
    run("
        R AEA s=2               => initiator
        I AS id=9               => initiator
    ");
    // GTA first: the GTC was before the capture.
    let r = run("
        R GTA                   => responder
        R AS id=4               => responder
    ");
    assert_eq!(r.tracker(0).token_source(), TokenSource::Inferred);
    // GTC first: in transit, then the GTA settles it.
    run("
        R GTC                   => in-transit
        I GTA                   => initiator
    ");
    // ED reveals the receiver.
    run("
        R ED                    => initiator
    ");
}

#[test]
fn absent_token_setting() {
    // Default: unknown until behaviour reveals it.
    let r = run("
        I CN twa
        R AC                    => unknown
        I PT                    => responder
    ");
    assert_eq!(r.tracker(0).token_source(), TokenSource::Inferred);
    // The X.225 default, when configured.
    let cfg = TrackerConfig { absent_token_setting: AbsentTokenSetting::InitiatorSide, ..TrackerConfig::default() };
    let r = run_with(
        cfg,
        "
        I CN twa
        R AC                    => initiator
        I PT                    => initiator ! please-from-holder
    ",
    );
    assert_eq!(r.tracker(0).token_source(), TokenSource::Default);
    // AC seen without its CN (capture started in between).
    run("
        R AC ts=15              => responder
        R AS id=1               => responder
    ");
}

#[test]
fn phases_and_unexpected_events() {
    let r = run("
        I T-OPEN                => none
        I PT                    => none ! unexpected-event
        I CN ts=00 twa          => none
        R GTC                   => none ! unexpected-event
        R RF                    => none
        I T-FIN                 => none
    ");
    assert_eq!(r.tracker(0).phase(), Phase::Refused);
    let r = run("
        I T-OPEN
        I T-OPEN                ! unexpected-event
        I CN ts=00 twa
        I CN ts=00 twa          ! unexpected-event
        R CN ts=00 twa          ! unexpected-event, unexpected-event
        I AC ts=00              => initiator ! unexpected-event
        R AC ts=00              ! unexpected-event
        R DN                    ! unexpected-event
        R NF                    ! unexpected-event
        I T-EOF                 => unknown
    ");
    assert_eq!(r.tracker(0).phase(), Phase::Unobserved);
    assert_eq!(r.tracker(0).holder(), TurnHolder::Unknown);
}

#[test]
fn anomaly_cap() {
    let cfg = TrackerConfig { max_anomalies: 3, ..TrackerConfig::default() };
    let mut t = TurnTracker::new(cfg);
    for seq in 0..10 {
        t.observe(&Observed {
            seq,
            time_ns: 0,
            from: Side::Initiator,
            event: TurnEvent::Malformed { detail: String::new() },
        });
    }
    assert_eq!(t.anomalies().len(), 3);
    assert_eq!(t.dropped_anomalies(), 7);
}

#[test]
fn activity_ids() {
    assert_eq!(ActivityId::number(1).as_bytes(), &[0x02, 0x01, 0x01]);
    assert_eq!(ActivityId::number(0).as_bytes(), &[0x02, 0x01, 0x00]);
    assert_eq!(ActivityId::number(128).as_bytes(), &[0x02, 0x02, 0x00, 0x80]);
    assert_eq!(ActivityId::number(u64::MAX).as_number(), Some(u64::MAX));
    for n in [0u64, 1, 127, 128, 255, 256, 65_535, 1 << 40, u64::MAX] {
        assert_eq!(ActivityId::number(n).as_number(), Some(n));
        assert_eq!(ActivityId::number(n).to_string(), n.to_string());
    }
    let raw = ActivityId::from_bytes(b"\x01\x02").unwrap();
    assert_eq!(raw.as_number(), None);
    assert_eq!(raw.to_string(), "0x0102");
    assert!(ActivityId::from_bytes(&[0; 17]).is_none());
    assert_eq!(serde_json::to_string(&ActivityId::number(2)).unwrap(), "\"2\"");
}

#[test]
fn conn_ref_matching() {
    let a = ConnRef::new("MTA-A/0001", "250101115500Z");
    let mut b = a.clone();
    assert!(a.matches(&b));
    b.additional = Some(b"x".into());
    assert!(a.matches(&b) && b.matches(&a));
    let mut c = b.clone();
    c.additional = Some(b"y".into());
    assert!(!b.matches(&c));
    assert!(!a.matches(&ConnRef::new("MTA-A/0001", "250101115501Z")));
    assert_eq!(b.to_string(), "MTA-A/0001+250101115500Z+x");
}

/// Connection references are held in place up to `RefOctets::INLINE`
/// octets and on the heap beyond, and either way compare, order, hash and
/// print as the octets' `Vec<u8>` did (the linker's index hashes them).
#[test]
fn ref_octets_are_their_octets() {
    use rtse_conformance::tracker::RefOctets;
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hash = |v: &dyn Fn(&mut DefaultHasher)| {
        let mut h = BuildHasherDefault::<DefaultHasher>::default().build_hasher();
        v(&mut h);
        std::hash::Hasher::finish(&h)
    };
    let values: Vec<Vec<u8>> = [0usize, 1, 2, 13, 29, 30, 31, 32, 64, 255, 256, 300]
        .iter()
        .flat_map(|&n| [(0..n).map(|i| (i % 251) as u8).collect(), vec![0xff; n]])
        .collect();
    for a in &values {
        let r = RefOctets::from(&a[..]);
        assert_eq!(&*r, &a[..]);
        assert_eq!(r.is_inline(), a.len() <= RefOctets::INLINE, "{} octets", a.len());
        assert_eq!(r, RefOctets::from(a.clone()));
        assert_eq!(r.clone(), r);
        assert_eq!(format!("{r:?}"), format!("{a:?}"));
        assert_eq!(
            hash(&|h| std::hash::Hash::hash(&r, h)),
            hash(&|h| std::hash::Hash::hash(a, h)),
            "{} octets",
            a.len()
        );
        for b in &values {
            let s = RefOctets::from(&b[..]);
            assert_eq!(r == s, a == b);
            assert_eq!(r.cmp(&s), a.cmp(b));
        }
    }
    let long = "L".repeat(RefOctets::INLINE + 10);
    let a = ConnRef::new(&long, "250101115500Z");
    assert!(!a.calling.is_inline() && a.common.is_inline());
    assert!(a.matches(&ConnRef::new(&long, "250101115500Z")));
    assert!(!a.matches(&ConnRef::new(&long[1..], "250101115500Z")));
    assert_eq!(a.to_string(), format!("{long}+250101115500Z"));
    assert_eq!(RefOctets::default().len(), 0);
}
