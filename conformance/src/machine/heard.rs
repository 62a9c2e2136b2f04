//! What the machine reads of the layers above a CN or an AC, taken out of
//! the decoded stack once ([`Heard::of`]). It is a function of the SPDU's
//! user data and the decoding context, so the output's memo keeps it for
//! the user data of a fresh association, which repeats from association
//! to association (the connection references are in the session layer):
//! such a CN or AC is then not decoded again. A recovery's quotes the lost
//! connection and is decoded every time.

use super::emit::Pcids;
use rtse_codec::presentation::{self, Mode, Ppdu};
use rtse_codec::rtse::{ConnectionData, DialogueMode, RtseApdu};
use rtse_codec::session::SpduKind;
use rtse_codec::stack::Upper;
use rtse_codec::x410::X410Pdu;

/// The layers above a CN or an AC, as far as the machine reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Heard {
    /// A CN: its RTSE connect (RTORQ, or X.410 PConnect), if it has one.
    Connect(Option<Connect>),
    /// An AC: its RTSE accept (RTOAC, or X.410 PAccept), if it has one.
    Accept(Option<Accept>),
}

/// An RTORQ or PConnect, and the presentation contexts of its CP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Connect {
    pub mode: Mode,
    pub contexts: Contexts,
    pub checkpoint: i64,
    pub window: i64,
    pub twa: bool,
    /// `recover`: the lost connection quoted (calling, common).
    pub recover: Option<(Box<[u8]>, Box<[u8]>)>,
}

/// The contexts a normal-mode CN's CP proposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Contexts {
    /// X.410-1984 mode: none.
    X410,
    /// Normal mode without a CP.
    NoCp,
    /// A CP without the ACSE or the RTSE context.
    Missing,
    /// A CP with both (the MTSE context defaults to the RTSE one).
    Found(Pcids),
}

/// An RTOAC or PAccept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Accept {
    pub checkpoint: i64,
    pub window: i64,
    /// It answers a recovery.
    pub recover: bool,
}

impl Heard {
    /// What a CN's or an AC's decoded upper layers say (`None` for any
    /// other SPDU).
    pub(crate) fn of(kind: SpduKind, up: &Upper<'_>) -> Option<Heard> {
        match kind {
            SpduKind::Cn => Some(Heard::Connect(connect(up))),
            SpduKind::Ac => Some(Heard::Accept(accept(up))),
            _ => None,
        }
    }

    /// Worth remembering: not a recovery's (each quotes its own lost
    /// connection, so its user data never repeats).
    pub(crate) fn repeats(&self) -> bool {
        match self {
            Heard::Connect(c) => c.as_ref().is_none_or(|c| c.recover.is_none()),
            Heard::Accept(a) => a.as_ref().is_none_or(|a| !a.recover),
        }
    }
}

fn connect(up: &Upper<'_>) -> Option<Connect> {
    let (mode, q) = match (&up.rtse, &up.x410) {
        (Some(RtseApdu::Rtorq(q)), _) => (Mode::Normal, q),
        (_, Some(X410Pdu::PConnect(p))) => (Mode::X410, &p.user_data),
        _ => return None,
    };
    let contexts = match (mode, &up.presentation) {
        (Mode::X410, _) => Contexts::X410,
        (Mode::Normal, Some(Ppdu::Cp(cp))) => {
            let list = cp.context_list();
            let find = |s: &rtse_codec::ber::Oid<'_>| list.iter().find(|d| d.abstract_syntax == *s).map(|d| d.pcid);
            match (find(&presentation::ID_AS_ACSE), find(&presentation::ID_AS_MTA_RTSE)) {
                (Some(acse), Some(rtse)) => {
                    let mtse = find(&presentation::ID_AS_MTSE).unwrap_or(rtse);
                    Contexts::Found(Pcids { acse, rtse, mtse, proposed: list.len().min(64) as u8 })
                }
                _ => Contexts::Missing,
            }
        }
        (Mode::Normal, _) => Contexts::NoCp,
    };
    let recover = match &q.connection_data {
        ConnectionData::Recover(sci) => {
            Some((sci.calling_ss_user_reference.value().as_bytes().into(), sci.common_reference.as_bytes().into()))
        }
        ConnectionData::Open(_) => None,
    };
    Some(Connect {
        mode,
        contexts,
        checkpoint: q.checkpoint_size(),
        window: q.window_size(),
        twa: q.dialogue_mode() == DialogueMode::Twa,
        recover,
    })
}

fn accept(up: &Upper<'_>) -> Option<Accept> {
    let a = match (&up.rtse, &up.x410) {
        (Some(RtseApdu::Rtoac(a)), _) => a,
        (_, Some(X410Pdu::PAccept(p))) => &p.user_data,
        _ => return None,
    };
    Some(Accept {
        checkpoint: a.checkpoint_size(),
        window: a.window_size(),
        recover: matches!(a.connection_data, ConnectionData::Recover(_)),
    })
}
