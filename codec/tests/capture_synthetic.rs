//! Synthetic captures built with `capture::write`: reassembly of reordered,
//! duplicated, overlapping, lost, truncated and mid-stream segments, port
//! reuse, sequence wrap-around, every file flavour and link type.

use rtse_codec::capture::link::flags;
use rtse_codec::capture::write::{Frame, FrameSink, LinkEncap, PcapFlavor, PcapWriter, PcapngWriter, TcpConversation};
use rtse_codec::capture::{
    read_capture, read_capture_stream, Anomaly, CaptureSummary, CloseHow, ConnId, Direction, SkipReason, StreamEvent,
    Timestamp,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;

const C2S: Direction = Direction::ToServer;
const S2C: Direction = Direction::ToClient;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn conv() -> TcpConversation {
    TcpConversation::new(addr("10.0.0.1:40000"), addr("10.0.0.2:102"))
}

/// A byte stream as delivered: data octets, and `None` for each octet
/// reported missing.
type Stream = Vec<Option<u8>>;

#[derive(Debug, Default)]
struct Run {
    streams: BTreeMap<(ConnId, Direction), Stream>,
    data_events: usize,
    opens: Vec<(ConnId, String, bool)>,
    closes: Vec<(ConnId, CloseHow)>,
    anomalies: Vec<(ConnId, u64, Anomaly)>,
    gaps: Vec<(ConnId, Direction, u64, u64, u64)>,
    skipped: Vec<(u64, SkipReason)>,
    times: Vec<Timestamp>,
    summary: CaptureSummary,
}

fn run(file: &[u8]) -> Run {
    let mut r = Run::default();
    let mut expect_off: BTreeMap<(ConnId, Direction), u64> = BTreeMap::new();
    let summary = read_capture(file, |ev| match ev {
        StreamEvent::Open { conn, key, syn_seen, time, .. } => {
            r.opens.push((conn, key.to_string(), syn_seen));
            r.times.push(time);
        }
        StreamEvent::Data { conn, dir, offset, bytes, .. } => {
            let e = expect_off.entry((conn, dir)).or_default();
            assert_eq!(*e, offset, "data contiguous");
            *e += bytes.len() as u64;
            r.data_events += 1;
            r.streams.entry((conn, dir)).or_default().extend(bytes.iter().map(|b| Some(*b)));
        }
        StreamEvent::Gap { conn, dir, offset, missing, frame } => {
            let e = expect_off.entry((conn, dir)).or_default();
            assert_eq!(*e, offset, "gap contiguous");
            *e += missing;
            r.gaps.push((conn, dir, frame, offset, missing));
            r.streams.entry((conn, dir)).or_default().extend(std::iter::repeat_n(None, missing as usize));
        }
        StreamEvent::Close { conn, how, .. } => r.closes.push((conn, how)),
        StreamEvent::Anomaly { conn, frame, detail } => r.anomalies.push((conn, frame, detail)),
        StreamEvent::Skipped { frame, reason } => r.skipped.push((frame, reason)),
    })
    .expect("synthetic capture reads");
    // The streaming reader, fed in small pieces, tells the same story.
    let mut a = Vec::new();
    let mut b = Vec::new();
    read_capture(file, |ev| a.push(format!("{ev:?}"))).unwrap();
    read_capture_stream(Chunks(file, 7), |ev| b.push(format!("{ev:?}"))).unwrap();
    assert_eq!(a, b, "streaming reader differs");
    r.summary = summary;
    r
}

/// A reader that returns at most n octets per read.
struct Chunks<'a>(&'a [u8], usize);
impl std::io::Read for Chunks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fn pcapng(frames: &[Frame]) -> Vec<u8> {
    let mut w = PcapngWriter::ethernet();
    for f in frames {
        w.write_frame(f.time, &f.data, f.orig_len).unwrap();
    }
    w.into_inner().unwrap()
}

fn pcap_of(frames: &[Frame], link_type: u32, flavor: PcapFlavor) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), link_type, flavor).unwrap();
    for f in frames {
        w.packet(f.time, &f.data, f.orig_len).unwrap();
    }
    w.into_inner().unwrap()
}

fn bytes(s: &Stream) -> Vec<u8> {
    s.iter().map(|b| b.expect("no gap")).collect()
}

fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// Frames of a complete conversation: handshake, request, response, close.
fn basic(c: &mut TcpConversation, req: &[u8], resp: &[u8], sizes: &[usize]) -> Vec<Frame> {
    c.syn();
    c.send_segmented(C2S, req, sizes);
    c.ack(S2C);
    c.send_segmented(S2C, resp, sizes);
    c.ack(C2S);
    c.close();
    c.take_frames()
}

#[test]
fn whole_conversation() {
    let (req, resp) = (payload(300, 1), payload(200, 2));
    let frames = basic(&mut conv(), &req, &resp, &[1000]);
    let r = run(&pcapng(&frames));
    assert_eq!(r.opens, vec![(0, "10.0.0.1:40000 -> 10.0.0.2:102".to_string(), true)]);
    assert_eq!(bytes(&r.streams[&(0, C2S)]), req);
    assert_eq!(bytes(&r.streams[&(0, S2C)]), resp);
    assert_eq!(r.closes, vec![(0, CloseHow::Fin)]);
    assert!(r.anomalies.is_empty() && r.gaps.is_empty());
    assert_eq!(r.summary.packets, frames.len() as u64);
    assert_eq!(r.summary.tcp_packets, frames.len() as u64);
    assert_eq!(r.summary.connections, 1);
    assert_eq!(r.summary.bytes, 500);
    assert_eq!(r.summary.format, "pcapng");
    assert_eq!(r.summary.link_types, vec![1]);
    assert_eq!(r.times[0], Timestamp::new(1_000_000_000, 0));
}

#[test]
fn one_byte_per_segment() {
    let (req, resp) = (payload(64, 3), payload(33, 4));
    let frames = basic(&mut conv(), &req, &resp, &[1]);
    let r = run(&pcapng(&frames));
    assert_eq!(bytes(&r.streams[&(0, C2S)]), req);
    assert_eq!(bytes(&r.streams[&(0, S2C)]), resp);
    assert_eq!(r.data_events, 97);
}

#[test]
fn reordered_segments() {
    let (req, resp) = (payload(100, 5), payload(90, 6));
    let mut frames = basic(&mut conv(), &req, &resp, &[7, 13, 10]);
    // Reverse the client's data segments (frames 3.. before the server ack).
    let data: Vec<usize> = (0..frames.len())
        .filter(|&i| frames[i].data.len() > 54 && frames[i].data[34..36] == 40000u16.to_be_bytes())
        .collect();
    let (lo, hi) = (data[0], data[data.len() - 1]);
    frames[lo..=hi].reverse();
    let r = run(&pcapng(&frames));
    assert_eq!(bytes(&r.streams[&(0, C2S)]), req);
    assert_eq!(bytes(&r.streams[&(0, S2C)]), resp);
    assert!(r.gaps.is_empty() && r.anomalies.is_empty(), "{:?}", r.anomalies);
}

#[test]
fn duplicated_segments() {
    let (req, resp) = (payload(100, 7), payload(50, 8));
    let frames = basic(&mut conv(), &req, &resp, &[9]);
    let dup: Vec<Frame> = frames.iter().flat_map(|f| [f.clone(), f.clone()]).collect();
    let r = run(&pcapng(&dup));
    assert_eq!(bytes(&r.streams[&(0, C2S)]), req);
    assert_eq!(bytes(&r.streams[&(0, S2C)]), resp);
    assert!(r.gaps.is_empty() && r.anomalies.is_empty(), "{:?}", r.anomalies);
    assert_eq!(r.summary.connections, 1);
}

#[test]
fn overlapping_segments_with_the_same_bytes() {
    let data = payload(40, 9);
    let mut c = conv();
    c.syn();
    c.send(C2S, &data[..10]);
    let s = |o| c.seq_at(C2S, o);
    let (s5, s20, ack) = (s(5), s(20), c.next_seq(S2C));
    // [5, 25) overlaps delivered [0, 10); then [20, 40) overlaps it.
    c.raw(C2S, s5, ack, flags::ACK, &data[5..25]);
    c.raw(C2S, s20, ack, flags::ACK, &data[20..40]);
    let r = run(&pcapng(c.frames()));
    assert_eq!(bytes(&r.streams[&(0, C2S)]), data);
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
}

/// A connection on `c` that sends `data` (40 octets) with a conflicting
/// retransmission: [0, 20), then [10, 30) whose octet 13 differs, then
/// [30, 40). The reassembler must keep the first copy and report the
/// overlap at offset 13, 7 octets long.
fn send_with_conflicting_overlap(c: &mut TcpConversation, data: &[u8]) {
    c.syn();
    c.send(C2S, &data[..20]);
    let (s10, ack) = (c.seq_at(C2S, 10), c.next_seq(S2C));
    let mut bad = data[10..30].to_vec();
    bad[3] ^= 0xff;
    c.raw(C2S, s10, ack, flags::ACK, &bad);
    let s30 = c.seq_at(C2S, 30);
    c.raw(C2S, s30, ack, flags::PSH | flags::ACK, &data[30..]);
}

#[test]
fn conflicting_overlap_first_copy_wins() {
    let data = payload(40, 10);
    let mut c = conv();
    send_with_conflicting_overlap(&mut c, &data);
    let r = run(&pcapng(c.frames()));
    assert_eq!(bytes(&r.streams[&(0, C2S)]), data);
    assert_eq!(r.anomalies, vec![(0, 5, Anomaly::ConflictingOverlap { dir: C2S, offset: 13, len: 7 })]);
}

#[test]
fn conflicting_overlap_in_the_out_of_order_buffer() {
    let data = payload(30, 11);
    let mut c = conv();
    c.syn();
    let ack = c.next_seq(S2C);
    let s = |o| c.seq_at(C2S, o);
    let (s0, s10, s15) = (s(0), s(10), s(15));
    c.raw(C2S, s10, ack, flags::ACK, &data[10..20]);
    let mut bad = data[15..30].to_vec();
    bad[0] ^= 1;
    c.raw(C2S, s15, ack, flags::ACK, &bad);
    c.raw(C2S, s0, ack, flags::ACK, &data[..12]);
    let r = run(&pcapng(c.frames()));
    // [15, 20) comes from the first copy; [20, 30) only exists in the second.
    let mut want = data.clone();
    want[20..].copy_from_slice(&bad[5..]);
    assert_eq!(bytes(&r.streams[&(0, C2S)]), want);
    assert_eq!(r.anomalies.len(), 1);
    assert!(matches!(r.anomalies[0].2, Anomaly::ConflictingOverlap { offset: 15, .. }));
}

#[test]
fn gap_acked_by_the_peer() {
    let data = payload(60, 12);
    let mut c = conv();
    c.syn();
    c.send(C2S, &data[..20]);
    c.send(C2S, &data[20..35]);
    c.send(C2S, &data[35..]);
    c.ack(S2C);
    let mut frames = c.take_frames();
    frames.remove(4); // [20, 35) lost by the capture
    let r = run(&pcapng(&frames));
    let s = &r.streams[&(0, C2S)];
    assert_eq!(s.len(), 60);
    assert!(s[20..35].iter().all(Option::is_none));
    assert_eq!(s[..20].iter().map(|b| b.unwrap()).collect::<Vec<_>>(), &data[..20]);
    assert_eq!(s[35..].iter().map(|b| b.unwrap()).collect::<Vec<_>>(), &data[35..]);
    // Reported when the ack (frame 6 after the removal) shows it lost.
    assert_eq!(r.gaps, vec![(0, C2S, 6, 20, 15)]);
    assert_eq!(r.summary.gap_bytes, 15);
}

#[test]
fn gap_reported_at_the_end_of_the_capture() {
    let data = payload(30, 13);
    let mut c = conv();
    c.syn();
    c.send(C2S, &data[..10]);
    c.send(C2S, &data[10..20]);
    c.send(C2S, &data[20..]);
    let mut frames = c.take_frames();
    frames.remove(4);
    let r = run(&pcapng(&frames));
    let s = &r.streams[&(0, C2S)];
    assert_eq!(s.len(), 30);
    assert_eq!(s.iter().filter(|b| b.is_none()).count(), 10);
    assert_eq!(r.gaps.len(), 1);
    assert_eq!(r.closes, vec![(0, CloseHow::Eof)]);
}

#[test]
fn missing_data_before_fin() {
    let data = payload(30, 14);
    let mut c = conv();
    c.syn();
    c.send(C2S, &data[..10]);
    c.send(C2S, &data[10..]);
    c.fin(C2S);
    c.fin(S2C);
    let mut frames = c.take_frames();
    frames.remove(4);
    let r = run(&pcapng(&frames));
    assert_eq!(r.gaps.iter().map(|g| g.4).sum::<u64>(), 20);
    assert_eq!(r.closes, vec![(0, CloseHow::Fin)]);
}

#[test]
fn mid_stream_start() {
    let (req, resp) = (payload(50, 15), payload(40, 16));
    let mut c = TcpConversation::new(addr("10.0.0.2:102"), addr("10.0.0.1:40000"));
    c.assume_established();
    // The "client" of the writer is on port 102 here: the reader must
    // still make the side not on port 102 the client.
    c.send(S2C, &req);
    c.send(C2S, &resp);
    let r = run(&pcapng(c.frames()));
    assert_eq!(r.opens, vec![(0, "10.0.0.1:40000 -> 10.0.0.2:102".to_string(), false)]);
    assert_eq!(bytes(&r.streams[&(0, C2S)]), req);
    assert_eq!(bytes(&r.streams[&(0, S2C)]), resp);
    assert_eq!(r.closes, vec![(0, CloseHow::Eof)]);
}

#[test]
fn mid_stream_client_by_port_heuristic() {
    let mut c = TcpConversation::new(addr("10.0.0.9:80"), addr("10.0.0.1:50000"));
    c.assume_established();
    c.send(C2S, b"x");
    let r = run(&pcapng(c.frames()));
    assert_eq!(r.opens[0].1, "10.0.0.1:50000 -> 10.0.0.9:80");
}

#[test]
fn port_reuse_starts_a_new_connection() {
    let mut c = conv();
    let mut frames = basic(&mut c, b"first", b"one", &[100]);
    let mut c2 = conv().with_isn(777_777, 888_888);
    frames.extend(basic(&mut c2, b"second", b"two", &[100]));
    let r = run(&pcapng(&frames));
    assert_eq!(r.opens.len(), 2);
    assert_eq!(bytes(&r.streams[&(0, C2S)]), b"first");
    assert_eq!(bytes(&r.streams[&(1, C2S)]), b"second");
    assert_eq!(bytes(&r.streams[&(1, S2C)]), b"two");
    assert_eq!(r.closes, vec![(0, CloseHow::Fin), (1, CloseHow::Fin)]);
}

#[test]
fn syn_retransmission_is_not_a_new_connection() {
    let mut c = conv();
    c.syn();
    let mut frames = c.take_frames();
    frames.insert(1, frames[0].clone());
    c.send(C2S, b"abc");
    frames.extend(c.take_frames());
    let r = run(&pcapng(&frames));
    assert_eq!(r.opens.len(), 1);
    assert_eq!(bytes(&r.streams[&(0, C2S)]), b"abc");
}

#[test]
fn rst_closes() {
    let mut c = conv();
    c.syn();
    c.send(C2S, b"hello");
    c.rst(S2C);
    c.send(C2S, b"late");
    let r = run(&pcapng(c.frames()));
    assert_eq!(bytes(&r.streams[&(0, C2S)]), b"hello");
    assert_eq!(r.closes, vec![(0, CloseHow::Rst)]);
    assert!(matches!(r.anomalies[..], [(0, 6, Anomaly::DataAfterClose { len: 4, .. })]));
}

#[test]
fn sequence_wrap_around() {
    let (req, resp) = (payload(3000, 17), payload(2000, 18));
    let mut c = conv().with_isn(u32::MAX - 1000, u32::MAX - 5);
    let mut frames = basic(&mut c, &req, &resp, &[512]);
    // Some reordering across the wrap as well.
    frames.swap(4, 5);
    let r = run(&pcapng(&frames));
    assert_eq!(bytes(&r.streams[&(0, C2S)]), req);
    assert_eq!(bytes(&r.streams[&(0, S2C)]), resp);
    assert!(r.gaps.is_empty() && r.anomalies.is_empty());
}

#[test]
fn keep_alive_is_ignored() {
    let mut c = conv();
    c.syn();
    c.send(C2S, b"abcdef");
    c.ack(S2C);
    let (seq, ack) = (c.next_seq(C2S).wrapping_sub(1), c.next_seq(S2C));
    c.raw(C2S, seq, ack, flags::ACK, &[0]);
    c.send(C2S, b"gh");
    let r = run(&pcapng(c.frames()));
    assert_eq!(bytes(&r.streams[&(0, C2S)]), b"abcdefgh");
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
}

#[test]
fn truncated_frame_becomes_a_gap() {
    let data = payload(100, 19);
    let mut c = conv();
    c.syn();
    c.send(C2S, &data[..60]);
    c.send(C2S, &data[60..]);
    let mut frames = c.take_frames();
    // Keep Ethernet + IP + TCP headers and 10 payload octets.
    frames[3].truncate(14 + 20 + 20 + 10);
    let r = run(&pcapng(&frames));
    let s = &r.streams[&(0, C2S)];
    assert_eq!(s.len(), 100);
    assert_eq!(s.iter().filter(|b| b.is_none()).count(), 50);
    assert_eq!(r.gaps, vec![(0, C2S, 4, 10, 50)]);
    assert_eq!(r.anomalies, vec![(0, 4, Anomaly::TruncatedSegment { dir: C2S, missing: 50 })]);
    assert_eq!(r.summary.truncated, 1);
}

#[test]
fn pcap_byte_orders_and_nanoseconds() {
    let (req, resp) = (payload(200, 20), payload(100, 21));
    let start = Timestamp::new(1_234_567_890, 123_456_789);
    let mut c = conv().with_time(start, 1_001);
    let frames = basic(&mut c, &req, &resp, &[64]);
    for big_endian in [false, true] {
        for nanos in [false, true] {
            let file = pcap_of(&frames, 1, PcapFlavor { big_endian, nanos });
            let r = run(&file);
            assert_eq!(r.summary.format, "pcap");
            assert_eq!(bytes(&r.streams[&(0, C2S)]), req);
            assert_eq!(bytes(&r.streams[&(0, S2C)]), resp);
            let want = if nanos { start } else { Timestamp::new(1_234_567_890, 123_456_000) };
            assert_eq!(r.times[0], want, "big_endian {big_endian} nanos {nanos}");
        }
    }
}

#[test]
fn pcapng_two_interfaces_with_different_link_types_and_resolutions() {
    let (a_req, b_req) = (payload(120, 22), payload(80, 23));
    let mut a = conv();
    let mut b = TcpConversation::new(addr("192.168.1.1:3000"), addr("192.168.1.2:102"))
        .with_link(LinkEncap::Raw)
        .with_time(Timestamp::new(1_000_000_000, 500), 1_000_000);
    a.syn();
    a.send_segmented(C2S, &a_req, &[50]);
    b.syn();
    b.send_segmented(C2S, &b_req, &[30]);
    let (fa, fb) = (a.take_frames(), b.take_frames());
    let mut w = PcapngWriter::new(Vec::new()).unwrap();
    let ia = w.add_interface(1, false).unwrap();
    let ib = w.add_interface(101, true).unwrap();
    for i in 0..fa.len().max(fb.len()) {
        if let Some(f) = fa.get(i) {
            w.packet(ia, f.time, &f.data, f.orig_len).unwrap();
        }
        if let Some(f) = fb.get(i) {
            w.packet(ib, f.time, &f.data, f.orig_len).unwrap();
        }
    }
    let r = run(&w.into_inner().unwrap());
    assert_eq!(r.summary.link_types, vec![1, 101]);
    assert_eq!(bytes(&r.streams[&(0, C2S)]), a_req);
    assert_eq!(bytes(&r.streams[&(1, C2S)]), b_req);
    // Interface 1 has nanosecond resolution: the 500 ns survive.
    assert_eq!(r.times[1], Timestamp::new(1_000_000_000, 500));
}

#[test]
fn link_types_and_ipv6() {
    let (req, resp) = (payload(150, 24), payload(70, 25));
    let links = [
        LinkEncap::ethernet(),
        LinkEncap::Ethernet { vlans: vec![42] },
        LinkEncap::Ethernet { vlans: vec![100, 200] },
        LinkEncap::Sll,
        LinkEncap::Sll2,
        LinkEncap::Raw,
        LinkEncap::Null,
        LinkEncap::Loop,
    ];
    for v6 in [false, true] {
        for link in &links {
            let (cl, sv) = if v6 {
                (addr("[2001:db8::1]:40000"), addr("[2001:db8::2]:102"))
            } else {
                (addr("10.1.1.1:40000"), addr("10.1.1.2:102"))
            };
            let mut c = TcpConversation::new(cl, sv).with_link(link.clone());
            let frames = basic(&mut c, &req, &resp, &[40]);
            let file = pcap_of(&frames, link.link_type(), PcapFlavor::default());
            let r = run(&file);
            assert_eq!(bytes(&r.streams[&(0, C2S)]), req, "{link:?} v6 {v6}");
            assert_eq!(bytes(&r.streams[&(0, S2C)]), resp, "{link:?} v6 {v6}");
            assert_eq!(r.opens[0].1, format!("{cl} -> {sv}"));
            assert_eq!(r.closes, vec![(0, CloseHow::Fin)]);
        }
    }
}

#[test]
fn non_tcp_fragments_and_malformed_frames_are_skipped() {
    let mut c = conv();
    c.syn();
    c.send(C2S, b"tcp data");
    let mut frames = c.take_frames();
    let t = frames[0].time;
    let mk = |data: Vec<u8>| Frame { time: t, link_type: 1, orig_len: data.len() as u32, data };
    // ARP-ish frame.
    let mut arp = vec![0u8; 12];
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    // UDP: take the TCP data frame and change the protocol number.
    let mut udp = frames[3].data.clone();
    udp[14 + 9] = 17;
    // IPv4 fragment: set MF.
    let mut frag = frames[3].data.clone();
    frag[14 + 6] = 0x20;
    // IHL of 3: malformed.
    let mut bad = frames[3].data.clone();
    bad[14] = 0x43;
    // Cut inside the TCP header.
    let mut short = frames[3].data.clone();
    short.truncate(14 + 20 + 10);
    for f in [arp, udp, frag, bad, short] {
        frames.push(mk(f));
    }
    let r = run(&pcapng(&frames));
    assert_eq!(bytes(&r.streams[&(0, C2S)]), b"tcp data");
    assert_eq!(
        r.skipped,
        vec![
            (5, SkipReason::NotIp { ethertype: 0x0806 }),
            (6, SkipReason::NotTcp { protocol: 17 }),
            (7, SkipReason::Fragment),
            (8, SkipReason::Malformed { what: "IP header" }),
            (9, SkipReason::Truncated),
        ]
    );
    assert_eq!(r.summary.non_tcp, 2);
    assert_eq!(r.summary.undecodable, 3);
    assert_eq!(r.summary.tcp_packets, 4);
}

#[test]
fn out_of_order_buffer_limit_declares_a_gap() {
    use rtse_codec::limits::MAX_TCP_OOO_BYTES_PER_DIR;
    let seg = 60_000usize;
    let n = MAX_TCP_OOO_BYTES_PER_DIR / seg + 3;
    let data = payload(seg * n, 26);
    let mut c = conv();
    c.syn();
    c.send_segmented(C2S, &data, &[seg]);
    let mut frames = c.take_frames();
    frames.remove(3); // the first data segment never arrives
    let r = run(&pcapng(&frames));
    let s = &r.streams[&(0, C2S)];
    assert_eq!(s.len(), data.len());
    assert!(s[..seg].iter().all(Option::is_none));
    assert!(s[seg..].iter().zip(&data[seg..]).all(|(a, b)| *a == Some(*b)));
    assert!(r.anomalies.iter().any(|a| matches!(a.2, Anomaly::BufferLimit { dir: C2S })));
    // The gap was declared when the limit was hit, not at the end.
    assert!(r.gaps[0].2 < frames.len() as u64);
}

#[test]
fn conversation_of_many_connections_numbers_them_in_order() {
    let mut frames = Vec::new();
    for i in 0..20u16 {
        let mut c = TcpConversation::new(addr(&format!("10.0.0.1:{}", 1000 + i)), addr("10.0.0.2:102"));
        c.syn();
        c.send(C2S, &i.to_be_bytes());
        frames.extend(c.take_frames());
    }
    let r = run(&pcapng(&frames));
    for i in 0..20u16 {
        assert_eq!(bytes(&r.streams[&(u64::from(i), C2S)]), i.to_be_bytes());
    }
}

/// tshark reads what the writer writes: no checksum, malformed or
/// sequence complaints, and the same payload.
#[test]
fn tshark_accepts_written_captures() {
    if std::process::Command::new("tshark").arg("--version").output().is_err() {
        eprintln!("note: tshark not installed, skipping the writer check against tshark");
        return;
    }
    let dir = std::env::temp_dir().join(format!("rtse-capture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, v6, link) in [
        ("eth4", false, LinkEncap::ethernet()),
        ("vlan6", true, LinkEncap::Ethernet { vlans: vec![5, 6] }),
        ("sll2", false, LinkEncap::Sll2),
        ("null6", true, LinkEncap::Null),
    ] {
        let (cl, sv) = if v6 {
            (addr("[2001:db8::1]:40000"), addr("[2001:db8::2]:102"))
        } else {
            (addr("10.1.1.1:40000"), addr("10.1.1.2:102"))
        };
        // Port 102 would bring in the TPKT dissector, which has opinions
        // about random payload: use the discard port.
        let sv = SocketAddr::new(sv.ip(), 9);
        let mut c = TcpConversation::new(cl, sv).with_link(link.clone());
        let frames = basic(&mut c, &payload(700, 1), &payload(300, 2), &[256]);
        let path = dir.join(format!("{name}.pcapng"));
        let mut w = PcapngWriter::new(Vec::new()).unwrap();
        w.add_interface(link.link_type(), true).unwrap();
        for f in &frames {
            w.write_frame(f.time, &f.data, f.orig_len).unwrap();
        }
        std::fs::write(&path, w.into_inner().unwrap()).unwrap();
        let out = std::process::Command::new("tshark")
            .args(["-n", "-r"])
            .arg(&path)
            .args([
                "-o",
                "ip.check_checksum:TRUE",
                "-o",
                "tcp.check_checksum:TRUE",
                "-T",
                "fields",
                "-e",
                "tcp.len",
                "-e",
                "_ws.expert.message",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let mut total = 0;
        for line in text.lines() {
            let mut cols = line.split('\t');
            total += cols.next().unwrap_or("0").parse::<u64>().unwrap_or(0);
            let expert = cols.next().unwrap_or("");
            // Connection establish/finish chat is fine; nothing else is.
            for m in expert.split(',').filter(|m| !m.is_empty()) {
                let fine = [
                    "Connection establish",
                    "Connection finish",
                    "This frame initiates the connection closing",
                    "This frame undergoes the connection closing",
                ];
                assert!(fine.iter().any(|f| m.starts_with(f)), "{name}: tshark says {m:?}");
            }
        }
        assert_eq!(total, 1000, "{name}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn events_serialise_to_json() {
    let mut c = conv();
    c.syn();
    c.send(C2S, b"\x03\x00");
    c.rst(S2C);
    let file = pcapng(c.frames());
    let mut json = Vec::new();
    let summary = read_capture(&file, |ev| {
        json.push(serde_json::to_string(&ev).unwrap());
    })
    .unwrap();
    assert_eq!(
        json[0],
        r#"{"event":"open","conn":0,"key":{"client":"10.0.0.1:40000","server":"10.0.0.2:102"},"frame":1,"time":"1000000000.000000000","syn_seen":true}"#
    );
    assert_eq!(
        json[1],
        r#"{"event":"data","conn":0,"dir":"to-server","frame":4,"time":"1000000000.003000000","offset":0,"bytes":"0300"}"#
    );
    assert!(
        json[2].starts_with(
            r#"{"event":"close","conn":0,"frame":5,"time":"1000000000.004000000","how":"rst","stats":{"packets":[3,2]"#
        ),
        "{}",
        json[2]
    );
    let s = serde_json::to_value(&summary).unwrap();
    assert_eq!(s["connections"], 1);
    assert_eq!(s["link_types"], serde_json::json!([1]));
}

#[test]
fn raw_ip_link_type_variants() {
    for (lt, v6) in [(12, false), (14, true), (228, false), (229, true)] {
        let (cl, sv) = if v6 {
            (addr("[2001:db8::1]:40000"), addr("[2001:db8::2]:102"))
        } else {
            (addr("10.1.1.1:40000"), addr("10.1.1.2:102"))
        };
        let mut c = TcpConversation::new(cl, sv).with_link(LinkEncap::Raw);
        let frames = basic(&mut c, b"request", b"response", &[3]);
        let r = run(&pcap_of(&frames, lt, PcapFlavor::default()));
        assert_eq!(bytes(&r.streams[&(0, C2S)]), b"request", "link type {lt}");
        assert_eq!(bytes(&r.streams[&(0, S2C)]), b"response", "link type {lt}");
        assert_eq!(r.summary.link_types, vec![lt]);
    }
}

#[test]
fn history_rings_reused_after_a_close_judge_overlaps_as_new_ones() {
    // The first connection fills both history rings and closes; the
    // reassembler keeps them for the next connection, which must judge a
    // conflicting retransmission exactly as `conflicting_overlap_first_copy_wins`
    // does on a fresh reassembler.
    let mut c = conv();
    let mut frames = basic(&mut c, &payload(3000, 1), &payload(3000, 2), &[1000]);
    let before = frames.len() as u64;
    let data = payload(40, 10);
    let mut c2 = TcpConversation::new(addr("10.0.0.1:40001"), addr("10.0.0.2:102"));
    send_with_conflicting_overlap(&mut c2, &data);
    frames.extend(c2.take_frames());
    let r = run(&pcapng(&frames));
    assert_eq!(r.closes.first(), Some(&(0, CloseHow::Fin)));
    assert_eq!(bytes(&r.streams[&(1, C2S)]), data);
    assert_eq!(r.anomalies, vec![(1, before + 5, Anomaly::ConflictingOverlap { dir: C2S, offset: 13, len: 7 })]);
}
