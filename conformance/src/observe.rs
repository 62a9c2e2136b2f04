//! From decoded PDU stacks to the Turn tracker's events: the one bridge
//! between the codec and the tracker, used by the timeline, the simulator's
//! invariants and the conformance verdicts alike.
//!
//! Each SPDU of a stack becomes at most a couple of events: the empty GT
//! (or PT without token item and user data) that prefixes category-2 SPDUs
//! is dropped; a transfer completed by AE is
//! announced by a `TransferLabel` (the P1 MTS identifier) just before the
//! `ActivityEnd`.

use crate::tracker::{
    Accept, ActivityId, CloseHow, ConnRef, Connect, Dialogue, Mode, RefOctets, Resume, Side, TurnEvent,
};
use rtse_codec::presentation::Ppdu;
use rtse_codec::rtse::{self, ConnectionData, RtseApdu, SsUserRef};
use rtse_codec::session::{ConnectionId, Spdu};
use rtse_codec::stack::{Sender, Stack, Upper};
use rtse_codec::x410::X410Pdu;

/// The tracker's side for the codec's sender.
pub const fn side(s: Sender) -> Side {
    match s {
        Sender::Initiator => Side::Initiator,
        Sender::Responder => Side::Responder,
    }
}

/// The tracker's close kind for a capture's.
pub const fn close_how(h: rtse_codec::capture::CloseHow) -> CloseHow {
    match h {
        rtse_codec::capture::CloseHow::Fin => CloseHow::Fin,
        rtse_codec::capture::CloseHow::Rst => CloseHow::Rst,
        rtse_codec::capture::CloseHow::Eof | rtse_codec::capture::CloseHow::Evicted => CloseHow::Eof,
    }
}

fn conn_ref(id: &ConnectionId<'_>) -> Option<ConnRef> {
    // The CN's calling reference identifies the connection (the AC's
    // called reference echoes it); recovery quotes calling + common.
    let calling = id.calling_ref.or(id.called_ref)?;
    Some(ConnRef {
        calling: calling.into(),
        common: id.common_ref.unwrap_or_default().into(),
        additional: id.additional_ref.map(RefOctets::from),
    })
}

fn recover_ref(cd: &ConnectionData<'_>) -> Option<ConnRef> {
    let ConnectionData::Recover(sci) = cd else { return None };
    let calling = match &sci.calling_ss_user_reference {
        SsUserRef::T61String(o) | SsUserRef::OctetString(o) => RefOctets::from(o.as_bytes()),
    };
    Some(ConnRef {
        calling,
        common: sci.common_reference.as_bytes().into(),
        additional: sci.additional_reference_information.as_ref().map(|o| o.as_bytes().into()),
    })
}

fn dialogue(d: rtse::DialogueMode) -> Option<Dialogue> {
    match d {
        rtse::DialogueMode::Monologue => Some(Dialogue::Monologue),
        rtse::DialogueMode::Twa => Some(Dialogue::Twa),
        _ => None,
    }
}

fn small(v: i64) -> Option<u32> {
    u32::try_from(v).ok()
}

/// The activity identifier, truncated to the octets the tracker keeps.
fn activity_id(raw: &[u8]) -> ActivityId {
    let kept = &raw[..raw.len().min(ActivityId::CAPACITY)];
    ActivityId::from_bytes(kept).unwrap_or(ActivityId::number(0))
}

fn connect_event(c: &rtse_codec::session::Connect<'_>, up: &Upper<'_>) -> Connect {
    let mut ev = Connect {
        token_setting: c.item.as_ref().and_then(|i| i.token_setting).map(|t| t.0),
        conn_ref: c.connection_id.as_ref().and_then(conn_ref),
        session_requirements: c.requirements.map(|r| r.0),
        ..Connect::default()
    };
    let rtorq = match (&up.rtse, &up.x410) {
        (Some(RtseApdu::Rtorq(q)), _) => {
            ev.mode = Some(Mode::Normal);
            Some(q)
        }
        (_, Some(X410Pdu::PConnect(p))) => {
            ev.mode = Some(Mode::X410);
            Some(&p.user_data)
        }
        _ => None,
    };
    if let Some(q) = rtorq {
        ev.recover = recover_ref(&q.connection_data);
        ev.dialogue = dialogue(q.dialogue_mode());
        ev.checkpoint_size = small(q.checkpoint_size());
        ev.window_size = small(q.window_size());
    }
    ev
}

fn accept_event(c: &rtse_codec::session::Connect<'_>, up: &Upper<'_>) -> Accept {
    let mut ev = Accept {
        token_setting: c.item.as_ref().and_then(|i| i.token_setting).map(|t| t.0),
        session_requirements: c.requirements.map(|r| r.0),
        ..Accept::default()
    };
    let rtoac = match (&up.rtse, &up.x410) {
        (Some(RtseApdu::Rtoac(a)), _) => Some(a),
        (_, Some(X410Pdu::PAccept(p))) => Some(&p.user_data),
        _ => None,
    };
    if let Some(a) = rtoac {
        ev.recover = matches!(a.connection_data, ConnectionData::Recover(_));
        ev.checkpoint_size = small(a.checkpoint_size());
        ev.window_size = small(a.window_size());
    }
    ev
}

/// The Turn events one stack carries, in order.
pub fn events(stack: &Stack<'_>, mut on: impl FnMut(TurnEvent)) {
    let Some(ss) = &stack.session else { return };
    for (spdu, up) in ss.iter() {
        let ev = match spdu {
            Spdu::Cn(c) => TurnEvent::Connect(Box::new(connect_event(c, up))),
            Spdu::Ac(c) => TurnEvent::Accept(accept_event(c, up)),
            Spdu::Rf(_) => {
                let reason = match (&up.rtse, &up.x410) {
                    (Some(RtseApdu::Rtorj(j)), _) => j.refuse_reason.map(|r| r.to_i64()),
                    (_, Some(X410Pdu::PRefuse(p))) => Some(p.refuse_reason.to_i64()),
                    _ => None,
                };
                TurnEvent::Refuse {
                    reason,
                    recovery_refused: reason == Some(rtse::RefuseReason::CannotRecover.to_i64()),
                }
            }
            Spdu::Gt(t) => {
                let tokens = t.tokens().0;
                if tokens == 0 {
                    continue;
                }
                TurnEvent::GiveTokens { tokens }
            }
            Spdu::Pt(t) => {
                let priority = match (&up.rtse, &up.x410) {
                    (Some(RtseApdu::Rttp(p)), _) | (_, Some(X410Pdu::Priority(p))) => Some(*p),
                    _ => None,
                };
                let tokens = t.tokens().0;
                if tokens == 0 && priority.is_none() {
                    // The category-0 prefix basic concatenation puts before
                    // a category-2 SPDU (p772's PT+MAA): asks for nothing.
                    continue;
                }
                TurnEvent::PleaseTokens { tokens, priority }
            }
            Spdu::Gtc(_) => TurnEvent::GiveControl,
            Spdu::Gta(_) => TurnEvent::GiveControlAck,
            Spdu::As(a) => TurnEvent::ActivityStart { id: activity_id(a.activity_id) },
            Spdu::Ar(a) => TurnEvent::ActivityResume(Box::new(Resume {
                old_conn: a.linking.calling_ref.map(|calling| ConnRef {
                    calling: calling.into(),
                    common: a.linking.common_ref.unwrap_or_default().into(),
                    additional: a.linking.additional_ref.map(RefOctets::from),
                }),
                old_id: activity_id(a.linking.old_activity_id),
                serial: a.linking.serial.value(),
                new_id: activity_id(a.activity_id),
            })),
            Spdu::Dt(d) => TurnEvent::Data { octets: d.user_info.len() },
            Spdu::Mip(s) => TurnEvent::MinorSync { serial: s.serial.value(), confirm_required: s.confirm_required() },
            Spdu::Mia(s) => TurnEvent::MinorSyncAck { serial: s.serial.value() },
            Spdu::Ae(s) | Spdu::Map(s) => {
                if let Some(id) = up.transfer.as_ref().and_then(|t| t.id.as_ref()) {
                    on(TurnEvent::TransferLabel { label: id.clone() });
                }
                TurnEvent::ActivityEnd { serial: s.serial.value() }
            }
            Spdu::Aea(s) | Spdu::Maa(s) => TurnEvent::ActivityEndAck { serial: s.serial.value() },
            Spdu::Ai(r) => TurnEvent::ActivityInterrupt { reason: r.reason },
            Spdu::Aia(_) => TurnEvent::ActivityInterruptAck,
            Spdu::Ad(r) => TurnEvent::ActivityDiscard { reason: r.reason },
            Spdu::Ada(_) => TurnEvent::ActivityDiscardAck,
            Spdu::Ed(r) => TurnEvent::ExceptionReport { reason: r.reason },
            Spdu::Fn(_) => TurnEvent::Release,
            Spdu::Dn(_) => TurnEvent::Disconnect,
            Spdu::Nf(_) => TurnEvent::NotFinished,
            Spdu::Ab(_) => {
                // RT-U-ABORT: an ARU (normal mode) or AbortInformation with
                // a user reason; an ARP is the presentation provider's.
                let provider = matches!(up.presentation, Some(Ppdu::Arp(_)));
                let reason = match (&up.rtse, &up.x410) {
                    (Some(RtseApdu::Rtab(r)), _) => r.abort_reason.map(|a| a.to_i64()),
                    (_, Some(X410Pdu::AbortInformation(a))) => a.abort_reason.map(|a| a.to_i64()),
                    _ => None,
                };
                TurnEvent::Abort { user: !provider, reason }
            }
            Spdu::Aa(_) => TurnEvent::AbortAccept,
            other => TurnEvent::Other { name: other.name() },
        };
        on(ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtse_codec::stack::{AssociationDecoder, Sender};

    fn names(hex_lines: &[&str], senders: &[Sender]) -> Vec<String> {
        let mut dec = AssociationDecoder::new();
        let mut out = Vec::new();
        for (i, h) in hex_lines.iter().enumerate() {
            let b = rtse_codec::hex::decode(h).unwrap();
            dec.push(senders[i], &b, |d| {
                events(&d.result.unwrap(), |e| out.push(serde_json::to_string(&e).unwrap()));
            });
        }
        out
    }

    #[test]
    fn example_4_please_give_ack() {
        let ex4 = ["0300001a02f0800211100101c10c610a3008020103a003020100", "0300000902f0801500", "0300000902f0801600"];
        let got = names(&ex4, &[Sender::Responder, Sender::Initiator, Sender::Responder]);
        assert_eq!(got, [r#"{"event":"PT","tokens":1,"priority":0}"#, r#"{"event":"GTC"}"#, r#"{"event":"GTA"}"#]);
    }

    fn example(name: &str) -> Vec<String> {
        let p = format!("{}/../corpus/examples/{name}.hex", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(p).unwrap().lines().filter(|l| !l.starts_with('#')).map(str::to_string).collect()
    }

    #[test]
    fn example_5_recovery_quotes_the_lost_connection_and_resumes() {
        use Sender::{Initiator as I, Responder as R};
        let lines = example("ex5_recovery_normal");
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let got = names(&refs, &[I, R, I]);
        assert!(got[0].contains(r#""recover":{"calling":"MTA-A/0001","common":"250101115500Z"}"#), "{}", got[0]);
        assert!(got[0].contains(r#""conn_ref":{"calling":"MTA-A/0002","common":"250101120500Z"}"#), "{}", got[0]);
        assert!(got[0].contains(r#""token_setting":0"#), "{}", got[0]);
        assert!(got[1].contains(r#""recover":true"#), "{}", got[1]);
        assert_eq!(
            got[2],
            r#"{"event":"AR","old_conn":{"calling":"MTA-A/0001","common":"250101115500Z"},"old_id":"1","serial":1,"new_id":"2"}"#
        );
    }

    #[test]
    fn example_3_transfer_is_labelled_before_its_end() {
        use Sender::{Initiator as I, Responder as R};
        let lines = example("ex3_transfer_normal");
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let got = names(&refs, &[I, I, I, R, I, I, R]);
        let kinds: Vec<&str> = got.iter().map(|e| e.split('"').nth(3).unwrap()).collect();
        assert_eq!(kinds, ["AS", "DT", "MIP", "MIA", "DT", "LABEL", "AE", "AEA"]);
        assert!(got[5].contains("/C=GB/A= /P=ACME/;MSG-0001"), "{}", got[5]);
    }
}
