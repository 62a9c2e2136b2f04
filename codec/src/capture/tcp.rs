//! TCP reassembly: packets in capture order in, [`StreamEvent`]s out.
//!
//! Per connection and direction the reassembler keeps the stream offset of
//! the next octet to deliver. A segment that starts at or before it is
//! delivered at once, borrowing the packet (the common case: no copy, no
//! allocation); a segment beyond it is copied into a bounded out-of-order
//! buffer until the hole is filled, or until the hole is known to be lost:
//!
//! * the peer acknowledged octets past the hole (they were sent, the
//!   capture missed them: Wireshark's "ACKed unseen segment"),
//! * the buffer limits of [`crate::limits`] were reached,
//! * the connection ended (FIN/RST, capture end).
//!
//! Then a `Gap` with the number of missing octets is reported and the
//! stream continues after it: data is never silently joined across a hole.
//!
//! Overlaps: the first copy of an octet wins. Retransmitted octets are
//! compared with the first copy (the last
//! [`crate::limits::TCP_OVERLAP_CHECK_WINDOW`] delivered octets are kept for
//! that, and every buffered octet); a difference is reported as
//! [`Anomaly::ConflictingOverlap`].
//!
//! Connections: a 4-tuple seen for the first time opens a connection; a
//! SYN (without ACK) on a 4-tuple whose connection is closed, or whose
//! sequence number differs from the first one seen in that direction,
//! opens a new one (this is how Wireshark numbers `tcp.stream`). A
//! connection with no SYN seen starts at the first segment seen in each
//! direction. Sequence numbers are unwrapped to 64-bit stream offsets
//! relative to the next expected octet, so wrap-around is transparent.

use super::link::{self, flags, TcpSegment};
use super::{Anomaly, CloseHow, ConnId, ConnKey, ConnStats, Direction, RawPacket, StreamEvent, Timestamp};
use crate::limits::{
    MAX_TCP_CLOSED_CONNECTIONS, MAX_TCP_OOO_BYTES_PER_DIR, MAX_TCP_OOO_BYTES_TOTAL, MAX_TCP_OOO_SEGMENTS_PER_DIR,
    MAX_TCP_OPEN_CONNECTIONS, TCP_OVERLAP_CHECK_WINDOW,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;

/// The RFC 1006 port: the side on it is the server when the SYN was missed.
pub const RFC1006_PORT: u16 = 102;

/// Largest forward jump of an acknowledgement, in octets past the next
/// expected octet, that is believed (a bigger one is a damaged or
/// unrelated ack number, not lost data).
const MAX_ACK_JUMP: i64 = 1 << 30;

/// Direction-independent 4-tuple: the smaller endpoint first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FlowKey {
    a: SocketAddr,
    b: SocketAddr,
}

impl core::hash::Hash for FlowKey {
    /// An IPv4 pair as two words (the derived hash fed SipHash field by
    /// field, a dozen writes per key); IPv6 as derived. Equal keys hash
    /// equal, as `Eq` compares the same fields.
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        match (self.a, self.b) {
            (SocketAddr::V4(a), SocketAddr::V4(b)) => {
                h.write_u64(u64::from(a.ip().to_bits()) << 32 | u64::from(b.ip().to_bits()));
                h.write_u32(u32::from(a.port()) << 16 | u32::from(b.port()));
            }
            (a, b) => {
                core::hash::Hash::hash(&a, h);
                core::hash::Hash::hash(&b, h);
            }
        }
    }
}

impl FlowKey {
    fn new(src: SocketAddr, dst: SocketAddr) -> Self {
        if endpoint_le(src, dst) {
            FlowKey { a: src, b: dst }
        } else {
            FlowKey { a: dst, b: src }
        }
    }
}

/// The hash of the reassembler's flow index: two folded multiplications
/// of the key's words with keys drawn at random once per reassembler (from
/// std's `RandomState`), as foldhash does. SipHash cost some 5 million
/// instructions at 10 MB of capture (a look-up per new flow and per change
/// of flow between frames); flows are the capture author's choice, so the
/// keys stay random rather than fixed, and hashbrown compares keys in full
/// on a hash match.
#[derive(Debug, Clone, Copy)]
struct FlowHash {
    k: [u64; 3],
}

impl Default for FlowHash {
    fn default() -> Self {
        use core::hash::{BuildHasher, Hasher};
        let rs = std::collections::hash_map::RandomState::new();
        let key = |i: u64| {
            let mut h = rs.build_hasher();
            h.write_u64(i);
            h.finish() | 1
        };
        FlowHash { k: [key(1), key(2), key(3)] }
    }
}

impl core::hash::BuildHasher for FlowHash {
    type Hasher = FlowHasher;
    fn build_hasher(&self) -> FlowHasher {
        FlowHasher { k: self.k, h: self.k[2] }
    }
}

/// See [`FlowHash`].
#[derive(Debug, Clone, Copy)]
struct FlowHasher {
    k: [u64; 3],
    h: u64,
}

/// The 128-bit product of `a` and `b`, its halves xored.
const fn fold_mul(a: u64, b: u64) -> u64 {
    let p = (a as u128) * (b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

impl core::hash::Hasher for FlowHasher {
    fn finish(&self) -> u64 {
        self.h
    }
    fn write(&mut self, bytes: &[u8]) {
        // IPv6 keys (the derived `Hash` of their fields): a word at a time.
        let mut c = bytes.chunks_exact(8);
        for w in &mut c {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.write_u64(u64::from_le_bytes(b));
        }
        for &b in c.remainder() {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.h = fold_mul(self.h ^ n ^ self.k[0], self.k[1]);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// `a <= b`, with two IPv4 endpoints compared as one number each (address
/// then port, the order of `SocketAddrV4`; comparing the `SocketAddr`s
/// took some 30 instructions a frame). Equal to `a <= b` by test
/// `endpoint_le_is_the_socket_address_order`.
fn endpoint_le(a: SocketAddr, b: SocketAddr) -> bool {
    match (a, b) {
        (SocketAddr::V4(a), SocketAddr::V4(b)) => {
            let rank = |e: std::net::SocketAddrV4| u64::from(e.ip().to_bits()) << 16 | u64::from(e.port());
            rank(a) <= rank(b)
        }
        _ => a <= b,
    }
}

/// The last delivered octets of one direction, kept to compare
/// retransmissions with (a ring indexed by stream offset).
#[derive(Debug, Default)]
struct History {
    ring: Vec<u8>,
    /// Lowest stream offset whose octet is known (after the last gap).
    from: u64,
}

impl History {
    /// Record `bytes` delivered at stream offset `at`; a first record
    /// takes its ring from `spare` when one is there.
    fn record(&mut self, at: u64, bytes: &[u8], spare: &mut Vec<Vec<u8>>) {
        const W: usize = TCP_OVERLAP_CHECK_WINDOW;
        if bytes.is_empty() {
            return;
        }
        if self.ring.capacity() == 0 {
            if let Some(ring) = spare.pop() {
                self.ring = ring;
            }
        }
        let (at, b) =
            if bytes.len() > W { (at + (bytes.len() - W) as u64, &bytes[bytes.len() - W..]) } else { (at, bytes) };
        let i = (at % W as u64) as usize;
        // The ring grows to the window as octets arrive (most connections
        // are short); a place not yet written is never compared, as
        // `conflict` looks only at delivered offsets.
        let need = if i + b.len() > W { W } else { i + b.len() };
        if self.ring.len() < need {
            // Room for the whole window at once: growing step by step cost
            // a reallocation and copy every few segments.
            self.ring.reserve_exact(W - self.ring.len());
            self.ring.resize(need, 0);
        }
        let first = (W - i).min(b.len());
        self.ring[i..i + first].copy_from_slice(&b[..first]);
        let rest = b.len() - first;
        self.ring[..rest].copy_from_slice(&b[first..]);
    }

    /// Compare `bytes` (at stream offset `at`) with what was delivered,
    /// where known; `next` is the next offset to deliver. Returns the
    /// first differing offset and the length compared from there.
    fn conflict(&self, next: u64, at: u64, bytes: &[u8]) -> Option<(u64, u64)> {
        const W: u64 = TCP_OVERLAP_CHECK_WINDOW as u64;
        if self.ring.is_empty() {
            return None;
        }
        let lo = at.max(self.from).max(next.saturating_sub(W));
        let hi = (at + bytes.len() as u64).min(next);
        let mut x = lo;
        while x < hi {
            let got = bytes[(x - at) as usize];
            if self.ring.get((x % W) as usize).is_some_and(|&r| r != got) {
                return Some((x, hi - x));
            }
            x += 1;
        }
        None
    }
}

/// One direction of a connection.
#[derive(Debug, Default)]
struct Half {
    init: bool,
    syn: bool,
    /// Sequence number of the SYN, or the first seen (port reuse test).
    isn: u32,
    /// Sequence number of stream offset 0.
    base: u32,
    /// Stream offset of the next octet to deliver.
    next: u64,
    /// Stream offset of the FIN, once seen.
    fin: Option<u64>,
    /// Buffered out-of-order octets: non-overlapping, all starting after
    /// `next`, keyed by stream offset.
    ooo: BTreeMap<u64, Vec<u8>>,
    ooo_bytes: usize,
    hist: History,
    /// Last acknowledgement number the peer sent for this direction
    /// (before this direction was seen, it tells where its stream is).
    peer_ack: Option<u32>,
    /// Segments seen.
    packets: u64,
    /// Payload octets seen on the wire (`tcp.len` summed, duplicates too).
    wire_bytes: u64,
    /// Octets delivered in `Data` events.
    delivered: u64,
    /// Octets reported missing in `Gap` events.
    missing: u64,
}

impl Half {
    /// Stream offset of sequence number `seq`, taken as the value nearest
    /// to the next expected octet (wrap-around safe).
    fn offset_of(&self, seq: u32) -> i64 {
        let next_seq = self.base.wrapping_add(self.next as u32);
        self.next as i64 + i64::from(seq.wrapping_sub(next_seq) as i32)
    }
    fn done(&self) -> bool {
        self.fin == Some(self.next)
    }
    /// Frees the buffers of a closed direction; its history ring goes to
    /// `spare` for the next connection (allocating and freeing a ring per
    /// direction cost a tenth of reassembly on captures of many short
    /// connections), emptied: a ring is only read where it was written.
    fn release(&mut self, total: &mut usize, spare: &mut Vec<Vec<u8>>) {
        *total = total.saturating_sub(self.ooo_bytes);
        self.ooo = BTreeMap::new();
        self.ooo_bytes = 0;
        let mut ring = std::mem::take(&mut self.hist).ring;
        if ring.capacity() == TCP_OVERLAP_CHECK_WINDOW && spare.len() < SPARE_RINGS {
            ring.clear();
            spare.push(ring);
        }
    }
}

/// History rings kept for reuse (see [`Half::release`]): 128 KiB at most.
const SPARE_RINGS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Closed,
}

#[derive(Debug)]
struct Conn {
    id: ConnId,
    key: ConnKey,
    flow: FlowKey,
    state: State,
    half: [Half; 2],
    last_frame: u64,
    last_time: Timestamp,
    after_close_reported: bool,
}

/// Where events of one packet go, and about what.
struct Ctx<'e, F> {
    conn: ConnId,
    dir: Direction,
    frame: u64,
    time: Timestamp,
    ooo_total: &'e mut usize,
    spare_rings: &'e mut Vec<Vec<u8>>,
    emit: &'e mut F,
}

impl<F: FnMut(StreamEvent<'_>)> Ctx<'_, F> {
    fn data(&mut self, h: &mut Half, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let offset = h.next;
        h.hist.record(offset, bytes, self.spare_rings);
        h.next += bytes.len() as u64;
        h.delivered += bytes.len() as u64;
        (self.emit)(StreamEvent::Data {
            conn: self.conn,
            dir: self.dir,
            frame: self.frame,
            time: self.time,
            offset,
            bytes,
        });
    }
    fn anomaly(&mut self, detail: Anomaly) {
        (self.emit)(StreamEvent::Anomaly { conn: self.conn, frame: self.frame, detail });
    }
    /// Declare the octets up to `to` lost, then deliver what follows.
    fn gap_to(&mut self, h: &mut Half, to: u64) {
        if to > h.next {
            (self.emit)(StreamEvent::Gap {
                conn: self.conn,
                dir: self.dir,
                frame: self.frame,
                offset: h.next,
                missing: to - h.next,
            });
            h.missing += to - h.next;
            h.next = to;
            h.hist.from = to;
        }
        self.drain(h);
    }
    /// Deliver buffered segments that start at or before `next`.
    fn drain(&mut self, h: &mut Half) {
        while let Some(entry) = h.ooo.first_entry() {
            let start = *entry.key();
            if start > h.next {
                break;
            }
            let d = entry.remove();
            h.ooo_bytes -= d.len();
            *self.ooo_total = self.ooo_total.saturating_sub(d.len());
            let end = start + d.len() as u64;
            if end > h.next {
                let from = (h.next - start) as usize;
                self.data(h, &d[from..]);
            }
        }
    }
    /// Give up on every hole: deliver all buffered data with gaps between,
    /// and a gap up to the FIN if data before it is missing.
    fn flush(&mut self, h: &mut Half) {
        while let Some((&start, _)) = h.ooo.first_key_value() {
            self.gap_to(h, start);
        }
        if let Some(fin) = h.fin {
            self.gap_to(h, fin);
        }
    }

    /// A payload `p` at stream offset `off` (may be negative: before the
    /// stream start), with `missing` octets after it not captured.
    fn payload(&mut self, h: &mut Half, off: i64, mut p: &[u8], missing: u64) {
        // Nothing past the FIN belongs to the stream.
        let mut wire_end = off + p.len() as i64 + missing as i64;
        if let Some(fin) = h.fin {
            let fin = fin as i64;
            if wire_end > fin {
                self.anomaly(Anomaly::DataAfterClose { dir: self.dir, len: (wire_end - fin.max(off)) as u64 });
                let keep = (fin - off).clamp(0, p.len() as i64) as usize;
                p = &p[..keep];
                wire_end = fin.max(off);
            }
        }
        let mut off = off;
        if off < 0 {
            let before = (-off).min(p.len() as i64) as usize;
            self.anomaly(Anomaly::BeforeStreamStart { dir: self.dir, len: before as u64 });
            p = &p[before..];
            off = 0;
        }
        let off = off as u64;
        let end = off + p.len() as u64;
        let wire_end = wire_end.max(0) as u64;
        let next = h.next;

        if off > next {
            self.buffer(h, off, p);
            return;
        }
        // Overlap with already delivered octets: compare, then skip.
        if off < next && !p.is_empty() {
            let upto = ((next.min(end)) - off) as usize;
            if let Some((at, len)) = h.hist.conflict(next, off, &p[..upto]) {
                self.anomaly(Anomaly::ConflictingOverlap { dir: self.dir, offset: at, len });
            }
        }
        // Deliver from the packet, interleaved with buffered segments that
        // already cover parts of it (their copy came first and wins).
        let mut cur = next;
        loop {
            let first = h.ooo.first_key_value().map(|(s, d)| (*s, *s + d.len() as u64));
            if let Some((s, e)) = first {
                if s <= cur {
                    let d = h.ooo.pop_first().map(|(_, d)| d).unwrap_or_default();
                    h.ooo_bytes -= d.len();
                    *self.ooo_total = self.ooo_total.saturating_sub(d.len());
                    if e > cur {
                        // The new copy of [cur, min(e, end)) must match.
                        let hi = e.min(end);
                        if hi > cur && cur >= off {
                            let newer = &p[(cur - off) as usize..(hi - off) as usize];
                            let older = &d[(cur - s) as usize..(hi - s) as usize];
                            if let Some(i) = newer.iter().zip(older).position(|(a, b)| a != b) {
                                self.anomaly(Anomaly::ConflictingOverlap {
                                    dir: self.dir,
                                    offset: cur + i as u64,
                                    len: hi - cur - i as u64,
                                });
                            }
                        }
                        self.data(h, &d[(cur - s) as usize..]);
                        cur = e;
                    }
                    continue;
                }
            }
            if cur < end {
                let lim = first.map_or(end, |(s, _)| s.min(end));
                self.data(h, &p[(cur - off) as usize..(lim - off) as usize]);
                cur = lim;
                continue;
            }
            break;
        }
        // The part the capture cut off is lost.
        if missing > 0 && h.next == end && wire_end > end {
            self.anomaly(Anomaly::TruncatedSegment { dir: self.dir, missing: wire_end - end });
            self.gap_to(h, wire_end);
        }
    }

    /// Keep an out-of-order segment (first copy wins), within the limits.
    fn buffer(&mut self, h: &mut Half, off: u64, p: &[u8]) {
        if p.is_empty() {
            return;
        }
        let end = off + p.len() as u64;
        // Pieces of [off, end) not yet buffered; compare the rest.
        let mut pieces: Vec<(u64, u64)> = Vec::new();
        let mut cur = off;
        // A segment starting before `off` may cover its start.
        let before = h.ooo.range(..off).next_back().map(|(s, d)| (*s, *s + d.len() as u64));
        let overlapping = before.into_iter().chain(h.ooo.range(off..end).map(|(s, d)| (*s, *s + d.len() as u64)));
        let mut conflict: Option<(u64, u64)> = None;
        for (s, e) in overlapping {
            if e <= cur {
                continue;
            }
            if s > cur {
                pieces.push((cur, s));
            }
            let (lo, hi) = (s.max(cur), e.min(end));
            if conflict.is_none() {
                if let Some(d) = h.ooo.get(&s) {
                    let newer = &p[(lo - off) as usize..(hi - off) as usize];
                    let older = &d[(lo - s) as usize..(hi - s) as usize];
                    if let Some(i) = newer.iter().zip(older).position(|(a, b)| a != b) {
                        conflict = Some((lo + i as u64, hi - lo - i as u64));
                    }
                }
            }
            cur = cur.max(e);
            if cur >= end {
                break;
            }
        }
        if cur < end {
            pieces.push((cur, end));
        }
        if let Some((offset, len)) = conflict {
            self.anomaly(Anomaly::ConflictingOverlap { dir: self.dir, offset, len });
        }
        let add: usize = pieces.iter().map(|(a, b)| (b - a) as usize).sum();
        if add == 0 {
            return;
        }
        if h.ooo_bytes + add > MAX_TCP_OOO_BYTES_PER_DIR
            || h.ooo.len() + pieces.len() > MAX_TCP_OOO_SEGMENTS_PER_DIR
            || *self.ooo_total + add > MAX_TCP_OOO_BYTES_TOTAL
        {
            // Stop waiting: what is buffered goes out with gaps, and so
            // does this segment.
            self.anomaly(Anomaly::BufferLimit { dir: self.dir });
            while let Some((&start, _)) = h.ooo.first_key_value() {
                self.gap_to(h, start);
            }
            if off > h.next {
                self.gap_to(h, off);
            }
            if end > h.next {
                let from = (h.next - off) as usize;
                self.data(h, &p[from..]);
            }
            return;
        }
        for (a, b) in pieces {
            h.ooo.insert(a, p[(a - off) as usize..(b - off) as usize].to_vec());
        }
        h.ooo_bytes += add;
        *self.ooo_total += add;
    }
}

/// TCP reassembler over all connections of a capture.
#[derive(Debug, Default)]
pub struct Reassembler {
    slots: Vec<Option<Conn>>,
    free: Vec<usize>,
    index: HashMap<FlowKey, usize, FlowHash>,
    closed: VecDeque<(usize, ConnId)>,
    open: usize,
    next_id: ConnId,
    ooo_total: usize,
    /// History rings of closed connections, for reuse.
    spare_rings: Vec<Vec<u8>>,
    /// Last flow looked up, to skip hashing on runs of one connection.
    last: Option<(FlowKey, usize)>,
}

impl Reassembler {
    /// An empty reassembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Connections opened so far.
    pub fn connections(&self) -> u64 {
        self.next_id
    }

    /// Out-of-order octets buffered over all connections.
    pub fn buffered(&self) -> usize {
        self.ooo_total
    }

    /// Decode one captured frame and reassemble it. Returns whether it was
    /// a TCP segment (otherwise a `Skipped` event was emitted).
    pub fn push<F: FnMut(StreamEvent<'_>)>(&mut self, pkt: &RawPacket<'_>, emit: &mut F) -> bool {
        match link::decode(pkt.link_type, pkt.data) {
            Ok(seg) => {
                self.segment(&seg, pkt.frame, pkt.time, emit);
                true
            }
            Err(reason) => {
                emit(StreamEvent::Skipped { frame: pkt.frame, reason });
                false
            }
        }
    }

    fn lookup(&mut self, flow: FlowKey) -> Option<usize> {
        if let Some((k, i)) = self.last {
            if k == flow {
                return Some(i);
            }
        }
        let i = *self.index.get(&flow)?;
        self.last = Some((flow, i));
        Some(i)
    }

    /// Reassemble one TCP segment seen in frame `frame` at `time`.
    pub fn segment<F: FnMut(StreamEvent<'_>)>(
        &mut self,
        seg: &TcpSegment<'_>,
        frame: u64,
        time: Timestamp,
        emit: &mut F,
    ) {
        let flow = FlowKey::new(seg.src, seg.dst);
        let syn_only = seg.flags & (flags::SYN | flags::ACK) == flags::SYN;
        let slot = match self.lookup(flow) {
            Some(i) => {
                // Wireshark's rule (packet-tcp.c): a SYN whose sequence
                // number differs from the base sequence number of its
                // direction starts a new conversation; the same number is a
                // retransmission, even after a RST.
                let reuse = match &self.slots[i] {
                    Some(c) => {
                        let d = if seg.src == c.key.client { 0 } else { 1 };
                        syn_only && c.half[d].init && c.half[d].isn != seg.seq
                    }
                    None => true,
                };
                if reuse {
                    // The old connection ended unseen (or is long closed).
                    self.close(i, frame, time, CloseHow::Eof, emit, true);
                    self.open_conn(flow, seg, frame, time, emit)
                } else {
                    i
                }
            }
            None => self.open_conn(flow, seg, frame, time, emit),
        };
        let Some(conn) = self.slots[slot].as_mut() else {
            return;
        };
        conn.last_frame = frame;
        conn.last_time = time;
        let dir = if seg.src == conn.key.client { Direction::ToServer } else { Direction::ToClient };
        let d = dir.index();
        if conn.state == State::Closed {
            if !seg.payload.is_empty() && !conn.after_close_reported {
                conn.after_close_reported = true;
                emit(StreamEvent::Anomaly {
                    conn: conn.id,
                    frame,
                    detail: Anomaly::DataAfterClose { dir, len: seg.wire_len() },
                });
            }
            return;
        }
        let mut ctx = Ctx {
            conn: conn.id,
            dir,
            frame,
            time,
            ooo_total: &mut self.ooo_total,
            spare_rings: &mut self.spare_rings,
            emit,
        };
        let is_syn = seg.has(flags::SYN);
        let h = &mut conn.half[d];
        h.wire_bytes += seg.wire_len();
        h.packets += 1;
        if !h.init {
            h.init = true;
            // Like Wireshark's base_seq: the SYN's number, else one less
            // than the first number seen.
            h.isn = if is_syn { seg.seq } else { seg.seq.wrapping_sub(1) };
            h.syn = is_syn;
            h.base = if is_syn { seg.seq.wrapping_add(1) } else { seg.seq };
            if let Some(a) = h.peer_ack.filter(|a| !is_syn && (seg.seq.wrapping_sub(*a) as i32) < 0) {
                // Picked up mid-stream with a segment the peer already
                // acknowledged (typically a keep-alive one below the next
                // octet): the stream starts at the acknowledged octet, so
                // that it starts clean.
                h.base = a;
            } else if !is_syn && seg.flags == flags::ACK && seg.wire_len() == 1 {
                // The first segment seen of a mid-stream direction is one
                // octet with a bare ACK: that is how keep-alive probes look
                // (one octet below the next one; real one-octet data
                // carries PSH). The stream starts after it.
                h.base = seg.seq.wrapping_add(1);
            }
        } else if is_syn && !h.syn && h.next == 0 && h.ooo.is_empty() {
            // First saw a bare ACK of this direction, then its SYN(-ACK).
            h.syn = true;
            h.isn = seg.seq;
            h.base = seg.seq.wrapping_add(1);
        }
        let data_seq = if is_syn { seg.seq.wrapping_add(1) } else { seg.seq };
        let off = h.offset_of(data_seq);
        let keepalive =
            seg.flags & (flags::SYN | flags::FIN | flags::RST) == 0 && seg.wire_len() <= 1 && off == h.next as i64 - 1;
        if !keepalive && (!seg.payload.is_empty() || seg.missing > 0) {
            ctx.payload(h, off, seg.payload, u64::from(seg.missing));
        }
        if seg.has(flags::FIN) && h.fin.is_none() {
            let fin = off + seg.wire_len() as i64;
            if fin >= h.next as i64 {
                h.fin = Some(fin as u64);
            }
        }
        // An acknowledgement of octets the capture does not hold in the
        // other direction: they were lost by the capture, not the network.
        if seg.has(flags::ACK) && !seg.has(flags::RST) {
            let o = &mut conn.half[1 - d];
            o.peer_ack = Some(seg.ack);
            if o.init {
                let mut ack = o.offset_of(seg.ack);
                if let Some(fin) = o.fin {
                    ack = ack.min(fin as i64);
                }
                let jump = ack - o.next as i64;
                if jump > 0 && !o.syn && o.next == 0 && o.ooo.is_empty() {
                    // Picked up mid-stream (first seen maybe a keep-alive,
                    // one below the next octet), nothing delivered yet:
                    // the stream starts where the peer says, no gap.
                    o.base = o.base.wrapping_add(jump as u32);
                } else if jump > 0 && jump < MAX_ACK_JUMP {
                    ctx.dir = dir.reverse();
                    // Deliver what is buffered below the ack, with gaps.
                    while let Some((&s, _)) = o.ooo.first_key_value() {
                        if s >= ack as u64 {
                            break;
                        }
                        ctx.gap_to(o, s);
                    }
                    ctx.gap_to(o, ack as u64);
                }
            }
        }
        let rst = seg.has(flags::RST);
        let both_done = conn.half[0].done() && conn.half[1].done();
        if rst {
            self.close(slot, frame, time, CloseHow::Rst, emit, false);
        } else if both_done {
            self.close(slot, frame, time, CloseHow::Fin, emit, false);
        }
    }

    fn open_conn<F: FnMut(StreamEvent<'_>)>(
        &mut self,
        flow: FlowKey,
        seg: &TcpSegment<'_>,
        frame: u64,
        time: Timestamp,
        emit: &mut F,
    ) -> usize {
        if self.open >= MAX_TCP_OPEN_CONNECTIONS {
            self.evict(frame, time, emit);
        }
        let (s, d) = (seg.src, seg.dst);
        let syn = seg.has(flags::SYN);
        // SYN sender; else SYN-ACK receiver; else not the RFC 1006 port;
        // else the higher port; else the sender.
        let src_is_client = if syn {
            !seg.has(flags::ACK)
        } else if (d.port() == RFC1006_PORT) != (s.port() == RFC1006_PORT) {
            d.port() == RFC1006_PORT
        } else {
            s.port() >= d.port()
        };
        let client = if src_is_client { s } else { d };
        let key = ConnKey { client, server: if client == s { d } else { s } };
        let id = self.next_id;
        self.next_id += 1;
        let conn = Conn {
            id,
            key,
            flow,
            state: State::Open,
            half: [Half::default(), Half::default()],
            last_frame: frame,
            last_time: time,
            after_close_reported: false,
        };
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(conn);
                i
            }
            None => {
                self.slots.push(Some(conn));
                self.slots.len() - 1
            }
        };
        self.index.insert(flow, slot);
        self.last = Some((flow, slot));
        self.open += 1;
        emit(StreamEvent::Open { conn: id, key, frame, time, syn_seen: syn });
        slot
    }

    /// Flush and close the connection in `slot`; with `forget`, also drop
    /// it from the index (it is being replaced or evicted).
    fn close<F: FnMut(StreamEvent<'_>)>(
        &mut self,
        slot: usize,
        frame: u64,
        time: Timestamp,
        how: CloseHow,
        emit: &mut F,
        forget: bool,
    ) {
        let Some(conn) = self.slots[slot].as_mut() else {
            return;
        };
        let id = conn.id;
        if conn.state == State::Open {
            let mut how = how;
            for d in [Direction::ToServer, Direction::ToClient] {
                let mut ctx = Ctx {
                    conn: conn.id,
                    dir: d,
                    frame,
                    time,
                    ooo_total: &mut self.ooo_total,
                    spare_rings: &mut self.spare_rings,
                    emit,
                };
                ctx.flush(&mut conn.half[d.index()]);
            }
            if how == CloseHow::Eof && conn.half[0].done() && conn.half[1].done() {
                how = CloseHow::Fin;
            }
            for h in &mut conn.half {
                h.release(&mut self.ooo_total, &mut self.spare_rings);
            }
            conn.state = State::Closed;
            self.open -= 1;
            let stats = ConnStats {
                packets: [conn.half[0].packets, conn.half[1].packets],
                wire_bytes: [conn.half[0].wire_bytes, conn.half[1].wire_bytes],
                delivered: [conn.half[0].delivered, conn.half[1].delivered],
                missing: [conn.half[0].missing, conn.half[1].missing],
            };
            emit(StreamEvent::Close { conn: conn.id, frame, time, how, stats });
            if !forget {
                self.closed.push_back((slot, id));
                while self.closed.len() > MAX_TCP_CLOSED_CONNECTIONS {
                    if let Some((s, id)) = self.closed.pop_front() {
                        self.forget(s, id);
                    }
                }
            }
        }
        if forget {
            self.forget(slot, id);
        }
    }

    fn forget(&mut self, slot: usize, id: ConnId) {
        let Some(conn) = self.slots.get(slot).and_then(|c| c.as_ref()) else {
            return;
        };
        if conn.id != id {
            return;
        }
        let flow = conn.flow;
        if self.index.get(&flow) == Some(&slot) {
            self.index.remove(&flow);
        }
        if self.last.map(|(_, s)| s) == Some(slot) {
            self.last = None;
        }
        self.slots[slot] = None;
        self.free.push(slot);
    }

    /// Close the least recently active sixteenth of the open connections.
    fn evict<F: FnMut(StreamEvent<'_>)>(&mut self, frame: u64, time: Timestamp, emit: &mut F) {
        let mut open: Vec<(u64, usize)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().filter(|c| c.state == State::Open).map(|c| (c.last_frame, i)))
            .collect();
        let n = (open.len() / 16).max(1).min(open.len());
        if n == 0 {
            return;
        }
        open.select_nth_unstable(n - 1);
        for &(_, i) in &open[..n] {
            self.close(i, frame, time, CloseHow::Evicted, emit, true);
        }
    }

    /// The capture ended: flush every open connection, in id order, and
    /// close it (`Fin` if both directions finished, else `Eof`).
    pub fn finish<F: FnMut(StreamEvent<'_>)>(&mut self, emit: &mut F) {
        let mut open: Vec<(ConnId, usize)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().filter(|c| c.state == State::Open).map(|c| (c.id, i)))
            .collect();
        open.sort_unstable();
        for (_, i) in open {
            let (frame, time) = match &self.slots[i] {
                Some(c) => (c.last_frame, c.last_time),
                None => continue,
            };
            self.close(i, frame, time, CloseHow::Eof, emit, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_le_is_the_socket_address_order() {
        // Addresses and ports equal, one apart, and far apart in each
        // octet, IPv4 against IPv4 and against IPv6.
        let ips =
            ["0.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.1.1", "10.1.0.0", "127.0.0.1", "192.168.0.1", "255.255.255.255"];
        let ports = [0u16, 1, 102, 103, 256, 40000, 65535];
        let mut eps: Vec<SocketAddr> = Vec::new();
        for ip in ips {
            for p in ports {
                eps.push(SocketAddr::new(ip.parse().unwrap(), p));
            }
        }
        eps.push("[::1]:102".parse().unwrap());
        eps.push("[2001:db8::1]:0".parse().unwrap());
        for &a in &eps {
            for &b in &eps {
                assert_eq!(endpoint_le(a, b), a <= b, "{a} {b}");
            }
        }
    }

    #[test]
    fn flow_hash_spreads_keys_and_finds_them() {
        use core::hash::BuildHasher;
        // Keys differing in one address octet, one port or the family:
        // the keyed hash of each is distinct (no word of the key is
        // dropped), equal keys hash equal, and the index finds every key.
        let build = FlowHash::default();
        let mut keys = Vec::new();
        for c in 0..40u8 {
            for port in [102u16, 103, 2278, 40000, 65535] {
                let client = SocketAddr::new(std::net::Ipv4Addr::new(10, 128, 1, c).into(), port);
                keys.push(FlowKey::new(client, "10.128.1.2:102".parse().unwrap()));
                let v6 =
                    SocketAddr::new(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(c)).into(), port);
                keys.push(FlowKey::new(v6, "[2001:db8::ffff]:102".parse().unwrap()));
            }
        }
        let hashes: std::collections::HashSet<u64> = keys.iter().map(|k| build.hash_one(k)).collect();
        assert_eq!(hashes.len(), keys.len());
        let mut index: HashMap<FlowKey, usize, FlowHash> = HashMap::default();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(build.hash_one(k), build.hash_one(FlowKey::new(k.b, k.a)));
            index.insert(*k, i);
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(index.get(&FlowKey::new(k.b, k.a)), Some(&i));
        }
    }
}
