//! Damaged and hostile input: truncation at every offset, wrong magic,
//! absurd lengths, unknown interfaces, big-endian and multi-section pcapng,
//! random bytes and random TCP segments. Always an error (Layer::Capture,
//! offset within the input) or a clean result; never a panic, never an
//! allocation driven by a length field.

use proptest::prelude::*;
use rtse_codec::capture::link::{flags, TcpSegment};
use rtse_codec::capture::write::{PcapngWriter, TcpConversation};
use rtse_codec::capture::{read_capture, read_capture_stream, ConnId, Direction, Reassembler, StreamEvent, Timestamp};
use rtse_codec::error::Found;
use rtse_codec::limits::MAX_TCP_OOO_BYTES_TOTAL;
use rtse_codec::{Error, Layer};
use std::collections::BTreeMap;
use std::path::Path;

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/captures").join(name)).unwrap()
}

/// Streams per (conn, dir): octets, None where a gap was reported.
type Streams = BTreeMap<(ConnId, Direction), Vec<Option<u8>>>;

fn read_streams(data: &[u8]) -> (Result<u64, Error>, Streams) {
    let mut st = Streams::new();
    let r = read_capture(data, |ev| match ev {
        StreamEvent::Data { conn, dir, bytes, offset, .. } => {
            let s = st.entry((conn, dir)).or_default();
            assert_eq!(s.len() as u64, offset);
            s.extend(bytes.iter().map(|b| Some(*b)));
        }
        StreamEvent::Gap { conn, dir, missing, offset, .. } => {
            let s = st.entry((conn, dir)).or_default();
            assert_eq!(s.len() as u64, offset);
            s.extend(std::iter::repeat_n(None, missing.min(1 << 24) as usize));
        }
        _ => {}
    });
    (r.map(|s| s.packets), st)
}

fn stream_result(data: &[u8]) -> Result<u64, Error> {
    read_capture_stream(data, |_| {}).map(|s| s.packets)
}

fn check_truncations(data: &[u8]) {
    let (full, full_streams) = read_streams(data);
    let full = full.unwrap();
    let mut ok_at = Vec::new();
    for n in 0..data.len() {
        let prefix = &data[..n];
        let (r, streams) = read_streams(prefix);
        assert_eq!(r, stream_result(prefix), "streaming differs at {n}");
        match r {
            Ok(packets) => {
                assert!(packets <= full);
                ok_at.push(n);
            }
            Err(e) => {
                assert_eq!(e.layer, Layer::Capture);
                assert_eq!(e.offset, n, "error where the data ended: {e}");
                assert_eq!(e.found, Found::EndOfInput, "{e}");
            }
        }
        // What was delivered before the end agrees with the whole file.
        for (k, s) in &streams {
            let f = &full_streams[k];
            for (i, b) in s.iter().enumerate() {
                if let (Some(a), Some(Some(b2))) = (b, f.get(i)) {
                    assert_eq!(a, b2, "stream {k:?} octet {i} with {n} octets of file");
                }
            }
        }
    }
    // Only record boundaries read cleanly: one per packet plus the header(s).
    assert!(ok_at.len() as u64 <= full + 3, "{} clean prefixes", ok_at.len());
}

#[test]
fn pcap_truncated_at_every_offset() {
    check_truncations(&corpus("x400-ping-success.pcap"));
    check_truncations(&corpus("mmsX.pcap"));
}

#[test]
fn pcapng_truncated_at_every_offset() {
    check_truncations(&corpus("COTP_Example.pcapng"));
}

#[test]
fn wrong_magic() {
    let e = read_capture(b"<html><body>not a capture</body></html>", |_| {}).unwrap_err();
    assert_eq!(e.to_string(), "capture @ 0x0: expected pcap or pcapng magic, found 0x3c68746d");
    let e = read_capture(b"", |_| {}).unwrap_err();
    assert_eq!(e.to_string(), "capture @ 0x0: expected pcap or pcapng magic, found end of input");
    let e = read_capture_stream(&b"\x00\x00\x00\x00 and more"[..], |_| {}).unwrap_err();
    assert_eq!(e.found, Found::Word(0));
}

#[test]
fn pcap_header_cut_short() {
    let data = corpus("mmsX.pcap");
    let e = read_capture(&data[..10], |_| {}).unwrap_err();
    assert_eq!(
        e.to_string(),
        "capture @ 0xa: expected pcap file header or pcapng section header block, found end of input"
    );
}

#[test]
fn absurd_pcap_caplen_is_an_error_not_an_allocation() {
    let mut data = corpus("x400-ping-success.pcap");
    // First record header at 24; caplen at 24 + 8.
    data[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = read_capture(&data, |_| {}).unwrap_err();
    assert_eq!(
        e.to_string(),
        "capture @ 0x20: expected packet capture length of at most 262144, found length 4294967295"
    );
    assert_eq!(stream_result(&data).unwrap_err(), e);
    // Just over the limit, deep in the file (frame 5): frames 1-4 delivered.
    let mut data = corpus("x400-ping-success.pcap");
    let mut off = 24;
    for _ in 0..4 {
        let caplen = u32::from_le_bytes(data[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16 + caplen;
    }
    data[off + 8..off + 12].copy_from_slice(&262_145u32.to_le_bytes());
    let mut frames = 0;
    let e = read_capture(&data, |ev| {
        if let StreamEvent::Data { frame, .. } | StreamEvent::Open { frame, .. } = ev {
            frames = frames.max(frame);
        }
    })
    .unwrap_err();
    assert_eq!(e.offset, off + 8);
    assert!(frames >= 4, "frames before the error are delivered");
}

#[test]
fn absurd_snaplen_in_the_pcap_header_is_tolerated() {
    let mut data = corpus("x400-ping-success.pcap");
    data[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(read_capture(&data, |_| {}).unwrap().packets, 12);
}

#[test]
fn absurd_pcapng_block_lengths() {
    let data = corpus("COTP_Example.pcapng");
    // The SHB's own length.
    let mut d = data.clone();
    d[4..8].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let e = read_capture(&d, |_| {}).unwrap_err();
    assert_eq!(e.to_string(), "capture @ 0x4: expected pcapng block length of at most 16 MiB, found length 4294967280");
    assert_eq!(stream_result(&d).unwrap_err(), e);
    // The second block's length: not a multiple of 4, too small, huge.
    let shb_len = u32::from_le_bytes(data[4..8].try_into().unwrap()) as usize;
    for bad in [13u32, 8, 0x7FFF_FFFC] {
        let mut d = data.clone();
        d[shb_len + 4..shb_len + 8].copy_from_slice(&bad.to_le_bytes());
        let e = read_capture(&d, |_| {}).unwrap_err();
        assert_eq!(e.offset, shb_len + 4, "{e}");
        assert_eq!(e.layer, Layer::Capture);
        assert_eq!(stream_result(&d).unwrap_err(), e);
    }
    // Trailing length that does not match the leading one.
    let mut d = data.clone();
    let idb_len = u32::from_le_bytes(data[shb_len + 4..shb_len + 8].try_into().unwrap()) as usize;
    let trail = shb_len + idb_len - 4;
    d[trail] ^= 4;
    let e = read_capture(&d, |_| {}).unwrap_err();
    assert_eq!(e.offset, trail, "{e}");
}

fn small_pcapng() -> Vec<u8> {
    let mut c = TcpConversation::new("10.0.0.1:40000".parse().unwrap(), "10.0.0.2:102".parse().unwrap());
    c.syn().send(Direction::ToServer, b"hello");
    let mut w = PcapngWriter::ethernet();
    c.write_to(&mut w).unwrap();
    w.into_inner().unwrap()
}

#[test]
fn unknown_interface_and_bad_tsresol() {
    let data = small_pcapng();
    // SHB 28 octets, IDB 20 octets, then the first EPB; if_id at +8.
    let mut d = data.clone();
    d[48 + 8] = 7;
    let e = read_capture(&d, |_| {}).unwrap_err();
    assert_eq!(
        e.to_string(),
        "capture @ 0x38: expected interface id of an earlier interface description block, found value 7"
    );
    // An IDB with if_tsresol 2^-127 s: no such resolution.
    let mut w = PcapngWriter::new(Vec::new()).unwrap();
    w.add_interface(1, true).unwrap();
    let mut d = w.into_inner().unwrap();
    assert_eq!(d[28 + 20], 9, "if_tsresol value");
    d[28 + 20] = 0xff;
    let e = read_capture(&d, |_| {}).unwrap_err();
    assert_eq!(e.offset, 28);
    assert!(e.to_string().contains("if_tsresol"), "{e}");
}

#[test]
fn packet_before_any_interface_is_an_error() {
    let data = small_pcapng();
    let mut d = data[..28].to_vec();
    d.extend_from_slice(&data[48..]);
    let e = read_capture(&d, |_| {}).unwrap_err();
    assert_eq!(e.offset, 28 + 8);
}

fn be_block(btype: u32, body: &[u8]) -> Vec<u8> {
    let len = (12 + body.len()) as u32;
    let mut b = btype.to_be_bytes().to_vec();
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(body);
    b.extend_from_slice(&len.to_be_bytes());
    b
}

/// A big-endian section with a nanosecond Ethernet interface, holding the
/// frames of `c`, time offset by if_tsoffset 100 s.
fn big_endian_section(c: &mut TcpConversation) -> Vec<u8> {
    let mut shb = 0x1A2B_3C4Du32.to_be_bytes().to_vec();
    shb.extend_from_slice(&[0, 1, 0, 0]);
    shb.extend_from_slice(&(-1i64).to_be_bytes());
    let mut out = be_block(0x0A0D_0D0A, &shb);
    let mut idb = vec![0, 1, 0, 0];
    idb.extend_from_slice(&65535u32.to_be_bytes());
    idb.extend_from_slice(&[0, 9, 0, 1, 9, 0, 0, 0]); // if_tsresol 9
    idb.extend_from_slice(&[0, 14, 0, 8]); // if_tsoffset
    idb.extend_from_slice(&100i64.to_be_bytes());
    idb.extend_from_slice(&[0, 0, 0, 0]);
    out.extend(be_block(1, &idb));
    for f in c.take_frames() {
        let ts = f.time.as_nanos();
        let mut epb = 0u32.to_be_bytes().to_vec();
        epb.extend_from_slice(&((ts >> 32) as u32).to_be_bytes());
        epb.extend_from_slice(&(ts as u32).to_be_bytes());
        epb.extend_from_slice(&(f.data.len() as u32).to_be_bytes());
        epb.extend_from_slice(&f.orig_len.to_be_bytes());
        epb.extend_from_slice(&f.data);
        epb.resize(epb.len().div_ceil(4) * 4, 0);
        out.extend(be_block(6, &epb));
    }
    out
}

#[test]
fn big_endian_pcapng_and_several_sections() {
    let mut a = TcpConversation::new("10.0.0.1:40000".parse().unwrap(), "10.0.0.2:102".parse().unwrap())
        .with_time(Timestamp::new(1_000, 7), 1);
    a.syn().send(Direction::ToServer, b"big-endian");
    let mut file = big_endian_section(&mut a);
    // A little-endian section after it, with its own interface numbering.
    let mut b = TcpConversation::new("10.0.0.3:40000".parse().unwrap(), "10.0.0.4:102".parse().unwrap());
    b.syn().send(Direction::ToServer, b"little");
    let mut w = PcapngWriter::ethernet();
    b.write_to(&mut w).unwrap();
    file.extend(w.into_inner().unwrap());

    let mut got: BTreeMap<ConnId, Vec<u8>> = BTreeMap::new();
    let mut first_time = None;
    let s = read_capture(&file, |ev| match ev {
        StreamEvent::Data { conn, bytes, .. } => got.entry(conn).or_default().extend_from_slice(bytes),
        StreamEvent::Open { time, .. } => {
            first_time.get_or_insert(time);
        }
        _ => {}
    })
    .unwrap();
    assert_eq!(s.packets, 8);
    assert_eq!(got[&0], b"big-endian");
    assert_eq!(got[&1], b"little");
    assert_eq!(first_time, Some(Timestamp::new(1_100, 7)));
    assert_eq!(s.link_types, vec![1]);
}

#[test]
fn every_single_byte_corruption_of_a_small_capture() {
    for file in [corpus("x400-ping-refuse.pcap"), small_pcapng()] {
        for i in 0..file.len() {
            for v in [0x00u8, 0xff, file[i] ^ 0x80, file[i].wrapping_add(1)] {
                let mut d = file.clone();
                d[i] = v;
                if let Err(e) = read_capture(&d, |_| {}) {
                    assert!(e.offset <= d.len(), "{e}");
                    assert_eq!(e.layer, Layer::Capture);
                }
            }
        }
    }
}

fn pcap_header() -> Vec<u8> {
    corpus("mmsX.pcap")[..24].to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        if let Err(e) = read_capture(&data, |_| {}) {
            prop_assert!(e.offset <= data.len());
        }
        let _ = read_capture_stream(&data[..], |_| {});
    }

    #[test]
    fn random_records_after_a_valid_header_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..3000),
        ng in any::<bool>(),
    ) {
        let mut data = if ng { small_pcapng()[..48].to_vec() } else { pcap_header() };
        data.extend_from_slice(&tail);
        let a = read_capture(&data, |_| {}).map(|s| s.packets);
        let b = read_capture_stream(&data[..], |_| {}).map(|s| s.packets);
        prop_assert_eq!(&a, &b);
        if let Err(e) = a {
            prop_assert!(e.offset <= data.len());
        }
    }

    /// Random segments from both sides of a few 4-tuples, with random
    /// flags, sequence numbers near each other and payloads: no panic,
    /// each direction's Data and Gap events are contiguous, and buffering
    /// stays within the global limit and is released at the end.
    #[test]
    fn random_segments_reassemble_consistently(
        segs in proptest::collection::vec(
            (0u8..3, any::<bool>(), 0u32..3000, any::<u8>(), 0usize..60, any::<u8>(), 0u32..3000),
            0..200,
        ),
        base in any::<u32>(),
    ) {
        let mut r = Reassembler::new();
        let mut next: BTreeMap<(ConnId, Direction), u64> = BTreeMap::new();
        let mut closed: Vec<ConnId> = Vec::new();
        let mut check = |ev: StreamEvent<'_>| match ev {
            StreamEvent::Data { conn, dir, offset, bytes, .. } => {
                let n = next.entry((conn, dir)).or_default();
                assert_eq!(*n, offset);
                assert!(!bytes.is_empty());
                *n += bytes.len() as u64;
                assert!(!closed.contains(&conn));
            }
            StreamEvent::Gap { conn, dir, offset, missing, .. } => {
                let n = next.entry((conn, dir)).or_default();
                assert_eq!(*n, offset);
                assert!(missing > 0);
                *n += missing;
            }
            StreamEvent::Close { conn, .. } => closed.push(conn),
            _ => {}
        };
        for (frame, (port, from_client, seq, fl, len, fill, ack)) in segs.into_iter().enumerate() {
            let client = std::net::SocketAddr::from(([10, 0, 0, 1], 40000 + u16::from(port)));
            let server = std::net::SocketAddr::from(([10, 0, 0, 2], 102));
            let (src, dst) = if from_client { (client, server) } else { (server, client) };
            let payload = vec![fill; len];
            let seg = TcpSegment {
                src,
                dst,
                seq: base.wrapping_add(seq),
                ack: base.wrapping_add(ack),
                flags: fl & (flags::SYN | flags::FIN | flags::RST | flags::ACK | flags::PSH),
                payload: &payload,
                missing: 0,
            };
            r.segment(&seg, frame as u64 + 1, Timestamp::default(), &mut check);
            prop_assert!(r.buffered() <= MAX_TCP_OOO_BYTES_TOTAL);
        }
        r.finish(&mut check);
        prop_assert_eq!(r.buffered(), 0);
    }
}

fn syn_from(port: u16) -> (std::net::SocketAddr, std::net::SocketAddr) {
    (
        std::net::SocketAddr::from(([10, 0, (port >> 8) as u8, port as u8], port)),
        std::net::SocketAddr::from(([10, 9, 9, 9], 102)),
    )
}

#[test]
fn open_connections_past_the_limit_evict_the_least_recently_active() {
    use rtse_codec::capture::CloseHow;
    use rtse_codec::limits::MAX_TCP_OPEN_CONNECTIONS;
    let mut r = Reassembler::new();
    let mut evicted = Vec::new();
    let mut opened = 0u64;
    for i in 0..=MAX_TCP_OPEN_CONNECTIONS as u16 {
        let (src, dst) = syn_from(i);
        let seg = TcpSegment { src, dst, seq: 1, ack: 0, flags: flags::SYN, payload: &[], missing: 0 };
        r.segment(&seg, u64::from(i) + 1, Timestamp::default(), &mut |ev| match ev {
            StreamEvent::Close { conn, how, .. } => {
                assert_eq!(how, CloseHow::Evicted);
                evicted.push(conn);
            }
            StreamEvent::Open { .. } => opened += 1,
            _ => {}
        });
    }
    assert_eq!(opened, MAX_TCP_OPEN_CONNECTIONS as u64 + 1);
    // The oldest sixteenth went, oldest first among them.
    let mut sorted = evicted.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..(MAX_TCP_OPEN_CONNECTIONS / 16) as u64).collect::<Vec<_>>());
}

#[test]
fn out_of_order_data_over_all_connections_is_bounded() {
    use rtse_codec::capture::Anomaly;
    let mut r = Reassembler::new();
    let chunk = vec![7u8; 60_000];
    let mut limit_hits = 0;
    let mut frame = 0;
    for port in 0..20u16 {
        let (src, dst) = syn_from(port);
        for k in 0..16u32 {
            frame += 1;
            // Sequence 1 is never seen: everything after waits for it.
            let seg = TcpSegment {
                src,
                dst,
                seq: 1 + 100 + k * 60_000,
                ack: 0,
                flags: if k == 0 { flags::SYN } else { 0 },
                payload: if k == 0 { &[] } else { &chunk },
                missing: 0,
            };
            r.segment(&seg, frame, Timestamp::default(), &mut |ev| {
                if let StreamEvent::Anomaly { detail: Anomaly::BufferLimit { .. }, .. } = ev {
                    limit_hits += 1;
                }
            });
            assert!(r.buffered() <= MAX_TCP_OOO_BYTES_TOTAL);
        }
    }
    assert!(limit_hits > 0);
    r.finish(&mut |_| {});
    assert_eq!(r.buffered(), 0);
}
