//! Whole-stack decoding: the bytes of one TPKT (or one TSDU) through every
//! layer, and a per-association decoder for TPKT byte streams that carries
//! what earlier PDUs taught (mode, presentation contexts, whether RTSE is in
//! use, the SPDU context) to later ones.
//!
//! Which layer sits above a session SPDU:
//! * normal mode: the SPDU's user data is a presentation PPDU (CP in CN, CPA
//!   in AC, CPR in RF, ARU/ARP in AB, User-data elsewhere); a PDV in the
//!   ACSE context holds an ACSE APDU, whose user-information EXTERNAL in the
//!   RTSE context holds an RTSE APDU (RTORQ, RTOAC, RTORJ, RTAB); a PDV in
//!   the RTSE context of a PT or DT holds RTTP or RTTR. The P1 bind rides in
//!   the RTSE connection data (`[16]`/`[17]`/`[18]` RO-notation wrapper).
//! * X.410-1984 mode: the user data of CN/AC/RF/AB/PT is an X.410 PDU
//!   (PConnect, PAccept, PRefuse, AbortInformation, Priority); the P1 bind
//!   rides unwrapped in the connection data; DT carries raw P1 octets.
//!
//! The mode is recognised from the CN (x410.md §4) and kept for the
//! association. Where no CN was seen (a capture starting mid-association),
//! PT user data starting `02` is taken as X.410, `61`/`40` as normal mode.
//!
//! An association whose AARQ carries no RTSE APDU (MMS, say) is decoded down
//! to ACSE and the P-DATA values are left alone. P1 is decoded only where
//! the association is known to carry P1 (application context
//! id-ac-mts-transfer, or X.410 application protocol 1) or where it
//! decodes; a P1 error is reported only in the first case.
//!
//! Transfers: the RTTR segments (normal mode) or DT octets (X.410 mode) of an
//! activity are collected per direction, bounded by
//! [`limits::MAX_TRANSFER_LEN`], and decoded when the activity ends (AE, or
//! MAP): the stack of that SPDU then carries a [`TransferSummary`] with the
//! P1 label (kind and MTS identifier).
//!
//! Offsets in errors count from the first byte of the input given to
//! [`decode_tpkt`] / [`decode_tsdu`]; for a TSDU reassembled from several DT
//! TPDUs, from the first byte of the TSDU.

use crate::acse::{self, AcseApdu, External};
use crate::cotp::{self, Tpdu};
use crate::error::{Error, Found, Layer, Result};
use crate::limits;
use crate::p1::{self, P1Pdu};
use crate::presentation::{self, ContextMap, Mode, Pdv, PdvValue, Ppdu, PpduSlot, UserData};
use crate::rtse::{self, RtseApdu};
use crate::session::{self, Spdu, SpduKind, Tsdu};
use crate::tpkt::{self, Tpkt};
use crate::x410::{self, X410Pdu};
use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};

/// Which side of the association sent a PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sender {
    /// The association-initiator (sent the CN).
    Initiator,
    /// The association-responder.
    Responder,
}

impl Sender {
    /// The other side.
    pub const fn peer(self) -> Sender {
        match self {
            Sender::Initiator => Sender::Responder,
            Sender::Responder => Sender::Initiator,
        }
    }
    const fn index(self) -> usize {
        self as usize
    }
}

/// What the decoder knows of one association.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Normal or X.410-1984 mode, once known.
    pub mode: Option<Mode>,
    /// Presentation contexts (normal mode): proposed by the CP, narrowed by
    /// the CPA.
    pub contexts: ContextMap,
    /// Whether the association uses RTSE (its AARQ carried an RTORQ, or it
    /// is in X.410 mode); `None` until known.
    pub rtse: Option<bool>,
    /// Whether the association carries P1 (application context
    /// id-ac-mts-transfer, or X.410 application protocol 1).
    pub p1: Option<bool>,
    /// Session requirements in force (from the AC), and the last SI-41 SPDU
    /// each side sent (to tell MAA from AEA).
    pub session: [session::Context; 2],
    /// Transfer reassembly per sender.
    transfers: [TransferBuf; 2],
    /// A CN or AC was seen: the transport carries a session connection, so
    /// a TSDU that does not decode is an error rather than other traffic.
    session_seen: bool,
}

#[derive(Debug, Clone, Default)]
struct TransferBuf {
    octets: Vec<u8>,
    /// Collecting (an activity is open).
    open: bool,
    /// More than the limit arrived: decoding is skipped.
    overflow: bool,
}

impl Context {
    /// A context for an association whose mode is known.
    pub fn with_mode(mode: Mode) -> Self {
        Context { mode: Some(mode), ..Context::default() }
    }

    fn session_ctx(&self, from: Sender) -> session::Context {
        self.session[from.index()]
    }
}

/// The layers above one SPDU. At most one PDU per layer: the first
/// presentation data value (or EXTERNAL) that the layer above claims.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Upper<'a> {
    pub presentation: Option<Ppdu<'a>>,
    pub acse: Option<AcseApdu<'a>>,
    pub rtse: Option<RtseApdu<'a>>,
    pub x410: Option<X410Pdu<'a>>,
    pub p1: Option<P1Pdu<'a>>,
    /// A transfer completed by this SPDU (AE/MAP), decoded from the
    /// collected segments. Boxed: rare, and an `Upper` is moved on every
    /// decode.
    pub transfer: Option<Box<TransferSummary>>,
}

impl Upper<'_> {
    /// No layer above the SPDU.
    pub const EMPTY: Upper<'static> =
        Upper { presentation: None, acse: None, rtse: None, x410: None, p1: None, transfer: None };
}

impl Upper<'_> {
    fn is_empty(&self) -> bool {
        self.presentation.is_none()
            && self.acse.is_none()
            && self.rtse.is_none()
            && self.x410.is_none()
            && self.p1.is_none()
            && self.transfer.is_none()
    }
}

/// A transfer reassembled from its segments, labelled from P1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferSummary {
    /// `Message`, `Report` or `Probe` (P1 names); `None` if P1 did not decode.
    #[serde(rename = "pdu")]
    pub kind: &'static str,
    /// MTS identifier, rendered `/C=../A=../P=../;local`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Octets of the reassembled APDU.
    pub octets: usize,
    /// Why the transfer could not be labelled.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_error")]
    pub error: Option<Error>,
}

fn ser_opt_error<S: Serializer>(e: &Option<Error>, s: S) -> core::result::Result<S::Ok, S::Error> {
    match e {
        Some(e) => s.collect_str(e),
        None => s.serialize_none(),
    }
}

/// One TSDU and the layers above each of its SPDUs.
///
/// Representation (private): the upper layers of one SPDU inline (in
/// every TSDU RTSE sends at most one SPDU carries user data: PT with
/// RT-TURN-PLEASE, the DT after a GT, a CN, ...), those of any other SPDU
/// with upper layers in a `Vec` that allocates only then. A `SessionStack`
/// is returned by value through every decode, so its size is what a
/// decode copies.
#[derive(Debug, Clone)]
pub struct SessionStack<'a> {
    pub tsdu: Tsdu<'a>,
    /// Index of the SPDU whose upper layers `upper` holds, if any.
    at: Option<u8>,
    upper: Upper<'a>,
    /// The other SPDUs with upper layers, by index, ascending.
    more: Vec<(u8, Upper<'a>)>,
}

impl<'a> SessionStack<'a> {
    fn new(tsdu: Tsdu<'a>) -> Self {
        SessionStack { tsdu, at: None, upper: Upper::default(), more: Vec::new() }
    }
    /// The SPDUs with their upper layers.
    pub fn iter(&self) -> impl Iterator<Item = (&Spdu<'a>, &Upper<'a>)> + '_ {
        self.tsdu.iter().enumerate().map(|(i, s)| (s, self.upper_at(i)))
    }
    /// The upper layers of SPDU `i`.
    pub fn upper(&self, i: usize) -> Option<&Upper<'a>> {
        (i < self.tsdu.len()).then(|| self.upper_at(i))
    }
    fn upper_at(&self, i: usize) -> &Upper<'a> {
        if self.at.is_some_and(|a| usize::from(a) == i) {
            return &self.upper;
        }
        self.more.iter().find(|(j, _)| usize::from(*j) == i).map_or(&Upper::EMPTY, |(_, u)| u)
    }
}

impl PartialEq for SessionStack<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.tsdu == o.tsdu && self.iter().map(|(_, u)| u).eq(o.iter().map(|(_, u)| u))
    }
}
impl Eq for SessionStack<'_> {}

/// Every layer of one TPKT (or of one TSDU, when decoded from session up).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stack<'a> {
    pub tpkt: Option<Tpkt<'a>>,
    pub tpdu: Option<Tpdu<'a>>,
    /// Present when a complete TSDU was decoded (a DT with EOT, or a TSDU
    /// given directly).
    pub session: Option<SessionStack<'a>>,
}

impl<'a> Stack<'a> {
    /// The SPDU kinds, in order.
    pub fn spdu_kinds(&self) -> impl Iterator<Item = SpduKind> + '_ {
        self.session.iter().flat_map(|s| s.tsdu.iter().map(Spdu::kind))
    }
}

// ---------------------------------------------------------------------------
// Decoding.

fn offset_of(whole: &[u8], part: &[u8]) -> usize {
    // Both are slices of the same allocation (part borrowed from whole);
    // fall back to 0 rather than panic if not.
    let (w, p) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    if p >= w && p + part.len() <= w + whole.len() {
        p - w
    } else {
        0
    }
}

/// Decode one TPKT from the front of `input`: TPKT, X.224 and, for a DT with
/// EOT, the TSDU it carries and everything above. A DT without EOT carries
/// part of a TSDU and is returned without a session layer (use
/// [`AssociationDecoder`] for reassembly). Returns the stack and the rest.
pub fn decode_tpkt<'a>(ctx: &mut Context, from: Sender, input: &'a [u8]) -> Result<(Stack<'a>, &'a [u8])> {
    let (tpkt, rest) = tpkt::parse(input)?;
    let tpdu = cotp::parse(tpkt.payload).map_err(|e| e.shift(tpkt::HEADER_LEN))?;
    // Built in place: the layers are decoded into the value returned
    // rather than moved into it (a `Stack` is several hundred octets).
    let mut out = Ok((Stack { tpkt: Some(tpkt), tpdu: Some(tpdu), session: None }, rest));
    if let Ok((Stack { tpdu: Some(Tpdu::Dt(d)), session, .. }, _)) = &mut out {
        if d.eot {
            let base = offset_of(input, d.user_data);
            decode_session_into(ctx, from, d.user_data, session).map_err(|e| e.shift(base))?;
        }
    }
    out
}

/// Decode one complete TSDU (concatenated SPDUs) and everything above.
pub fn decode_tsdu<'a>(ctx: &mut Context, from: Sender, tsdu: &'a [u8]) -> Result<Stack<'a>> {
    let mut stack = Stack::default();
    decode_session_into(ctx, from, tsdu, &mut stack.session)?;
    Ok(stack)
}

/// The layers above one SPDU of a TSDU the caller parsed itself with
/// [`session::parse_tsdu_with`] (`whole`: that TSDU's bytes, for error
/// offsets): what [`decode_tsdu`] does for each of its SPDUs, in order. For
/// a caller that knows its association (the protocol machine) and wants no
/// [`Stack`] (several kilobytes) built and moved per TSDU.
pub fn decode_upper_of<'a>(ctx: &mut Context, from: Sender, spdu: &Spdu<'a>, whole: &'a [u8]) -> Result<Upper<'a>> {
    learn_session(ctx, from, spdu);
    let mut up = Upper::default();
    decode_upper(ctx, from, spdu, whole, &mut up)?;
    Ok(up)
}

/// Decode a TSDU into `slot`, which must be `None` (it ends `Some` on
/// success).
fn decode_session_into<'a>(
    ctx: &mut Context,
    from: Sender,
    tsdu_bytes: &'a [u8],
    slot: &mut Option<SessionStack<'a>>,
) -> Result<()> {
    if tsdu_bytes.is_empty() {
        return Err(Error::eof(Layer::Session, 0, "SPDU identifier"));
    }
    // Every caller passes an empty slot; `get_or_insert_with` builds the
    // stack in it (`insert` built it aside and copied it in).
    debug_assert!(slot.is_none());
    let ss = slot.get_or_insert_with(|| SessionStack::new(Tsdu::new()));
    session::parse_tsdu_into(tsdu_bytes, &ctx.session_ctx(from), &mut ss.tsdu)?;
    // Filled in place: an `Upper` is a few hundred octets.
    for (i, spdu) in ss.tsdu.iter().enumerate() {
        learn_session(ctx, from, spdu);
        // i < MAX_CONCATENATED_SPDUS (8).
        let i = i as u8;
        if ss.at.is_none() {
            decode_upper(ctx, from, spdu, tsdu_bytes, &mut ss.upper)?;
            if !ss.upper.is_empty() {
                ss.at = Some(i);
            }
        } else {
            let mut up = Upper::default();
            decode_upper(ctx, from, spdu, tsdu_bytes, &mut up)?;
            if !up.is_empty() {
                ss.more.push((i, up));
            }
        }
    }
    Ok(())
}

#[inline]
fn learn_session(ctx: &mut Context, from: Sender, spdu: &Spdu<'_>) {
    match spdu {
        Spdu::Cn(_) => new_connection(ctx),
        Spdu::Ac(a) => {
            ctx.session_seen = true;
            let req = a.requirements;
            for s in &mut ctx.session {
                s.requirements = req;
            }
        }
        _ => {}
    }
    let kind = spdu.kind();
    if matches!(kind, SpduKind::Map | SpduKind::Ae) {
        // The peer's next SI 42 acknowledges this.
        ctx.session[from.peer().index()].last_major = Some(kind);
    }
}

/// A new connection: forget what an earlier one taught, keep the mode (a
/// recovery uses the same mode). Not inlined: rare, and a `Context` is a
/// few hundred octets to build.
#[inline(never)]
fn new_connection(ctx: &mut Context) {
    let mode = ctx.mode;
    *ctx = Context { mode, session_seen: true, ..Context::default() };
}

fn slot_of(kind: SpduKind) -> PpduSlot {
    match kind {
        SpduKind::Cn => PpduSlot::Connect,
        SpduKind::Ac => PpduSlot::Accept,
        SpduKind::Rf => PpduSlot::Refuse,
        SpduKind::Ab => PpduSlot::Abort,
        _ => PpduSlot::Data,
    }
}

/// Decode the layers above `spdu` into `up` (empty on entry).
fn decode_upper<'a>(
    ctx: &mut Context,
    from: Sender,
    spdu: &Spdu<'a>,
    whole: &'a [u8],
    up: &mut Upper<'a>,
) -> Result<()> {
    let kind = spdu.kind();
    track_transfer(ctx, from, spdu, up)?;
    let Some(ud) = spdu.user_data() else {
        return Ok(());
    };
    if ud.is_empty() && kind != SpduKind::Dt {
        return Ok(());
    }
    let base = offset_of(whole, ud);
    if kind == SpduKind::Cn {
        ctx.mode = presentation::mode_of_connect(ud).or(ctx.mode);
    }
    let mode = match ctx.mode {
        Some(m) => m,
        None => guess_mode(kind, ud),
    };
    match mode {
        Mode::X410 => decode_x410(ctx, from, kind, ud, base, up),
        Mode::Normal => decode_normal(ctx, kind, ud, whole, up),
    }
}

fn guess_mode(kind: SpduKind, ud: &[u8]) -> Mode {
    match (kind, ud.first()) {
        (SpduKind::Pt, Some(0x02)) => Mode::X410,
        (SpduKind::Dt, Some(b)) if *b != 0x61 && *b != 0x40 => Mode::X410,
        (SpduKind::Ab, Some(0x31)) | (SpduKind::Rf, Some(0x31)) => Mode::X410,
        _ => Mode::Normal,
    }
}

fn decode_x410<'a>(
    ctx: &mut Context,
    from: Sender,
    kind: SpduKind,
    ud: &'a [u8],
    base: usize,
    up: &mut Upper<'a>,
) -> Result<()> {
    let _ = from;
    let slot = match kind {
        SpduKind::Cn => x410::Slot::Connect,
        SpduKind::Ac => x410::Slot::Accept,
        SpduKind::Rf => x410::Slot::Refuse,
        SpduKind::Ab => x410::Slot::Abort,
        SpduKind::Pt => x410::Slot::TokenPlease,
        // DT and the rest carry user octets (the transfer), not RTS PDUs.
        _ => return Ok(()),
    };
    let (pdu, _) = x410::parse(slot, ud).map_err(|e| e.shift(base))?;
    ctx.rtse = Some(true);
    let (open, arg) = match &pdu {
        X410Pdu::PConnect(c) => {
            ctx.p1 = Some(c.application_protocol() == x410::APPLICATION_PROTOCOL_P1);
            (c.user_data.connection_data.open(), true)
        }
        X410Pdu::PAccept(a) => (a.user_data.connection_data.open(), false),
        _ => (None, false),
    };
    if let Some(raw) = open {
        let parsed = if arg { p1::parse_bind_argument(raw, false) } else { p1::parse_bind_result(raw, false) };
        up.p1 = p1_result(
            ctx,
            parsed.map(|b| if arg { P1Pdu::BindArgument(b) } else { P1Pdu::BindResult(b) }),
            offset_of(ud, raw) + base,
        )?;
    }
    up.x410 = Some(pdu);
    Ok(())
}

/// A P1 decode result: kept if it decoded; an error only if the association
/// is known to carry P1.
fn p1_result<'a>(ctx: &Context, r: Result<P1Pdu<'a>>, base: usize) -> Result<Option<P1Pdu<'a>>> {
    match r {
        Ok(p) => Ok(Some(p)),
        Err(e) if ctx.p1 == Some(true) => Err(e.shift(base)),
        Err(_) => Ok(None),
    }
}

fn decode_normal<'a>(
    ctx: &mut Context,
    kind: SpduKind,
    ud: &'a [u8],
    whole: &'a [u8],
    up: &mut Upper<'a>,
) -> Result<()> {
    let base = offset_of(whole, ud);
    let (ppdu, _) = presentation::parse_for(slot_of(kind), ud).map_err(|e| e.shift(base))?;
    match &ppdu {
        Ppdu::Cp(cp) => {
            if cp.mode == Mode::X410 {
                // An X.410-mode CP is a PConnect (bit-compatible).
                ctx.mode = Some(Mode::X410);
                return decode_x410(ctx, Sender::Initiator, kind, ud, base, up);
            }
            ctx.contexts.propose(cp);
        }
        Ppdu::Cpa(cpa) => {
            if cpa.mode == Mode::X410 {
                ctx.mode = Some(Mode::X410);
                return decode_x410(ctx, Sender::Responder, kind, ud, base, up);
            }
            // Routing needs only the proposed list; rejected contexts are
            // simply never used by the peer.
            let _ = cpa;
        }
        _ => {}
    }
    if let Some(user_data) = ppdu.user_data() {
        decode_pdvs(ctx, kind, user_data, ud, whole, up)?;
    }
    up.presentation = Some(ppdu);
    Ok(())
}

fn is_acse_pdv(ctx: &Context, pdv: &Pdv<'_>) -> bool {
    match ctx.contexts.syntax_of(pdv.pcid) {
        Some(s) => *s == presentation::ID_AS_ACSE,
        // No context list seen: an ACSE APDU has an APPLICATION tag 0..4.
        None => matches!(pdv.value, PdvValue::Single(raw) if matches!(raw.first(), Some(0x60..=0x64))),
    }
}

fn decode_pdvs<'a>(
    ctx: &mut Context,
    kind: SpduKind,
    user_data: &UserData<'a>,
    ud: &'a [u8],
    whole: &'a [u8],
    up: &mut Upper<'a>,
) -> Result<()> {
    let pbase = offset_of(whole, ud);
    for pdv in user_data.pdvs() {
        let PdvValue::Single(raw) = pdv.value else { continue };
        let vbase = pbase + pdv.value_offset;
        if is_acse_pdv(ctx, pdv) {
            if up.acse.is_some() {
                continue;
            }
            // Decoded in place (an AARQ/AARE is a few hundred octets).
            acse::parse_into(raw, &mut up.acse).map_err(|e| e.shift(vbase))?;
            let Upper { acse: Some(apdu), rtse, p1, .. } = up else { continue };
            if let AcseApdu::Aarq(a) = apdu {
                ctx.p1 = Some(a.application_context_name == presentation::ID_AC_MTS_TRANSFER);
            }
            decode_acse_user_info(ctx, apdu, raw, vbase, rtse, p1)?;
        } else if up.rtse.is_none() && matches!(kind, SpduKind::Pt | SpduKind::Dt) && ctx.rtse != Some(false) {
            match rtse::parse(raw) {
                Ok((apdu, _)) => {
                    if let RtseApdu::Rttr(seg) = &apdu {
                        collect_segment(ctx, seg.as_bytes(), raw.first() == Some(&0x04));
                    }
                    up.rtse = Some(apdu);
                }
                Err(e) if ctx.rtse == Some(true) => return Err(e.shift(vbase)),
                Err(_) => {}
            }
        }
    }
    Ok(())
}

/// The RTSE APDU (and P1 bind) in `apdu`'s user information, into `rtse`
/// and `p1` (the layers of the `Upper` that holds `apdu`).
fn decode_acse_user_info<'a>(
    ctx: &mut Context,
    apdu: &AcseApdu<'a>,
    raw: &'a [u8],
    base: usize,
    rtse: &mut Option<RtseApdu<'a>>,
    p1: &mut Option<P1Pdu<'a>>,
) -> Result<()> {
    let is_aarq = matches!(apdu, AcseApdu::Aarq(_));
    for ext in apdu.user_information() {
        let External { encoding: PdvValue::Single(inner), .. } = ext else { continue };
        let ibase = base + offset_of(raw, inner);
        // RTSE's APDUs have tags [16], [17], [18], [22] (b0, b1, b2, b6).
        let is_rtse = matches!(inner.first(), Some(0xb0 | 0xb1 | 0xb2 | 0xb6));
        if is_aarq {
            ctx.rtse = Some(is_rtse);
        }
        if !is_rtse || ctx.rtse == Some(false) {
            continue;
        }
        let (r, _) = rtse::parse(inner).map_err(|e| e.shift(ibase))?;
        *p1 = decode_bind(ctx, &r, inner, ibase)?;
        *rtse = Some(r);
        break;
    }
    Ok(())
}

fn decode_bind<'a>(ctx: &Context, r: &RtseApdu<'a>, inner: &'a [u8], ibase: usize) -> Result<Option<P1Pdu<'a>>> {
    let parsed = match r {
        RtseApdu::Rtorq(q) => {
            q.connection_data.open().map(|raw| (raw, p1::parse_bind_argument(raw, true).map(P1Pdu::BindArgument)))
        }
        RtseApdu::Rtoac(a) => {
            a.connection_data.open().map(|raw| (raw, p1::parse_bind_result(raw, true).map(P1Pdu::BindResult)))
        }
        RtseApdu::Rtorj(j) => j.user_data.map(|raw| (raw, p1::parse_bind_error(raw, true).map(P1Pdu::BindError))),
        _ => None,
    };
    match parsed {
        Some((raw, res)) => p1_result(ctx, res, ibase + offset_of(inner, raw)),
        None => Ok(None),
    }
}

// ---------------------------------------------------------------------------
// Transfers.

fn collect_segment(ctx: &mut Context, octets: &[u8], _primitive: bool) {
    // The sender of an RTTR is the side with the open activity; both
    // directions cannot collect at once, so append to whichever is open.
    for t in &mut ctx.transfers {
        if t.open {
            append(t, octets);
            return;
        }
    }
}

fn append(t: &mut TransferBuf, octets: &[u8]) {
    if t.overflow {
        return;
    }
    if t.octets.len() + octets.len() > limits::MAX_TRANSFER_LEN {
        t.overflow = true;
        t.octets = Vec::new();
        return;
    }
    if t.octets.capacity() == 0 {
        // One allocation for a typical transfer (a P1 message of a few
        // hundred octets arriving in two to four segments) rather than a
        // growth step per segment; the limit above still bounds it.
        t.octets.reserve_exact(octets.len().max(TRANSFER_FIRST_CAPACITY));
    }
    t.octets.extend_from_slice(octets);
}

/// The capacity a transfer's buffer starts with: 1 KB, the largest
/// request glibc's per-thread cache serves (a 2 KB one took the slow path,
/// 270 instructions a transfer).
const TRANSFER_FIRST_CAPACITY: usize = 1024;

fn track_transfer<'a>(ctx: &mut Context, from: Sender, spdu: &Spdu<'a>, up: &mut Upper<'a>) -> Result<()> {
    let i = from.index();
    match spdu.kind() {
        SpduKind::As | SpduKind::Ar => {
            // AR resumes: octets before the checkpoint were collected on the
            // lost connection, so the label may be incomplete; start afresh.
            ctx.transfers[i] = TransferBuf { open: true, ..TransferBuf::default() };
        }
        SpduKind::Dt if ctx.mode == Some(Mode::X410) => {
            if let Some(ud) = spdu.user_data() {
                if ctx.transfers[i].open {
                    append(&mut ctx.transfers[i], ud);
                }
            }
        }
        SpduKind::Ae | SpduKind::Map if ctx.transfers[i].open => {
            let t = std::mem::take(&mut ctx.transfers[i]);
            up.transfer = Some(Box::new(summarise(ctx, t)));
        }
        SpduKind::Ai | SpduKind::Ad => {
            ctx.transfers[i] = TransferBuf::default();
        }
        _ => {}
    }
    Ok(())
}

fn summarise(ctx: &Context, t: TransferBuf) -> TransferSummary {
    let octets = t.octets.len();
    if t.overflow {
        return TransferSummary {
            kind: "Transfer",
            id: None,
            octets,
            error: Some(Error::new(
                Layer::P1,
                0,
                "transfer within the size limit",
                Found::Length(limits::MAX_TRANSFER_LEN),
            )),
        };
    }
    let apdu: Result<(&[u8], usize)> = match ctx.mode {
        Some(Mode::X410) => Ok((&t.octets[..], 0)),
        _ => acse::parse_external_as(Layer::Rtse, &t.octets).and_then(|(ext, _)| match ext.encoding {
            PdvValue::Single(raw) => Ok((raw, ext.value_offset)),
            _ => Err(Error::new(Layer::Rtse, 0, "EXTERNAL with single-ASN1-type", Found::Other("other encoding"))),
        }),
    };
    match apdu.and_then(|(raw, off)| p1::parse_mts_apdu(raw).map_err(|e| e.shift(off))) {
        Ok((tr, _)) => {
            TransferSummary { kind: tr.kind.pdu_name(), id: Some(tr.mts_identifier.render()), octets, error: None }
        }
        Err(e) => TransferSummary { kind: "Transfer", id: None, octets, error: Some(e) },
    }
}

// ---------------------------------------------------------------------------
// Streams.

/// One decoded TPKT of a stream.
#[derive(Debug)]
pub struct Decoded<'s> {
    /// Who sent it.
    pub from: Sender,
    /// Offset of the TPKT's first byte in the sender's byte stream.
    pub stream_offset: u64,
    /// The stack, or why it did not decode.
    pub result: Result<Stack<'s>>,
}

#[derive(Debug, Default, Clone)]
struct DirState {
    /// Bytes of an incomplete TPKT carried over between pushes.
    pending: Vec<u8>,
    /// DT user data of a TSDU not yet ended by EOT.
    tsdu: Vec<u8>,
    /// Stream offset of the next byte pushed.
    offset: u64,
    /// Framing was lost: look for a plausible TPKT header.
    resync: bool,
}

/// Decodes the two byte streams of one association (one TCP connection):
/// TPKT framing across pushes, several TPKTs per push, TSDUs spread over
/// DT TPDUs, and the association context. Memory is bounded by one TPKT
/// and one TSDU per direction ([`limits::MAX_TSDU_LEN`]) plus the transfer
/// being collected ([`limits::MAX_TRANSFER_LEN`]).
#[derive(Debug, Clone, Default)]
pub struct AssociationDecoder {
    pub ctx: Context,
    dirs: [DirState; 2],
}

impl AssociationDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Start a direction's stream in resynchronising mode (capture started
    /// mid-stream, or after a gap): skip to the first plausible TPKT header.
    pub fn resync(&mut self, from: Sender) {
        let d = &mut self.dirs[from.index()];
        d.pending.clear();
        d.tsdu.clear();
        d.resync = true;
    }

    /// Tell the decoder that `missing` bytes of `from`'s stream were lost.
    pub fn gap(&mut self, from: Sender, missing: u64) {
        self.resync(from);
        self.dirs[from.index()].offset += missing;
    }

    /// Feed bytes sent by `from`; `on` is called for each TPKT completed.
    pub fn push(&mut self, from: Sender, data: &[u8], mut on: impl FnMut(Decoded<'_>)) {
        self.push_lent(from, data, |d| {
            on(Decoded {
                from: d.from,
                stream_offset: d.stream_offset,
                result: std::mem::replace(&mut d.result, Ok(Stack::default())),
            })
        });
    }

    /// [`AssociationDecoder::push`], lending each TPKT's [`Decoded`] to
    /// `on` instead of handing it over: it is decoded in place and not
    /// moved (a `Stack` is over a kilobyte; handing it over copied it once
    /// per TPKT, 4 M instructions at the timeline benchmark's 10 MB).
    pub fn push_lent(&mut self, from: Sender, mut data: &[u8], mut on: impl FnMut(&mut Decoded<'_>)) {
        let Self { ctx, dirs } = self;
        let d = &mut dirs[from.index()];
        while !data.is_empty() {
            if d.resync {
                // Look for `03 00 LL LL` with a plausible length and TPDU
                // code; `pending` starts at stream offset `d.offset`.
                d.pending.extend_from_slice(data);
                match find_tpkt(&d.pending) {
                    Some(i) => {
                        d.pending.drain(..i);
                        d.offset += i as u64;
                        d.resync = false;
                        Self::drain_pending(ctx, d, from, &mut on);
                    }
                    None => {
                        // Keep the last 5 bytes: a header may straddle pushes.
                        let drop = d.pending.len().saturating_sub(5);
                        d.pending.drain(..drop);
                        d.offset += drop as u64;
                    }
                }
                return;
            }
            if !d.pending.is_empty() {
                // Complete the carried-over TPKT first.
                let need = match tpkt::frame_len(&d.pending) {
                    Ok(Some(n)) => n - d.pending.len().min(n),
                    Ok(None) => tpkt::HEADER_LEN - d.pending.len(),
                    Err(e) => {
                        Self::framing_error(d, from, e, &mut on);
                        continue;
                    }
                };
                let take = need.min(data.len());
                d.pending.extend_from_slice(&data[..take]);
                data = &data[take..];
                Self::drain_pending(ctx, d, from, &mut on);
                continue;
            }
            match tpkt::frame_len(data) {
                Ok(Some(n)) if n <= data.len() => {
                    let (one, rest) = data.split_at(n);
                    let off = d.offset;
                    d.offset += n as u64;
                    Self::one(ctx, &mut d.tsdu, from, off, one, &mut on);
                    data = rest;
                }
                Ok(_) => {
                    d.pending.extend_from_slice(data);
                    data = &[];
                }
                Err(e) => {
                    let off = d.offset;
                    on(&mut Decoded { from, stream_offset: off, result: Err(e) });
                    d.resync = true;
                    // Skip the bad header's first byte and look again.
                    d.offset += 1;
                    data = &data[1..];
                }
            }
        }
    }

    /// Report a bad TPKT header at the start of `pending`, then look for the
    /// next plausible one after its first byte.
    fn framing_error(d: &mut DirState, from: Sender, e: Error, on: &mut impl FnMut(&mut Decoded<'_>)) {
        on(&mut Decoded { from, stream_offset: d.offset, result: Err(e) });
        let skip = match find_tpkt(d.pending.get(1..).unwrap_or(&[])) {
            Some(i) => {
                d.resync = false;
                i + 1
            }
            None => {
                d.resync = true;
                d.pending.len().saturating_sub(5).max(1).min(d.pending.len())
            }
        };
        d.pending.drain(..skip);
        d.offset += skip as u64;
    }

    fn drain_pending(ctx: &mut Context, d: &mut DirState, from: Sender, on: &mut impl FnMut(&mut Decoded<'_>)) {
        loop {
            match tpkt::frame_len(&d.pending) {
                Ok(Some(n)) if n <= d.pending.len() => {
                    let buf = std::mem::take(&mut d.pending);
                    let off = d.offset;
                    d.offset += n as u64;
                    Self::one(ctx, &mut d.tsdu, from, off, &buf[..n], on);
                    d.pending = buf[n..].to_vec();
                }
                Ok(_) => return,
                Err(e) => {
                    Self::framing_error(d, from, e, on);
                    if d.resync {
                        return;
                    }
                }
            }
        }
    }

    fn one(
        ctx: &mut Context,
        tsdu: &mut Vec<u8>,
        from: Sender,
        off: u64,
        bytes: &[u8],
        on: &mut impl FnMut(&mut Decoded<'_>),
    ) {
        // A DT that continues a TSDU: collect, and decode the whole at EOT.
        let (tpkt, _) = match tpkt::parse(bytes) {
            Ok(t) => t,
            Err(e) => return on(&mut Decoded { from, stream_offset: off, result: Err(e) }),
        };
        let tpdu = match cotp::parse(tpkt.payload) {
            Ok(t) => t,
            Err(e) => return on(&mut Decoded { from, stream_offset: off, result: Err(e.shift(tpkt::HEADER_LEN)) }),
        };
        match &tpdu {
            Tpdu::Dt(dt) if !dt.eot || !tsdu.is_empty() => {
                if tsdu.len() + dt.user_data.len() > limits::MAX_TSDU_LEN {
                    tsdu.clear();
                    let e =
                        Error::new(Layer::Cotp, 5, "TSDU within the size limit", Found::Length(limits::MAX_TSDU_LEN));
                    return on(&mut Decoded { from, stream_offset: off, result: Err(e) });
                }
                tsdu.extend_from_slice(dt.user_data);
                if !dt.eot {
                    return on(&mut Decoded {
                        from,
                        stream_offset: off,
                        result: Ok(Stack { tpkt: Some(tpkt), tpdu: Some(tpdu), session: None }),
                    });
                }
                let whole = std::mem::take(tsdu);
                let mut stack = Stack { tpkt: Some(tpkt), tpdu: Some(tpdu.clone()), session: None };
                let result = decode_session_into(ctx, from, &whole, &mut stack.session).map(|()| stack);
                on(&mut Decoded { from, stream_offset: off, result });
            }
            _ => {
                // Decoded in place, into the value handed to `on`, as in
                // `decode_tpkt`.
                let mut out = Decoded {
                    from,
                    stream_offset: off,
                    result: Ok(Stack { tpkt: Some(tpkt), tpdu: Some(tpdu), session: None }),
                };
                let mut failed = None;
                if let Ok(Stack { tpdu: Some(Tpdu::Dt(d)), session, .. }) = &mut out.result {
                    if ctx.session_seen || looks_like_tsdu(d.user_data) {
                        let base = offset_of(bytes, d.user_data);
                        failed = decode_session_into(ctx, from, d.user_data, session).err().map(|e| e.shift(base));
                    }
                }
                if let Some(e) = failed {
                    out.result = Err(e);
                }
                on(&mut out);
            }
        }
    }
}

/// Whether a TSDU plausibly holds session SPDUs: it starts with an SPDU
/// that may open a TSDU (category 0 or 1). Used only
/// where no CN/AC has shown that the transport carries a session (a capture
/// starting mid-association, or other protocols over X.224 such as S7comm),
/// as tshark's session heuristic does.
pub fn looks_like_tsdu(b: &[u8]) -> bool {
    // The length is not checked: a malformed SPDU of a plausible type is
    // better reported as a session error than passed over.
    matches!(b.first(), Some(1 | 2 | 8 | 9 | 10 | 12 | 13 | 14 | 15 | 16 | 21 | 22 | 25 | 26 | 33)) && b.len() >= 2
}

/// Index of the first plausible TPKT header: `03 00`, length >= 7, and a
/// valid class-0 TPDU code after the LI.
pub fn find_tpkt(data: &[u8]) -> Option<usize> {
    (0..data.len().saturating_sub(5)).find(|&i| {
        data[i] == 3
            && data[i + 1] == 0
            && usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]])) >= tpkt::MIN_LEN
            && data[i + 4] < 255
            && matches!(
                data[i + 5] & 0xF0,
                cotp::CODE_CR | cotp::CODE_CC | cotp::CODE_DT | cotp::CODE_DR | cotp::CODE_ER
            )
    })
}

// ---------------------------------------------------------------------------
// JSON: {"layers": [{"layer": "tpkt", "pdu": "TPKT", ...}, ...]}.

#[derive(Serialize)]
struct LayerEntry<'x, T: Serialize> {
    layer: Layer,
    #[serde(flatten)]
    pdu: &'x T,
}

#[derive(Serialize)]
struct NamedPdu<'x, T: Serialize> {
    pdu: &'static str,
    #[serde(flatten)]
    value: &'x T,
}

impl Serialize for Stack<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        if let Some(t) = &self.tpkt {
            seq.serialize_element(&LayerEntry { layer: Layer::Tpkt, pdu: &NamedPdu { pdu: "TPKT", value: t } })?;
        }
        if let Some(t) = &self.tpdu {
            seq.serialize_element(&LayerEntry { layer: Layer::Cotp, pdu: t })?;
        }
        if let Some(ss) = &self.session {
            for (spdu, up) in ss.iter() {
                seq.serialize_element(&LayerEntry { layer: Layer::Session, pdu: spdu })?;
                if up.is_empty() {
                    continue;
                }
                if let Some(p) = &up.presentation {
                    seq.serialize_element(&LayerEntry { layer: Layer::Presentation, pdu: p })?;
                }
                if let Some(a) = &up.acse {
                    seq.serialize_element(&LayerEntry { layer: Layer::Acse, pdu: a })?;
                }
                if let Some(r) = &up.rtse {
                    seq.serialize_element(&LayerEntry { layer: Layer::Rtse, pdu: r })?;
                }
                if let Some(x) = &up.x410 {
                    seq.serialize_element(&LayerEntry { layer: Layer::X410, pdu: x })?;
                }
                if let Some(p) = &up.p1 {
                    seq.serialize_element(&LayerEntry { layer: Layer::P1, pdu: p })?;
                }
                if let Some(t) = &up.transfer {
                    seq.serialize_element(&LayerEntry { layer: Layer::P1, pdu: t })?;
                }
            }
        }
        seq.end()
    }
}
