//! X.410-1984 "RTS" PDUs: what RTSE puts directly into session user data
//! in X.410-1984 mode (no presentation, no ACSE).
//!
//! ```text
//! PConnect ::= SET { dataTransferSyntax [0] IMPLICIT SET { [0] IMPLICIT INTEGER {x409(0)} },
//!                    pUserData [1] IMPLICIT SET { RTORQ members, applicationProtocol DEFAULT p1(1) } }
//! PAccept  ::= SET { dataTransferSyntax [0] ..., pUserData [1] IMPLICIT SET { RTOAC members } }
//! PRefuse  ::= SET { refuseReason [0] IMPLICIT RefuseReason }
//! AbortInformation ::= SET { abortReason [0] OPTIONAL, reflectedParameter [1] BIT STRING OPTIONAL }
//! Priority ::= INTEGER                                          -- PT user data
//! ```
//!
//! The module is reconstructed (see `x410.md`); the member types are the
//! RTSE ones from [`crate::rtse`], parsed by the same functions.
//!
//! PConnect and PAccept have the same first octets (`31 .. a0 03 80 01 00
//! a1 ..`), so the parser must be told which slot the bytes came from: the
//! entry points are per slot ([`parse_connect`] for CN user data,
//! [`parse_accept`] for AC, [`parse_refuse`] for RF after its reason code,
//! [`parse_priority`] for PT, [`parse_abort`] for AB), or [`parse`] with a
//! [`Slot`].

use crate::ber::{write_int, write_tlv, BitString, Reader, Tag, Tlv, INTEGER, SET};
use crate::error::{Error, Found, Layer, Result};
use crate::rtse::{
    emit_rtoac_members, emit_rtorq_members, int_len, parse_rtoac_members, parse_rtorq_members, rtoac_members_len,
    rtorq_members_len, set_members, tlv_len, AbortReason, RefuseReason, Rtoac, Rtorq,
};

const L: Layer = Layer::X410;

/// `x409(0)`: the only data transfer syntax X.410 defines.
pub const X409: i64 = 0;
/// `applicationProtocol` default in PConnect: P1.
pub const APPLICATION_PROTOCOL_P1: i64 = 1;

/// One X.410 PDU. JSON: `{"pdu": "PConnect", ...}`; Priority is
/// `{"pdu": "Priority", "priority": n}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum X410Pdu<'a> {
    PConnect(PConnect<'a>),
    PAccept(PAccept<'a>),
    PRefuse(PRefuse),
    /// RT-TURN-PLEASE priority.
    Priority(i64),
    AbortInformation(AbortInformation<'a>),
}

/// S-CONNECT request user data.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PConnect<'a> {
    /// `dataTransferSyntax` (x409 = 0).
    pub data_transfer_syntax: i64,
    /// `pUserData`: the RTORQ members; `application_protocol` is DEFAULT 1
    /// here (see [`PConnect::application_protocol`]).
    #[serde(flatten)]
    pub user_data: Rtorq<'a>,
}

/// S-CONNECT response (accept) user data.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PAccept<'a> {
    /// `dataTransferSyntax` (x409 = 0).
    pub data_transfer_syntax: i64,
    /// `pUserData`: the RTOAC members.
    #[serde(flatten)]
    pub user_data: Rtoac<'a>,
}

/// S-CONNECT response (refuse) user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PRefuse {
    pub refuse_reason: RefuseReason,
}

/// S-U-ABORT user data.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct AbortInformation<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_reason: Option<AbortReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reflected_parameter: Option<BitString<'a>>,
}

impl PConnect<'_> {
    /// Effective application protocol (DEFAULT p1(1) in X.410).
    pub fn application_protocol(&self) -> i64 {
        self.user_data.application_protocol.unwrap_or(APPLICATION_PROTOCOL_P1)
    }
}

/// Where X.410 user data was found: decides how `31 ..` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Slot {
    /// CN user data: PConnect.
    Connect,
    /// AC user data: PAccept.
    Accept,
    /// RF user data after the reason code: PRefuse.
    Refuse,
    /// PT user data: Priority.
    TokenPlease,
    /// AB user data: AbortInformation.
    Abort,
}

impl X410Pdu<'_> {
    /// `"PConnect"`, `"PAccept"`, `"PRefuse"`, `"Priority"`, `"AbortInformation"`.
    pub const fn name(&self) -> &'static str {
        match self {
            X410Pdu::PConnect(_) => "PConnect",
            X410Pdu::PAccept(_) => "PAccept",
            X410Pdu::PRefuse(_) => "PRefuse",
            X410Pdu::Priority(_) => "Priority",
            X410Pdu::AbortInformation(_) => "AbortInformation",
        }
    }
    /// The slot this PDU belongs in.
    pub const fn slot(&self) -> Slot {
        match self {
            X410Pdu::PConnect(_) => Slot::Connect,
            X410Pdu::PAccept(_) => Slot::Accept,
            X410Pdu::PRefuse(_) => Slot::Refuse,
            X410Pdu::Priority(_) => Slot::TokenPlease,
            X410Pdu::AbortInformation(_) => Slot::Abort,
        }
    }
}

impl serde::Serialize for X410Pdu<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        #[serde(tag = "pdu")]
        enum Ser<'b, 'a> {
            PConnect(&'b PConnect<'a>),
            PAccept(&'b PAccept<'a>),
            PRefuse(&'b PRefuse),
            Priority { priority: i64 },
            AbortInformation(&'b AbortInformation<'a>),
        }
        match self {
            X410Pdu::PConnect(p) => Ser::PConnect(p),
            X410Pdu::PAccept(p) => Ser::PAccept(p),
            X410Pdu::PRefuse(p) => Ser::PRefuse(p),
            X410Pdu::Priority(p) => Ser::Priority { priority: *p },
            X410Pdu::AbortInformation(p) => Ser::AbortInformation(p),
        }
        .serialize(s)
    }
}

// ---------------------------------------------------------------------------
// Parsing.

fn read_set<'a>(input: &'a [u8], what: &'static str) -> Result<(Tlv<'a>, &'a [u8])> {
    let mut r = Reader::new(L, input);
    let t = r.expect(SET, what)?;
    Ok((t, r.rest()))
}

/// Parse the user data of `slot` from the front of `input`; returns the
/// PDU and what follows. Offsets are relative to `input`.
pub fn parse(slot: Slot, input: &[u8]) -> Result<(X410Pdu<'_>, &[u8])> {
    Ok(match slot {
        Slot::Connect => parse_connect(input).map(|(p, r)| (X410Pdu::PConnect(p), r))?,
        Slot::Accept => parse_accept(input).map(|(p, r)| (X410Pdu::PAccept(p), r))?,
        Slot::Refuse => parse_refuse(input).map(|(p, r)| (X410Pdu::PRefuse(p), r))?,
        Slot::TokenPlease => parse_priority(input).map(|(p, r)| (X410Pdu::Priority(p), r))?,
        Slot::Abort => parse_abort(input).map(|(p, r)| (X410Pdu::AbortInformation(p), r))?,
    })
}

/// `dataTransferSyntax [0] IMPLICIT SET { [0] IMPLICIT INTEGER }`.
fn parse_data_transfer_syntax(t: &Tlv<'_>) -> Result<i64> {
    let mut v = None;
    set_members(t, L, "DataTransferSyntax member [0], once", &[Tag::ctx(0)], |_, m| {
        v = Some(m.int(L, "data transfer syntax [0] INTEGER")?);
        Ok(())
    })?;
    v.ok_or_else(|| {
        Error::new(L, t.offset, "data transfer syntax [0] in DataTransferSyntax", Found::Other("a SET without it"))
    })
}

/// The two members of PConnect/PAccept: `[0]` syntax and `[1]` user data
/// (as a TLV for the caller's member parser).
fn connect_members<'a>(set: &Tlv<'a>, what: &'static str) -> Result<(i64, Tlv<'a>)> {
    let (mut dts, mut ud) = (None, None);
    set_members(set, L, what, &[Tag::ctx_c(0), Tag::ctx_c(1)], |i, m| {
        if i == 0 {
            dts = Some(parse_data_transfer_syntax(m)?);
        } else {
            ud = Some(*m);
        }
        Ok(())
    })?;
    let miss = |w| Error::new(L, set.offset, w, Found::Other("a SET without it"));
    Ok((dts.ok_or_else(|| miss("dataTransferSyntax [0]"))?, ud.ok_or_else(|| miss("pUserData [1]"))?))
}

/// PConnect (CN user data).
pub fn parse_connect(input: &[u8]) -> Result<(PConnect<'_>, &[u8])> {
    let (set, rest) = read_set(input, "PConnect SET")?;
    let (data_transfer_syntax, ud) = connect_members(&set, "PConnect member [0] or [1], each once")?;
    let user_data = parse_rtorq_members(&ud, L)?;
    Ok((PConnect { data_transfer_syntax, user_data }, rest))
}

/// PAccept (AC user data).
pub fn parse_accept(input: &[u8]) -> Result<(PAccept<'_>, &[u8])> {
    let (set, rest) = read_set(input, "PAccept SET")?;
    let (data_transfer_syntax, ud) = connect_members(&set, "PAccept member [0] or [1], each once")?;
    let user_data = parse_rtoac_members(&ud, L)?;
    Ok((PAccept { data_transfer_syntax, user_data }, rest))
}

/// PRefuse (RF user data after the reason code octet).
pub fn parse_refuse(input: &[u8]) -> Result<(PRefuse, &[u8])> {
    let (set, rest) = read_set(input, "PRefuse SET")?;
    let mut rr = None;
    set_members(&set, L, "PRefuse member [0], once", &[Tag::ctx(0)], |_, m| {
        rr = Some(RefuseReason::from_i64(m.int(L, "refuseReason [0] INTEGER")?));
        Ok(())
    })?;
    let refuse_reason =
        rr.ok_or_else(|| Error::new(L, set.offset, "refuseReason [0] in PRefuse", Found::Other("a SET without it")))?;
    Ok((PRefuse { refuse_reason }, rest))
}

/// Priority (PT user data): a bare INTEGER. Allocates nothing.
pub fn parse_priority(input: &[u8]) -> Result<(i64, &[u8])> {
    let mut r = Reader::new(L, input);
    let t = r.expect(INTEGER, "Priority INTEGER")?;
    Ok((t.int(L, "Priority INTEGER")?, r.rest()))
}

/// AbortInformation (AB user data).
pub fn parse_abort(input: &[u8]) -> Result<(AbortInformation<'_>, &[u8])> {
    let (set, rest) = read_set(input, "AbortInformation SET")?;
    let mut out = AbortInformation::default();
    set_members(&set, L, "AbortInformation member [0] or [1], each once", &[Tag::ctx(0), Tag::ctx(1)], |i, m| {
        if i == 0 {
            out.abort_reason = Some(AbortReason::from_i64(m.int(L, "abortReason [0] INTEGER")?));
        } else {
            out.reflected_parameter = Some(m.bits(L, "reflectedParameter [1] BIT STRING")?);
        }
        Ok(())
    })?;
    Ok((out, rest))
}

// ---------------------------------------------------------------------------
// Writing.

/// Append the canonical encoding of `pdu`.
pub fn emit(pdu: &X410Pdu<'_>, out: &mut Vec<u8>) {
    match pdu {
        X410Pdu::PConnect(p) => emit_connect(p, out),
        X410Pdu::PAccept(p) => emit_accept(p, out),
        X410Pdu::PRefuse(p) => emit_refuse(p, out),
        X410Pdu::Priority(p) => emit_priority(*p, out),
        X410Pdu::AbortInformation(p) => emit_abort(p, out),
    }
}

fn emit_dts(v: i64, out: &mut Vec<u8>) {
    write_tlv(out, Tag::ctx_c(0), |o| write_int(o, Tag::ctx(0), v));
}

pub fn emit_connect(p: &PConnect<'_>, out: &mut Vec<u8>) {
    write_tlv(out, SET, |o| {
        emit_dts(p.data_transfer_syntax, o);
        write_tlv(o, Tag::ctx_c(1), |o| emit_rtorq_members(&p.user_data, o));
    });
}

pub fn emit_accept(p: &PAccept<'_>, out: &mut Vec<u8>) {
    write_tlv(out, SET, |o| {
        emit_dts(p.data_transfer_syntax, o);
        write_tlv(o, Tag::ctx_c(1), |o| emit_rtoac_members(&p.user_data, o));
    });
}

pub fn emit_refuse(p: &PRefuse, out: &mut Vec<u8>) {
    write_tlv(out, SET, |o| write_int(o, Tag::ctx(0), p.refuse_reason.to_i64()));
}

pub fn emit_priority(p: i64, out: &mut Vec<u8>) {
    write_int(out, INTEGER, p);
}

pub fn emit_abort(p: &AbortInformation<'_>, out: &mut Vec<u8>) {
    write_tlv(out, SET, |o| {
        if let Some(v) = p.abort_reason {
            write_int(o, Tag::ctx(0), v.to_i64());
        }
        if let Some(b) = &p.reflected_parameter {
            crate::ber::write_bits(o, Tag::ctx(1), b);
        }
    });
}

/// Octets [`emit`] writes for `pdu`.
pub fn encoded_len(pdu: &X410Pdu<'_>) -> usize {
    let dts = |v| tlv_len(Tag::ctx_c(0), int_len(Tag::ctx(0), v));
    match pdu {
        X410Pdu::PConnect(p) => {
            tlv_len(SET, dts(p.data_transfer_syntax) + tlv_len(Tag::ctx_c(1), rtorq_members_len(&p.user_data)))
        }
        X410Pdu::PAccept(p) => {
            tlv_len(SET, dts(p.data_transfer_syntax) + tlv_len(Tag::ctx_c(1), rtoac_members_len(&p.user_data)))
        }
        X410Pdu::PRefuse(p) => tlv_len(SET, int_len(Tag::ctx(0), p.refuse_reason.to_i64())),
        X410Pdu::Priority(p) => int_len(INTEGER, *p),
        X410Pdu::AbortInformation(p) => tlv_len(
            SET,
            p.abort_reason.map_or(0, |v| int_len(Tag::ctx(0), v.to_i64()))
                + p.reflected_parameter.as_ref().map_or(0, |b| tlv_len(Tag::ctx(1), b.data.len() + 1)),
        ),
    }
}
