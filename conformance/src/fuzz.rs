//! Fuzz targets as library functions: each cargo-fuzz target in `fuzz/` is
//! one call into this module, and `tests/fuzz_regressions.rs` replays every
//! input ever found through the same call, so a finding is reproduced by
//! `cargo test` without the fuzzer.
//!
//! Every target takes arbitrary bytes and returns an [`Outcome`]: the input
//! decoded, or the first error (layer, offset, expectation). It **panics**
//! when an oracle fails, which libFuzzer reports as a crash:
//!
//! * **Round trip**: whatever decodes is emitted again with the layer's
//!   `emit` and parsed again; the value must be the same (values, not
//!   bytes: BER and the session parameter field have many encodings of one
//!   value), the second parse must consume exactly what `emit` wrote, what
//!   `encoded_len` announces must be what `emit` writes, and emitting the
//!   second value must give the same bytes (our own output is canonical).
//! * **Offsets**: an error's offset lies within the unit that was decoded
//!   (`offset <= len`), so that "`session @ 0x1c`" points into the input.
//! * **Streams** (`decode_stack`): pushing the same bytes to
//!   [`AssociationDecoder`] in small pieces gives the same PDUs and errors
//!   as pushing whole TPKTs; a TSDU re-emitted and decoded again under the
//!   association context it was first decoded in gives the same stack, all
//!   layers included.
//! * No panic, no hang, bounded memory: libFuzzer's `-timeout`,
//!   `-rss_limit_mb` and `-malloc_limit_mb` enforce the last two.
//!
//! # Input layouts
//!
//! Targets whose codec needs a choice the bytes alone do not make (which
//! PPDU a session user data holds, which side sent a TPKT) read it from a
//! header of one or three octets; an input shorter than the header reads
//! the missing octets as zero. Error offsets in an [`Outcome`] count from
//! the first octet after the header (the unit the codec was given).
//!
//! | target | header | body |
//! |---|---|---|
//! | [`decode_stack`] | flags, sender pattern (u16 BE) | TPKT stream, or one TSDU |
//! | [`tpkt_cotp`] | none | TPKTs, back to back |
//! | [`session`] | session context | one TSDU |
//! | [`presentation_acse`] | slot | PPDU, ACSE APDU or EXTERNAL |
//! | [`rtse`] | none | one RTSE APDU |
//! | [`x410`] | slot | one X.410 RTS PDU |
//! | [`capture`] | none | a pcap or pcapng file |
//! | [`turn_scenario`] | none | a [`scenario::Script`] of operations |
//! | [`flaw_hunt`] | flaw selector | a [`scenario::Script`] |
//!
//! The seed corpus ([`seeds`]) writes these layouts from the worked
//! examples and the captures, so the fuzzer starts from valid PDUs.
//!
//! [`turn_scenario`] and [`flaw_hunt`] are structure-aware: the input is a
//! script of operations run in the simulator between two reference MTAs
//! (or one with a flaw); see [`scenario`].

pub mod scenario;
pub mod seeds;

pub use scenario::{flaw_hunt, turn_scenario};

use crate::timeline;
use rtse_codec::capture::{self, stacks::CaptureItem};
use rtse_codec::error::{Error, Layer, Result};
use rtse_codec::presentation::{self, Mode, PdvValue, Ppdu, PpduSlot};
use rtse_codec::rtse::RtseApdu;
use rtse_codec::session::{self, Requirements, SpduKind};
use rtse_codec::stack::{self, AssociationDecoder, Context, Decoded, Sender, Stack};
use rtse_codec::x410::{self, X410Pdu};
use rtse_codec::{acse, cotp, hex, p1, rtse as rtse_mod, tpkt};
use std::fmt::Debug;

/// What a target made of its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Everything decoded (and every oracle held).
    Decoded,
    /// The first decoding error, as the codec reported it (offset relative
    /// to the unit decoded; see the module docs).
    Rejected(Error),
}

impl Outcome {
    /// The error, if rejected.
    pub fn error(&self) -> Option<&Error> {
        match self {
            Outcome::Decoded => None,
            Outcome::Rejected(e) => Some(e),
        }
    }
}

/// The fuzz targets, by their cargo-fuzz names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    DecodeStack,
    TpktCotp,
    Session,
    PresentationAcse,
    Rtse,
    X410,
    Capture,
    TurnScenario,
    FlawHunt,
}

impl Target {
    /// Every target, in the order CI runs them.
    pub const ALL: [Target; 9] = [
        Target::DecodeStack,
        Target::TpktCotp,
        Target::Session,
        Target::PresentationAcse,
        Target::Rtse,
        Target::X410,
        Target::Capture,
        Target::TurnScenario,
        Target::FlawHunt,
    ];

    /// The cargo-fuzz target name (`fuzz/fuzz_targets/<name>.rs`), also the
    /// corpus folder name.
    pub const fn name(self) -> &'static str {
        match self {
            Target::DecodeStack => "decode_stack",
            Target::TpktCotp => "tpkt_cotp",
            Target::Session => "session",
            Target::PresentationAcse => "presentation_acse",
            Target::Rtse => "rtse",
            Target::X410 => "x410",
            Target::Capture => "capture",
            Target::TurnScenario => "turn_scenario",
            Target::FlawHunt => "flaw_hunt",
        }
    }

    /// The target called `name`.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Run the target on `data`.
    pub fn run(self, data: &[u8]) -> Outcome {
        match self {
            Target::DecodeStack => decode_stack(data),
            Target::TpktCotp => tpkt_cotp(data),
            Target::Session => session(data),
            Target::PresentationAcse => presentation_acse(data),
            Target::Rtse => rtse(data),
            Target::X410 => x410(data),
            Target::Capture => capture(data),
            Target::TurnScenario => turn_scenario(data),
            Target::FlawHunt => flaw_hunt(data),
        }
    }
}

// ---------------------------------------------------------------------------
// Oracles.

/// An error must point into the `len` octets that were decoded.
fn check_offset(what: &str, e: &Error, len: usize) {
    assert!(e.offset <= len, "fuzz {what}: error offset {:#x} beyond the {len} octets decoded: {e}", e.offset);
}

fn reject(what: &str, e: Error, len: usize) -> Outcome {
    check_offset(what, &e, len);
    Outcome::Rejected(e)
}

/// The round-trip oracle. `first` was parsed from the input and emitted as
/// `emitted`; `again` is the parse of `emitted`. `T` is the PDU type at the
/// lifetime of `emitted` (a PDU parsed from the input outlives it).
#[track_caller]
fn same<'x, T: PartialEq + Debug>(
    layer: Layer,
    first: &T,
    emitted: &'x [u8],
    again: Result<(T, &'x [u8])>,
    emit: impl Fn(&T, &mut Vec<u8>),
) {
    let (again, rest) = match again {
        Ok(x) => x,
        Err(e) => panic!(
            "fuzz: {layer} emit wrote what its own parse rejects: {e}\n  emitted: {}\n  value:   {first:?}",
            hex::encode(emitted)
        ),
    };
    assert!(
        rest.is_empty(),
        "fuzz: {layer} parse of emitted bytes left {} octets\n  emitted: {}\n  value:   {first:?}",
        rest.len(),
        hex::encode(emitted)
    );
    assert!(
        again == *first,
        "fuzz: {layer} round trip changed the value\n  emitted: {}\n  first:   {first:?}\n  again:   {again:?}",
        hex::encode(emitted)
    );
    let mut twice = Vec::with_capacity(emitted.len());
    emit(&again, &mut twice);
    assert!(
        twice == emitted,
        "fuzz: {layer} emit is not stable (emit(parse(emit(x))) != emit(x))\n  once:  {}\n  twice: {}",
        hex::encode(emitted),
        hex::encode(&twice)
    );
}

#[track_caller]
fn same_len(layer: Layer, announced: usize, emitted: &[u8]) {
    assert!(
        announced == emitted.len(),
        "fuzz: {layer} encoded_len says {announced}, emit wrote {}: {}",
        emitted.len(),
        hex::encode(emitted)
    );
}

fn tpkt_round_trip(t: &tpkt::Tpkt<'_>) {
    let mut b = Vec::new();
    tpkt::emit(t, &mut b);
    same_len(Layer::Tpkt, t.encoded_len(), &b);
    same(Layer::Tpkt, t, &b, tpkt::parse(&b), tpkt::emit);
}

fn cotp_round_trip(t: &cotp::Tpdu<'_>) {
    let mut b = Vec::new();
    cotp::emit(t, &mut b);
    same_len(Layer::Cotp, cotp::encoded_len(t), &b);
    same(Layer::Cotp, t, &b, cotp::parse(&b).map(|t| (t, &[][..])), cotp::emit);
}

fn ppdu_round_trip(slot: PpduSlot, p: &Ppdu<'_>) {
    let mut b = Vec::new();
    presentation::emit(p, &mut b);
    same(Layer::Presentation, p, &b, presentation::parse_for(slot, &b), presentation::emit);
}

fn acse_round_trip(a: &acse::AcseApdu<'_>) {
    let mut b = Vec::new();
    acse::emit(a, &mut b);
    same(Layer::Acse, a, &b, acse::parse(&b), acse::emit);
    for ext in a.user_information() {
        external_round_trip(ext);
    }
}

fn external_round_trip(e: &acse::External<'_>) {
    let mut b = Vec::new();
    acse::emit_external(e, &mut b);
    same(Layer::Acse, e, &b, acse::parse_external(&b), acse::emit_external);
}

fn rtse_round_trip(r: &RtseApdu<'_>) {
    let mut b = Vec::new();
    rtse_mod::emit(r, &mut b);
    same_len(Layer::Rtse, rtse_mod::encoded_len(r), &b);
    same(Layer::Rtse, r, &b, rtse_mod::parse(&b), rtse_mod::emit);
}

fn x410_round_trip(x: &X410Pdu<'_>) {
    let mut b = Vec::new();
    x410::emit(x, &mut b);
    same_len(Layer::X410, x410::encoded_len(x), &b);
    same(Layer::X410, x, &b, x410::parse(x.slot(), &b), x410::emit);
}

/// P1 binds (RTORQ/RTOAC/RTORJ user data: `wrapped` in the RO-notation
/// tags in normal mode, bare in X.410 mode). Transfers are kept as raw
/// octets and have no emit of their own.
fn p1_round_trip(p: &p1::P1Pdu<'_>, wrapped: bool) {
    let mut b = Vec::new();
    p1::emit(p, wrapped, &mut b);
    let again = match p {
        p1::P1Pdu::BindArgument(_) => {
            p1::parse_bind_argument(&b, wrapped).map(|x| (p1::P1Pdu::BindArgument(x), &[][..]))
        }
        p1::P1Pdu::BindResult(_) => p1::parse_bind_result(&b, wrapped).map(|x| (p1::P1Pdu::BindResult(x), &[][..])),
        p1::P1Pdu::BindError(_) => p1::parse_bind_error(&b, wrapped).map(|x| (p1::P1Pdu::BindError(x), &[][..])),
        _ => return,
    };
    same(Layer::P1, p, &b, again, |p, o| p1::emit(p, wrapped, o));
}

/// The bind in an RTORQ/RTOAC/RTORJ or PConnect/PAccept, if it decodes
/// (the layer targets cannot know whether the association carries P1).
fn bind_round_trip(raw: Option<&[u8]>, kind: u8, wrapped: bool) {
    let Some(raw) = raw else { return };
    let p = match kind {
        0 => p1::parse_bind_argument(raw, wrapped).map(p1::P1Pdu::BindArgument),
        1 => p1::parse_bind_result(raw, wrapped).map(p1::P1Pdu::BindResult),
        _ => p1::parse_bind_error(raw, wrapped).map(p1::P1Pdu::BindError),
    };
    if let Ok(p) = p {
        p1_round_trip(&p, wrapped);
    }
}

fn rtse_bind_round_trip(r: &RtseApdu<'_>) {
    match r {
        RtseApdu::Rtorq(q) => bind_round_trip(q.connection_data.open(), 0, true),
        RtseApdu::Rtoac(a) => bind_round_trip(a.connection_data.open(), 1, true),
        RtseApdu::Rtorj(j) => bind_round_trip(j.user_data, 2, true),
        _ => {}
    }
}

fn x410_bind_round_trip(x: &X410Pdu<'_>) {
    match x {
        X410Pdu::PConnect(c) => bind_round_trip(c.user_data.connection_data.open(), 0, false),
        X410Pdu::PAccept(a) => bind_round_trip(a.user_data.connection_data.open(), 1, false),
        _ => {}
    }
}

/// The PPDU an SPDU kind carries (presentation.md §1), as the stack
/// decoder chooses it.
fn ppdu_slot(kind: SpduKind) -> PpduSlot {
    match kind {
        SpduKind::Cn => PpduSlot::Connect,
        SpduKind::Ac => PpduSlot::Accept,
        SpduKind::Rf => PpduSlot::Refuse,
        SpduKind::Ab => PpduSlot::Abort,
        _ => PpduSlot::Data,
    }
}

/// Every layer of a decoded stack, emitted and parsed again. With the
/// association context the TSDU was decoded in (`pre`), the TSDU is
/// re-emitted and decoded again as a whole and must give the same stack.
fn check_stack(stack: &Stack<'_>, from: Sender, pre: Option<&Context>) {
    if let Some(t) = &stack.tpkt {
        tpkt_round_trip(t);
    }
    if let Some(t) = &stack.tpdu {
        cotp_round_trip(t);
    }
    let Some(ss) = &stack.session else { return };
    if let Some(pre) = pre {
        let mut b = Vec::new();
        session::emit_tsdu(&ss.tsdu, &mut b);
        same_len(Layer::Session, session::encoded_len_tsdu(&ss.tsdu), &b);
        let mut ctx = pre.clone();
        match stack::decode_tsdu(&mut ctx, from, &b) {
            Ok(again) => assert!(
                again.session.as_ref() == Some(ss),
                "fuzz: decode_stack: re-emitted TSDU decodes to another stack\n  emitted: {}\n  first:   {ss:?}\n  again:   {:?}",
                hex::encode(&b),
                again.session
            ),
            Err(e) => panic!(
                "fuzz: decode_stack: re-emitted TSDU does not decode: {e}\n  emitted: {}\n  first:   {ss:?}",
                hex::encode(&b)
            ),
        }
    }
    for (spdu, up) in ss.iter() {
        if let Some(p) = &up.presentation {
            ppdu_round_trip(ppdu_slot(spdu.kind()), p);
        }
        if let Some(a) = &up.acse {
            acse_round_trip(a);
        }
        if let Some(r) = &up.rtse {
            rtse_round_trip(r);
        }
        if let Some(x) = &up.x410 {
            x410_round_trip(x);
        }
        if let Some(p) = &up.p1 {
            p1_round_trip(p, up.x410.is_none());
        }
    }
}

// ---------------------------------------------------------------------------
// decode_stack.

/// `decode_stack` header flags (first octet).
pub mod stack_flags {
    /// Bits 0-1: the path. Stream of TPKTs through [`AssociationDecoder`].
    pub const STREAM: u8 = 0;
    /// A TPKT stream whose start was not seen: both directions resync.
    pub const STREAM_MID: u8 = 1;
    /// One TSDU through `decode_tsdu`, mode unknown.
    pub const TSDU: u8 = 2;
    /// One TSDU through `decode_tsdu`, association known to be in
    /// X.410-1984 mode.
    pub const TSDU_X410: u8 = 3;
    /// Mask of the path bits.
    pub const PATH: u8 = 0x03;
    /// Bit 2, with bits 3-4 clear ([`SPLIT_SKIP`]): also push every chunk
    /// in pieces of `1 + (flags >> 5)` octets (1 to 8) and require the same
    /// PDUs and errors.
    pub const SPLIT: u8 = 0x04;
    /// Bits 3-4: with [`SPLIT`] set, any of them set skips the split pass.
    /// The pass decodes the whole input a second time; running it on one
    /// stream input in eight (bit 2 set, bits 3-4 clear: still chosen by
    /// the input, so a finding replays) keeps its strength over a run of
    /// millions of executions and leaves the other seven at the cost of
    /// one decode.
    pub const SPLIT_SKIP: u8 = 0x18;
}

/// Whether a `decode_stack` stream input runs the split pass
/// ([`stack_flags::SPLIT`]), and its piece size.
pub fn split_piece(flags: u8) -> Option<usize> {
    (flags & stack_flags::SPLIT != 0 && flags & stack_flags::SPLIT_SKIP == 0).then(|| 1 + usize::from(flags >> 5))
}

/// Octets of the `decode_stack` header.
pub const STACK_HEADER_LEN: usize = 3;

fn header<const N: usize>(data: &[u8]) -> ([u8; N], &[u8]) {
    let mut h = [0u8; N];
    let n = data.len().min(N);
    h[..n].copy_from_slice(&data[..n]);
    (h, &data[n..])
}

fn sender_at(pattern: u16, i: usize) -> Sender {
    if pattern >> (i % 16) & 1 == 1 {
        Sender::Responder
    } else {
        Sender::Initiator
    }
}

/// The chunks a stream input is pushed in: one TPKT each where the TPKT
/// header is plausible, else the rest of the input; chunk `i` is sent by
/// `sender_at(pattern, i)`.
fn stream_chunks(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = body;
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = match tpkt::frame_len(rest) {
            Ok(Some(n)) => n.min(rest.len()),
            _ => rest.len(),
        };
        let (c, r) = rest.split_at(n);
        rest = r;
        Some(c)
    })
}

/// Bytes -> whole-stack decode. The header's first octet picks the path
/// ([`stack_flags`]); the next two are a sender pattern: bit `i % 16` set
/// means chunk `i` (a TPKT in stream mode) comes from the responder.
///
/// Stream mode feeds one [`AssociationDecoder`] with both directions, so
/// the association context (mode, presentation contexts, RTSE, P1, the
/// session requirements) learnt from earlier PDUs is exercised. Every
/// decoded stack goes through the round-trip oracle layer by layer, and
/// the TSDU, re-emitted, must decode to the same stack. The outcome is the
/// first error the decoder reported.
pub fn decode_stack(data: &[u8]) -> Outcome {
    let ([flags, p0, p1], body) = header::<STACK_HEADER_LEN>(data);
    let pattern = u16::from_be_bytes([p0, p1]);
    match flags & stack_flags::PATH {
        stack_flags::TSDU | stack_flags::TSDU_X410 => {
            let mut ctx = if flags & stack_flags::PATH == stack_flags::TSDU_X410 {
                Context::with_mode(Mode::X410)
            } else {
                Context::default()
            };
            let pre = ctx.clone();
            let from = sender_at(pattern, 0);
            match stack::decode_tsdu(&mut ctx, from, body) {
                Ok(s) => {
                    check_stack(&s, from, Some(&pre));
                    Outcome::Decoded
                }
                Err(e) => reject("decode_stack", e, body.len()),
            }
        }
        path => {
            let mid = path == stack_flags::STREAM_MID;
            let split = split_piece(flags);
            let mut whole = Vec::new();
            let outcome = stream_each(body, pattern, mid, None, true, &mut |d, pre, pushed| {
                if split.is_some() {
                    whole.push(trace_item(d));
                }
                match &d.result {
                    Ok(s) => check_stack(s, d.from, pre),
                    Err(e) => check_offset("decode_stack", e, pushed),
                }
                d.result.as_ref().err().copied()
            });
            if let Some(piece) = split {
                let mut pieces = Vec::new();
                stream_each(body, pattern, mid, Some(piece), false, &mut |d, _, _| {
                    pieces.push(trace_item(d));
                    None
                });
                if whole != pieces {
                    let at =
                        whole.iter().zip(&pieces).position(|(a, b)| a != b).unwrap_or(whole.len().min(pieces.len()));
                    panic!(
                        "fuzz: decode_stack: pushing in {piece}-octet pieces decodes differently from whole TPKTs (item {at})\n  whole: {:?}\n  split: {:?}",
                        whole.get(at),
                        pieces.get(at)
                    );
                }
            }
            outcome
        }
    }
}

/// What one decoded TPKT was, owned and cheap to compare (for the split
/// oracle): sender, stream offset, and the TPKT and TSDU re-emitted (the
/// layers above follow from the TSDU and the association context), or the
/// error.
type TraceItem = (Sender, u64, core::result::Result<Vec<u8>, Error>);

fn trace_item(d: &Decoded<'_>) -> TraceItem {
    let r = d.result.as_ref().map(|s| {
        let mut v = Vec::new();
        if let Some(t) = &s.tpkt {
            tpkt::emit(t, &mut v);
        }
        if let Some(ss) = &s.session {
            v.push(0xff);
            session::emit_tsdu(&ss.tsdu, &mut v);
        }
        v
    });
    (d.from, d.stream_offset, r.map_err(|e| *e))
}

/// What [`stream_each`] calls for each decode result: the result, the
/// context its TSDU was decoded in, the octets pushed so far in its
/// direction; returns the error to report, if any.
type OnDecoded<'f> = dyn FnMut(&Decoded<'_>, Option<&Context>, usize) -> Option<Error> + 'f;

/// Push a stream input (chunk `i` from `sender_at(pattern, i)`, split in
/// `piece`-octet pushes if given) to one decoder, calling `on` for each
/// result with, if `want_ctx`, the context the TSDU was decoded in (a clone
/// per push), and the octets pushed so far in that direction. Returns the
/// first error `on` reports.
///
/// `on` is a trait object, not a generic: both passes then share one copy
/// of the decoder's push path (`AssociationDecoder::push` and everything it
/// inlines is generic over its callback), so the fuzz binary carries one set
/// of coverage counters for it, not two that libFuzzer scans and clears
/// after every execution.
fn stream_each(
    body: &[u8],
    pattern: u16,
    mid: bool,
    piece: Option<usize>,
    want_ctx: bool,
    on: &mut OnDecoded<'_>,
) -> Outcome {
    let mut dec = AssociationDecoder::new();
    if mid {
        dec.resync(Sender::Initiator);
        dec.resync(Sender::Responder);
    }
    let mut pushed = [0usize; 2];
    let mut first_err = None;
    for (i, chunk) in stream_chunks(body).enumerate() {
        let from = sender_at(pattern, i);
        let di = usize::from(from == Sender::Responder);
        // Chunks are never empty: one piece is the whole chunk.
        for part in chunk.chunks(piece.unwrap_or(chunk.len()).max(1)) {
            pushed[di] += part.len();
            // The context a TSDU completed by this push was decoded in: the
            // one before the push, until the first TSDU decode (which may
            // change it).
            let mut pre = want_ctx.then(|| dec.ctx.clone());
            let total = pushed[di];
            dec.push(from, part, |d| {
                let decoded_session = match &d.result {
                    Ok(s) => s.session.is_some(),
                    Err(e) => e.layer >= Layer::Session,
                };
                let ctx = if decoded_session { pre.take() } else { pre.as_ref().cloned() };
                if let Some(e) = on(&d, ctx.as_ref(), total) {
                    first_err.get_or_insert(e);
                }
                if decoded_session {
                    pre = None;
                }
            });
        }
    }
    match first_err {
        Some(e) => Outcome::Rejected(e),
        None => Outcome::Decoded,
    }
}

// ---------------------------------------------------------------------------
// One layer each.

/// TPKTs back to back (up to 64): each TPKT and its TPDU through the
/// round-trip oracle; [`tpkt::frame_len`] must agree with the parse. Error
/// offsets count from the first octet of the input.
pub fn tpkt_cotp(data: &[u8]) -> Outcome {
    let mut rest = data;
    for _ in 0..64 {
        if rest.is_empty() {
            break;
        }
        let base = data.len() - rest.len();
        let framed = tpkt::frame_len(rest);
        let (t, r) = match tpkt::parse(rest) {
            Ok(x) => x,
            Err(e) => return reject("tpkt_cotp", e.shift(base), data.len()),
        };
        assert_eq!(framed, Ok(Some(t.length())), "fuzz: tpkt frame_len disagrees with parse");
        tpkt_round_trip(&t);
        match cotp::parse(t.payload) {
            Ok(tpdu) => cotp_round_trip(&tpdu),
            Err(e) => return reject("tpkt_cotp", e.shift(base + tpkt::HEADER_LEN), data.len()),
        }
        rest = r;
    }
    Outcome::Decoded
}

/// The session context a `session` input's first octet selects: bit 0
/// lenient, bit 1 extended concatenation, bits 2-3 requirements (none
/// known, RTSE's 0x0249, 0x0009 = no activity management, 0), bits 4-5
/// the last SI-41 SPDU of the peer (none, MAP, AE).
pub fn session_context(sel: u8) -> session::Context {
    session::Context {
        lenient: sel & 1 != 0,
        extended_concatenation: sel & 2 != 0,
        requirements: match (sel >> 2) & 3 {
            0 => None,
            1 => Some(Requirements(0x0249)),
            2 => Some(Requirements(0x0009)),
            _ => Some(Requirements(0)),
        },
        last_major: match (sel >> 4) & 3 {
            1 => Some(SpduKind::Map),
            2 => Some(SpduKind::Ae),
            _ => None,
        },
    }
}

/// One octet of session context ([`session_context`]), then one TSDU. The
/// TSDU is re-emitted and parsed again under the same context: same SPDUs,
/// and the canonical form needs no lenient repair other than the
/// concatenation one (which is about SPDU order, kept as it came).
pub fn session(data: &[u8]) -> Outcome {
    let ([sel], body) = header::<1>(data);
    let ctx = session_context(sel);
    let tsdu = match session::parse_tsdu_with(body, &ctx) {
        Ok(t) => t,
        Err(e) => return reject("session", e, body.len()),
    };
    let mut b = Vec::new();
    session::emit_tsdu(&tsdu, &mut b);
    same_len(Layer::Session, session::encoded_len_tsdu(&tsdu), &b);
    let again = match session::parse_tsdu_with(&b, &ctx) {
        Ok(t) => t,
        Err(e) => panic!(
            "fuzz: session emit wrote what its own parse rejects: {e}\n  emitted: {}\n  value:   {tsdu:?}",
            hex::encode(&b)
        ),
    };
    let (v1, v2): (Vec<_>, Vec<_>) = (tsdu.iter().collect(), again.iter().collect());
    assert!(
        v1 == v2,
        "fuzz: session round trip changed the TSDU\n  emitted: {}\n  first:   {v1:?}\n  again:   {v2:?}",
        hex::encode(&b)
    );
    let concat = session::Repairs::CONCATENATION;
    assert!(
        again.repairs() == session::Repairs(tsdu.repairs().0 & concat.0),
        "fuzz: session canonical emit needed repairs {:?} (first parse: {:?})\n  emitted: {}",
        again.repairs(),
        tsdu.repairs(),
        hex::encode(&b)
    );
    let mut twice = Vec::new();
    session::emit_tsdu(&again, &mut twice);
    assert!(
        twice == b,
        "fuzz: session emit is not stable\n  once:  {}\n  twice: {}",
        hex::encode(&b),
        hex::encode(&twice)
    );
    Outcome::Decoded
}

/// One octet picks what the rest is (`sel % 7`): 0..=4 the user data of a
/// CN, AC, RF, AB or data SPDU (CP, CPA, CPR, ARU/ARP, User-data), 5 an
/// ACSE APDU, 6 an EXTERNAL. A PDV whose value is an ACSE APDU (tags
/// `60`..`64`) is decoded as one, as the stack decoder does without a
/// context list.
pub fn presentation_acse(data: &[u8]) -> Outcome {
    let ([sel], body) = header::<1>(data);
    let slot = match sel % 7 {
        0 => PpduSlot::Connect,
        1 => PpduSlot::Accept,
        2 => PpduSlot::Refuse,
        3 => PpduSlot::Abort,
        4 => PpduSlot::Data,
        5 => {
            return match acse::parse(body) {
                Ok((a, _)) => {
                    acse_round_trip(&a);
                    Outcome::Decoded
                }
                Err(e) => reject("presentation_acse", e, body.len()),
            }
        }
        _ => {
            return match acse::parse_external(body) {
                Ok((x, _)) => {
                    external_round_trip(&x);
                    Outcome::Decoded
                }
                Err(e) => reject("presentation_acse", e, body.len()),
            }
        }
    };
    let ppdu = match presentation::parse_for(slot, body) {
        Ok((p, _)) => p,
        Err(e) => return reject("presentation_acse", e, body.len()),
    };
    ppdu_round_trip(slot, &ppdu);
    if let Some(ud) = ppdu.user_data() {
        for pdv in ud.pdvs() {
            let PdvValue::Single(raw) = pdv.value else { continue };
            if !matches!(raw.first(), Some(0x60..=0x64)) {
                continue;
            }
            match acse::parse(raw) {
                Ok((a, _)) => acse_round_trip(&a),
                Err(e) => return reject("presentation_acse", e.shift(pdv.value_offset), body.len()),
            }
        }
    }
    Outcome::Decoded
}

/// One RTSE APDU; the P1 bind in its connection data, when it decodes,
/// round-trips too.
pub fn rtse(data: &[u8]) -> Outcome {
    match rtse_mod::parse(data) {
        Ok((r, _)) => {
            rtse_round_trip(&r);
            rtse_bind_round_trip(&r);
            Outcome::Decoded
        }
        Err(e) => reject("rtse", e, data.len()),
    }
}

/// One octet picks the slot (`sel % 5`: connect, accept, refuse, token
/// please, abort), then one X.410 RTS PDU; the P1 bind of a PConnect or
/// PAccept, when it decodes, round-trips too.
pub fn x410(data: &[u8]) -> Outcome {
    let ([sel], body) = header::<1>(data);
    let slot = match sel % 5 {
        0 => x410::Slot::Connect,
        1 => x410::Slot::Accept,
        2 => x410::Slot::Refuse,
        3 => x410::Slot::TokenPlease,
        _ => x410::Slot::Abort,
    };
    match x410::parse(slot, body) {
        Ok((x, _)) => {
            x410_round_trip(&x);
            x410_bind_round_trip(&x);
            Outcome::Decoded
        }
        Err(e) => reject("x410", e, body.len()),
    }
}

// ---------------------------------------------------------------------------
// capture.

/// Bytes as a pcap or pcapng file: capture reading, TCP reassembly, stack
/// decoding (each stack also rendered as JSON, as `rtse decode --json`
/// does), and the Turn timeline of every association through the timeline
/// engine ([`timeline::Engine`], what `rtse timeline` runs: association
/// grouping, recovery links, gaps, settling; each report rendered as JSON
/// too). The outcome is the first error: a PDU that did not decode (offset
/// within its TPKT or TSDU) or the file (offset in the file), whichever
/// came first.
pub fn capture(data: &[u8]) -> Outcome {
    let mut first_err: Option<Error> = None;
    let mut engine = timeline::Engine::new(timeline::Settings::default(), |a| {
        serde_json::to_writer(std::io::sink(), &a).expect("timeline report serialises");
    });
    let read = capture::stacks::decode_capture(data, |item| {
        if let CaptureItem::Pdu { result, .. } = &item {
            match result {
                Ok(stack) => serde_json::to_writer(std::io::sink(), stack).expect("stack serialises"),
                Err(e) => {
                    check_offset("capture", e, data.len());
                    first_err.get_or_insert(*e);
                }
            }
        }
        engine.item(item);
    });
    engine.finish();
    if let Err(e) = read {
        check_offset("capture", &e, data.len());
        first_err.get_or_insert(e);
    }
    match first_err {
        Some(e) => Outcome::Rejected(e),
        None => Outcome::Decoded,
    }
}
