//! Capture reading: pcap / pcapng files to reassembled TCP byte streams.
//!
//! Three layers, each usable on its own:
//!
//! * [`file`](mod@file) frames pcap (both byte orders, micro- and nanosecond
//!   timestamps) and pcapng (sections, interfaces with their own link type and
//!   `if_tsresol`/`if_tsoffset`, EPB/SPB/obsolete PB; other blocks skipped),
//!   recognised by magic. [`file::RecordReader`] turns bytes into
//!   [`RawPacket`]s; it never does I/O and never allocates per packet.
//! * [`link`] decodes the link layer (Ethernet with 802.1Q/QinQ, Linux SLL/SLL2, raw
//!   IP, BSD null/loop) and IPv4/IPv6 (with extension headers) down to a
//!   [`link::TcpSegment`] that borrows the frame.
//! * [`tcp`] holds the [`Reassembler`], our own TCP reassembly per connection
//!   and direction, emitting [`StreamEvent`]s in capture order through a
//!   callback. The in-order path borrows the segment payload (no copy, no
//!   allocation); only out-of-order segments are copied, within the bounds
//!   of [`crate::limits`].
//!
//! [`read_capture`] (a whole file in memory) and [`read_capture_stream`]
//! (any `io::Read`, memory bounded by open connections and the limits,
//! never by file size) tie them together. [`write`](mod@write) builds pcap/pcapng
//! files and synthetic TCP conversations, for tests, the simulator and the
//! proxy.

pub mod file;
pub mod link;
pub mod stacks;
pub mod tcp;
pub mod write;

use crate::error::{Error, Layer, Result};
use core::fmt;
use std::io::Read;
use std::net::SocketAddr;

pub use file::{RawPacket, RecordReader};
pub use tcp::Reassembler;

/// Connection id: 0, 1, 2... in order of first appearance, the same
/// numbering as Wireshark's `tcp.stream` (every TCP conversation counts,
/// whatever its ports; a SYN that reuses a finished 4-tuple starts a new
/// one).
pub type ConnId = u64;

/// A map keyed by [`ConnId`]. Connection ids are small numbers handed out
/// in order by the reassembler, never chosen by the capture's author, so
/// they need no collision-resistant (and slow) SipHash: the hash is one
/// multiplication.
pub type ConnMap<V> = std::collections::HashMap<ConnId, V, core::hash::BuildHasherDefault<ConnIdHasher>>;

/// The hasher of [`ConnMap`] (Fibonacci hashing of the id).
#[derive(Debug, Default, Clone, Copy)]
pub struct ConnIdHasher(u64);

impl core::hash::Hasher for ConnIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    /// Association numbers (`u32`) hash as one word too, not octet by
    /// octet.
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
}

/// Capture time, as seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub secs: u64,
    pub nanos: u32,
}

impl Timestamp {
    /// A timestamp; `nanos` of 10^9 or more carry into `secs`.
    pub const fn new(secs: u64, nanos: u32) -> Self {
        Timestamp { secs: secs.saturating_add((nanos / 1_000_000_000) as u64), nanos: nanos % 1_000_000_000 }
    }
    /// From nanoseconds since the epoch.
    pub const fn from_nanos(ns: u64) -> Self {
        Timestamp { secs: ns / 1_000_000_000, nanos: (ns % 1_000_000_000) as u32 }
    }
    /// Nanoseconds since the epoch (saturating past the year 2554).
    pub const fn as_nanos(&self) -> u64 {
        self.secs.saturating_mul(1_000_000_000).saturating_add(self.nanos as u64)
    }
}

/// Writes `v` in decimal right-aligned to end at `end` of `buf`, with
/// `min` digits at least (zero-padded), two digits at a time (a digit at a
/// time cost twice as many instructions, and timelines write several
/// numbers per row); returns where the digits start. `buf[..end]` must
/// hold them: 20 octets do for any `u64`.
#[inline]
pub fn put_decimal<const N: usize>(buf: &mut [u8; N], end: usize, mut v: u64, min: usize) -> usize {
    const PAIRS: &[u8; 200] = b"00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";
    let mut at = end;
    while v >= 100 {
        let i = (v % 100) as usize * 2;
        v /= 100;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[i..i + 2]);
    }
    if v >= 10 {
        let i = v as usize * 2;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[i..i + 2]);
    } else {
        at -= 1;
        buf[at] = b'0' + v as u8;
    }
    while end - at < min {
        at -= 1;
        buf[at] = b'0';
    }
    at
}

impl Timestamp {
    /// Writes `secs.nanos` (9 decimals at least) into `buf` without the
    /// formatting machinery (timelines print one per row) and returns it.
    pub fn format_into<'a>(&self, buf: &'a mut [u8; 32]) -> &'a str {
        // At most 10 digits, then the point, then at most 20: 31 in all.
        let mut at = put_decimal(buf, buf.len(), u64::from(self.nanos), 9);
        at -= 1;
        buf[at] = b'.';
        let at = put_decimal(buf, at, self.secs, 1);
        core::str::from_utf8(&buf[at..]).unwrap_or("0.000000000")
    }
}

impl fmt::Display for Timestamp {
    /// `1234.000000001` (epoch seconds, 9 decimals, like `tshark -t e`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.format_into(&mut [0; 32]))
    }
}

impl serde::Serialize for Timestamp {
    /// Serialised as the string `"secs.nanos"`, so that no precision is lost.
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.format_into(&mut [0; 32]))
    }
}

/// The two ends of a TCP connection.
///
/// `client` is the sender of the SYN. When the handshake was not captured:
/// the receiver of a SYN-ACK; else the side that is not on port 102 (RFC
/// 1006); else the side with the higher port (servers listen on low
/// ports); on equal ports, the sender of the first packet seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ConnKey {
    pub client: SocketAddr,
    pub server: SocketAddr,
}

impl fmt::Display for ConnKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.client, self.server)
    }
}

/// Direction of a byte stream within a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Client to server (initiator to responder).
    ToServer,
    /// Server to client.
    ToClient,
}

impl Direction {
    /// The other direction.
    pub const fn reverse(self) -> Self {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }
    /// 0 for `ToServer`, 1 for `ToClient`.
    pub const fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }
    /// `"to-server"` / `"to-client"`.
    pub const fn name(self) -> &'static str {
        match self {
            Direction::ToServer => "to-server",
            Direction::ToClient => "to-client",
        }
    }
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CloseHow {
    /// Both directions sent FIN (and the data before each FIN was delivered
    /// or reported as a gap).
    Fin,
    /// A RST was seen (from either side).
    Rst,
    /// The capture ended first.
    Eof,
    /// Closed by the reader to stay within
    /// [`crate::limits::MAX_TCP_OPEN_CONNECTIONS`] (least recently active).
    Evicted,
}

impl CloseHow {
    /// `"FIN"`, `"RST"`, `"EOF"`, `"evicted"`.
    pub const fn name(self) -> &'static str {
        match self {
            CloseHow::Fin => "FIN",
            CloseHow::Rst => "RST",
            CloseHow::Eof => "EOF",
            CloseHow::Evicted => "evicted",
        }
    }
}

/// Counters of one connection, per direction (`[to-server, to-client]`),
/// reported when it closes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ConnStats {
    /// TCP segments seen.
    pub packets: [u64; 2],
    /// Payload octets on the wire, retransmissions included (what
    /// Wireshark's `tcp.len` adds up to).
    pub wire_bytes: [u64; 2],
    /// Octets delivered in `Data` events (each stream octet once).
    pub delivered: [u64; 2],
    /// Octets reported missing in `Gap` events.
    pub missing: [u64; 2],
}

/// Something odd in a connection, reported and then handled as described.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(tag = "anomaly", rename_all = "kebab-case")]
pub enum Anomaly {
    /// A retransmitted or overlapping segment carried octets that differ
    /// from the first copy of the same sequence range. The first copy is
    /// kept (it was delivered, or is buffered). `offset` is the stream
    /// offset of the first differing octet's range, `len` its length.
    ConflictingOverlap { dir: Direction, offset: u64, len: u64 },
    /// The out-of-order buffer of this direction (or of all connections)
    /// reached its limit: the reassembler stopped waiting for the missing
    /// octets, reported a gap and delivered what it held.
    BufferLimit { dir: Direction },
    /// The segment was captured truncated (caplen < len): `missing` octets
    /// of its payload are not in the capture (they are reported as a gap).
    TruncatedSegment { dir: Direction, missing: u64 },
    /// Payload after the connection was reset, or past the FIN: ignored.
    DataAfterClose { dir: Direction, len: u64 },
    /// Payload before the first octet of the stream (a connection picked
    /// up mid-stream, then an earlier segment retransmitted): ignored.
    BeforeStreamStart { dir: Direction, len: u64 },
}

impl Anomaly {
    /// Short name (`"conflicting-overlap"`).
    pub const fn name(&self) -> &'static str {
        match self {
            Anomaly::ConflictingOverlap { .. } => "conflicting-overlap",
            Anomaly::BufferLimit { .. } => "buffer-limit",
            Anomaly::TruncatedSegment { .. } => "truncated-segment",
            Anomaly::DataAfterClose { .. } => "data-after-close",
            Anomaly::BeforeStreamStart { .. } => "before-stream-start",
        }
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Anomaly::ConflictingOverlap { dir, offset, len } => write!(
                f,
                "{}: retransmission differs from first copy at stream offset {offset} ({len} octets); first copy kept",
                dir.name()
            ),
            Anomaly::BufferLimit { dir } => {
                write!(f, "{}: out-of-order buffer limit reached; gap declared", dir.name())
            }
            Anomaly::TruncatedSegment { dir, missing } => {
                write!(f, "{}: segment truncated by the capture, {missing} octets missing", dir.name())
            }
            Anomaly::DataAfterClose { dir, len } => {
                write!(f, "{}: {len} octets after RST or FIN ignored", dir.name())
            }
            Anomaly::BeforeStreamStart { dir, len } => {
                write!(f, "{}: {len} octets before the first octet seen ignored", dir.name())
            }
        }
    }
}

/// Why a captured frame did not go into TCP reassembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum SkipReason {
    /// A link type this reader does not decode.
    UnsupportedLinkType { link_type: u32 },
    /// Not IPv4/IPv6 (ARP, GOOSE, LLC...): the EtherType or protocol.
    NotIp { ethertype: u16 },
    /// IP, but not TCP: the IP protocol number.
    NotTcp { protocol: u8 },
    /// An IPv4 or IPv6 fragment (fragments are not reassembled).
    Fragment,
    /// The frame ended inside a link, IP or TCP header.
    Truncated,
    /// A header that cannot be right (IHL < 5, TCP data offset < 5,
    /// IP total length shorter than its header...).
    Malformed { what: &'static str },
}

impl SkipReason {
    /// Whether this is worth telling a user about (non-TCP traffic is not).
    pub const fn is_problem(&self) -> bool {
        matches!(self, SkipReason::Fragment | SkipReason::Truncated | SkipReason::Malformed { .. })
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::UnsupportedLinkType { link_type } => {
                write!(f, "unsupported link type {link_type}")
            }
            SkipReason::NotIp { ethertype } => write!(f, "not IP (EtherType {ethertype:#06x})"),
            SkipReason::NotTcp { protocol } => write!(f, "not TCP (IP protocol {protocol})"),
            SkipReason::Fragment => f.write_str("IP fragment (not reassembled)"),
            SkipReason::Truncated => f.write_str("frame truncated inside a header"),
            SkipReason::Malformed { what } => write!(f, "malformed {what}"),
        }
    }
}

/// What the reader reports, in capture order.
///
/// `frame` is the 1-based frame number (as in Wireshark); `offset` fields
/// are stream offsets: octets since the first octet of that direction's
/// byte stream (the octet after the SYN, or the first octet seen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum StreamEvent<'a> {
    /// A connection was seen for the first time.
    Open { conn: ConnId, key: ConnKey, frame: u64, time: Timestamp, syn_seen: bool },
    /// The next octets of one direction's stream, contiguous with the
    /// previous `Data` or `Gap` of that direction.
    Data {
        conn: ConnId,
        dir: Direction,
        frame: u64,
        time: Timestamp,
        offset: u64,
        #[serde(serialize_with = "crate::hex::ser")]
        bytes: &'a [u8],
    },
    /// `missing` octets of one direction were not captured: the next
    /// `Data` of that direction starts `missing` octets further on.
    Gap { conn: ConnId, dir: Direction, frame: u64, offset: u64, missing: u64 },
    /// The connection ended; no more events for `conn`.
    Close { conn: ConnId, frame: u64, time: Timestamp, how: CloseHow, stats: ConnStats },
    /// Something odd; see [`Anomaly`] for what was done about it.
    Anomaly { conn: ConnId, frame: u64, detail: Anomaly },
    /// A frame that was not TCP or could not be decoded down to TCP.
    Skipped { frame: u64, reason: SkipReason },
}

impl StreamEvent<'_> {
    /// `"open"`, `"data"`, `"gap"`, `"close"`, `"anomaly"`, `"skipped"`.
    pub const fn name(&self) -> &'static str {
        match self {
            StreamEvent::Open { .. } => "open",
            StreamEvent::Data { .. } => "data",
            StreamEvent::Gap { .. } => "gap",
            StreamEvent::Close { .. } => "close",
            StreamEvent::Anomaly { .. } => "anomaly",
            StreamEvent::Skipped { .. } => "skipped",
        }
    }

    /// The connection the event is about (`None` for `Skipped`).
    pub const fn conn(&self) -> Option<ConnId> {
        match self {
            StreamEvent::Open { conn, .. }
            | StreamEvent::Data { conn, .. }
            | StreamEvent::Gap { conn, .. }
            | StreamEvent::Close { conn, .. }
            | StreamEvent::Anomaly { conn, .. } => Some(*conn),
            StreamEvent::Skipped { .. } => None,
        }
    }

    /// The frame that produced the event.
    pub const fn frame(&self) -> u64 {
        match self {
            StreamEvent::Open { frame, .. }
            | StreamEvent::Data { frame, .. }
            | StreamEvent::Gap { frame, .. }
            | StreamEvent::Close { frame, .. }
            | StreamEvent::Anomaly { frame, .. }
            | StreamEvent::Skipped { frame, .. } => *frame,
        }
    }
}

/// Totals over a whole capture.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CaptureSummary {
    /// `"pcap"` or `"pcapng"`.
    pub format: &'static str,
    /// Frames (packet records) in the capture.
    pub packets: u64,
    /// Frames that went into TCP reassembly.
    pub tcp_packets: u64,
    /// Frames skipped because they are not TCP (other protocols, other
    /// link types).
    pub non_tcp: u64,
    /// Frames skipped because they were truncated inside a header,
    /// malformed or IP fragments.
    pub undecodable: u64,
    /// Frames whose capture length was less than their length on the wire.
    pub truncated: u64,
    /// TCP connections (the number of `Open` events).
    pub connections: u64,
    /// TCP payload octets delivered in `Data` events.
    pub bytes: u64,
    /// Octets reported missing in `Gap` events.
    pub gap_bytes: u64,
    /// `Gap` events.
    pub gaps: u64,
    /// `Anomaly` events.
    pub anomalies: u64,
    /// Link types seen (pcap header or pcapng IDBs), in order of appearance.
    pub link_types: Vec<u32>,
    /// Octets of capture file read.
    pub file_bytes: u64,
}

impl CaptureSummary {
    fn count(&mut self, ev: &StreamEvent<'_>) {
        match ev {
            StreamEvent::Open { .. } => self.connections += 1,
            StreamEvent::Data { bytes, .. } => self.bytes += bytes.len() as u64,
            StreamEvent::Gap { missing, .. } => {
                self.gaps += 1;
                self.gap_bytes = self.gap_bytes.saturating_add(*missing);
            }
            StreamEvent::Anomaly { .. } => self.anomalies += 1,
            StreamEvent::Skipped { reason, .. } => {
                if reason.is_problem() {
                    self.undecodable += 1
                } else {
                    self.non_tcp += 1
                }
            }
            StreamEvent::Close { .. } => {}
        }
    }
}

/// A capture reader over bytes handed to it record by record: the state
/// shared by [`read_capture`] and [`read_capture_stream`], for callers that
/// want to drive it themselves (and keep the summary when the file is
/// damaged).
#[derive(Debug, Default)]
pub struct CaptureDecoder {
    records: RecordReader,
    tcp: Reassembler,
    summary: CaptureSummary,
    need: usize,
}

impl CaptureDecoder {
    /// A decoder expecting the first byte of a capture file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decode as many complete records as `buf` holds (it must start at the
    /// record boundary after the previous call's consumed octets). Returns
    /// how many octets were consumed; the rest must be given again with more
    /// data after it. `Ok(0)` with a non-empty `buf` means "need more".
    pub fn feed(&mut self, buf: &[u8], on_event: &mut impl FnMut(StreamEvent<'_>)) -> Result<usize> {
        let mut used = 0usize;
        loop {
            let rest = buf.get(used..).unwrap_or_default();
            if rest.is_empty() {
                return Ok(used);
            }
            match self.records.next(rest)? {
                file::Step::Need(n) => {
                    self.need = n;
                    return Ok(used);
                }
                file::Step::Record { len, packet } => {
                    used += len;
                    self.need = 0;
                    if let Some(p) = packet {
                        self.summary.packets += 1;
                        if p.orig_len as usize > p.data.len() {
                            self.summary.truncated += 1;
                        }
                        let summary = &mut self.summary;
                        let tcp = self.tcp.push(&p, &mut |ev| {
                            summary.count(&ev);
                            on_event(ev)
                        });
                        if tcp {
                            self.summary.tcp_packets += 1;
                        }
                    }
                }
            }
        }
    }

    /// How many octets the next record needs (counted from the first
    /// unconsumed octet) once [`Self::feed`] consumed less than it was
    /// given; 0 when it consumed everything. Never more than
    /// [`crate::limits::MAX_CAPTURE_BLOCK_LEN`]: larger records are errors.
    pub fn needed(&self) -> usize {
        self.need
    }

    /// The capture ended after `consumed` octets with `leftover` unconsumed
    /// octets: flush every open connection (Close with `Eof`) and return
    /// the summary, or the error for a file that ended inside a record
    /// (after the flush, so every packet before it was delivered).
    pub fn finish(mut self, leftover: usize, on_event: &mut impl FnMut(StreamEvent<'_>)) -> Result<CaptureSummary> {
        let summary = &mut self.summary;
        self.tcp.finish(&mut |ev| {
            summary.count(&ev);
            on_event(ev)
        });
        self.summary.link_types = self.records.link_types().to_vec();
        self.summary.format = self.records.format_name();
        self.summary.file_bytes = self.records.position() + leftover as u64;
        let end = usize::try_from(self.summary.file_bytes).unwrap_or(usize::MAX);
        if leftover > 0 {
            let what =
                if !self.records.started() && leftover < 4 { "pcap or pcapng magic" } else { self.records.expecting() };
            return Err(Error::eof(Layer::Capture, end, what));
        }
        if !self.records.started() {
            return Err(Error::eof(Layer::Capture, end, "pcap or pcapng magic"));
        }
        Ok(self.summary)
    }

    /// The summary so far.
    pub fn summary(&self) -> &CaptureSummary {
        &self.summary
    }
}

/// Read a whole capture held in memory, delivering events in capture order.
///
/// Errors (`Layer::Capture`, absolute file offsets) are returned after every
/// packet before the error was delivered and every open connection closed.
pub fn read_capture(data: &[u8], mut on_event: impl FnMut(StreamEvent<'_>)) -> Result<CaptureSummary> {
    let mut dec = CaptureDecoder::new();
    let used = match dec.feed(data, &mut on_event) {
        Ok(n) => n,
        Err(e) => {
            // Deliver the Close events of what was open, then report.
            let _ = dec.finish(0, &mut on_event);
            return Err(e);
        }
    };
    dec.finish(data.len() - used, &mut on_event)
}

/// Read a capture from any reader, in chunks of
/// [`crate::limits::CAPTURE_READ_CHUNK`]; the buffer grows only to hold one
/// record larger than that (at most [`crate::limits::MAX_CAPTURE_BLOCK_LEN`]).
/// I/O errors are reported as `Layer::Capture` errors at the offset where
/// reading failed (`found` names the I/O error kind).
pub fn read_capture_stream<R: Read>(mut r: R, mut on_event: impl FnMut(StreamEvent<'_>)) -> Result<CaptureSummary> {
    use crate::limits::CAPTURE_READ_CHUNK;
    let mut dec = CaptureDecoder::new();
    let mut buf = vec![0u8; CAPTURE_READ_CHUNK];
    let (mut start, mut end) = (0usize, 0usize);
    let mut consumed_total: u64 = 0;
    loop {
        // Make room: move the unconsumed tail to the front, grow for a
        // record larger than the buffer.
        let pending = end - start;
        let want = dec.needed().max(pending + 1);
        if start > 0 && (buf.len() - end < CAPTURE_READ_CHUNK / 4 || want > buf.len() - start) {
            buf.copy_within(start..end, 0);
            start = 0;
            end = pending;
        }
        if want > buf.len() {
            buf.resize(want.max(CAPTURE_READ_CHUNK), 0);
        }
        let n = loop {
            match r.read(&mut buf[end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    let at = consumed_total as usize + (end - start);
                    let _ = dec.finish(0, &mut on_event);
                    return Err(Error::new(
                        Layer::Capture,
                        at,
                        "readable capture data",
                        crate::error::Found::Other("I/O error"),
                    ));
                }
            }
        };
        if n == 0 {
            return dec.finish(end - start, &mut on_event);
        }
        end += n;
        match dec.feed(&buf[start..end], &mut on_event) {
            Ok(used) => {
                start += used;
                consumed_total += used as u64;
                if start == end {
                    start = 0;
                    end = 0;
                }
                // Shrink back after a one-off large record.
                if buf.len() > 2 * CAPTURE_READ_CHUNK && end - start <= CAPTURE_READ_CHUNK {
                    buf.copy_within(start..end, 0);
                    end -= start;
                    start = 0;
                    buf.truncate(CAPTURE_READ_CHUNK);
                    buf.shrink_to_fit();
                }
            }
            Err(e) => {
                let _ = dec.finish(0, &mut on_event);
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod timestamp_tests {
    use super::Timestamp;

    #[test]
    fn formats_like_the_formatting_machinery() {
        let cases = [
            (0, 0),
            (1, 1),
            (9, 10),
            (99, 100),
            (100, 99),
            (1_735_732_800, 123_456_789),
            (u64::MAX, 999_999_999),
            (7, u32::MAX),
        ];
        for (secs, nanos) in cases {
            let t = Timestamp { secs, nanos };
            assert_eq!(t.to_string(), format!("{secs}.{nanos:09}"));
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{secs}.{nanos:09}\""));
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (secs, nanos) = (x >> (x % 64), (x as u32) >> (x % 32));
            assert_eq!(Timestamp { secs, nanos }.to_string(), format!("{secs}.{nanos:09}"));
        }
    }
}
