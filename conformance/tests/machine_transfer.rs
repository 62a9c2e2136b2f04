//! RT-TRANSFER: activities, checkpoints and the window, segmentation,
//! please/give, both modes, through two reference MTAs.

mod machine_support;
use machine_support::*;

use rtse_codec::presentation::Mode;
use rtse_conformance::loopback::{Loopback, TraceKind};
use rtse_conformance::machine::{Indication, Input, Notice, Request};
use rtse_conformance::mta::ReferenceMta;

/// The largest number of MIPs sent by `from` not yet answered by an MIA
/// that was *sent* (the window as the sender sees it can only be smaller).
fn max_outstanding(p: &Loopback<ReferenceMta>, from: usize) -> u32 {
    let (mut mip, mut mia, mut max) = (0u32, 0u32, 0u32);
    for t in p.trace() {
        if let TraceKind::Pdu { info, .. } = &t.kind {
            match info.name() {
                "MIP" if t.from == from => mip += 1,
                "MIA" if t.from != from => mia += 1,
                "AS" | "AR" => {
                    mip = 0;
                    mia = 0;
                }
                _ => {}
            }
            max = max.max(mip - mia.min(mip));
        }
    }
    max
}

#[test]
fn a_small_message_is_one_activity_and_is_delivered_once() {
    for mode in [Mode::Normal, Mode::X410] {
        let mut p = pair(mode);
        p.submit(0, msg(1));
        p.run(MAX);
        let tail: Vec<_> = names(&p).into_iter().skip(5).collect();
        assert_eq!(tail, ["#0 A>B AS", "#0 A>B DT", "#0 A>B AE", "#0 B>A AEA"], "{mode:?}");
        assert_eq!(delivered(&p, 1), [("/C=GB/A= /P=ACME/;MSG-0001".to_owned(), 1)]);
        assert_eq!(p.ends[0].backlog(), 0);
        assert_eq!(p.ends[0].confirmed(), 1);
        // The delivered octets are the submitted APDU.
        let got = transfers_to(&p, 1);
        assert_eq!(got, [msg(1).octets.to_vec()]);
        assert_clean(&p);
    }
}

#[test]
fn large_messages_are_segmented_with_checkpoints_within_the_window() {
    for mode in [Mode::Normal, Mode::X410] {
        let mut p = pair(mode);
        let m = big(1, 10_000);
        p.submit(0, m.clone());
        p.run(MAX);
        let n = names(&p);
        let dts = n.iter().filter(|s| s.ends_with(" DT")).count();
        let mips = n.iter().filter(|s| s.ends_with(" MIP")).count();
        let mias = n.iter().filter(|s| s.ends_with(" MIA")).count();
        // checkpointSize 1 = 1024 octets per DT; a MIP after each but the last.
        let payload = m.octets.len() + if mode == Mode::Normal { 8 } else { 0 };
        let expect = payload.div_ceil(1024);
        assert!((expect..=expect + 1).contains(&dts), "{mode:?}: {dts} DTs for {payload} octets");
        assert_eq!(mips, dts - 1);
        assert_eq!(mias, mips);
        assert!(max_outstanding(&p, 0) <= 3, "window 3 exceeded: {}", max_outstanding(&p, 0));
        assert_eq!(max_outstanding(&p, 0), 3, "the window is used");
        assert_eq!(delivered(&p, 1), [("/C=GB/A= /P=ACME/;BIG-0001".to_owned(), 1)]);
        assert_eq!(transfers_to(&p, 1).first().map(Vec::as_slice), Some(&m.octets[..]));
        assert_clean(&p);
    }
}

#[test]
fn without_checkpointing_a_long_tsdu_spans_several_tpdus() {
    let mut a = cfg("MTA-A", true, Mode::Normal);
    a.machine.checkpoint_size = 0;
    let mut b = cfg("MTA-B", false, Mode::Normal);
    b.machine.checkpoint_size = 0;
    let mut p = Loopback::new(ReferenceMta::new(a), ReferenceMta::new(b));
    let m = big(2, 40_000);
    p.submit(0, m.clone());
    p.run(MAX);
    let n = names(&p);
    assert_eq!(n.iter().filter(|s| s.ends_with(" MIP")).count(), 0);
    // 16 KiB DTs: three DT SPDUs, each over several 2048-octet TPDUs.
    assert_eq!(n.iter().filter(|s| s.ends_with(" DT")).count(), 3);
    let fragments = p.trace().iter().filter(|t| matches!(&t.kind, TraceKind::Pdu { info, .. } if !info.eot)).count();
    assert!(fragments > 15, "{fragments}");
    assert_eq!(delivered(&p, 1), [("/C=GB/A= /P=ACME/;BIG-0002".to_owned(), 1)]);
    assert_clean(&p);
}

#[test]
fn please_and_give_move_the_turn_and_both_queues_drain() {
    for mode in [Mode::Normal, Mode::X410] {
        let mut p = pair(mode);
        open(&mut p);
        // B has mail but not the Turn: it asks, A (idle) gives.
        p.submit(1, msg(100));
        p.run(MAX);
        let tail: Vec<_> = names(&p).into_iter().skip(5).collect();
        assert_eq!(
            tail,
            ["#0 B>A PT", "#0 A>B GTC", "#0 B>A GTA", "#0 B>A AS", "#0 B>A DT", "#0 B>A AE", "#0 A>B AEA"],
            "{mode:?}"
        );
        assert_eq!(count_ind(&p, 0, |i| matches!(i, Indication::TurnPleaseInd { priority: 1 })), 1);
        assert_eq!(count_ind(&p, 1, |i| *i == Indication::TurnGiveInd), 1);
        assert!(p.ends[1].machine().holds_turn());
        // Both sides with mail: they alternate and everything arrives once.
        for i in 0..20 {
            p.submit(0, msg(i));
            p.submit(1, msg(200 + i));
        }
        p.run(MAX);
        assert_eq!(p.ends[0].backlog() + p.ends[1].backlog(), 0);
        assert_eq!(p.ends[1].deliveries(), 20);
        assert_eq!(p.ends[0].deliveries(), 21);
        assert!(p.ends[0].delivered().values().chain(p.ends[1].delivered().values()).all(|n| *n == 1));
        assert_clean(&p);
    }
}

#[test]
fn the_holder_finishes_its_burst_before_giving() {
    let mut p = pair(Mode::Normal);
    open(&mut p);
    for i in 0..12 {
        p.submit(0, msg(i));
    }
    p.submit(1, msg(99));
    p.run(MAX);
    // A sends max_burst (8) messages, then gives; B sends, then A finishes.
    let n = names(&p);
    let gtc = n.iter().position(|s| s.ends_with("A>B GTC")).expect("GTC");
    let a_ae_before = n.iter().take(gtc).filter(|s| s.ends_with("A>B AE")).count();
    assert_eq!(a_ae_before, 8, "{n:#?}");
    assert_eq!(p.ends[0].backlog() + p.ends[1].backlog(), 0);
    assert_clean(&p);
}

#[test]
fn a_please_to_a_non_holder_is_reported_not_answered() {
    let mut p = pair(Mode::Normal);
    open(&mut p);
    p.feed(0, Input::Request(Request::TurnGive));
    p.run(MAX);
    // A no longer holds the Turn: forge B's please reaching A by having B
    // give it back first and then ask while A already has it: instead,
    // check the race directly: A asks (B holds), B gives, and a second
    // please from A crosses the give.
    p.clear_indications();
    p.feed(0, Input::Request(Request::TurnPlease(2)));
    p.feed(1, Input::Request(Request::TurnGive));
    p.run(MAX);
    // B got A's please after giving: a notice, not an indication.
    assert_eq!(count_ind(&p, 1, |i| matches!(i, Indication::Notice(Notice::PleaseWithoutTurn { priority: 2 }))), 1);
    assert_eq!(count_ind(&p, 1, |i| matches!(i, Indication::TurnPleaseInd { .. })), 0);
    assert!(p.ends[0].machine().holds_turn());
}

#[test]
fn transfer_requires_the_turn() {
    let mut p = pair(Mode::Normal);
    open(&mut p);
    p.clear_indications();
    p.feed(1, Input::Request(Request::Transfer(msg(1))));
    assert!(matches!(
        p.indications(),
        [(1, Indication::Notice(Notice::RequestRefused { request: "RT-TRANSFER", why: "not holding the Turn" }))]
    ));
}
