//! RT-OPEN (accept, refuse), RT-CLOSE and aborts, both modes.

mod machine_support;
use machine_support::*;

use rtse_codec::presentation::Mode;
use rtse_codec::rtse::RefuseReason;
use rtse_conformance::loopback::Loopback;
use rtse_conformance::machine::{
    Config, Indication, Input, Machine, Notice, OpenFailure, PAbortReason, Phase, Request, Role,
};

#[test]
fn open_accept_in_both_modes() {
    for mode in [Mode::Normal, Mode::X410] {
        let mut p = pair(mode);
        open(&mut p);
        assert_eq!(names(&p), ["#0 A open", "#0 A>B CR", "#0 B>A CC", "#0 A>B CN", "#0 B>A AC"], "{mode:?}");
        assert!(p.ends[0].machine().holds_turn());
        assert!(!p.ends[1].machine().holds_turn());
        assert_eq!(p.ends[1].machine().mode(), mode);
        assert_eq!(p.ends[1].machine().role(), Role::Responder);
        assert_eq!((p.ends[0].machine().checkpoint_size(), p.ends[0].machine().window_size()), (1, 3));
        assert_eq!(count_ind(&p, 0, |i| *i == Indication::OpenCnf(Ok(()))), 1);
        assert_eq!(count_ind(&p, 1, |i| *i == Indication::OpenInd), 1);
        assert_clean(&p);
    }
}

#[test]
fn open_with_the_turn_at_the_responder() {
    let mut a = cfg("MTA-A", true, Mode::Normal);
    a.machine.initial_turn = Role::Responder;
    let mut p = Loopback::new(
        rtse_conformance::mta::ReferenceMta::new(a),
        rtse_conformance::mta::ReferenceMta::new(cfg("MTA-B", false, Mode::Normal)),
    );
    open(&mut p);
    assert!(!p.ends[0].machine().holds_turn());
    assert!(p.ends[1].machine().holds_turn());
    assert_clean(&p);
}

fn machines(mode: Mode) -> Loopback<Machine> {
    let mut a = Config::new("MTA-A");
    a.mode = mode;
    let mut b = Config::new("MTA-B");
    b.checkpoint_size = 4;
    b.window_size = 2;
    Loopback::new(Machine::new(a), Machine::new(b))
}

#[test]
fn open_refused_with_a_reason_in_both_modes() {
    for mode in [Mode::Normal, Mode::X410] {
        let mut p = machines(mode);
        p.feed(0, Input::Request(Request::Open));
        p.run(MAX);
        assert_eq!(p.ends[1].phase(), Phase::AwaitOpenResponse);
        p.feed(1, Input::Request(Request::OpenResponse(Err(RefuseReason::ValidationFailure))));
        p.run(MAX);
        let cnf: Vec<_> = p.indications().iter().filter(|(w, _)| *w == 0).map(|(_, i)| i.clone()).collect();
        let expected_reason = match mode {
            Mode::X410 => Some(RefuseReason::ValidationFailure.to_i64()),
            // Normal mode carries the refusal in the AARE result; RTORJ has
            // no refuseReason (X.410 mode only).
            Mode::Normal => None,
        };
        assert_eq!(cnf, [Indication::OpenCnf(Err(OpenFailure::Refused(expected_reason)))], "{mode:?}");
        assert_eq!(p.ends[0].phase(), Phase::Idle);
        assert_eq!(p.ends[1].phase(), Phase::Idle);
        assert!(p.decode_errors().is_empty(), "{:?}", p.decode_errors());
        let l = p.observe();
        assert_eq!(l.anomalies().count(), 0);
    }
}

#[test]
fn negotiation_takes_the_smaller_values() {
    let mut p = machines(Mode::Normal);
    p.feed(0, Input::Request(Request::Open));
    p.run(MAX);
    p.feed(1, Input::Request(Request::OpenResponse(Ok(()))));
    p.run(MAX);
    // A proposed checkpoint 1 window 3; B accepts at most 4 and 2.
    for m in &p.ends {
        assert_eq!((m.checkpoint_size(), m.window_size()), (1, 2));
    }
}

#[test]
fn close_by_the_initiator_holding_the_turn() {
    for mode in [Mode::Normal, Mode::X410] {
        let mut p = pair(mode);
        open(&mut p);
        p.clear_indications();
        // The responder may not close.
        p.feed(1, Input::Request(Request::Close));
        assert!(matches!(
            p.indications().last(),
            Some((1, Indication::Notice(Notice::RequestRefused { request: "RT-CLOSE", .. })))
        ));
        p.feed(0, Input::Request(Request::Close));
        p.run(MAX);
        let tail: Vec<_> = names(&p).into_iter().skip(5).collect();
        assert_eq!(tail, ["#0 A>B FN", "#0 B>A DN", "#0 A fin"], "{mode:?}");
        assert_eq!(count_ind(&p, 1, |i| *i == Indication::CloseInd), 1);
        assert_eq!(count_ind(&p, 0, |i| *i == Indication::CloseCnf), 1);
        assert_eq!(p.ends[0].machine().phase(), Phase::Idle);
        assert_eq!(p.ends[1].machine().phase(), Phase::Idle);
        assert_clean(&p);
    }
}

#[test]
fn close_needs_the_turn() {
    let mut p = pair(Mode::Normal);
    open(&mut p);
    p.feed(0, Input::Request(Request::TurnGive));
    p.run(MAX);
    p.clear_indications();
    p.feed(0, Input::Request(Request::Close));
    assert!(matches!(p.indications(), [(0, Indication::Notice(Notice::RequestRefused { request: "RT-CLOSE", .. }))]));
}

#[test]
fn user_abort_in_both_modes() {
    for mode in [Mode::Normal, Mode::X410] {
        let mut p = pair(mode);
        open(&mut p);
        p.feed(1, Input::Request(Request::UAbort));
        p.run(MAX);
        assert_eq!(count_ind(&p, 0, |i| *i == Indication::UAbortInd), 1, "{mode:?} {:#?}", p.indications());
        assert_eq!(p.ends[0].machine().phase(), Phase::Idle);
        assert_eq!(p.ends[1].machine().phase(), Phase::Idle);
        assert_clean(&p);
    }
}

#[test]
fn monologue_has_no_please() {
    let mut a = Config::new("MTA-A");
    a.dialogue = rtse_conformance::machine::Dialogue::Monologue;
    let mut p = Loopback::new(Machine::new(a), Machine::new(Config::new("MTA-B")));
    p.feed(0, Input::Request(Request::Open));
    p.run(MAX);
    p.feed(1, Input::Request(Request::OpenResponse(Ok(()))));
    p.run(MAX);
    p.clear_indications();
    p.feed(1, Input::Request(Request::TurnPlease(0)));
    assert!(matches!(p.indications(), [(1, Indication::Notice(Notice::RequestRefused { .. }))]));
    assert!(p.ends[0].holds_turn());
    let _ = PAbortReason::Lost;
}
