//! `rtse timeline`: per-association Turn timelines from a capture (or a
//! TPKT byte stream), with anomalies and recovery links.
//!
//! # What it does
//!
//! Each TCP connection that carries session PDUs is one **association**
//! (one transport connection with its session connection), numbered in the
//! order the linker opens them. Its PDU stacks, decoded by the codec
//! ([`capture::stacks`](rtse_codec::capture::stacks)), become tracker events
//! through [`observe::events`](crate::observe::events); transport events are
//! fed too (`T-OPEN` at the SYN, `T-FIN`/`T-RST`/`T-EOF` at the close,
//! `T-GAP` where the capture misses octets), so a lost connection is seen.
//! Everything goes through one [`AssociationLinker`], which links an
//! association whose RTORQ/PConnect carries `recover` to the association it
//! recovers (by the quoted session Connection Identifier, whatever the TCP
//! connection and ports) and hands over what the lost one knew. The Turn
//! rules are the tracker's alone; this module only groups, feeds and
//! reports.
//!
//! One [`Event`] row per PDU stack that carries Turn-relevant SPDUs (an
//! X.224 CR/CC or a DT that does not end a TSDU carries none), with the
//! holder after it.
//!
//! # Streaming and memory
//!
//! The capture is read with
//! [`decode_capture_stream`](rtse_codec::capture::stacks::decode_capture_stream):
//! decoding memory is bounded by the open TCP connections. The rows of an
//! association are kept only until it is **reported**, which happens once
//! its connection has closed and nothing later can change its report:
//! * it was recovered (the recovery's AC was seen), or
//! * it ended in order (released, refused, aborted, closed before a CN)
//!   with no transfer left unconfirmed, or
//! * it ended otherwise (lost, or with an unconfirmed transfer) and
//!   [`Settings::settle_ns`] of capture time passed after its close without
//!   a recovery (a recovery or re-send after that still links in the newer
//!   association's report, but the older report is already out), or
//! * more than [`Settings::max_held`] closed associations wait (the oldest
//!   goes first), or the capture ends.
//!
//! Associations are therefore reported in the order they settle, not by
//! id. What stays for the whole run is the linker's per-association
//! tracker state (needed to link a recovery to any earlier association and
//! to find a label delivered twice) and the delivered labels: a few hundred
//! octets per association plus one entry per delivered message.

pub mod svg;
pub mod text;

use crate::cli::{exit, ColorArg, Format, TimelineArgs};
use crate::input::{self, Input};
use crate::observe;
use crate::tracker::{
    AnomalyKind, AssocId, AssociationLinker, CloseHow, Observed, Phase, Side, TrackerConfig, TurnEvent, TurnHolder,
};
use rtse_codec::capture::stacks::{CaptureItem, StackDecoder};
use rtse_codec::capture::StreamEvent;
use rtse_codec::capture::{CaptureSummary, ConnId, ConnKey, Timestamp};
use rtse_codec::stack::{AssociationDecoder, Sender, Stack};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};

/// How the timeline is built.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Tracker settings (please-unanswered bounds, absent Token Setting).
    pub tracker: TrackerConfig,
    /// Capture time (ns) an association that ended without release waits
    /// after its close for a recovery before it is reported. Default 300 s.
    pub settle_ns: u64,
    /// Closed associations kept waiting at most; beyond, the oldest is
    /// reported. Default 4096.
    pub max_held: usize,
    /// Whether rows carry their [`Event::note`] (what the text and SVG
    /// outputs show; JSON does not). Default true.
    pub notes: bool,
    /// Read and reassemble on one more thread and decode on another while
    /// this one tracks the Turn and reports (see [`from_capture`]); the
    /// output is the same. Default true; the fuzz target turns it off.
    pub parallel: bool,
    /// Reported associations (and delivered labels) remembered for later
    /// recoveries (and duplicate deliveries); beyond, the oldest are
    /// forgotten, so memory does not grow with the capture. Default 32,768.
    pub retention: usize,
    /// The process exits once the timeline is built (the `rtse` binary's
    /// `rtse timeline`: [`PROCESS_EXITS_AFTER_RUN`]): the engine's memory (the linker's retained associations and labels,
    /// tens of thousands of small allocations) is left to the operating
    /// system instead of being freed one allocation at a time. Freeing it
    /// came last, on one thread, after the other two had finished: some
    /// 4 million instructions at 10 MB, all on the critical path. Default
    /// false (a library caller keeps running).
    pub exit_after: bool,
}

/// Set by the `rtse` binary, whose process ends when the command returns:
/// [`run`] then sets [`Settings::exit_after`]. Anything else that calls
/// [`run`] (`cli::main_with` in-process, as the CLI tests do) keeps
/// running, so it stays false there and the engine is freed, not leaked
/// once per call.
pub static PROCESS_EXITS_AFTER_RUN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tracker: TrackerConfig::default(),
            settle_ns: 300_000_000_000,
            max_held: 4096,
            notes: true,
            parallel: true,
            retention: 32_768,
            exit_after: false,
        }
    }
}

/// One row of an association's timeline (JSON: `{"frame", "time", "from",
/// "pdus", "turn"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Capture frame (1-based); for a TPKT stream, the TPKT's index.
    pub frame: u64,
    /// Capture time, `"secs.nanos"` since the epoch; `null` for a TPKT
    /// stream.
    #[serde(serialize_with = "ser_time")]
    pub time: Option<Timestamp>,
    /// Sender (transport events: `initiator`).
    pub from: Side,
    /// The Turn-relevant SPDUs of the stack (`CN`, `PT`, `GTC`, `DT`, ...)
    /// or the transport event (`T-OPEN`, `T-FIN`, `T-RST`, `T-EOF`,
    /// `T-GAP`), or `MALFORMED`.
    pub pdus: PduNames,
    /// Holder after this row.
    pub turn: TurnHolder,
    /// Anomalies this row raised (human and SVG output).
    #[serde(skip)]
    pub anomalies: Vec<AnomalyKind>,
    /// Parameters worth showing (token setting, priority, label, ...).
    #[serde(skip)]
    pub note: String,
}

/// The names in a row's `pdus`: a slice (through `Deref`) kept inline up
/// to two names (nearly every row has one), on the heap beyond, so a row
/// costs no allocation. Serialised as a list.
#[derive(Clone)]
pub struct PduNames(Names);

#[derive(Clone)]
enum Names {
    Inline([&'static str; 2], u8),
    Heap(Vec<&'static str>),
}

impl PduNames {
    /// No names.
    pub const fn new() -> Self {
        PduNames(Names::Inline([""; 2], 0))
    }

    /// Appends `name`.
    pub fn push(&mut self, name: &'static str) {
        match &mut self.0 {
            Names::Inline(a, n) if usize::from(*n) < a.len() => {
                a[usize::from(*n)] = name;
                *n += 1;
            }
            Names::Inline(a, n) => {
                let mut v = Vec::with_capacity(usize::from(*n) * 2);
                v.extend_from_slice(&a[..usize::from(*n)]);
                v.push(name);
                self.0 = Names::Heap(v);
            }
            Names::Heap(v) => v.push(name),
        }
    }
}

impl Default for PduNames {
    fn default() -> Self {
        Self::new()
    }
}

impl std::ops::Deref for PduNames {
    type Target = [&'static str];
    fn deref(&self) -> &[&'static str] {
        match &self.0 {
            Names::Inline(a, n) => &a[..usize::from(*n)],
            Names::Heap(v) => v,
        }
    }
}

impl From<Vec<&'static str>> for PduNames {
    fn from(v: Vec<&'static str>) -> Self {
        let mut p = PduNames::new();
        for n in v {
            p.push(n);
        }
        p
    }
}

impl PartialEq for PduNames {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for PduNames {}

// Compared with lists as the `Vec` it replaced was (`e.pdus == ["GTA"]`).
impl<const N: usize> PartialEq<[&str; N]> for PduNames {
    fn eq(&self, other: &[&str; N]) -> bool {
        **self == other[..]
    }
}

impl PartialEq<[&str]> for PduNames {
    fn eq(&self, other: &[&str]) -> bool {
        **self == *other
    }
}

impl PartialEq<Vec<&str>> for PduNames {
    fn eq(&self, other: &Vec<&str>) -> bool {
        **self == other[..]
    }
}

impl std::fmt::Debug for PduNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for PduNames {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

fn ser_time<S: serde::Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => t.serialize(s),
        None => s.serialize_none(),
    }
}

/// One anomaly (JSON: `{"kind", "frame", "detail"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnomalyEntry {
    /// Kebab-case kind (`turn-lost`, ...).
    pub kind: AnomalyKind,
    /// Frame of the event that revealed it (for those judged at the end,
    /// the association's last event).
    pub frame: u64,
    /// Explanation.
    pub detail: String,
    /// The side at fault, when one is.
    #[serde(skip)]
    pub by: Option<Side>,
}

/// One association's report. JSON: `{"id", "endpoints", "mode",
/// "initiator", "responder", "recovers", "events", "anomalies"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Association {
    /// Association number (opening order, from 0).
    pub id: u32,
    /// `"client:port -> server:port"` of the TCP connection; `null` for a
    /// TPKT stream.
    pub endpoints: Option<AddrText>,
    /// `"normal"`, `"x410"`, or `null` when the CN was not seen.
    pub mode: Option<crate::tracker::Mode>,
    /// The association-initiator's address (`ip:port`).
    pub initiator: Option<AddrText>,
    /// The association-responder's address.
    pub responder: Option<AddrText>,
    /// The association this one recovers.
    pub recovers: Option<u32>,
    pub events: Vec<Event>,
    pub anomalies: Vec<AnomalyEntry>,
    /// What the text and SVG outputs add.
    #[serde(skip)]
    pub info: Info,
}

impl Association {
    /// Appends this association's JSON to `out`: the same text as
    /// `serde_json::to_writer(out, self)` (a test holds them equal), written
    /// without serde's machinery, because a timeline of a large capture is
    /// mostly rows of a few known strings and numbers, and serde escapes
    /// every string byte by byte.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":");
        push_u64(out, u64::from(self.id));
        out.extend_from_slice(b",\"endpoints\":");
        push_opt_addr(out, self.endpoints.as_ref());
        out.extend_from_slice(b",\"mode\":");
        match &self.mode {
            Some(m) => push_serde(out, m),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"initiator\":");
        push_opt_addr(out, self.initiator.as_ref());
        out.extend_from_slice(b",\"responder\":");
        push_opt_addr(out, self.responder.as_ref());
        out.extend_from_slice(b",\"recovers\":");
        match self.recovers {
            Some(r) => push_u64(out, u64::from(r)),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"events\":[");
        let mut time_text = TimeText::default();
        // A row's variable pieces are copied as fixed-size blocks and the
        // vector cut back to their length (a copy of a length known only
        // at run time is a call to memcpy: four a row).
        for (i, e) in self.events.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"frame\":");
            push_u64(out, e.frame);
            let side = match e.from {
                Side::Initiator => 0,
                Side::Responder => 1,
            };
            match &e.time {
                Some(t) => {
                    // Digits and a point: nothing to escape.
                    out.extend_from_slice(b",\"time\":\"");
                    time_text.push(out, *t);
                    out.extend_from_slice(FROM_AFTER_TIME[side]);
                }
                None => {
                    out.extend_from_slice(b",\"time\":null");
                    out.extend_from_slice(FROM_AFTER_NULL[side]);
                }
            }
            for (j, p) in e.pdus.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                push_name(out, p);
            }
            let (block, len) = &TURN_END[turn_index(e.turn)];
            push_block(out, block, *len);
        }
        out.extend_from_slice(b"],\"anomalies\":[");
        for (i, a) in self.anomalies.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"kind\":");
            push_name(out, a.kind.name());
            out.extend_from_slice(b",\"frame\":");
            push_u64(out, a.frame);
            out.extend_from_slice(b",\"detail\":");
            push_str(out, &a.detail);
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
    }
}

/// Writes timestamps as [`Timestamp`]'s `Display` does (`secs.nanos`, a
/// test holds them equal), reusing the seconds' digits of the previous
/// one: the rows of an association mostly fall in the same second, and
/// formatting the time was the largest cost of writing a row.
#[derive(Default)]
struct TimeText {
    /// The seconds last formatted (None: none yet), their digits at
    /// `digits[..len]` (the rest: padding, copied and cut off).
    secs: Option<u64>,
    digits: [u8; 20],
    len: usize,
}

impl TimeText {
    fn push(&mut self, out: &mut Vec<u8>, t: Timestamp) {
        if t.nanos >= 1_000_000_000 {
            // Not normalised (fields set by hand): the general path.
            out.extend_from_slice(t.format_into(&mut [0; 32]).as_bytes());
            return;
        }
        if self.secs != Some(t.secs) {
            let mut b = [0u8; 20];
            let d = decimal(&mut b, t.secs);
            self.len = d.len();
            self.digits = [0; 20];
            self.digits[..d.len()].copy_from_slice(d);
            self.secs = Some(t.secs);
        }
        push_block(out, &self.digits, self.len);
        // Three digits at a time from a table (two at a time, it was four
        // divisions by 100).
        let n = t.nanos as usize;
        let (a, b, c) = (n / 1_000_000, n / 1000 % 1000, n % 1000);
        let mut frac = [b'.'; 10];
        frac[1..4].copy_from_slice(&DIGITS3[a]);
        frac[4..7].copy_from_slice(&DIGITS3[b]);
        frac[7..10].copy_from_slice(&DIGITS3[c]);
        out.extend_from_slice(&frac);
    }
}

/// The three decimal digits of 0..1000.
const DIGITS3: [[u8; 3]; 1000] = {
    let mut t = [[0u8; 3]; 1000];
    let mut i = 0;
    while i < 1000 {
        t[i] = [b'0' + (i / 100) as u8, b'0' + (i / 10 % 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

/// Appends `block[..len]`: the whole block copied (a copy of a size
/// known when compiling, where one of `len` octets is a call to memcpy),
/// then the vector cut back.
fn push_block<const N: usize>(out: &mut Vec<u8>, block: &[u8; N], len: usize) {
    let at = out.len();
    out.extend_from_slice(block);
    out.truncate(at + len.min(N));
}

/// Appends `n` in decimal, copying a fixed-size block (see
/// [`push_block`]). Always inlined: with its four callers LLVM put it out
/// of line, 0.8 M instructions more at 10 MB (a call per row's frame).
#[inline(always)]
fn push_u64(out: &mut Vec<u8>, n: u64) {
    let mut b = [0u8; 40];
    let at = rtse_codec::capture::put_decimal(&mut b, 20, n, 1);
    let at = at.min(20);
    let at_out = out.len();
    out.extend_from_slice(&b[at..at + 20]);
    out.truncate(at_out + (20 - at));
}

/// What follows a row's time (its closing quote, or `null`) up to its
/// PDU names, by sender (initiator, responder).
const FROM_AFTER_TIME: [&[u8; 29]; 2] =
    [b"\",\"from\":\"initiator\",\"pdus\":[", b"\",\"from\":\"responder\",\"pdus\":["];
const FROM_AFTER_NULL: [&[u8; 28]; 2] = [b",\"from\":\"initiator\",\"pdus\":[", b",\"from\":\"responder\",\"pdus\":["];

/// The end of a row from its PDU names on, by holder (see
/// [`turn_index`]): a block and its length.
const TURN_END: [([u8; 24], usize); 5] = [
    turn_end(TurnHolder::Initiator),
    turn_end(TurnHolder::Responder),
    turn_end(TurnHolder::InTransit),
    turn_end(TurnHolder::None),
    turn_end(TurnHolder::Unknown),
];

const fn turn_index(t: TurnHolder) -> usize {
    match t {
        TurnHolder::Initiator => 0,
        TurnHolder::Responder => 1,
        TurnHolder::InTransit => 2,
        TurnHolder::None => 3,
        TurnHolder::Unknown => 4,
    }
}

/// `],"turn":"NAME"}`, padded.
const fn turn_end(t: TurnHolder) -> ([u8; 24], usize) {
    let mut b = [0u8; 24];
    let pre = b"],\"turn\":\"";
    let name = t.name().as_bytes();
    let mut i = 0;
    while i < pre.len() {
        b[i] = pre[i];
        i += 1;
    }
    let mut j = 0;
    while j < name.len() {
        b[i + j] = name[j];
        j += 1;
    }
    b[i + j] = b'"';
    b[i + j + 1] = b'}';
    (b, i + j + 2)
}

/// `n` in decimal ASCII digits, written at the end of `buf`.
fn decimal(buf: &mut [u8; 20], n: u64) -> &[u8] {
    let at = rtse_codec::capture::put_decimal(buf, 20, n, 1);
    &buf[at..]
}

/// Appends one of our own names (a side, a holder, a PDU or anomaly kind:
/// ASCII letters, digits and `-`, which JSON never escapes) as a string.
fn push_name(out: &mut Vec<u8>, s: &'static str) {
    debug_assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'), "{s}");
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// Appends `s` as a JSON string: as it is when it needs no escape (the
/// usual case), else through serde_json.
fn push_str(out: &mut Vec<u8>, s: &str) {
    if plain_json(s.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        push_serde(out, s);
    }
}

/// Whether `b` is printable ASCII without `"` or `\\` (JSON writes it as
/// it is): eight octets at a time (anomaly details and addresses are most
/// of the text a timeline writes).
fn plain_json(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    /// High bit set in each octet of `x` that is zero (exact when no octet
    /// of `x` has its high bit set; see the callers).
    const fn zero_octets(x: u64) -> u64 {
        // Adding 0x7f to an octet below 0x80 carries into its high bit
        // unless the octet is 0, and never into the next octet.
        let nonzero = (((x & !HIGH) + !HIGH) | x) & HIGH;
        !nonzero & HIGH
    }
    let bad = |c: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w);
        // Octets of 0x80 and above, or (below 0x80) one of the bad ones.
        x & HIGH != 0
            || (x.wrapping_add(ONES) & HIGH) != 0 // 0x7f
            || zero_octets(x & (ONES * 0x60)) != 0 // below 0x20
            || zero_octets(x ^ (ONES * u64::from(b'"'))) != 0
            || zero_octets(x ^ (ONES * u64::from(b'\\'))) != 0
    };
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        if bad(c) {
            return false;
        }
    }
    if chunks.remainder().is_empty() {
        return true;
    }
    // The last eight octets as one word (overlapping the chunks before,
    // already found plain) rather than octet by octet.
    match b.len().checked_sub(8) {
        Some(at) => !bad(&b[at..]),
        None => chunks.remainder().iter().all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'),
    }
}

/// Appends `a` as a JSON string (`null` if absent): its octets as they
/// are when they need no escape (addresses never do), without a UTF-8
/// check; else through [`push_str`].
fn push_opt_addr(out: &mut Vec<u8>, a: Option<&AddrText>) {
    match a {
        Some(a) if a.plain_json() => {
            out.push(b'"');
            out.extend_from_slice(a.as_bytes());
            out.push(b'"');
        }
        Some(a) => push_str(out, a.as_str()),
        None => out.extend_from_slice(b"null"),
    }
}

fn push_serde<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Writing to a Vec cannot fail, nor can serialising these types.
    let _ = serde_json::to_writer(&mut *out, v);
}

/// Appends `ip` as its `Display` writes it: IPv4 by hand (the formatting
/// machinery costs some two thousand instructions per address, and a
/// timeline of a large capture formats several per association), IPv6
/// through `Display`.
fn push_ip(out: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let mut b = [0u8; 15];
            let n = put_ipv4(&mut b, v4);
            push_ascii(out, &b[..n]);
        }
        std::net::IpAddr::V6(_) => {
            use std::fmt::Write as _;
            // Writing to a String cannot fail.
            let _ = write!(out, "{ip}");
        }
    }
}

/// Writes `ip` dotted-decimal at the start of `b`; returns its length.
/// Each octet's digits come from [`OCTET_TEXT`] (dividing cost some 130
/// instructions an address).
fn put_ipv4(b: &mut [u8; 15], ip: std::net::Ipv4Addr) -> usize {
    let mut n = 0;
    for (i, o) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            b[n] = b'.';
            n += 1;
        }
        let [len, digits @ ..] = OCTET_TEXT[usize::from(o)];
        // Three octets written, `len` kept: octet k starts at n <= 4k, so
        // n + 3 <= 15.
        b[n..n + 3].copy_from_slice(&digits);
        n += usize::from(len);
    }
    n
}

/// Each octet value's decimal digits: their count, then the digits,
/// padded.
const OCTET_TEXT: [[u8; 4]; 256] = {
    let mut t = [[0u8; 4]; 256];
    let mut i = 0;
    while i < 256 {
        let o = i as u8;
        t[i] = if o >= 100 {
            [3, b'0' + o / 100, b'0' + o / 10 % 10, b'0' + o % 10]
        } else if o >= 10 {
            [2, b'0' + o / 10, b'0' + o % 10, 0]
        } else {
            [1, b'0' + o, 0, 0]
        };
        i += 1;
    }
    t
};

/// Appends ASCII octets (digits, dots, a colon) to `out`.
fn push_ascii(out: &mut String, b: &[u8]) {
    // Our own digits and punctuation: always ASCII.
    out.push_str(std::str::from_utf8(b).unwrap_or_default());
}

/// Appends `addr` as its `Display` writes it (`1.2.3.4:102`, IPv6 through
/// `Display`: `[::1]:102`, with its scope id).
fn push_socket_addr(out: &mut String, addr: std::net::SocketAddr) {
    match addr {
        std::net::SocketAddr::V4(a) => {
            // Address, colon, port in one buffer, appended at once
            // (character by character, it cost some 470 instructions).
            let mut b = [0u8; AddrText::INLINE];
            let n = put_socket_addr_v4(&mut b, 0, a);
            push_ascii(out, &b[..n]);
        }
        std::net::SocketAddr::V6(_) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{addr}");
        }
    }
}

/// `client -> server` and the two addresses, as `Display` writes them.
/// Two IPv4 addresses are written into one buffer and the three texts
/// sliced from it, held in place ([`AddrText`]: no allocation, no UTF-8
/// check); anything else goes through [`push_socket_addr`].
fn endpoint_strings(client: std::net::SocketAddr, server: std::net::SocketAddr) -> (AddrText, AddrText, AddrText) {
    use std::net::SocketAddr::V4;
    match (client, server) {
        (V4(c), V4(s)) => {
            // Two addresses of at most 21 octets and the arrow.
            let mut b = [0u8; AddrText::INLINE];
            let n = put_socket_addr_v4(&mut b, 0, c);
            b[n..n + 4].copy_from_slice(b" -> ");
            let end = put_socket_addr_v4(&mut b, n + 4, s);
            (AddrText::ascii(&b, 0, end), AddrText::ascii(&b, 0, n), AddrText::ascii(&b, n + 4, end))
        }
        _ => {
            let mut e = String::with_capacity(52);
            push_socket_addr(&mut e, client);
            let at = e.len();
            e.push_str(" -> ");
            push_socket_addr(&mut e, server);
            let client = AddrText::from(e.get(..at).unwrap_or_default());
            let server = AddrText::from(e.get(at + 4..).unwrap_or_default());
            (AddrText::from(e.as_str()), client, server)
        }
    }
}

/// An address of a report (`1.2.3.4:102`, or `client -> server`): a `str`
/// (through `Deref`; equality, `Debug`, `Display` and serialisation are
/// the text's), held in place up to [`AddrText::INLINE`] octets (two IPv4
/// socket addresses and the arrow), on the heap beyond (IPv6). The three
/// addresses of each association were three allocations, freed by
/// whoever took the report.
#[derive(Clone)]
pub struct AddrText(AddrRepr);

#[derive(Clone)]
enum AddrRepr {
    /// Octets `buf[at..at + len]` (a slice of a buffer written whole:
    /// copying it is cheaper than moving its part to the front); `plain`:
    /// known to need no JSON escape (checking an address cost some 110
    /// instructions).
    Inline {
        at: u8,
        len: u8,
        plain: bool,
        buf: [u8; AddrText::INLINE],
    },
    Heap(Box<str>),
}

impl AddrText {
    /// Octets held in place.
    pub const INLINE: usize = 46;

    /// `b[from..to]`, ASCII (our own digits and punctuation).
    fn ascii(b: &[u8; Self::INLINE], from: usize, to: usize) -> Self {
        debug_assert!(from <= to && to <= Self::INLINE && b[from..to].is_ascii());
        match (u8::try_from(from), u8::try_from(to.saturating_sub(from))) {
            (Ok(at), Ok(len)) if to <= Self::INLINE => AddrText(AddrRepr::Inline { at, len, plain: true, buf: *b }),
            _ => AddrText(AddrRepr::Heap(Box::from(""))),
        }
    }

    /// The text's octets.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            AddrRepr::Inline { at, len, buf, .. } => {
                let at = usize::from(*at);
                buf.get(at..at + usize::from(*len)).unwrap_or_default()
            }
            AddrRepr::Heap(s) => s.as_bytes(),
        }
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Inline octets are ASCII or a whole `str` (see `from`).
            AddrRepr::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            AddrRepr::Heap(s) => s,
        }
    }

    /// Held in place, not on the heap (for tests).
    #[must_use]
    pub fn is_inline(&self) -> bool {
        matches!(self.0, AddrRepr::Inline { .. })
    }

    /// Whether the text is written in JSON as it is (see [`plain_json`]).
    fn plain_json(&self) -> bool {
        match &self.0 {
            AddrRepr::Inline { plain, .. } => *plain,
            AddrRepr::Heap(s) => plain_json(s.as_bytes()),
        }
    }
}

impl From<&str> for AddrText {
    fn from(s: &str) -> Self {
        let mut buf = [0u8; AddrText::INLINE];
        match (buf.get_mut(..s.len()), u8::try_from(s.len())) {
            (Some(to), Ok(len)) => {
                to.copy_from_slice(s.as_bytes());
                AddrText(AddrRepr::Inline { at: 0, len, plain: plain_json(s.as_bytes()), buf })
            }
            _ => AddrText(AddrRepr::Heap(Box::from(s))),
        }
    }
}

impl From<String> for AddrText {
    fn from(s: String) -> Self {
        AddrText::from(s.as_str())
    }
}

impl std::ops::Deref for AddrText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for AddrText {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for AddrText {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for AddrText {}

impl PartialEq<str> for AddrText {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for AddrText {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl std::fmt::Debug for AddrText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for AddrText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self.as_str(), f)
    }
}

impl Serialize for AddrText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Writes `a` (`1.2.3.4:102`) into `b` at `at` (at most 25: two
/// addresses and the arrow fit); returns where it ends. The address and
/// the port are copied as fixed-size blocks (15 and 5 octets, cut back by
/// where the next piece starts): copies of their own lengths were calls
/// to memcpy.
fn put_socket_addr_v4(b: &mut [u8; AddrText::INLINE], at: usize, a: std::net::SocketAddrV4) -> usize {
    let at = at.min(25);
    let mut ip = [0u8; 15];
    let n = put_ipv4(&mut ip, *a.ip());
    b[at..at + 15].copy_from_slice(&ip);
    let colon = at + n;
    b[colon] = b':';
    let mut d = [0u8; 10];
    let p = rtse_codec::capture::put_decimal(&mut d, 5, u64::from(a.port()), 1).min(5);
    b[colon + 1..colon + 6].copy_from_slice(&d[p..p + 5]);
    colon + 1 + (5 - p)
}

/// Details of an association that only the human outputs show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info {
    /// Wireshark's `tcp.stream`.
    pub stream: Option<u64>,
    /// The capture started after the connection did.
    pub mid_stream: bool,
    /// The TCP client sent the AC (or the server the CN): sides swapped.
    pub swapped: bool,
    /// Dialogue mode, when the CN showed it.
    pub dialogue: Option<crate::tracker::Dialogue>,
    /// The association that recovered this one.
    pub recovered_by: Option<u32>,
    /// Final phase.
    pub phase: Option<Phase>,
    /// Anomalies beyond the tracker's cap.
    pub dropped_anomalies: u64,
    /// Rows beyond [`MAX_ROWS`] not kept.
    pub dropped_rows: u64,
    /// The senders of a TPKT stream were guessed.
    pub senders_guessed: bool,
}

/// Rows kept per association (beyond, counted in `Info::dropped_rows`):
/// bounds the memory of one very long association.
pub const MAX_ROWS: usize = 100_000;

/// Totals of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub associations: u64,
    pub anomalies: u64,
    /// PDUs that did not decode (reported as `malformed` anomalies).
    pub malformed: u64,
    /// TCP connections with session PDUs but no RTSE (MMS, say), or none
    /// seen: not shown.
    pub other_sessions: u64,
    /// Capture totals (capture input only).
    pub capture: Option<CaptureSummary>,
}

/// A connection seen by the capture reader, before and after it becomes an
/// association.
#[derive(Debug)]
struct Conn {
    key: Option<ConnKey>,
    open: Option<(u64, Timestamp)>,
    mid_stream: bool,
    assoc: Option<AssocId>,
    /// Gap before the association was opened.
    pending_gap: Option<(u64, Side)>,
    /// Whether the session connection uses RTSE: known from the CN
    /// (RTORQ/PConnect or not) or from the first RTSE/X.410 PDU.
    rtse: Option<bool>,
    /// Stacks seen before that was known (mid-stream captures).
    undecided: Vec<(u64, Option<Timestamp>, Sender, Vec<TurnEvent>)>,
}

/// Rows reserved when an association opens (see [`Engine::open_assoc`]).
const ROWS_RESERVED: usize = 16;

/// Stacks of a connection kept while it is not yet known whether it uses
/// RTSE; beyond, it is taken for another protocol over the session layer.
const MAX_UNDECIDED: usize = 256;

impl Conn {
    fn new(key: Option<ConnKey>, open: Option<(u64, Timestamp)>, mid_stream: bool, rtse: Option<bool>) -> Self {
        Conn { key, open, mid_stream, assoc: None, pending_gap: None, rtse, undecided: Vec::new() }
    }
}

#[derive(Debug)]
struct Live {
    key: Option<ConnKey>,
    stream: Option<u64>,
    mid_stream: bool,
    swapped: bool,
    timed: bool,
    senders_guessed: bool,
    rows: Vec<Event>,
    /// Whether a kept row has a session PDU (not only `T-` events): what
    /// decides a swap, without a scan of every row per PDU.
    session_rows: bool,
    dropped_rows: u64,
    closed_at: Option<u64>,
}

/// Takes an [`Engine`]'s reports: any `FnMut(Association)`, or
/// [`Lend`].
pub trait Sink {
    /// Takes one association's report; gives it back when done with it,
    /// so that the memory of its rows serves a later association (a
    /// vector of rows, over a kilobyte, was allocated and freed per
    /// association).
    fn take(&mut self, a: Association) -> Option<Association>;
}

impl<F: FnMut(Association)> Sink for F {
    fn take(&mut self, a: Association) -> Option<Association> {
        self(a);
        None
    }
}

/// A [`Sink`] that looks at each report and gives it back (see
/// [`Sink::take`]): what `rtse timeline` uses.
pub struct Lend<G: FnMut(&Association)>(pub G);

impl<G: FnMut(&Association)> Sink for Lend<G> {
    fn take(&mut self, a: Association) -> Option<Association> {
        (self.0)(&a);
        Some(a)
    }
}

/// Row vectors given back by a [`Sink`] kept for reuse at most, and the
/// capacity beyond which one is not kept (memory stays small).
const SPARE_ROWS: usize = 16;
const SPARE_ROWS_CAPACITY: usize = 64;

/// Builds timelines from capture items; reports each association through
/// `emit` once it is settled (see the [module docs](self)).
pub struct Engine<F: Sink> {
    settings: Settings,
    linker: AssociationLinker,
    conns: rtse_codec::capture::ConnMap<Conn>,
    /// By association: a hash map, looked up several times per row (a
    /// B-tree's comparisons cost as much as the rest of recording a row).
    live: HashMap<AssocId, Live, std::hash::BuildHasherDefault<rtse_codec::capture::ConnIdHasher>>,
    closed: VecDeque<AssocId>,
    now_ns: u64,
    emit: F,
    summary: Summary,
    /// The events of one stack, reused from stack to stack.
    scratch: Vec<TurnEvent>,
    row_hook: Option<RowHook>,
    /// Row vectors of reported associations, emptied, for new ones.
    spare_rows: Vec<Vec<Event>>,
}

/// Called with each row as it is recorded (association id, the row, the
/// anomalies it raised): live output (`rtse proxy`).
pub type RowHook = Box<dyn FnMut(u32, &Event, &[AnomalyEntry])>;

impl<F: Sink> std::fmt::Debug for Engine<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("live", &self.live.len()).field("summary", &self.summary).finish()
    }
}

const fn side(s: Sender, swapped: bool) -> Side {
    let x = observe::side(s);
    if swapped {
        x.peer()
    } else {
        x
    }
}

fn note_of(ev: &TurnEvent) -> Option<String> {
    Some(match ev {
        TurnEvent::Connect(c) => {
            let mut s = Vec::new();
            if let Some(r) = &c.recover {
                s.push(format!("recover {r}"));
            }
            if let Some(t) = c.token_setting {
                s.push(format!("ts={t:02X}"));
            }
            if let Some(d) = c.dialogue {
                s.push(match d {
                    crate::tracker::Dialogue::Twa => "twa".into(),
                    crate::tracker::Dialogue::Monologue => "monologue".into(),
                });
            }
            if let Some(r) = &c.conn_ref {
                s.push(format!("ref {r}"));
            }
            s.join(" ")
        }
        TurnEvent::Accept(a) => {
            let mut s = Vec::new();
            if a.recover {
                s.push("recover".to_string());
            }
            if let Some(t) = a.token_setting {
                s.push(format!("ts={t:02X}"));
            }
            s.join(" ")
        }
        TurnEvent::Refuse { reason, recovery_refused } => match (reason, recovery_refused) {
            (_, true) => "recovery refused".into(),
            (Some(r), _) => format!("reason {r}"),
            _ => return None,
        },
        TurnEvent::PleaseTokens { priority, .. } => format!("p={}", priority.unwrap_or(0)),
        TurnEvent::ActivityStart { id } => format!("activity {id}"),
        TurnEvent::ActivityResume(r) => format!("resume {} from {} as {}", r.old_id, r.serial, r.new_id),
        TurnEvent::Data { octets } => format!("{octets} octets"),
        TurnEvent::MinorSync { serial, .. }
        | TurnEvent::MinorSyncAck { serial }
        | TurnEvent::ActivityEnd { serial }
        | TurnEvent::ActivityEndAck { serial } => format!("#{serial}"),
        TurnEvent::TransferLabel { label } => label.clone(),
        TurnEvent::Abort { user, .. } => if *user { "user" } else { "provider" }.into(),
        TurnEvent::Malformed { detail } => detail.clone(),
        _ => return None,
    })
}

/// A capture item with its PDU stack reduced to the stack's Turn events
/// (kept apart, in a caller's vector): what the engine needs, owning
/// nothing borrowed from the capture, so it can cross threads.
#[derive(Debug, Clone, Copy)]
enum Reduced {
    Open {
        conn: ConnId,
        key: ConnKey,
        frame: u64,
        time: Timestamp,
        mid_stream: bool,
    },
    /// `events` events; `shows`: what the stack shows of whether the
    /// connection uses RTSE.
    Pdu {
        conn: ConnId,
        frame: u64,
        time: Timestamp,
        from: Sender,
        events: u32,
        shows: Option<bool>,
    },
    Gap {
        conn: ConnId,
        frame: u64,
        from: Sender,
    },
    Close {
        conn: ConnId,
        frame: u64,
        time: Timestamp,
        how: rtse_codec::capture::CloseHow,
    },
}

impl Reduced {
    /// Reduces `it`, appending a PDU's events to `events`.
    fn of(it: &CaptureItem<'_>, events: &mut Vec<TurnEvent>) -> Self {
        match *it {
            CaptureItem::Open { conn, key, frame, time, mid_stream } => {
                Reduced::Open { conn, key, frame, time, mid_stream }
            }
            CaptureItem::Pdu { conn, frame, time, from, result, .. } => {
                let before = events.len();
                let shows = reduce(result, events);
                let n = u32::try_from(events.len() - before).unwrap_or(u32::MAX);
                Reduced::Pdu { conn, frame, time, from, events: n, shows }
            }
            CaptureItem::Gap { conn, frame, from, .. } => Reduced::Gap { conn, frame, from },
            CaptureItem::Close { conn, frame, time, how } => Reduced::Close { conn, frame, time, how },
        }
    }
}

/// Appends the Turn events of a PDU stack (or its decoding error) to
/// `events`; returns whether the stack shows that its connection uses RTSE
/// (`Some(true)`: an RTSE or X.410 APDU; `Some(false)`: a CN without
/// RTORQ/PConnect, i.e. ACSE for something else such as MMS; `None`: it
/// does not tell).
fn reduce(result: &rtse_codec::Result<Stack<'_>>, events: &mut Vec<TurnEvent>) -> Option<bool> {
    match result {
        Ok(stack) => {
            let first = events.len();
            observe::events(stack, |e| events.push(e));
            let rtse = stack
                .session
                .as_ref()
                .is_some_and(|ss| ss.iter().any(|(_, up)| up.rtse.is_some() || up.x410.is_some()));
            match events.get(first) {
                _ if rtse => Some(true),
                Some(TurnEvent::Connect(c)) => Some(c.mode.is_some()),
                _ => None,
            }
        }
        Err(e) => {
            events.push(TurnEvent::Malformed { detail: e.to_string() });
            None
        }
    }
}

/// Reduced items passed from the decoding thread to the engine's (see
/// [`from_capture`]); the PDUs' events are kept flat, in order.
#[derive(Debug, Default)]
struct Batch {
    items: Vec<Reduced>,
    events: Vec<TurnEvent>,
}

/// JSON octets `run` writes at once (see there).
const JSON_CHUNK: usize = 1 << 16;

/// Items per batch: large enough that the channel costs nothing, small
/// enough that the batches in flight stay a few hundred kilobytes.
const BATCH_ITEMS: usize = 256;

/// Batches in flight between the two threads (memory bound).
const BATCHES_IN_FLIGHT: usize = 4;

impl<F: Sink> Engine<F> {
    /// An engine reporting through `emit`.
    pub fn new(settings: Settings, emit: F) -> Self {
        Engine {
            linker: AssociationLinker::new(settings.tracker.clone()).with_retention(settings.retention),
            settings,
            conns: rtse_codec::capture::ConnMap::default(),
            live: HashMap::default(),
            closed: VecDeque::new(),
            now_ns: 0,
            emit,
            summary: Summary::default(),
            scratch: Vec::new(),
            row_hook: None,
            spare_rows: Vec::new(),
        }
    }

    /// Call `hook` with every row as it is recorded, before the
    /// association is reported (live output).
    pub fn set_row_hook(&mut self, hook: RowHook) {
        self.row_hook = Some(hook);
    }

    fn open_assoc(&mut self, conn: ConnId) -> Option<AssocId> {
        let c = self.conns.get_mut(&conn)?;
        if let Some(id) = c.assoc {
            return Some(id);
        }
        // The client's address, IPv4 written on the stack (a `String`
        // was two allocations with the linker's copy), our own ASCII (no
        // UTF-8 check).
        let mut v4 = [0u8; 15];
        let mut v6 = String::new();
        let host = match c.key.map(|k| k.client.ip()) {
            Some(std::net::IpAddr::V4(ip)) => {
                let n = put_ipv4(&mut v4, ip);
                Some(v4.get(..n).unwrap_or_default())
            }
            Some(ip) => {
                push_ip(&mut v6, ip);
                Some(v6.as_bytes())
            }
            None => None,
        };
        let id = self.linker.open_host(host);
        c.assoc = Some(id);
        let (key, mid, open, gap) = (c.key, c.mid_stream, c.open, c.pending_gap.take());
        self.summary.associations += 1;
        self.live.insert(
            id,
            Live {
                key,
                stream: key.map(|_| conn),
                mid_stream: mid,
                swapped: false,
                timed: key.is_some(),
                senders_guessed: false,
                // Room for a typical association's rows (11 on average in
                // the benchmark's captures): growing the vector row by
                // row reallocated and copied it three times.
                rows: self.spare_rows.pop().unwrap_or_else(|| Vec::with_capacity(ROWS_RESERVED)),
                session_rows: false,
                dropped_rows: 0,
                closed_at: None,
            },
        );
        if let (false, Some((frame, time))) = (mid, open) {
            self.feed(id, frame, Some(time), Side::Initiator, [TurnEvent::TransportOpen]);
        }
        if let Some((frame, from)) = gap {
            let time = open.map(|o| o.1);
            self.feed(id, frame, time, from, [TurnEvent::TransportClosed { how: CloseHow::Gap }]);
        }
        Some(id)
    }

    /// Feeds the events of one row to the linker and records the row
    /// (events by value: a row of one transport event needs no vector).
    fn feed(
        &mut self,
        id: AssocId,
        frame: u64,
        time: Option<Timestamp>,
        from: Side,
        events: impl IntoIterator<Item = TurnEvent>,
    ) {
        let time_ns = time.map_or(0, |t| t.as_nanos());
        let mut pdus = PduNames::new();
        let mut notes: Vec<String> = Vec::new();
        let mut kinds = Vec::new();
        let mut raised: Vec<AnomalyEntry> = Vec::new();
        let live = self.row_hook.is_some();
        let mut turn = TurnHolder::Unknown;
        let mut accepted_recovery = false;
        for event in events {
            if !matches!(event, TurnEvent::TransferLabel { .. }) {
                pdus.push(event.name());
            }
            if matches!(event, TurnEvent::Malformed { .. }) {
                self.summary.malformed += 1;
            }
            accepted_recovery |= matches!(event, TurnEvent::Accept(_));
            if self.settings.notes {
                if let Some(n) = note_of(&event).filter(|n| !n.is_empty()) {
                    notes.push(n);
                }
            }
            let ev = Observed { seq: frame, time_ns, from, event };
            if let Some(step) = self.linker.observe(id, &ev) {
                turn = step.turn;
                // The tracker looked up again only for new anomalies (a
                // look-up per event otherwise).
                if let Some(t) = self.linker.tracker(id).filter(|_| !step.anomalies.is_empty()) {
                    let new = t.anomalies().get(step.anomalies).unwrap_or(&[]);
                    kinds.extend(new.iter().map(|a| a.kind));
                    if live {
                        raised.extend(new.iter().map(|a| AnomalyEntry {
                            kind: a.kind,
                            frame: a.seq,
                            detail: a.detail.clone(),
                            by: a.by,
                        }));
                    }
                }
            }
        }
        let note = if notes.is_empty() { String::new() } else { notes.join("; ") };
        let row = Event { frame, time, from, pdus, turn, anomalies: kinds, note };
        if let Some(hook) = self.row_hook.as_mut() {
            hook(id.0, &row, &raised);
        }
        if let Some(l) = self.live.get_mut(&id) {
            if l.rows.len() < MAX_ROWS {
                l.session_rows |= row.pdus.iter().any(|p| !p.starts_with("T-"));
                l.rows.push(row);
            } else {
                l.dropped_rows += 1;
            }
        }
        if accepted_recovery {
            if let Some(old) = self.linker.recovers(id) {
                self.try_report(old);
            }
        }
    }

    /// The Turn events of one PDU stack (or decoding error) of connection
    /// `conn` (opened mid-stream if unknown), with what the stack shows of
    /// whether the connection uses RTSE (see [`reduce`]); `events` is left
    /// empty. The connection is looked up once per PDU (twice cost some
    /// 30 instructions a PDU).
    fn stack(
        &mut self,
        conn: ConnId,
        frame: u64,
        time: Timestamp,
        from: Sender,
        events: &mut Vec<TurnEvent>,
        shows: Option<bool>,
    ) {
        let c = self.conns.entry(conn).or_insert_with(|| Conn::new(None, None, true, None));
        // A connection seen from its start has times; one opened here not.
        let time = c.key.is_some().then_some(time);
        if events.is_empty() {
            return;
        }
        if c.rtse.is_none() {
            c.rtse = shows;
        }
        match c.rtse {
            Some(false) => {
                c.undecided = Vec::new();
                events.clear();
                return;
            }
            None => {
                if c.undecided.len() < MAX_UNDECIDED {
                    c.undecided.push((frame, time, from, std::mem::take(events)));
                } else {
                    c.rtse = Some(false);
                    c.undecided = Vec::new();
                    events.clear();
                }
                return;
            }
            Some(true) => {}
        }
        if let (Some(id), true) = (c.assoc, c.undecided.is_empty()) {
            // The usual case, with no second look-up of the connection.
            return self.assoc_events(id, frame, time, from, events);
        }
        let earlier = std::mem::take(&mut c.undecided);
        for (frame, time, from, mut events) in earlier {
            self.stack_events(conn, frame, time, from, &mut events);
        }
        self.stack_events(conn, frame, time, from, events);
    }

    fn stack_events(
        &mut self,
        conn: ConnId,
        frame: u64,
        time: Option<Timestamp>,
        from: Sender,
        events: &mut Vec<TurnEvent>,
    ) {
        let Some(id) = self.open_assoc(conn) else { return };
        self.assoc_events(id, frame, time, from, events);
    }

    /// The events of one stack of association `id`.
    fn assoc_events(
        &mut self,
        id: AssocId,
        frame: u64,
        time: Option<Timestamp>,
        from: Sender,
        events: &mut Vec<TurnEvent>,
    ) {
        let Some(live) = self.live.get_mut(&id) else { return };
        // The CN sender is the initiator by definition: if the TCP server
        // sent it (a mid-stream capture guessed the client wrong), swap.
        if !live.session_rows && from == Sender::Responder && matches!(events.first(), Some(TurnEvent::Connect(_))) {
            live.swapped = true;
        }
        let from = side(from, live.swapped);
        self.feed(id, frame, time, from, events.drain(..));
    }

    /// Handles one capture item.
    pub fn item(&mut self, it: CaptureItem<'_>) {
        let mut events = std::mem::take(&mut self.scratch);
        let r = Reduced::of(&it, &mut events);
        self.reduced(r, &mut events);
        self.scratch = events;
    }

    /// Handles one reduced capture item; for a PDU, `events` holds its
    /// events and is left empty.
    fn reduced(&mut self, it: Reduced, events: &mut Vec<TurnEvent>) {
        match it {
            Reduced::Open { conn, key, frame, time, mid_stream } => {
                self.now_ns = self.now_ns.max(time.as_nanos());
                self.conns.insert(conn, Conn::new(Some(key), Some((frame, time)), mid_stream, None));
                self.settle();
            }
            Reduced::Pdu { conn, frame, time, from, shows, .. } => {
                self.now_ns = self.now_ns.max(time.as_nanos());
                self.stack(conn, frame, time, from, events, shows);
            }
            Reduced::Gap { conn, frame, from } => {
                let Some(c) = self.conns.get_mut(&conn) else { return };
                match c.assoc {
                    Some(id) => {
                        let swapped = self.live.get(&id).is_some_and(|l| l.swapped);
                        let time = Some(Timestamp::from_nanos(self.now_ns));
                        let ev = TurnEvent::TransportClosed { how: CloseHow::Gap };
                        self.feed(id, frame, time, side(from, swapped), [ev]);
                    }
                    None => c.pending_gap = Some((frame, observe::side(from))),
                }
            }
            Reduced::Close { conn, frame, time, how } => {
                self.now_ns = self.now_ns.max(time.as_nanos());
                let Some(c) = self.conns.remove(&conn) else { return };
                if c.assoc.is_none() && (c.rtse == Some(false) || !c.undecided.is_empty()) {
                    self.summary.other_sessions += 1;
                }
                if let Some(id) = c.assoc {
                    let ev = TurnEvent::TransportClosed { how: observe::close_how(how) };
                    self.feed(id, frame, Some(time), Side::Initiator, [ev]);
                    if let Some(l) = self.live.get_mut(&id) {
                        l.closed_at = Some(time.as_nanos());
                        self.closed.push_back(id);
                    }
                    self.try_report(id);
                }
                self.settle();
            }
        }
    }

    /// Handles a batch of reduced items (see [`from_capture`]), leaving it
    /// empty for reuse.
    fn batch(&mut self, b: &mut Batch) {
        let mut events = std::mem::take(&mut self.scratch);
        let mut flat = b.events.drain(..);
        for it in b.items.drain(..) {
            if let Reduced::Pdu { events: n, .. } = it {
                events.extend(flat.by_ref().take(n as usize));
            }
            self.reduced(it, &mut events);
            events.clear();
        }
        drop(flat);
        self.scratch = events;
    }

    /// Whether nothing later can change `id`'s report.
    fn settled(&self, id: AssocId, closed_at: u64) -> bool {
        let Some(t) = self.linker.tracker(id) else { return true };
        if t.recovered_by().is_some() {
            return true;
        }
        let clean = matches!(t.phase(), Phase::Released | Phase::Refused | Phase::Aborted | Phase::Closed);
        let open_transfer = t.transfers().iter().any(|x| x.state.unconfirmed() && x.continued_by.is_none());
        (clean && !open_transfer) || self.now_ns >= closed_at.saturating_add(self.settings.settle_ns)
    }

    fn try_report(&mut self, id: AssocId) {
        let Some(closed_at) = self.live.get(&id).and_then(|l| l.closed_at) else { return };
        if self.settled(id, closed_at) {
            self.report(id);
        }
    }

    /// Reports closed associations whose wait is over, oldest first.
    fn settle(&mut self) {
        while let Some(&id) = self.closed.front() {
            let Some(closed_at) = self.live.get(&id).and_then(|l| l.closed_at) else {
                self.closed.pop_front();
                continue;
            };
            if self.closed.len() > self.settings.max_held || self.settled(id, closed_at) {
                self.closed.pop_front();
                self.report(id);
            } else {
                break;
            }
        }
    }

    fn report(&mut self, id: AssocId) {
        let Some(l) = self.live.remove(&id) else { return };
        self.linker.finish_one(id);
        let recovers = self.linker.recovers(id).map(|a| a.0);
        // Only what a later recovery needs stays (memory stays small on
        // captures of many associations); the tracker comes back, so its
        // anomalies move into the report instead of being copied.
        let Some(mut t) = self.linker.retire(id) else { return };
        let anomalies: Vec<AnomalyEntry> = t
            .take_anomalies()
            .into_iter()
            .map(|a| AnomalyEntry { kind: a.kind, frame: a.seq, detail: a.detail, by: a.by })
            .collect();
        self.summary.anomalies += anomalies.len() as u64;
        // Each address formatted once (the formatting machinery cost as
        // much as the rest of the report).
        let (endpoints, initiator, responder) = match l.key {
            Some(k) => {
                let (endpoints, client, server) = endpoint_strings(k.client, k.server);
                let (i, r) = if l.swapped { (server, client) } else { (client, server) };
                (Some(endpoints), Some(i), Some(r))
            }
            None => (None, None, None),
        };
        let a = Association {
            id: id.0,
            endpoints,
            mode: t.mode(),
            initiator,
            responder,
            recovers,
            events: l.rows,
            anomalies,
            info: Info {
                stream: l.stream,
                mid_stream: l.mid_stream,
                swapped: l.swapped,
                dialogue: t.dialogue(),
                recovered_by: t.recovered_by().map(|a| a.0),
                phase: Some(t.phase()),
                dropped_anomalies: t.dropped_anomalies(),
                dropped_rows: l.dropped_rows,
                senders_guessed: l.senders_guessed,
            },
        };
        let _ = l.timed;
        self.linker.recycle(t);
        if let Some(back) = self.emit.take(a) {
            let mut rows = back.events;
            if rows.capacity() <= SPARE_ROWS_CAPACITY && self.spare_rows.len() < SPARE_ROWS {
                rows.clear();
                self.spare_rows.push(rows);
            }
        }
    }

    /// Wall-clock time passed without input (a live observer, `rtse
    /// proxy`): the trackers of the open associations judge their time
    /// bounds (an unanswered please) now. Returns the anomalies raised.
    pub fn tick(&mut self, now: Timestamp) -> Vec<(u32, AnomalyEntry)> {
        let ns = now.as_nanos();
        let mut open: Vec<AssocId> =
            self.live.iter().filter(|(_, l)| l.closed_at.is_none()).map(|(id, _)| *id).collect();
        open.sort_unstable();
        let mut raised = Vec::new();
        for id in open {
            let Some(range) = self.linker.advance(id, ns) else { continue };
            let Some(t) = self.linker.tracker(id) else { continue };
            for a in t.anomalies().get(range).unwrap_or(&[]) {
                raised.push((id.0, AnomalyEntry { kind: a.kind, frame: a.seq, detail: a.detail.clone(), by: a.by }));
            }
        }
        raised
    }

    /// End of input: reports every association not yet reported, by id.
    pub fn finish(mut self) -> Summary {
        self.finish_keep()
    }

    /// [`Engine::finish`] without consuming the engine (its memory is
    /// then freed, or not, by the caller: [`Settings::exit_after`]).
    fn finish_keep(&mut self) -> Summary {
        let mut ids: Vec<AssocId> = self.live.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.report(id);
        }
        std::mem::take(&mut self.summary)
    }
}

/// Builds the timeline of a pcap/pcapng capture read from `r`, reporting
/// each association through `emit` as it settles. A damaged capture is an
/// error (after every association before the damage was reported).
pub fn from_capture<R: Read + Send>(
    r: R,
    settings: Settings,
    emit: impl FnMut(Association),
) -> Result<Summary, rtse_codec::Error> {
    capture_into(r, settings, emit)
}

/// [`from_capture`], reporting to any [`Sink`].
pub fn capture_into<R: Read + Send>(r: R, settings: Settings, emit: impl Sink) -> Result<Summary, rtse_codec::Error> {
    let parallel = settings.parallel;
    let mut engine = Engine::new(settings, emit);
    let res = if parallel {
        pipeline(r, &mut engine)
    } else {
        rtse_codec::capture::stacks::decode_capture_stream(r, |it| engine.item(it))
    };
    let mut summary = engine.finish_keep();
    if engine.settings.exit_after {
        // See `Settings::exit_after`.
        std::mem::forget(engine);
    } else {
        drop(engine);
    }
    match res {
        Ok(c) => {
            summary.capture = Some(c);
            Ok(summary)
        }
        Err(e) => Err(e),
    }
}

/// Stream events handed from the reading thread to the decoding one (see
/// [`pipeline`]): each `Data` event's octets are the next `len` octets of
/// `bytes` (the event itself holds an empty slice), so a batch owns
/// everything and can cross threads.
#[derive(Debug, Default)]
struct Raw {
    events: Vec<(StreamEvent<'static>, u32)>,
    bytes: Vec<u8>,
}

impl Raw {
    /// Keeps `ev` (the events the stack decoder ignores are dropped).
    fn push(&mut self, ev: StreamEvent<'_>) {
        let kept = match ev {
            StreamEvent::Data { conn, dir, frame, time, offset, bytes } => {
                self.bytes.extend_from_slice(bytes);
                let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
                (StreamEvent::Data { conn, dir, frame, time, offset, bytes: &[] }, len)
            }
            StreamEvent::Open { conn, key, frame, time, syn_seen } => {
                (StreamEvent::Open { conn, key, frame, time, syn_seen }, 0)
            }
            StreamEvent::Gap { conn, dir, frame, offset, missing } => {
                (StreamEvent::Gap { conn, dir, frame, offset, missing }, 0)
            }
            StreamEvent::Close { conn, frame, time, how, stats } => {
                (StreamEvent::Close { conn, frame, time, how, stats }, 0)
            }
            StreamEvent::Anomaly { .. } | StreamEvent::Skipped { .. } => return,
        };
        self.events.push(kept);
    }

    fn full(&self) -> bool {
        self.events.len() >= RAW_EVENTS || self.bytes.len() >= RAW_BYTES
    }

    /// Hands every event, with its octets, to `on`; leaves the batch empty.
    fn drain(&mut self, mut on: impl FnMut(StreamEvent<'_>)) {
        let mut at = 0usize;
        for (ev, len) in self.events.drain(..) {
            match ev {
                StreamEvent::Data { conn, dir, frame, time, offset, .. } => {
                    let end = at + len as usize;
                    let bytes = self.bytes.get(at..end).unwrap_or_default();
                    at = end;
                    on(StreamEvent::Data { conn, dir, frame, time, offset, bytes });
                }
                other => on(other),
            }
        }
        self.bytes.clear();
    }
}

/// Stream events per [`Raw`] batch, and its octets beyond which it is
/// sent early (payload is bounded per segment, so a batch stays below
/// this plus one segment).
const RAW_EVENTS: usize = 512;
const RAW_BYTES: usize = 256 * 1024;

/// Three stages on three threads: one reads the capture and reassembles
/// TCP, a second decodes the PDU stacks down to their Turn events, and
/// this one tracks the Turn and reports. Their costs are about
/// 1 : 1.6 : 1.2 (callgrind, docs/timeline.md), so on two cores the
/// scheduler keeps both busy, where the former split (reading and
/// decoding on one thread) left the tracking thread idle a third of the
/// time. Items cross in
/// batches, at most [`BATCHES_IN_FLIGHT`] in flight between two stages
/// (bounded memory); spent batches go back for reuse.
fn pipeline<R: Read + Send, F: Sink>(
    r: R,
    engine: &mut Engine<F>,
) -> Result<rtse_codec::capture::CaptureSummary, rtse_codec::Error> {
    use std::sync::mpsc;
    let (raw_tx, raw_rx) = mpsc::sync_channel::<Raw>(BATCHES_IN_FLIGHT);
    let (raw_spent_tx, raw_spent_rx) = mpsc::channel::<Raw>();
    let (full_tx, full_rx) = mpsc::sync_channel::<Batch>(BATCHES_IN_FLIGHT);
    let (spent_tx, spent_rx) = mpsc::channel::<Batch>();
    std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut raw = Raw::default();
            let mut gone = false;
            let res = rtse_codec::capture::read_capture_stream(r, |ev| {
                if gone {
                    return;
                }
                raw.push(ev);
                if raw.full() {
                    let next = raw_spent_rx.try_recv().unwrap_or_default();
                    gone = raw_tx.send(std::mem::replace(&mut raw, next)).is_err();
                }
            });
            if !raw.events.is_empty() {
                let _ = raw_tx.send(raw);
            }
            res
        });
        s.spawn(move || {
            let mut stacks = StackDecoder::new();
            let mut batch = Batch::default();
            let mut gone = false;
            for mut raw in raw_rx {
                raw.drain(|ev| {
                    stacks.event(ev, &mut |it| {
                        if gone {
                            return;
                        }
                        let r = Reduced::of(&it, &mut batch.events);
                        batch.items.push(r);
                        if batch.items.len() >= BATCH_ITEMS {
                            let next = spent_rx.try_recv().unwrap_or_default();
                            gone = full_tx.send(std::mem::replace(&mut batch, next)).is_err();
                        }
                    })
                });
                // The reader may be done: then the batch is dropped here.
                let _ = raw_spent_tx.send(raw);
            }
            if !batch.items.is_empty() {
                let _ = full_tx.send(batch);
            }
        });
        for mut b in full_rx {
            engine.batch(&mut b);
            let _ = spent_tx.send(b);
        }
        reader.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Who sent each TPKT of a stream given without a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Senders {
    /// One side per TPKT, in order (a shorter list repeats its last).
    Given(Vec<Side>),
    /// CR/CN are the initiator's, CC/AC/RF the responder's, anything else
    /// alternates from the previous TPKT (a guess, flagged in the report).
    Guess,
}

impl Senders {
    /// From `irri...` (`i` initiator, `r` responder; other characters
    /// ignored).
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut v = Vec::new();
        for c in s.chars() {
            match c.to_ascii_lowercase() {
                'i' => v.push(Side::Initiator),
                'r' => v.push(Side::Responder),
                ',' | ' ' | '-' => {}
                other => return Err(format!("--from: '{other}' is neither i (initiator) nor r (responder)")),
            }
        }
        if v.is_empty() {
            return Err("--from: no sender given".into());
        }
        Ok(Senders::Given(v))
    }
}

/// The sender a TPKT shows: CR and CN are the initiator's, CC, AC and RF
/// the responder's.
fn sender_hint(tpkt: &[u8]) -> Option<Side> {
    match (tpkt.get(5).map(|c| c & 0xF0), tpkt.get(7)) {
        (Some(rtse_codec::cotp::CODE_CR), _) => Some(Side::Initiator),
        (Some(rtse_codec::cotp::CODE_CC), _) => Some(Side::Responder),
        (Some(rtse_codec::cotp::CODE_DT), Some(0x0d)) => Some(Side::Initiator),
        (Some(rtse_codec::cotp::CODE_DT), Some(0x0e | 0x0c)) => Some(Side::Responder),
        _ => None,
    }
}

/// Builds the timeline of one association given as a TPKT byte stream
/// (hex or raw). Frames are the TPKTs' 1-based indexes; there are no times
/// or endpoints. Errors when the bytes do not start with a TPKT.
pub fn from_tpkt_stream(
    bytes: &[u8],
    senders: &Senders,
    settings: Settings,
    emit: impl FnMut(Association),
) -> Result<Summary, rtse_codec::Error> {
    tpkt_stream_into(bytes, senders, settings, emit)
}

/// [`from_tpkt_stream`], reporting to any [`Sink`].
pub fn tpkt_stream_into(
    bytes: &[u8],
    senders: &Senders,
    settings: Settings,
    emit: impl Sink,
) -> Result<Summary, rtse_codec::Error> {
    rtse_codec::tpkt::frame_len(bytes)?;
    let mut engine = Engine::new(settings, emit);
    // Handed in as one association: shown whatever it carries.
    engine.conns.insert(0, Conn::new(None, None, false, Some(true)));
    let mut dec = AssociationDecoder::new();
    let mut rest = bytes;
    let mut index = 0u64;
    let mut prev = Side::Responder;
    let mut guessed = false;
    let mut failure = None;
    while !rest.is_empty() {
        let at = bytes.len() - rest.len();
        let n = match rtse_codec::tpkt::frame_len(rest) {
            Ok(Some(n)) if n <= rest.len() => n,
            Ok(_) => {
                failure = Some(rtse_codec::Error::eof(
                    rtse_codec::Layer::Tpkt,
                    bytes.len(),
                    "TPKT of the length in its header",
                ));
                break;
            }
            Err(e) => {
                failure = Some(e.shift(at));
                break;
            }
        };
        let (one, tail) = rest.split_at(n);
        let i = usize::try_from(index).unwrap_or(usize::MAX);
        index += 1;
        let from = match senders {
            Senders::Given(v) => v.get(i).or(v.last()).copied().unwrap_or(Side::Initiator),
            Senders::Guess => sender_hint(one).unwrap_or_else(|| {
                guessed = true;
                prev.peer()
            }),
        };
        prev = from;
        let sender = match from {
            Side::Initiator => Sender::Initiator,
            Side::Responder => Sender::Responder,
        };
        dec.push(sender, one, |d| {
            let mut events = std::mem::take(&mut engine.scratch);
            let shows = reduce(&d.result, &mut events);
            // Connection 0 has no key: its rows have no time.
            engine.stack(0, index, Timestamp::from_nanos(0), d.from, &mut events, shows);
            engine.scratch = events;
        });
        rest = tail;
    }
    if let Some(l) = engine.live.values_mut().next() {
        l.senders_guessed = guessed;
    }
    let summary = engine.finish();
    match failure {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

/// What the input of `rtse timeline` turned out to be.
enum Source {
    Capture(Box<dyn Read + Send>),
    Bytes(Vec<u8>),
}

/// Opens INPUT: a capture is streamed (only its magic is read here);
/// anything else is read whole and classified as hex or raw bytes.
fn open_input(path: &str) -> Result<Source, input::InputError> {
    let io = |source| input::InputError::Io { path: path.to_string(), source };
    let mut r: Box<dyn Read + Send> = if path == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(path).map_err(io)?))
    };
    let mut head = Vec::with_capacity(4);
    (&mut r).take(4).read_to_end(&mut head).map_err(io)?;
    if input::is_capture(&head) {
        return Ok(Source::Capture(Box::new(std::io::Cursor::new(head).chain(r))));
    }
    let mut all = head;
    r.read_to_end(&mut all).map_err(io)?;
    match input::classify(all, path)? {
        Input::Capture(c) => Ok(Source::Bytes(c)),
        Input::Bytes(b) => Ok(Source::Bytes(b)),
    }
}

fn secs_to_ns(s: f64) -> u64 {
    if s.is_finite() && s > 0.0 {
        (s * 1e9).min(u64::MAX as f64) as u64
    } else {
        0
    }
}

/// Associations drawn in an SVG at most (the first ones reported).
pub const SVG_MAX_ASSOCIATIONS: usize = 200;

/// `rtse timeline`.
pub fn run(a: &TimelineArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    use std::io::IsTerminal;
    let source = match (&a.hex, &a.input) {
        (Some(h), _) => input::from_hex(h).map(|i| match i {
            Input::Bytes(b) | Input::Capture(b) => Source::Bytes(b),
        }),
        (None, Some(p)) => open_input(p),
        (None, None) => Err(input::InputError::Empty { path: "INPUT".into() }),
    };
    let source = match source {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "rtse timeline: {e}");
            return exit::USAGE;
        }
    };
    let senders = match &a.from {
        Some(f) => match Senders::parse(f) {
            Ok(s) => s,
            Err(e) => {
                let _ = writeln!(err, "rtse timeline: {e}");
                return exit::USAGE;
            }
        },
        None => Senders::Guess,
    };
    let color = match a.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal(),
    };
    let mut settings = Settings {
        settle_ns: secs_to_ns(a.settle),
        notes: a.format == Format::Text || a.svg.is_some(),
        exit_after: PROCESS_EXITS_AFTER_RUN.load(std::sync::atomic::Ordering::Relaxed),
        ..Settings::default()
    };
    settings.tracker.please_max_ns = Some(secs_to_ns(a.please_timeout)).filter(|&n| n > 0);

    let style = text::Style { color };
    let mut io_error: Option<std::io::Error> = None;
    let mut first = true;
    let mut anomalous = 0u64;
    let mut drawn: Vec<Association> = Vec::new();
    let mut not_drawn = 0usize;
    if a.format == Format::Json {
        if let Err(e) = write!(out, "{{\"associations\": [") {
            io_error = Some(e);
        }
    }
    let want_svg = a.svg.is_some();
    // Associations are serialised into this buffer, written once it holds
    // JSON_CHUNK octets: `out` is a `dyn Write` (a `BufWriter` of as much,
    // which passes a write that large straight through, where one write
    // per association was copied into its buffer).
    let mut json: Vec<u8> = Vec::new();
    let mut emit = |assoc: &Association| {
        if !assoc.anomalies.is_empty() {
            anomalous += 1;
        }
        if io_error.is_none() {
            let r = match a.format {
                Format::Json => {
                    json.extend_from_slice(if first { b"\n" } else { b",\n" });
                    first = false;
                    assoc.write_json(&mut json);
                    if json.len() >= JSON_CHUNK {
                        let r = out.write_all(&json);
                        json.clear();
                        r
                    } else {
                        Ok(())
                    }
                }
                Format::Text => writeln!(out, "{}", text::association(assoc, style)),
            };
            if let Err(e) = r {
                io_error = Some(e);
            }
        }
        if want_svg {
            if drawn.len() < SVG_MAX_ASSOCIATIONS {
                drawn.push(assoc.clone());
            } else {
                not_drawn += 1;
            }
        }
    };
    let result = match source {
        // Each report given back: its rows' memory serves a later one.
        Source::Capture(r) => capture_into(r, settings, Lend(&mut emit)),
        Source::Bytes(b) => tpkt_stream_into(&b, &senders, settings, Lend(&mut emit)),
    };
    let summary = match &result {
        Ok(s) => Some(s.clone()),
        Err(_) => None,
    };
    if io_error.is_none() {
        let r = match a.format {
            Format::Json => out.write_all(&json).and_then(|()| writeln!(out, "\n]}}")),
            Format::Text => match &summary {
                Some(s) => writeln!(
                    out,
                    "{} association{}, {} with anomalies ({} anomal{} in all{})",
                    s.associations,
                    if s.associations == 1 { "" } else { "s" },
                    anomalous,
                    s.anomalies,
                    if s.anomalies == 1 { "y" } else { "ies" },
                    if s.malformed > 0 { format!(", {} PDUs did not decode", s.malformed) } else { String::new() }
                )
                .and_then(|()| {
                    if s.other_sessions > 0 {
                        writeln!(out, "{} session connection(s) without RTSE (MMS, ...) not shown", s.other_sessions)
                    } else {
                        Ok(())
                    }
                }),
                None => Ok(()),
            },
        };
        if let Err(e) = r {
            io_error = Some(e);
        }
    }
    if let Some(path) = &a.svg {
        let doc = svg::document(&drawn, not_drawn);
        if let Err(e) = std::fs::write(path, doc) {
            let _ = writeln!(err, "rtse timeline: cannot write {}: {e}", path.display());
            return exit::USAGE;
        }
    }
    if let Some(e) = io_error {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            let _ = writeln!(err, "rtse timeline: cannot write output: {e}");
        }
        return exit::USAGE;
    }
    match result {
        Err(e) => {
            let _ = writeln!(err, "rtse timeline: {e}");
            exit::FAIL
        }
        Ok(s) if s.associations == 0 => {
            let _ = writeln!(err, "rtse timeline: no RTSE association found");
            exit::OK
        }
        Ok(_) if a.fail_on_anomaly && anomalous > 0 => exit::ANOMALY,
        Ok(_) => exit::OK,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::Mode;

    /// The inline list behaves as the vector it replaced: contents,
    /// equality, serialisation, past the inline capacity.
    #[test]
    fn pdu_names_behave_as_a_vec() {
        let all = ["CN", "AC", "PT", "GTC", "GTA", "T-FIN"];
        for n in 0..=all.len() {
            let v: Vec<&'static str> = all[..n].to_vec();
            let mut p = PduNames::new();
            for x in &v {
                p.push(x);
            }
            assert_eq!(&*p, &v[..]);
            assert_eq!(p, PduNames::from(v.clone()));
            assert!(p == v && p == v[..]);
            if n == 1 {
                assert!(p == ["CN"]);
            }
            assert_eq!(serde_json::to_string(&p).unwrap(), serde_json::to_string(&v).unwrap());
            assert_eq!(format!("{p:?}"), format!("{v:?}"));
            if n > 0 {
                assert_ne!(p, PduNames::from(v[..n - 1].to_vec()));
            }
        }
    }

    /// The eight-at-a-time check is the octet-by-octet one, for every
    /// octet value at every position and on mixed strings.
    #[test]
    fn plain_json_equals_the_octet_check() {
        let naive = |b: &[u8]| b.iter().all(|&c| (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\');
        let base = b"10.128.1.1:40001 -> 10.128.1.2:102 turn".to_vec();
        for len in 0..=base.len() {
            let clean = &base[..len];
            assert_eq!(plain_json(clean), naive(clean));
            for at in 0..len {
                for v in 0..=255u8 {
                    let mut b = clean.to_vec();
                    b[at] = v;
                    assert_eq!(plain_json(&b), naive(&b), "{b:?}");
                }
            }
        }
    }

    /// Timestamps written with the seconds' digits reused are `Display`'s,
    /// in runs of the same second, across seconds, and at the extremes.
    #[test]
    fn time_text_equals_display() {
        let mut ts = vec![
            Timestamp { secs: 0, nanos: 0 },
            Timestamp { secs: 0, nanos: 999_999_999 },
            Timestamp { secs: 9, nanos: 1 },
            Timestamp { secs: 10, nanos: 1 },
            Timestamp { secs: 10, nanos: 1_000_000_000 },
            Timestamp { secs: 10, nanos: u32::MAX },
            Timestamp { secs: 10, nanos: 5 },
            Timestamp { secs: u64::MAX, nanos: 123 },
            Timestamp { secs: 1_735_732_800, nanos: 120_000_000 },
        ];
        let mut rng = crate::sim::SplitMix64::new(1);
        for _ in 0..3000 {
            let x = rng.next_u64();
            let secs = if x % 3 == 0 { ts.last().map_or(0, |t| t.secs) } else { x >> (x % 64) };
            ts.push(Timestamp { secs, nanos: (x >> 20) as u32 % 1_000_000_000 });
        }
        let mut tt = TimeText::default();
        for t in ts {
            let mut out = Vec::new();
            tt.push(&mut out, t);
            assert_eq!(String::from_utf8(out).unwrap(), t.to_string());
        }
    }

    /// The fixed pieces of a row are serde's text of their values, and
    /// numbers written as blocks are `Display`'s.
    #[test]
    fn row_pieces_are_serdes() {
        let holders = [
            TurnHolder::Initiator,
            TurnHolder::Responder,
            TurnHolder::InTransit,
            TurnHolder::None,
            TurnHolder::Unknown,
        ];
        for t in holders {
            let (block, len) = &TURN_END[turn_index(t)];
            let want = format!("],\"turn\":{}}}", serde_json::to_string(&t).unwrap());
            assert_eq!(&block[..*len], want.as_bytes());
            let mut out = b"x".to_vec();
            push_block(&mut out, block, *len);
            assert_eq!(out, [b"x", want.as_bytes()].concat());
        }
        for (i, side) in [Side::Initiator, Side::Responder].into_iter().enumerate() {
            let from = format!(",\"from\":{},\"pdus\":[", serde_json::to_string(&side).unwrap());
            assert_eq!(&FROM_AFTER_NULL[i][..], from.as_bytes());
            assert_eq!(&FROM_AFTER_TIME[i][..], format!("\"{from}").as_bytes());
        }
        let mut ns = vec![0u64, 9, 10, 99, 100, 999, 1000, 123_456, u64::from(u32::MAX), u64::MAX / 10, u64::MAX];
        let mut rng = crate::sim::SplitMix64::new(3);
        ns.extend((0..2000).map(|_| {
            let x = rng.next_u64();
            x >> (x % 64)
        }));
        for n in ns {
            let mut out = b"{".to_vec();
            push_u64(&mut out, n);
            assert_eq!(out, format!("{{{n}").as_bytes());
        }
    }

    /// The hand-written address formatting is `Display`'s, on the corner
    /// values and on pseudo-random IPv4 and IPv6 addresses.
    #[test]
    fn socket_addrs_format_as_display_does() {
        use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
        let mut addrs: Vec<SocketAddr> = vec![
            SocketAddr::from((Ipv4Addr::new(0, 0, 0, 0), 0)),
            SocketAddr::from((Ipv4Addr::new(255, 255, 255, 255), 65535)),
            SocketAddr::from((Ipv4Addr::new(10, 9, 100, 99), 102)),
            SocketAddr::from((Ipv6Addr::LOCALHOST, 102)),
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1), 4000, 0, 3)),
            SocketAddr::from((Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x0a00, 1), 1)),
        ];
        for o in 0..=255u8 {
            addrs.push(SocketAddr::from((Ipv4Addr::new(o, 255 - o, o / 3, o), u16::from(o) * 257)));
        }
        let mut rng = crate::sim::SplitMix64::new(2);
        for _ in 0..2000 {
            let x = rng.next_u64();
            addrs.push(SocketAddr::from((Ipv4Addr::from((x >> 16) as u32), x as u16)));
            addrs.push(SocketAddr::from((Ipv6Addr::from(u128::from(x) << (x % 64)), (x >> 48) as u16)));
        }
        for (i, a) in addrs.iter().enumerate() {
            let b = addrs[(i * 7 + 3) % addrs.len()];
            let (e, c, s) = endpoint_strings(*a, b);
            assert_eq!((&*e, &*c, &*s), (&*format!("{a} -> {b}"), &*a.to_string(), &*b.to_string()));
            assert_eq!((e.as_bytes(), c.as_bytes()), (format!("{a} -> {b}").as_bytes(), a.to_string().as_bytes()));
            if a.is_ipv4() && b.is_ipv4() {
                assert!(e.is_inline() && c.is_inline() && s.is_inline());
            }
            for x in [&e, &c, &s] {
                assert!(x.plain_json() && plain_json(x.as_bytes()), "{x}");
            }
        }
        for a in addrs {
            let mut s = String::new();
            push_socket_addr(&mut s, a);
            assert_eq!(s, a.to_string());
            let mut s = String::new();
            push_ip(&mut s, a.ip());
            assert_eq!(s, a.ip().to_string());
        }
    }

    /// An address text is the `String` it replaced for every purpose:
    /// contents, equality, `Debug`, `Display`, serialisation, JSON, on
    /// both sides of the inline bound and for text that needs escaping.
    #[test]
    fn addr_text_behaves_as_a_string() {
        let long = "x".repeat(AddrText::INLINE);
        let longer = "y".repeat(AddrText::INLINE + 1);
        let texts =
            ["", "1.2.3.4:102", "255.255.255.255:65535 -> 255.255.255.255:65535", &long, &longer, "q\"\\\t\u{0}é日本"];
        for t in texts {
            let a = AddrText::from(t);
            assert_eq!(a.is_inline(), t.len() <= AddrText::INLINE, "{t}");
            assert_eq!(a.plain_json(), plain_json(t.as_bytes()), "{t}");
            assert_eq!(&*a, t);
            assert_eq!(a.as_bytes(), t.as_bytes());
            assert!(a == t && a == *t);
            assert_eq!(a, AddrText::from(t.to_string()));
            assert_eq!(format!("{a}|{a:?}"), format!("{t}|{t:?}"));
            assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(t).unwrap());
            let mut j = Vec::new();
            push_opt_addr(&mut j, Some(&a));
            assert_eq!(String::from_utf8(j).unwrap(), serde_json::to_string(t).unwrap());
            for u in texts {
                let b = AddrText::from(u);
                assert_eq!(a == b, t == u);
            }
        }
        let mut j = Vec::new();
        push_opt_addr(&mut j, None);
        assert_eq!(j, b"null");
        // Slices of one buffer (as `endpoint_strings` makes them).
        let mut b = [b'-'; AddrText::INLINE];
        b[..5].copy_from_slice(b"1.2.3");
        assert_eq!(&*AddrText::ascii(&b, 1, 4), ".2.");
        assert_eq!(AddrText::ascii(&b, 1, 4), AddrText::from(".2."));
        assert_eq!(&*AddrText::ascii(&b, 0, AddrText::INLINE), std::str::from_utf8(&b).unwrap());
    }

    /// Strings that need escaping, absent fields, several rows and
    /// anomalies: the hand-written JSON is serde's.
    #[test]
    fn write_json_equals_serde_on_awkward_values() {
        let row = |frame, time, pdus: Vec<&'static str>| Event {
            frame,
            time,
            from: Side::Responder,
            pdus: pdus.into(),
            turn: TurnHolder::InTransit,
            anomalies: Vec::new(),
            note: String::new(),
        };
        let mut a = Association {
            id: u32::MAX,
            endpoints: Some("[fe80::1]:4000 -> [fe80::2]:102".into()),
            mode: Some(Mode::X410),
            initiator: None,
            responder: Some("quote \" back \\ tab \t nul \0 del \x7f é 日本".into()),
            recovers: Some(7),
            events: vec![
                row(0, None, vec![]),
                row(u64::MAX, Some(Timestamp::new(1_735_732_800, 5)), vec!["CN", "T-RST"]),
            ],
            anomalies: vec![AnomalyEntry {
                kind: AnomalyKind::TurnLost,
                frame: 12,
                detail: "a \"detail\"\nwith a newline".into(),
                by: None,
            }],
            info: Info::default(),
        };
        for _ in 0..2 {
            let mut fast = Vec::new();
            a.write_json(&mut fast);
            assert_eq!(String::from_utf8(fast).unwrap(), serde_json::to_string(&a).unwrap());
            a = Association { endpoints: None, mode: None, recovers: None, events: vec![], anomalies: vec![], ..a };
        }
    }
}
