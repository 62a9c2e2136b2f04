//! Building the PDUs the machine sends, layer by layer, with the codec's
//! emitters, into an [`Output`]. Scratch buffers come from the output's
//! pool, so steady-state PDUs cost no heap allocation.

use super::heard::Heard;
use super::{Dialogue, Output, PduInfo, Transmit};
use crate::machine::Action;
use rtse_codec::acse::{self, Aare, Aarq, Abrt, AcseApdu, External, Rlre, Rlrq, SourceDiagnostic};
use rtse_codec::ber::{self, BitString, Octets};
use rtse_codec::cotp::{self, Tpdu};
use rtse_codec::p1::{self, AuthenticatedBind, Bind, Credentials, Password, PasswordForm};
use rtse_codec::presentation::{
    self, ContextDef, ContextResult, Cp, CpNormal, Cpa, CpaNormal, Cpr, CprNormal, Mode, Pdv, UserData,
};
use rtse_codec::rtse::{
    self, AbortReason, ConnectionData, DialogueMode, RefuseReason, Rtab, Rtoac, Rtorj, Rtorq, RtseApdu,
    SessionConnectionIdentifier, SsUserRef,
};
use rtse_codec::session::{
    self, Connect, ConnectionId, Linking, SerialNumber, Spdu, SpduKind, TokenSetting, Tokens, Tsdu, RTSE_REQUIREMENTS,
};
use rtse_codec::tpkt;
use rtse_codec::x410::{self, AbortInformation, PAccept, PConnect, PRefuse};
use std::sync::Arc;

/// Presentation context identifiers of one association (normal mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Pcids {
    pub acse: i64,
    pub rtse: i64,
    pub mtse: i64,
    /// Contexts the CP proposed (the CPA answers each).
    pub proposed: u8,
}

impl Pcids {
    /// What we propose: 1 ACSE, 3 id-as-mta-rtse, 5 id-as-mtse (example 2).
    pub const OURS: Pcids = Pcids { acse: 1, rtse: 3, mtse: 5, proposed: 3 };
}

/// How to write PDUs on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Wire {
    pub mode: Mode,
    pub pcid: Pcids,
    /// Largest TPDU (X.224 TPDU size), header included.
    pub tpdu_max: u16,
}

/// TPDU size we propose and assume: 2048 (class 0's largest), code 0x0b.
pub(crate) const TPDU_SIZE_CODE: u8 = 0x0b;
pub(crate) const TPDU_MAX: u16 = 2048;
/// TSAP selectors and session selectors (example 1/2: `00 01`).
const SEL: &[u8] = &[0, 1];
const PSEL: &[u8] = &[0, 0, 0, 1];
/// The simple password every MTA here binds with.
const PASSWORD: &[u8] = b"secret";
const VERSION1_BITS: &[u8] = &[0x80];

fn version1() -> BitString<'static> {
    BitString { unused: 7, data: Octets::borrowed(VERSION1_BITS) }
}

impl Output {
    fn push_transmit(&mut self, start: usize, pdu: PduInfo) {
        let end = self.wire.len();
        let (Ok(start), Ok(end)) = (u32::try_from(start), u32::try_from(end)) else {
            return;
        };
        self.actions.push(Action::Transmit(Transmit { start, end, pdu }));
    }

    fn send_tpdu(&mut self, tpdu: &Tpdu<'_>, name: &'static str) {
        let mut b = self.take_buf();
        cotp::emit(tpdu, &mut b);
        let start = self.wire.len();
        tpkt::emit(&tpkt::Tpkt::new(&b), &mut self.wire);
        self.push_transmit(start, PduInfo { tpdu: name, spdu: None, eot: true });
        self.give_buf(b);
    }

    /// One TSDU in as many DT TPDUs as the TPDU size needs.
    pub(crate) fn send_tsdu(&mut self, tsdu: &Tsdu<'_>, tpdu_max: u16) {
        let mut t = self.take_buf();
        session::emit_tsdu(tsdu, &mut t);
        self.send_tsdu_octets(&t, tsdu.last().map(Spdu::kind), tpdu_max);
        self.give_buf(t);
    }

    /// The octets of one TSDU (whose last SPDU is `spdu`) in as many DT
    /// TPDUs as the TPDU size needs.
    fn send_tsdu_octets(&mut self, t: &[u8], spdu: Option<SpduKind>, tpdu_max: u16) {
        let chunk = usize::from(tpdu_max).saturating_sub(3).max(1);
        let mut rest = t;
        loop {
            let (c, r) = rest.split_at(rest.len().min(chunk));
            let eot = r.is_empty();
            let start = self.wire.len();
            tpkt::emit_header(3 + c.len(), &mut self.wire);
            self.wire.extend_from_slice(&cotp::dt_header(eot));
            self.wire.extend_from_slice(c);
            self.push_transmit(start, PduInfo { tpdu: "DT", spdu, eot });
            rest = r;
            if eot {
                break;
            }
        }
    }
}

/// A PDU fixed by a few numbers (token, checkpoint and activity SPDUs
/// after the empty GT, GTC/GTA alone, PT), whose TPKT is built once per
/// [`Wire`] and then copied: the same key gives the same octets, which
/// `memoised_short_pdus_equal_fresh_ones` holds against a fresh build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Short {
    Gtc,
    Gta,
    Pt(i64),
    As(u32),
    Mip(u32),
    Mia(u32),
    Ae(u32),
    Aea(u32),
}

/// Octets built (or decoded) once and reused: the TPKTs of [`Short`]
/// PDUs, the TSDU octets before a DT's segment ([`dt`]), what a fresh
/// association's CN or AC carries above the session layer ([`Establish`]), and the octets
/// before the RTTR segment of a received DT ([`Memo::rttr_segment`]). All
/// in one buffer, the maps giving ranges of it. Bounded: emptied when it
/// outgrows [`Memo::MAX`] entries (serial numbers, activity identifiers
/// and segment lengths grow without bound).
#[derive(Debug, Default)]
pub(crate) struct Memo {
    octets: Vec<u8>,
    at: std::collections::HashMap<(Short, Wire), (Span, PduInfo), crate::fx::FxBuild>,
    dt: std::collections::HashMap<(Wire, usize), Span, crate::fx::FxBuild>,
    rttr: std::collections::HashMap<usize, Span, crate::fx::FxBuild>,
    establish: std::collections::HashMap<Establish, Span, crate::fx::FxBuild>,
    /// Per mode (normal, X.410), the transfers delivered: their octets,
    /// the span of the APDU in them (`None`: all of them) and its label.
    delivered: [std::collections::HashMap<Box<[u8]>, Delivered, crate::fx::FxBuild>; 2],
    /// What the user data of CNs and ACs said ([`Heard`]), per SPDU and
    /// decoding context (its mode, if it knows one): [`Memo::heard_slot`].
    heard: [std::collections::HashMap<Box<[u8]>, Heard, crate::fx::FxBuild>; 6],
    /// Normal-mode transfer payloads by (address of the APDU, MTSE
    /// context), with the APDU they wrap ([`transfer_payload`]).
    payloads: std::collections::HashMap<(usize, i64), (Arc<[u8]>, Arc<[u8]>), crate::fx::FxBuild>,
}

/// The span of the APDU in a transfer's octets (`None`: all of them) and
/// its label.
pub(crate) type Delivered = (Option<(usize, usize)>, Option<Arc<str>>);

/// A range of [`Memo::octets`].
type Span = (u32, u32);

impl Memo {
    const MAX: usize = 512;

    /// The memo of an output, made on first use.
    pub(crate) fn of(memo: &mut Option<Box<Memo>>) -> &mut Memo {
        memo.get_or_insert_with(Box::default)
    }

    fn get(&self, s: Span) -> Option<&[u8]> {
        self.octets.get(s.0 as usize..s.1 as usize)
    }

    /// Keep `bytes`: their span, valid until the memo is next emptied
    /// (which this does first when it is full).
    fn keep(&mut self, bytes: &[u8]) -> Option<Span> {
        if self.at.len() + self.dt.len() + self.rttr.len() + self.establish.len() >= Self::MAX {
            self.at.clear();
            self.dt.clear();
            self.rttr.clear();
            self.establish.clear();
            self.octets.clear();
        }
        let a = u32::try_from(self.octets.len()).ok()?;
        self.octets.extend_from_slice(bytes);
        Some((a, u32::try_from(self.octets.len()).ok()?))
    }

    /// Entries of each map of user data (transfers per mode, CN and AC
    /// user data per slot) kept at most (emptied beyond), and the longest
    /// transfer remembered.
    const USER_DATA: usize = 64;
    const DELIVERED_LEN: usize = 64 * 1024;

    /// What [`Memo::learn_delivered`] was told of the transfer `octets` in
    /// `mode`: a message delivered again (resent after an abort, or in
    /// another run of a simulation) is not decoded again. A transfer
    /// longer than [`Memo::DELIVERED_LEN`] is never remembered, so it is
    /// not hashed to be looked up either.
    pub(crate) fn delivered(&self, mode: Mode, octets: &[u8]) -> Option<&Delivered> {
        if octets.len() > Self::DELIVERED_LEN {
            return None;
        }
        self.delivered[mode as usize].get(octets)
    }

    /// Remember what the transfer `octets` in `mode` delivers (a function
    /// of the two).
    pub(crate) fn learn_delivered(&mut self, mode: Mode, octets: &[u8], d: Delivered) {
        let m = &mut self.delivered[mode as usize];
        if octets.len() > Self::DELIVERED_LEN {
            return;
        }
        if m.len() >= Self::USER_DATA {
            m.clear();
        }
        m.insert(octets.into(), d);
    }

    fn heard_slot(kind: SpduKind, ctx: Option<Mode>) -> usize {
        let mode = match ctx {
            None => 0,
            Some(Mode::X410) => 1,
            Some(Mode::Normal) => 2,
        };
        if kind == SpduKind::Cn {
            mode
        } else {
            3 + mode
        }
    }

    /// What the user data `ud` of a CN or AC (`kind`) decoded in a fresh
    /// context of mode `ctx` said, if it was seen before.
    pub(crate) fn heard(&self, kind: SpduKind, ctx: Option<Mode>, ud: &[u8]) -> Option<&Heard> {
        self.heard.get(Self::heard_slot(kind, ctx))?.get(ud)
    }

    /// Remember what `ud` said (a function of `kind`, `ctx` and `ud`).
    pub(crate) fn learn_heard(&mut self, kind: SpduKind, ctx: Option<Mode>, ud: &[u8], h: Heard) {
        let Some(m) = self.heard.get_mut(Self::heard_slot(kind, ctx)) else { return };
        if m.len() >= Self::USER_DATA {
            m.clear();
        }
        m.insert(ud.into(), h);
    }

    /// The RTTR segment of `ud`, the user data of a received normal-mode
    /// DT, without decoding it: when the octets before its last `n`
    /// octets are those before the segment of a DT with `ud.len()` octets
    /// of user data that [`Memo::learn_rttr`] saw decode, the last `n`
    /// octets are the segment. The decoders read a primitive OCTET
    /// STRING's content as opaque octets, so the same header decodes the
    /// same way whatever the segment holds (`received_dts_decode_as_the_stack_decoder_does`
    /// holds this to the stack decoder). `None`: decode it.
    pub(crate) fn rttr_segment<'a>(&self, ud: &'a [u8]) -> Option<&'a [u8]> {
        let head = self.rttr.get(&ud.len()).and_then(|&s| self.get(s))?;
        ud.strip_prefix(head)
    }

    /// Remember how the stack decoder split `ud` (a normal-mode DT's user
    /// data) when it gave the RTTR `segment`: only a segment borrowed from
    /// the last octets of `ud` (a primitive OCTET STRING closing every
    /// enclosing value) is remembered.
    pub(crate) fn learn_rttr(&mut self, ud: &[u8], segment: &rtse_codec::ber::Octets<'_>) {
        let std::borrow::Cow::Borrowed(seg) = &segment.0 else { return };
        let Some(cut) = ud.len().checked_sub(seg.len()) else { return };
        let tail = ud.get(cut..).unwrap_or(&[]);
        if seg.is_empty() || !std::ptr::eq(tail.as_ptr(), seg.as_ptr()) || self.rttr.contains_key(&ud.len()) {
            return;
        }
        if let Some(s) = self.keep(ud.get(..cut).unwrap_or(&[])) {
            self.rttr.insert(ud.len(), s);
        }
    }
}

impl Output {
    /// Send the TPKT of `key`: from the memo, or built by `build` (which
    /// must emit exactly what the key names) and remembered when it is one
    /// TPKT.
    fn short(&mut self, w: &Wire, key: Short, build: impl FnOnce(&mut Output)) {
        let memo = Memo::of(&mut self.memo);
        if let Some(&(s, pdu)) = memo.at.get(&(key, *w)) {
            let start = self.wire.len();
            if let Some(octets) = memo.get(s) {
                self.wire.extend_from_slice(octets);
                return self.push_transmit(start, pdu);
            }
        }
        let (a0, w0) = (self.actions.len(), self.wire.len());
        build(self);
        if let [Action::Transmit(t)] = self.actions.get(a0..).unwrap_or(&[]) {
            if t.start as usize == w0 {
                let pdu = t.pdu;
                let memo = Memo::of(&mut self.memo);
                if let Some(s) = memo.keep(self.wire.get(w0..).unwrap_or(&[])) {
                    memo.at.insert((key, *w), (s, pdu));
                }
            }
        }
    }
}

/// Send a [`Short`] PDU.
pub(crate) fn short(out: &mut Output, w: &Wire, key: Short) {
    out.short(w, key, |out| match key {
        Short::Gtc => alone(out, w, Spdu::gtc()),
        Short::Gta => alone(out, w, Spdu::gta()),
        Short::Pt(priority) => pt(out, w, priority),
        Short::As(id) => as_(out, w, id),
        Short::Mip(n) => after_gt(out, w, Spdu::mip(serial(n), true)),
        Short::Mia(n) => after_gt(out, w, Spdu::mia(serial(n))),
        Short::Ae(n) => after_gt(out, w, Spdu::ae(serial(n))),
        Short::Aea(n) => after_gt(out, w, Spdu::aea(serial(n))),
    });
}

pub(crate) fn cr(out: &mut Output, src_ref: u16) {
    let c = cotp::Connect {
        src_ref,
        tpdu_size: Some(TPDU_SIZE_CODE),
        calling_tsap: Some(Octets::borrowed(SEL)),
        called_tsap: Some(Octets::borrowed(SEL)),
        ..cotp::Connect::default()
    };
    out.send_tpdu(&Tpdu::Cr(c), "CR");
}

pub(crate) fn cc(out: &mut Output, dst_ref: u16, src_ref: u16, tpdu_size: u8) {
    let c = cotp::Connect {
        dst_ref,
        src_ref,
        tpdu_size: Some(tpdu_size),
        calling_tsap: Some(Octets::borrowed(SEL)),
        called_tsap: Some(Octets::borrowed(SEL)),
        ..cotp::Connect::default()
    };
    out.send_tpdu(&Tpdu::Cc(c), "CC");
}

/// `User-data { PDV { pcid, single-ASN1-type value } }`.
fn user_data(out: &mut Vec<u8>, pcid: i64, value: &[u8]) {
    presentation::emit_user_data(&UserData::one(Pdv::single(pcid, value)), out);
}

fn bind(name: &str) -> Bind<'_> {
    Bind::Authenticated(AuthenticatedBind {
        name: Octets::borrowed(name.as_bytes()),
        credentials: Credentials::Simple(Password::new(PasswordForm::Ia5String, Octets::borrowed(PASSWORD))),
        security_context: None,
        extensions: Vec::new(),
    })
}

fn sci<'a>(mode: Mode, calling: &'a [u8], common: &'a [u8]) -> SessionConnectionIdentifier<'a> {
    let c = Octets::borrowed(calling);
    SessionConnectionIdentifier {
        calling_ss_user_reference: match mode {
            Mode::Normal => SsUserRef::OctetString(c),
            Mode::X410 => SsUserRef::T61String(c),
        },
        common_reference: Octets::borrowed(common),
        additional_reference_information: None,
    }
}

/// What a CN carries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenParams<'a> {
    pub setting: TokenSetting,
    pub calling_ref: &'a [u8],
    pub common_ref: &'a [u8],
    /// The lost connection (calling, common) for a recovery.
    pub recover: Option<(&'a [u8], &'a [u8])>,
    pub checkpoint: u16,
    pub window: u16,
    pub dialogue: Dialogue,
    pub name: &'a Arc<str>,
}

fn dialogue(d: Dialogue) -> DialogueMode {
    match d {
        Dialogue::Monologue => DialogueMode::Monologue,
        Dialogue::Twa => DialogueMode::Twa,
    }
}

/// What a fresh association's CN or AC carries above the session layer
/// (CP/CPA with AARQ/AARE, RTORQ/RTOAC and the P1 bind; X.410-1984:
/// PConnect/PAccept) is a function of these alone: the connection
/// references are in the session layer, the Token Setting too. Those
/// octets are built once per key and reused (`memoised_connects_equal_fresh_ones`
/// holds them to a fresh build); a recovery's, which quote the lost
/// connection, are built every time unless the output remembers
/// recoveries (then keyed by the quoted references as well).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Establish {
    /// `Some`: a CN's, with its dialogue mode; `None`: an AC's.
    dialogue: Option<Dialogue>,
    wire: Wire,
    checkpoint: u16,
    window: u16,
    name: Arc<str>,
    /// A recovery's: the (calling, common) references it quotes
    /// ([`lost_key`]); only when the output remembers recoveries
    /// ([`Output::remember_recoveries`]: the model check, where the same
    /// few recur).
    lost: Option<Box<[u8]>>,
}

/// A recovery's quoted (calling, common) references as one key: each
/// prefixed by its length, so that no two pairs give the same octets.
fn lost_key((calling, common): (&[u8], &[u8])) -> Box<[u8]> {
    let mut k = Vec::with_capacity(calling.len() + common.len() + 16);
    for r in [calling, common] {
        k.extend_from_slice(&(r.len() as u64).to_le_bytes());
        k.extend_from_slice(r);
    }
    k.into_boxed_slice()
}

impl Output {
    /// The memo key of a CN's (`dialogue` given) or an AC's upper layers:
    /// `None` for a recovery's unless the output remembers recoveries.
    fn establish_key(
        &self,
        dialogue: Option<Dialogue>,
        w: &Wire,
        (checkpoint, window): (u16, u16),
        name: &Arc<str>,
        recover: Option<(&[u8], &[u8])>,
    ) -> Option<Establish> {
        let lost = match recover {
            None => None,
            Some(lost) if self.recoveries_repeat => Some(lost_key(lost)),
            Some(_) => return None,
        };
        Some(Establish { dialogue, wire: *w, checkpoint, window, name: Arc::clone(name), lost })
    }

    /// Append to `d` the octets `key` names: from the memo, or built by
    /// `build` (and remembered when there is a key).
    fn establish(&mut self, key: Option<Establish>, d: &mut Vec<u8>, build: impl FnOnce(&mut Output, &mut Vec<u8>)) {
        let memo = Memo::of(&mut self.memo);
        if let Some(octets) = key.as_ref().and_then(|k| memo.establish.get(k)).and_then(|&s| memo.get(s)) {
            d.extend_from_slice(octets);
            return;
        }
        let at = d.len();
        build(self, d);
        if let Some(k) = key {
            let memo = Memo::of(&mut self.memo);
            if let Some(s) = memo.keep(d.get(at..).unwrap_or(&[])) {
                memo.establish.insert(k, s);
            }
        }
    }
}

pub(crate) fn cn(out: &mut Output, w: &Wire, p: &OpenParams<'_>) {
    let key = out.establish_key(Some(p.dialogue), w, (p.checkpoint, p.window), p.name, p.recover);
    let mut d = out.take_buf();
    out.establish(key, &mut d, |out, d| cn_upper(out, w, p, d));
    let version = if w.mode == Mode::Normal { session::VERSION_2 } else { session::VERSION_1 };
    let connect = Connect::new(version, p.setting, RTSE_REQUIREMENTS, &d)
        .with_ssels(Some(SEL), Some(SEL))
        .with_connection_id(ConnectionId::calling(p.calling_ref, p.common_ref));
    out.send_tsdu(&Tsdu::one(Spdu::cn(connect)), w.tpdu_max);
    out.give_buf(d);
}

/// The CN's octets above the session layer, into `d`.
fn cn_upper(out: &mut Output, w: &Wire, p: &OpenParams<'_>, d: &mut Vec<u8>) {
    let (mut a, mut b, mut c) = (out.take_buf(), out.take_buf(), out.take_buf());
    let normal = w.mode == Mode::Normal;
    if p.recover.is_none() {
        p1::emit_bind_argument(&bind(p.name), normal, &mut a);
    }
    let rtorq = Rtorq {
        checkpoint_size: Some(i64::from(p.checkpoint)),
        window_size: Some(i64::from(p.window)),
        dialogue_mode: Some(dialogue(p.dialogue)),
        connection_data: match p.recover {
            Some((calling, common)) => ConnectionData::Recover(sci(w.mode, calling, common)),
            None => ConnectionData::Open(Some(&a)),
        },
        application_protocol: (!normal).then_some(x410::APPLICATION_PROTOCOL_P1),
    };
    if normal {
        rtse::emit(&RtseApdu::Rtorq(rtorq), &mut b);
        let aarq = Aarq {
            protocol_version: Some(version1()),
            user_information: Some(vec![External::single(w.pcid.rtse, &b)].into()),
            ..Aarq::new(presentation::ID_AC_MTS_TRANSFER)
        };
        acse::emit(&AcseApdu::Aarq(aarq), &mut c);
        let ctx = |pcid, syntax| ContextDef {
            pcid,
            abstract_syntax: syntax,
            transfer_syntaxes: vec![presentation::BER].into(),
        };
        let cp = Cp {
            mode: Mode::Normal,
            x410_mode_parameters: None,
            x410_offset: 0,
            normal: Some(CpNormal {
                protocol_version: Some(version1()),
                calling_selector: Some(Octets::borrowed(PSEL)),
                called_selector: Some(Octets::borrowed(PSEL)),
                context_list: Some(
                    vec![
                        ctx(w.pcid.acse, presentation::ID_AS_ACSE),
                        ctx(w.pcid.rtse, presentation::ID_AS_MTA_RTSE),
                        ctx(w.pcid.mtse, presentation::ID_AS_MTSE),
                    ]
                    .into(),
                ),
                user_data: Some(UserData::one(Pdv::single(w.pcid.acse, &c))),
                ..CpNormal::default()
            }),
        };
        presentation::emit_cp(&cp, d);
    } else {
        x410::emit_connect(&PConnect { data_transfer_syntax: x410::X409, user_data: rtorq }, d);
    }
    for x in [a, b, c] {
        out.give_buf(x);
    }
}

/// What an AC carries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AcceptParams<'a> {
    pub setting: TokenSetting,
    pub checkpoint: u16,
    pub window: u16,
    /// Echo of the recovery CN's `recover` (calling, common).
    pub recover: Option<(&'a [u8], &'a [u8])>,
    pub name: &'a Arc<str>,
}

pub(crate) fn ac(out: &mut Output, w: &Wire, p: &AcceptParams<'_>) {
    let key = out.establish_key(None, w, (p.checkpoint, p.window), p.name, p.recover);
    let mut d = out.take_buf();
    out.establish(key, &mut d, |out, d| ac_upper(out, w, p, d));
    let version = if w.mode == Mode::Normal { session::VERSION_2 } else { session::VERSION_1 };
    let accept = Connect::new(version, p.setting, RTSE_REQUIREMENTS, &d).with_ssels(None, Some(SEL));
    out.send_tsdu(&Tsdu::one(Spdu::ac(accept)), w.tpdu_max);
    out.give_buf(d);
}

/// The AC's octets above the session layer, into `d`.
fn ac_upper(out: &mut Output, w: &Wire, p: &AcceptParams<'_>, d: &mut Vec<u8>) {
    let (mut a, mut b, mut c) = (out.take_buf(), out.take_buf(), out.take_buf());
    let normal = w.mode == Mode::Normal;
    if p.recover.is_none() {
        p1::emit_bind_result(&bind(p.name), normal, &mut a);
    }
    let rtoac = Rtoac {
        checkpoint_size: Some(i64::from(p.checkpoint)),
        window_size: Some(i64::from(p.window)),
        connection_data: match p.recover {
            Some((calling, common)) => ConnectionData::Recover(sci(w.mode, calling, common)),
            None => ConnectionData::Open(Some(&a)),
        },
    };
    if normal {
        rtse::emit(&RtseApdu::Rtoac(rtoac), &mut b);
        let aare = Aare {
            protocol_version: Some(version1()),
            user_information: Some(vec![External::single(w.pcid.rtse, &b)].into()),
            ..Aare::new(presentation::ID_AC_MTS_TRANSFER, acse::RESULT_ACCEPTED, SourceDiagnostic::User(0))
        };
        acse::emit(&AcseApdu::Aare(aare), &mut c);
        let cpa = Cpa {
            mode: Mode::Normal,
            x410_mode_parameters: None,
            x410_offset: 0,
            normal: Some(CpaNormal {
                protocol_version: Some(version1()),
                responding_selector: Some(Octets::borrowed(PSEL)),
                result_list: Some(accept_all(w.pcid.proposed).into()),
                user_data: Some(UserData::one(Pdv::single(w.pcid.acse, &c))),
                ..CpaNormal::default()
            }),
        };
        presentation::emit_cpa(&cpa, d);
    } else {
        x410::emit_accept(&PAccept { data_transfer_syntax: x410::X409, user_data: rtoac }, d);
    }
    for x in [a, b, c] {
        out.give_buf(x);
    }
}

fn accept_all(n: u8) -> Vec<ContextResult<'static>> {
    (0..n)
        .map(|_| ContextResult {
            result: presentation::RESULT_ACCEPTANCE,
            transfer_syntax: Some(presentation::BER),
            provider_reason: None,
        })
        .collect()
}

/// RT-OPEN refused: RF reason 2 with AARE rejected + RTORJ in a CPR (normal
/// mode, where RTORJ has no refuseReason: the AARE result says transient
/// for rtsBusy, permanent for the others, cannotRecover included), or
/// PRefuse (X.410 mode).
pub(crate) fn rf(out: &mut Output, w: &Wire, reason: RefuseReason) {
    let (mut a, mut b, mut c) = (out.take_buf(), out.take_buf(), out.take_buf());
    match w.mode {
        Mode::Normal => {
            rtse::emit(&RtseApdu::Rtorj(Rtorj::default()), &mut a);
            // Only rtsBusy is worth retrying.
            let result = match reason {
                RefuseReason::RtsBusy => acse::RESULT_REJECTED_TRANSIENT,
                _ => acse::RESULT_REJECTED_PERMANENT,
            };
            let aare = Aare {
                protocol_version: Some(version1()),
                user_information: Some(vec![External::single(w.pcid.rtse, &a)].into()),
                ..Aare::new(presentation::ID_AC_MTS_TRANSFER, result, SourceDiagnostic::User(1))
            };
            acse::emit(&AcseApdu::Aare(aare), &mut b);
            let cpr = Cpr::Normal(CprNormal {
                protocol_version: Some(version1()),
                responding_selector: Some(Octets::borrowed(PSEL)),
                result_list: Some(accept_all(w.pcid.proposed).into()),
                user_data: Some(UserData::one(Pdv::single(w.pcid.acse, &b))),
                ..CprNormal::default()
            });
            presentation::emit_cpr(&cpr, &mut c);
        }
        Mode::X410 => x410::emit_refuse(&PRefuse { refuse_reason: reason }, &mut c),
    }
    out.send_tsdu(&Tsdu::one(Spdu::rf(session::RF_REJECTED_BY_USER, &c)), w.tpdu_max);
    for x in [a, b, c] {
        out.give_buf(x);
    }
}

/// A session-level refusal (the CN carried no RTSE connect): RF reason 0.
pub(crate) fn rf_session(out: &mut Output, w: &Wire) {
    out.send_tsdu(&Tsdu::one(Spdu::rf(0, &[])), w.tpdu_max);
}

pub(crate) fn pt(out: &mut Output, w: &Wire, priority: i64) {
    let (mut a, mut b) = (out.take_buf(), out.take_buf());
    let ud: &[u8] = match w.mode {
        Mode::Normal => {
            rtse::emit(&RtseApdu::Rttp(priority), &mut a);
            user_data(&mut b, w.pcid.rtse, &a);
            &b
        }
        Mode::X410 => {
            x410::emit_priority(priority, &mut a);
            &a
        }
    };
    out.send_tsdu(&Tsdu::one(Spdu::pt(Tokens::DATA, Some(ud))), w.tpdu_max);
    out.give_buf(a);
    out.give_buf(b);
}

pub(crate) fn alone(out: &mut Output, w: &Wire, spdu: Spdu<'_>) {
    out.send_tsdu(&Tsdu::one(spdu), w.tpdu_max);
}

pub(crate) fn after_gt(out: &mut Output, w: &Wire, spdu: Spdu<'_>) {
    out.send_tsdu(&Tsdu::after_gt(spdu), w.tpdu_max);
}

/// Activity Identifier: a BER INTEGER (ISODE; what Wireshark decodes).
pub(crate) fn activity_id(n: u32) -> ([u8; 10], usize) {
    let (c, i) = ber::int_content(i64::from(n));
    let content = c.get(i..).unwrap_or(&[]);
    let mut a = [0u8; 10];
    a[0] = 2;
    a[1] = content.len() as u8;
    for (slot, b) in a.iter_mut().skip(2).zip(content) {
        *slot = *b;
    }
    (a, 2 + content.len())
}

pub(crate) fn serial(n: u32) -> SerialNumber {
    SerialNumber::wrapping(n)
}

pub(crate) fn as_(out: &mut Output, w: &Wire, id: u32) {
    let (a, n) = activity_id(id);
    after_gt(out, w, Spdu::as_(&a[..n]));
}

pub(crate) fn ar(out: &mut Output, w: &Wire, old: (&[u8], &[u8]), old_id: &[u8], at: u32, new_id: u32) {
    let (a, n) = activity_id(new_id);
    let linking = Linking::new(old_id, serial(at)).with_refs(Some(old.0), Some(old.1));
    after_gt(out, w, Spdu::ar(linking, &a[..n]));
}

/// A DT with one segment of a transfer: GT, DT SPDU, and in normal mode
/// User-data { PDV { RTTR } }. The segment is the last octets of the
/// TSDU and what comes before it depends only on the wire and the
/// segment's length (BER and session lengths), so that part is built once
/// per (wire, length) and the segment appended to it
/// (`memoised_dts_equal_fresh_ones` holds it to a fresh build).
pub(crate) fn dt(out: &mut Output, w: &Wire, segment: &[u8]) {
    let key = (*w, segment.len());
    let mut t = out.take_buf();
    let memo = Memo::of(&mut out.memo);
    if let Some(head) = memo.dt.get(&key).and_then(|&s| memo.get(s)) {
        t.extend_from_slice(head);
        t.extend_from_slice(segment);
    } else {
        dt_tsdu(out, w, segment, &mut t);
        let cut = t.len().saturating_sub(segment.len());
        if t.ends_with(segment) {
            let memo = Memo::of(&mut out.memo);
            if let Some(s) = memo.keep(t.get(..cut).unwrap_or(&[])) {
                memo.dt.insert(key, s);
            }
        }
    }
    out.send_tsdu_octets(&t, Some(SpduKind::Dt), w.tpdu_max);
    out.give_buf(t);
}

/// The TSDU of a DT, built layer by layer.
fn dt_tsdu(out: &mut Output, w: &Wire, segment: &[u8], t: &mut Vec<u8>) {
    match w.mode {
        Mode::Normal => {
            let (mut a, mut b) = (out.take_buf(), out.take_buf());
            rtse::emit(&RtseApdu::Rttr(Octets::borrowed(segment)), &mut a);
            user_data(&mut b, w.pcid.rtse, &a);
            session::emit_tsdu(&Tsdu::after_gt(Spdu::dt(&b)), t);
            out.give_buf(a);
            out.give_buf(b);
        }
        Mode::X410 => session::emit_tsdu(&Tsdu::after_gt(Spdu::dt(segment)), t),
    }
}

/// The octets a normal-mode transfer carries: `EXTERNAL { pcid of
/// id-as-mtse, single-ASN1-type apdu }` (rtse.md §2); X.410: the APDU
/// itself (shared, not copied). A normal-mode payload is remembered per
/// APDU (by address: the memo holds the APDU, so the address names these
/// octets for as long as the entry lives) and context: an APDU sent again
/// (after an abort, or in another run of a simulation) is not wrapped
/// again.
pub(crate) fn transfer_payload(out: &mut Output, w: &Wire, apdu: &Arc<[u8]>) -> Arc<[u8]> {
    if w.mode == Mode::X410 {
        return Arc::clone(apdu);
    }
    let memo = Memo::of(&mut out.memo);
    let key = (Arc::as_ptr(apdu).cast::<u8>() as usize, w.pcid.mtse);
    if let Some((_, payload)) = memo.payloads.get(&key).filter(|(a, _)| Arc::ptr_eq(a, apdu)) {
        return Arc::clone(payload);
    }
    let mut v = Vec::with_capacity(apdu.len() + 12);
    acse::emit_external(&External::single(w.pcid.mtse, apdu), &mut v);
    let payload: Arc<[u8]> = Arc::from(v);
    if memo.payloads.len() >= Memo::USER_DATA {
        memo.payloads.clear();
    }
    memo.payloads.insert(key, (Arc::clone(apdu), Arc::clone(&payload)));
    payload
}

fn acse_user_data(out: &mut Output, w: &Wire, apdu: &AcseApdu<'_>, f: impl FnOnce(&mut Output, Option<&[u8]>)) {
    match w.mode {
        Mode::Normal => {
            let (mut a, mut b) = (out.take_buf(), out.take_buf());
            acse::emit(apdu, &mut a);
            user_data(&mut b, w.pcid.acse, &a);
            f(out, Some(&b));
            out.give_buf(a);
            out.give_buf(b);
        }
        Mode::X410 => f(out, None),
    }
}

pub(crate) fn fn_(out: &mut Output, w: &Wire) {
    let w2 = *w;
    acse_user_data(out, w, &AcseApdu::Rlrq(Rlrq { reason: Some(0), ..Rlrq::default() }), |o, ud| {
        alone(o, &w2, Spdu::fn_(None, ud));
    });
}

pub(crate) fn dn(out: &mut Output, w: &Wire) {
    let w2 = *w;
    acse_user_data(out, w, &AcseApdu::Rlre(Rlre { reason: Some(0), ..Rlre::default() }), |o, ud| {
        alone(o, &w2, Spdu::dn(ud));
    });
}

/// AB carrying an RTSE abort: normal mode ARU { ABRT { source user,
/// user-information RTAB { reason } } }; X.410 mode AbortInformation {
/// reason } (none for userError, which X.410 does not have).
pub(crate) fn ab_rtse(out: &mut Output, w: &Wire, reason: AbortReason) {
    let td = session::TD_RELEASE | session::TD_USER_ABORT;
    let (mut a, mut b, mut c) = (out.take_buf(), out.take_buf(), out.take_buf());
    match w.mode {
        Mode::Normal => {
            rtse::emit(&RtseApdu::Rtab(Rtab { abort_reason: Some(reason), ..Rtab::default() }), &mut a);
            let abrt = Abrt {
                abort_source: acse::ABORT_SOURCE_USER,
                user_information: Some(vec![External::single(w.pcid.rtse, &a)].into()),
                ..Abrt::default()
            };
            acse::emit(&AcseApdu::Abrt(abrt), &mut b);
            let aru = presentation::Aru::Normal(presentation::AruNormal {
                context_ids: None,
                user_data: Some(UserData::one(Pdv::single(w.pcid.acse, &b))),
            });
            presentation::emit_aru(&aru, &mut c);
            alone(out, w, Spdu::ab(td, Some(&c)));
        }
        Mode::X410 if reason == AbortReason::UserError => alone(out, w, Spdu::ab(td, None)),
        Mode::X410 => {
            x410::emit_abort(&AbortInformation { abort_reason: Some(reason), reflected_parameter: None }, &mut c);
            alone(out, w, Spdu::ab(td, Some(&c)));
        }
    }
    for x in [a, b, c] {
        out.give_buf(x);
    }
}

/// Session AB for a session protocol error (undecodable or out-of-place
/// SPDUs): Transport Disconnect "release" + "protocol error", no user data.
pub(crate) fn ab_session(out: &mut Output, w: &Wire) {
    alone(out, w, Spdu::ab(session::TD_RELEASE | session::TD_PROTOCOL_ERROR, None));
}

/// UTCTime `YYMMDDhhmmssZ` of `2025-01-01T00:00:00Z` plus `now` (ns): the
/// Common Reference of a connection opened at `now`.
pub(crate) fn utc_time(now: u64) -> [u8; 13] {
    let secs = now / 1_000_000_000;
    // Days from 1970-01-01 to 2025-01-01.
    let days = 20_089 + secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let two = |v: u64| [b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8];
    let mut out = [0u8; 13];
    for (i, part) in
        [two(y % 100), two(m), two(d), two(rem / 3600), two(rem / 60 % 60), two(rem % 60)].into_iter().enumerate()
    {
        out[2 * i] = part[0];
        out[2 * i + 1] = part[1];
    }
    out[12] = b'Z';
    out
}

/// Howard Hinnant's `civil_from_days` for non-negative day counts.
fn civil_from_days(z: u64) -> (u64, u64, u64) {
    let z = z + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A memoised short PDU is the octets (and the description) a fresh
    /// build gives, for every kind, both modes, several TPDU sizes.
    #[test]
    fn memoised_short_pdus_equal_fresh_ones() {
        let keys = [
            Short::Gtc,
            Short::Gta,
            Short::Pt(0),
            Short::Pt(7),
            Short::As(1),
            Short::As(300),
            Short::Mip(1),
            Short::Mip(70_000),
            Short::Mia(2),
            Short::Ae(3),
            Short::Aea(128),
        ];
        for mode in [Mode::Normal, Mode::X410] {
            for tpdu_max in [128, TPDU_MAX] {
                let w = Wire { mode, pcid: Pcids::OURS, tpdu_max };
                let mut memo = Output::new();
                for key in keys {
                    let mut fresh = Output::new();
                    short(&mut fresh, &w, key);
                    for _ in 0..2 {
                        memo.clear();
                        short(&mut memo, &w, key);
                        assert_eq!(memo.actions, fresh.actions, "{key:?} {mode:?} {tpdu_max}");
                        let bytes = |o: &Output| o.transmits().map(|(_, b)| b.to_vec()).collect::<Vec<_>>();
                        assert_eq!(bytes(&memo), bytes(&fresh), "{key:?} {mode:?} {tpdu_max}");
                    }
                }
                assert_eq!(memo.memo.as_ref().map_or(0, |m| m.at.len()), keys.len());
            }
        }
    }

    fn bytes(o: &Output) -> Vec<Vec<u8>> {
        o.transmits().map(|(_, b)| b.to_vec()).collect()
    }

    /// Segment lengths either side of every BER and session length-form
    /// boundary, and longer than a TPDU.
    const LENGTHS: [usize; 14] = [0, 1, 100, 127, 128, 200, 254, 255, 256, 1000, 1024, 2040, 4000, 70_000];

    /// A DT built from a remembered header is the octets (and the
    /// description) a fresh build gives, for other segments of the same
    /// length, both modes, two TPDU sizes.
    #[test]
    fn memoised_dts_equal_fresh_ones() {
        let mut rng = crate::sim::SplitMix64::new(5);
        for mode in [Mode::Normal, Mode::X410] {
            for tpdu_max in [128, TPDU_MAX] {
                let w = Wire { mode, pcid: Pcids::OURS, tpdu_max };
                let mut memo = Output::new();
                for n in LENGTHS {
                    for _ in 0..3 {
                        let segment = rng.bytes(n);
                        let mut fresh = Output::new();
                        dt(&mut fresh, &w, &segment);
                        memo.clear();
                        dt(&mut memo, &w, &segment);
                        assert_eq!(memo.actions, fresh.actions, "{n} {mode:?} {tpdu_max}");
                        assert_eq!(bytes(&memo), bytes(&fresh), "{n} {mode:?} {tpdu_max}");
                    }
                }
                assert!(memo.memo.as_ref().is_some_and(|m| m.dt.len() == LENGTHS.len()));
            }
        }
    }

    /// A received DT's segment found through a remembered header is the
    /// one the stack decoder gives: for other segments of the same
    /// length, and for every single-octet corruption of them (where the
    /// memo answers, the decoder must decode the same segment; elsewhere
    /// the machine decodes it).
    #[test]
    fn received_dts_decode_as_the_stack_decoder_does() {
        use rtse_codec::stack::{self, Context, Sender, Upper};
        let decode = |ud: &[u8]| {
            let mut ctx = Context::with_mode(Mode::Normal);
            ctx.rtse = Some(true);
            match stack::decode_upper_of(&mut ctx, Sender::Initiator, &Spdu::dt(ud), ud) {
                Ok(Upper { rtse: Some(RtseApdu::Rttr(o)), .. }) => Some(o.as_bytes().to_vec()),
                _ => None,
            }
        };
        let user_data_of = |segment: &[u8]| {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            rtse::emit(&RtseApdu::Rttr(Octets::borrowed(segment)), &mut a);
            user_data(&mut b, Pcids::OURS.rtse, &a);
            b
        };
        let mut rng = crate::sim::SplitMix64::new(7);
        let mut memo = Memo::default();
        let mut answered = 0;
        for n in LENGTHS.into_iter().filter(|&n| n > 0 && n < 5000) {
            let first = user_data_of(&rng.bytes(n));
            assert_eq!(memo.rttr_segment(&first), None, "{n}: nothing learnt yet");
            let seg = first.len() - n;
            let Ok(Upper { rtse: Some(RtseApdu::Rttr(o)), .. }) = stack::decode_upper_of(
                &mut Context::with_mode(Mode::Normal),
                Sender::Initiator,
                &Spdu::dt(&first),
                &first,
            ) else {
                panic!("{n}: our DT decodes")
            };
            memo.learn_rttr(&first, &o);
            let other = user_data_of(&rng.bytes(n));
            assert_eq!(memo.rttr_segment(&other), Some(&other[seg..]), "{n}");
            for k in 0..other.len() {
                let mut bad = other.clone();
                bad[k] ^= 0x5a;
                if let Some(s) = memo.rttr_segment(&bad) {
                    assert_eq!(Some(s.to_vec()), decode(&bad), "{n}: corrupted at {k}");
                    answered += 1;
                }
            }
        }
        assert!(answered > 1000, "{answered}");
    }

    /// A fresh association's CN and AC built from remembered upper layers
    /// are the octets a fresh build gives, whatever the references and
    /// the Token Setting (outside the memo key), both modes; a recovery's
    /// is never remembered.
    #[test]
    fn memoised_connects_equal_fresh_ones() {
        let name: Arc<str> = Arc::from("MTA-A");
        for mode in [Mode::Normal, Mode::X410] {
            let w = Wire { mode, pcid: Pcids::OURS, tpdu_max: TPDU_MAX };
            let mut memo = Output::new();
            // One remembering recoveries too (the model check's).
            let mut all = Output::new();
            all.remember_recoveries();
            for (i, calling) in [&b"MTA-A/0001"[..], b"MTA-A/0002", b"MTA-A/0003"].into_iter().enumerate() {
                let setting = if i == 1 { TokenSetting::TURN_RESPONDER } else { TokenSetting::ALL_INITIATOR };
                let recover = (i == 2).then_some((&b"MTA-A/0001"[..], &b"250101000000Z"[..]));
                let open = OpenParams {
                    setting,
                    calling_ref: calling,
                    common_ref: b"250101000001Z",
                    recover,
                    checkpoint: 1,
                    window: 3,
                    dialogue: Dialogue::Twa,
                    name: &name,
                };
                let accept = AcceptParams { setting, checkpoint: 1, window: 3, recover, name: &name };
                for twice in 0..2 {
                    let (mut fresh, mut fresh_ac) = (Output::new(), Output::new());
                    cn(&mut fresh, &w, &open);
                    ac(&mut fresh_ac, &w, &accept);
                    for (out, what) in [(&mut memo, ""), (&mut all, ", recoveries remembered")] {
                        out.clear();
                        cn(out, &w, &open);
                        assert_eq!(bytes(out), bytes(&fresh), "CN {i} {mode:?} {twice}{what}");
                        out.clear();
                        ac(out, &w, &accept);
                        assert_eq!(bytes(out), bytes(&fresh_ac), "AC {i} {mode:?} {twice}{what}");
                    }
                }
            }
            assert!(memo.memo.as_ref().is_some_and(|m| m.establish.len() == 2), "one CN, one AC");
            assert!(all.memo.as_ref().is_some_and(|m| m.establish.len() == 4), "a CN and an AC, fresh and recovering");
        }
    }

    #[test]
    fn utc_time_of_the_epoch_and_later() {
        assert_eq!(&utc_time(0), b"250101000000Z");
        assert_eq!(&utc_time((31 + 28) * 86_400 * 1_000_000_000 + 3_661_000_000_000), b"250301010101Z");
        assert_eq!(&utc_time(365 * 86_400 * 1_000_000_000), b"260101000000Z");
    }

    #[test]
    fn activity_ids_are_ber_integers() {
        let (a, n) = activity_id(1);
        assert_eq!(&a[..n], &[2, 1, 1]);
        let (a, n) = activity_id(300);
        assert_eq!(&a[..n], &[2, 2, 1, 0x2c]);
    }
}
