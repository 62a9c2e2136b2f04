//! Each named flaw, in a scenario built to expose it, shows its deviation
//! to the Turn tracker; the same scenario with the reference MTA shows
//! nothing. (The scenario can fail, and fails only because of the flaw.)

mod machine_support;
use machine_support::*;

use rtse_codec::presentation::Mode;
use rtse_conformance::flaw::Flaw;
use rtse_conformance::loopback::Loopback;
use rtse_conformance::machine::{Indication, Notice};
use rtse_conformance::mta::{MtaConfig, ReferenceMta};
use rtse_conformance::tracker::AnomalyKind;

fn pair_cfg(a: MtaConfig, b: MtaConfig) -> Loopback<ReferenceMta> {
    Loopback::new(ReferenceMta::new(a), ReferenceMta::new(b))
}

/// The scenario for `flaw`, with `f` (the flaw, or `None` for the
/// reference) on the side the scenario targets.
fn scenario(flaw: Flaw, f: Option<Flaw>) -> Loopback<ReferenceMta> {
    let mode = Mode::Normal;
    match flaw {
        // The field failure: A gives the Turn, the GTC is lost with the
        // connection, A recovers (2A, B resolves 00: A holds) but A trusts
        // its memory ("B has it"): both ask, nobody gives, until A's
        // backlog forces a fresh association.
        Flaw::ForgetsGivenTurn => {
            let mut p = pair_with(mode, f, None);
            open(&mut p);
            p.submit(1, msg(1));
            until(&mut p, 0, "GTC", 1);
            p.drop_connection();
            p.settle(MAX);
            for i in 0..50 {
                p.submit(0, msg(100 + i));
                p.settle(MAX);
            }
            p
        }
        // B holds the Turn and gives it to A; the GTC is lost; A recovers
        // proposing 15 (A did not hold it): B must take the Turn back.
        Flaw::TurnClearedOnSend => {
            let mut p = pair_with(mode, None, f);
            open(&mut p);
            p.submit(1, msg(1));
            p.run(MAX);
            assert!(p.ends[1].machine().holds_turn());
            p.submit(0, msg(2));
            until(&mut p, 1, "GTC", 1);
            p.drop_connection();
            p.settle(MAX);
            p
        }
        // A drop with nothing in flight: the setting keeps the Turn at A;
        // B, with mail, claims it anyway.
        Flaw::BothClaimAfterRecovery => {
            let mut p = pair_with(mode, None, f);
            open(&mut p);
            p.drop_connection();
            p.run_until(MAX, |i, _| i.name() == "AC");
            p.submit(1, msg(1));
            p.settle(MAX);
            p
        }
        // Lost after AE, before AEA: B has delivered; A must resume, not
        // send the message again.
        Flaw::DuplicatesOnResume => {
            let mut p = pair_with(mode, f, None);
            p.submit(0, big(1, 3_000));
            until(&mut p, 1, "AEA", 1);
            p.drop_connection();
            p.settle(MAX);
            p
        }
        // Lost between MIP and MIA: the transfer must be resumed.
        Flaw::DropsUnconfirmed => {
            let mut p = pair_with(mode, f, None);
            p.submit(0, big(1, 5_000));
            until(&mut p, 1, "MIA", 2);
            p.drop_connection();
            p.settle(MAX);
            p
        }
        // B has mail while A holds the Turn.
        Flaw::SendsWithoutTurn => {
            let mut p = pair_with(mode, None, f);
            open(&mut p);
            p.submit(1, msg(1));
            p.settle(MAX);
            p
        }
        // B asks; A is idle.
        Flaw::IgnoresPlease => {
            let mut p = pair_with(mode, f, None);
            open(&mut p);
            p.submit(1, msg(1));
            p.settle(MAX);
            p
        }
        // Lost mid-transfer: no recovery, and A waits for its backlog.
        Flaw::NoRecovery => {
            let mut p = pair_with(mode, f, None);
            p.submit(0, big(1, 5_000));
            until(&mut p, 1, "MIA", 2);
            p.drop_connection();
            p.settle(MAX);
            p
        }
        // A message of many checkpoints, window 3.
        Flaw::WindowOverrun => {
            let mut p = pair_with(mode, f, None);
            p.submit(0, big(1, 8_000));
            p.settle(MAX);
            p
        }
        // Lost with nothing in flight; B's recovery timer runs out first.
        Flaw::ResponderRecovers => {
            let mut a = cfg("MTA-A", true, mode);
            a.machine.recovery.retry_delay = 2_000_000_000;
            let mut b = cfg("MTA-B", false, mode).with_flaw(f);
            b.machine.recovery.retry_delay = 500_000_000;
            let mut p = pair_cfg(a, b);
            open(&mut p);
            p.drop_connection();
            p.settle(MAX);
            p
        }
        // A transfers a long message; B asks meanwhile.
        Flaw::GtcDuringActivity => {
            let mut p = pair_with(mode, f, None);
            open(&mut p);
            p.submit(0, big(1, 8_000));
            p.submit(1, msg(2));
            // Flawed, this livelocks (B aborts each GTC, A reopens and
            // does it again): bound the run.
            p.settle(2_000);
            p
        }
    }
}

fn expected(flaw: Flaw) -> &'static [AnomalyKind] {
    use AnomalyKind as K;
    match flaw {
        Flaw::ForgetsGivenTurn | Flaw::TurnClearedOnSend => &[K::TurnLost],
        Flaw::BothClaimAfterRecovery | Flaw::SendsWithoutTurn => &[K::DataWithoutTurn, K::TwoHolders],
        // The tracker never saw the first delivery (its AEA was lost with
        // the connection); the receiving MTA's record shows it (below).
        Flaw::DuplicatesOnResume => &[],
        Flaw::DropsUnconfirmed | Flaw::NoRecovery => &[K::TransferLost],
        Flaw::IgnoresPlease => &[K::PleaseUnanswered],
        Flaw::WindowOverrun => &[K::WindowExceeded],
        Flaw::ResponderRecovers => &[K::RecoveryByResponder],
        Flaw::GtcDuringActivity => &[K::GtcDuringActivity],
    }
}

#[test]
fn every_flaw_shows_in_its_scenario_and_the_reference_does_not() {
    for flaw in Flaw::ALL {
        let reference = scenario(flaw, None);
        assert_clean(&reference);
        let flawed = scenario(flaw, Some(flaw));
        assert!(flawed.decode_errors().is_empty(), "{flaw}: {:?}", flawed.decode_errors());
        let got = anomalies(&flawed.observe());
        let twice = |p: &Loopback<ReferenceMta>| p.ends.iter().any(|m| m.delivered().values().any(|n| *n > 1));
        assert!(!twice(&reference), "{flaw}: the reference delivered twice");
        if expected(flaw).is_empty() {
            assert!(twice(&flawed), "{flaw}: expected a second delivery\n{:#?}", flawed.transcript());
            continue;
        }
        assert!(
            got.iter().any(|(_, k)| expected(flaw).contains(k)),
            "{flaw}: expected one of {:?}, got {got:?}\n{:#?}",
            expected(flaw),
            flawed.transcript()
        );
    }
}

#[test]
fn forgets_given_turn_stalls_the_mail_until_the_backlog_threshold() {
    let mut p = pair_with(Mode::Normal, Some(Flaw::ForgetsGivenTurn), None);
    open(&mut p);
    p.submit(1, msg(1));
    until(&mut p, 0, "GTC", 1);
    p.drop_connection();
    p.settle(MAX);
    // Recovered: the Token Setting gave A the Turn, A believes B has it.
    assert!(p
        .indications()
        .iter()
        .any(|(w, i)| *w == 0 && *i == Indication::Notice(Notice::Recovered { turn: false, token_setting: 0 })));
    // Both have mail; both ask; nobody gives.
    for i in 0..49 {
        p.submit(0, msg(100 + i));
        p.settle(MAX);
    }
    assert_eq!(p.ends[0].backlog(), 49);
    assert_eq!(p.ends[1].backlog(), 1);
    assert!(p
        .indications()
        .iter()
        .any(|(w, i)| *w == 0 && matches!(i, Indication::Notice(Notice::PleaseWithoutTurn { .. }))));
    let l = p.observe();
    let lost: Vec<_> = l.anomalies().filter(|(_, a)| a.kind == AnomalyKind::TurnLost).collect();
    assert_eq!(lost.len(), 1, "{:#?}", p.transcript());
    assert_eq!(lost[0].1.by, Some(rtse_conformance::tracker::Side::Initiator), "A is at fault: {}", lost[0].1);
    // The 50th message forces a fresh association and the mail flows.
    p.submit(0, msg(149));
    p.settle(MAX);
    assert_eq!(p.ends[0].fresh_opens(), 1);
    assert_eq!(p.ends[0].backlog() + p.ends[1].backlog(), 0);
    assert_eq!(p.ends[1].deliveries(), 50);
}

#[test]
fn flaws_are_selected_by_name() {
    for name in ["forgets-given-turn", "no-recovery", "window-overrun"] {
        let f: Flaw = name.parse().unwrap();
        let m = ReferenceMta::new(MtaConfig::new("X", true).with_flaw(Some(f)));
        assert_eq!(m.flaw().map(|f| f.to_string()).as_deref(), Some(name));
        assert_eq!(m.machine().config().flaw, Some(f));
    }
}
