//! Protocol violations and malformed bytes get the abort the standard
//! names, never a panic; framing is independent of how bytes are chunked.

mod machine_support;
use machine_support::*;

use proptest::prelude::*;
use rtse_codec::presentation::Mode;
use rtse_codec::session::{self, Linking, SerialNumber, Spdu, Tsdu};
use rtse_codec::stack::{self, Sender};
use rtse_conformance::loopback::{Loopback, TraceKind};
use rtse_conformance::machine::{
    Action, Apdu, Config, Indication, Input, Machine, Output, PAbortReason, Phase, Request, TransportEvent,
};
use rtse_conformance::observe;
use rtse_conformance::tracker::TurnEvent;

/// Two machines with an open association (A initiator, holding the Turn).
fn open_machines(mode: Mode) -> Loopback<Machine> {
    let mut a = Config::new("MTA-A");
    a.mode = mode;
    let mut p = Loopback::new(Machine::new(a), Machine::new(Config::new("MTA-B")));
    p.feed(0, Input::Request(Request::Open));
    p.run(MAX);
    p.feed(1, Input::Request(Request::OpenResponse(Ok(()))));
    p.run(MAX);
    assert!(p.ends[0].is_open() && p.ends[1].is_open());
    p
}

fn tpkt(tsdu: &Tsdu<'_>) -> Vec<u8> {
    let mut t = Vec::new();
    session::emit_tsdu(tsdu, &mut t);
    let mut out = Vec::new();
    rtse_codec::tpkt::emit_header(3 + t.len(), &mut out);
    out.extend_from_slice(&rtse_codec::cotp::dt_header(true));
    out.extend_from_slice(&t);
    out
}

/// The Turn events of every TPKT in `out`, as the peer would decode them.
fn sent_events(out: &Output, from: Sender, mode: Mode) -> Vec<TurnEvent> {
    let mut ev = Vec::new();
    for (_, b) in out.transmits() {
        let mut ctx = stack::Context::with_mode(mode);
        let (st, _) = stack::decode_tpkt(&mut ctx, from, b).expect("our PDU decodes");
        observe::events(&st, |e| ev.push(e));
    }
    ev
}

#[test]
fn malformed_bytes_get_a_session_abort() {
    for mode in [Mode::Normal, Mode::X410] {
        let mut p = open_machines(mode);
        let mut out = Output::new();
        // A DT carrying SI 0xff: no such SPDU.
        p.ends[1].handle(p.now, Input::Received(&[3, 0, 0, 9, 2, 0xf0, 0x80, 0xff, 0]), &mut out);
        let ev = sent_events(&out, Sender::Responder, mode);
        assert_eq!(ev, [TurnEvent::Abort { user: true, reason: None }], "{mode:?}");
        let (_, ab) = out.transmits().next().unwrap();
        assert_eq!(&ab[7..], &[0x19, 0x03, 0x11, 0x01, 0x05], "AB, Transport Disconnect release + protocol error");
        assert!(out.actions.contains(&Action::Disconnect));
        assert!(out.indications().any(|i| *i == Indication::PAbortInd { reason: PAbortReason::Malformed }));
        assert_eq!(p.ends[1].phase(), Phase::Idle);
        // A bad TPKT header likewise.
        let mut p = open_machines(mode);
        let mut out = Output::new();
        p.ends[0].handle(p.now, Input::Received(&[4, 0, 0, 9, 2, 0xf0, 0x80, 0x15, 0]), &mut out);
        assert!(out.indications().any(|i| *i == Indication::PAbortInd { reason: PAbortReason::Malformed }));
    }
}

#[test]
fn data_from_the_non_holder_gets_rtab_protocol_error() {
    for mode in [Mode::Normal, Mode::X410] {
        let mut p = open_machines(mode);
        let mut out = Output::new();
        let (id, n) = ([2u8, 1, 9], 3);
        p.ends[0].handle(p.now, Input::Received(&tpkt(&Tsdu::after_gt(Spdu::as_(&id[..n])))), &mut out);
        let ev = sent_events(&out, Sender::Initiator, mode);
        assert_eq!(ev, [TurnEvent::Abort { user: true, reason: Some(4) }], "{mode:?}: RTAB protocolError");
        assert!(out.indications().any(|i| *i == Indication::PAbortInd { reason: PAbortReason::ProtocolError }));
    }
}

#[test]
fn resume_of_an_unknown_activity_gets_unrecognized_activity() {
    let mut p = open_machines(Mode::Normal);
    let mut out = Output::new();
    let ar = Spdu::ar(Linking::new(&[2, 1, 7], SerialNumber::new(3).unwrap()), &[2, 1, 8]);
    p.ends[1].handle(p.now, Input::Received(&tpkt(&Tsdu::after_gt(ar))), &mut out);
    let ev = sent_events(&out, Sender::Responder, Mode::Normal);
    assert_eq!(ev, [TurnEvent::Abort { user: true, reason: Some(2) }]);
}

#[test]
fn gta_without_gtc_and_out_of_sequence_serials_are_violations() {
    let cases: Vec<Tsdu<'static>> = vec![
        Tsdu::one(Spdu::gta()),
        Tsdu::after_gt(Spdu::mia(SerialNumber::new(1).unwrap())),
        Tsdu::after_gt(Spdu::aea(SerialNumber::new(1).unwrap())),
        Tsdu::one(Spdu::fn_(None, None)),
    ];
    for t in cases {
        let mut p = open_machines(Mode::Normal);
        let mut out = Output::new();
        // To A (the holder): none of these is allowed.
        p.ends[0].handle(p.now, Input::Received(&tpkt(&t)), &mut out);
        assert!(
            out.indications().any(|i| *i == Indication::PAbortInd { reason: PAbortReason::ProtocolError }),
            "{t:?}"
        );
    }
}

/// A pump that delivers every TPKT to the peer in `chunk`-octet pieces.
fn chunked_run(chunk: usize) -> (Vec<Indication>, Vec<Vec<u8>>) {
    let mut m = [Machine::new(Config::new("MTA-A")), Machine::new(Config::new("MTA-B"))];
    let mut queue: std::collections::VecDeque<(usize, Input<'static>)> = Default::default();
    let mut bytes: std::collections::VecDeque<(usize, Vec<u8>)> = Default::default();
    let mut inds = Vec::new();
    let mut sent = Vec::new();
    queue.push_back((0, Input::Request(Request::Open)));
    let msg = Apdu::message("CHUNK", &[7u8; 3000]);
    let mut out = Output::new();
    for step in 0..10_000 {
        let (who, input) = if let Some(q) = queue.pop_front() {
            q
        } else if let Some((to, b)) = bytes.pop_front() {
            for c in b.chunks(chunk) {
                out.clear();
                m[to].handle(0, Input::Received(c), &mut out);
                handle_out(to, &out, &mut queue, &mut bytes, &mut inds, &mut sent, &msg);
            }
            continue;
        } else {
            let _ = step;
            break;
        };
        out.clear();
        m[who].handle(0, input, &mut out);
        handle_out(who, &out, &mut queue, &mut bytes, &mut inds, &mut sent, &msg);
    }
    (inds, sent)
}

#[allow(clippy::too_many_arguments)]
fn handle_out(
    who: usize,
    out: &Output,
    queue: &mut std::collections::VecDeque<(usize, Input<'static>)>,
    bytes: &mut std::collections::VecDeque<(usize, Vec<u8>)>,
    inds: &mut Vec<Indication>,
    sent: &mut Vec<Vec<u8>>,
    msg: &Apdu,
) {
    for a in &out.actions {
        match a {
            Action::Transmit(t) => {
                bytes.push_back((1 - who, out.bytes(t).to_vec()));
                sent.push(out.bytes(t).to_vec());
            }
            Action::Connect => {
                queue.push_back((who, Input::Transport(TransportEvent::Connected)));
                queue.push_back((1 - who, Input::Transport(TransportEvent::Incoming)));
            }
            Action::Indication(i) => {
                inds.push(i.clone());
                match i {
                    Indication::OpenInd => queue.push_back((who, Input::Request(Request::OpenResponse(Ok(()))))),
                    Indication::OpenCnf(Ok(())) => {
                        queue.push_back((who, Input::Request(Request::Transfer(msg.clone()))))
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

#[test]
fn byte_chunking_does_not_matter() {
    let whole = chunked_run(usize::MAX);
    assert!(whole.0.iter().any(|i| matches!(i, Indication::TransferCnf { ok: true, .. })), "{:?}", whole.0);
    for chunk in [1, 2, 3, 7, 100] {
        assert_eq!(chunked_run(chunk), whole, "chunk {chunk}");
    }
}

/// The PDUs of a complete session (open, transfer, please/give, close).
fn sample_stream() -> Vec<(usize, Vec<u8>)> {
    let mut p = pair(Mode::Normal);
    p.submit(0, big(1, 2_500));
    p.submit(1, msg(2));
    p.run(MAX);
    p.feed(0, Input::Request(Request::TurnPlease(0)));
    p.run(MAX);
    p.trace()
        .iter()
        .filter_map(|t| match &t.kind {
            TraceKind::Pdu { bytes, .. } => Some((t.from, bytes.clone())),
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A session's bytes with one octet changed, replayed into fresh
    /// machines: whatever happens, nothing panics and every PDU the
    /// machines send still decodes.
    #[test]
    fn mutated_sessions_never_panic(at in 0usize..4000, val in any::<u8>(), cut in proptest::option::of(1usize..64)) {
        let stream = sample_stream();
        let mut m = [Machine::new(Config::new("MTA-A")), Machine::new(Config::new("MTA-B"))];
        let mut out = Output::new();
        m[0].handle(0, Input::Request(Request::Open), &mut out);
        m[0].handle(0, Input::Transport(TransportEvent::Connected), &mut out);
        m[1].handle(0, Input::Transport(TransportEvent::Incoming), &mut out);
        let mut pos = 0usize;
        for (from, mut b) in stream {
            if (pos..pos + b.len()).contains(&at) {
                b[at - pos] = val;
            }
            pos += b.len();
            let to = 1 - from;
            out.clear();
            match cut {
                Some(c) => for piece in b.chunks(c) { m[to].handle(0, Input::Received(piece), &mut out); },
                None => m[to].handle(0, Input::Received(&b), &mut out),
            }
            if to == 1 && m[1].phase() == Phase::AwaitOpenResponse {
                m[1].handle(0, Input::Request(Request::OpenResponse(Ok(()))), &mut out);
            }
            for (_, sent) in out.transmits() {
                prop_assert!(rtse_codec::tpkt::parse_exact(sent).is_ok());
            }
        }
    }

    /// Arbitrary bytes into a machine in each phase never panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), phase in 0u8..4) {
        let mut p = open_machines(Mode::Normal);
        let who = usize::from(phase % 2);
        let mut out = Output::new();
        if phase >= 2 {
            let mut m = Machine::new(Config::new("X"));
            m.handle(0, Input::Transport(TransportEvent::Incoming), &mut out);
            m.handle(0, Input::Received(&bytes), &mut out);
        } else {
            let mut framed = vec![3, 0, 0, 0, 2, 0xf0, 0x80];
            framed.extend_from_slice(&bytes);
            let n = framed.len() as u16;
            framed[2..4].copy_from_slice(&n.to_be_bytes());
            p.ends[who].handle(0, Input::Received(&framed), &mut out);
            p.ends[who].handle(0, Input::Received(&bytes), &mut out);
        }
    }
}
