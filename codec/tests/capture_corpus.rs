//! The real captures of corpus/captures and corpus/examples: every one
//! reads, reassembles to stable per-connection byte counts, agrees with
//! tshark where tshark is installed, and the streaming reader agrees with
//! the in-memory one.

use rtse_codec::capture::{read_capture, read_capture_stream, CaptureSummary, ConnStats, Direction, StreamEvent};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn captures() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for dir in ["corpus/captures", "corpus/examples"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let ext = p.extension().map(|e| e.to_string_lossy().to_string());
            if ext.as_deref() == Some("pcap") || ext.as_deref() == Some("pcapng") || name == "iec" {
                v.push(p);
            }
        }
    }
    v.sort();
    assert!(v.len() >= 27, "corpus captures missing: {v:?}");
    v
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().to_string()
}

#[derive(Debug, Default, Clone)]
struct Conn {
    key: String,
    syn: bool,
    stream: [Vec<u8>; 2],
    gaps: [u64; 2],
    close: String,
    stats: ConnStats,
}

fn read(data: &[u8]) -> (BTreeMap<u64, Conn>, CaptureSummary) {
    let mut conns: BTreeMap<u64, Conn> = BTreeMap::new();
    let s = read_capture(data, |ev| match ev {
        StreamEvent::Open { conn, key, syn_seen, .. } => {
            conns.insert(conn, Conn { key: key.to_string(), syn: syn_seen, ..Conn::default() });
        }
        StreamEvent::Data { conn, dir, bytes, .. } => {
            conns.get_mut(&conn).unwrap().stream[dir.index()].extend_from_slice(bytes)
        }
        StreamEvent::Gap { conn, dir, missing, .. } => conns.get_mut(&conn).unwrap().gaps[dir.index()] += missing,
        StreamEvent::Close { conn, how, stats, .. } => {
            let c = conns.get_mut(&conn).unwrap();
            c.close = how.name().to_string();
            c.stats = stats;
        }
        _ => {}
    })
    .unwrap();
    (conns, s)
}

/// One line per connection: id, endpoints, SYN seen, octets per direction
/// (delivered + missing), how it closed.
fn digest(conns: &BTreeMap<u64, Conn>) -> String {
    let mut out = String::new();
    for (id, c) in conns {
        out += &format!(
            "{id} {} syn={} c2s={}+{} s2c={}+{} {}\n",
            c.key,
            c.syn,
            c.stream[0].len(),
            c.gaps[0],
            c.stream[1].len(),
            c.gaps[1],
            c.close
        );
    }
    out
}

#[test]
fn every_capture_reads_and_reassembles_to_stable_counts() {
    let golden = include_str!("capture_corpus.golden");
    let mut got = String::new();
    for p in captures() {
        let data = std::fs::read(&p).unwrap();
        let (conns, s) = read(&data);
        assert!(s.packets > 0, "{p:?}");
        assert_eq!(s.file_bytes, data.len() as u64);
        assert_eq!(s.connections, conns.len() as u64);
        for c in conns.values() {
            // Delivered + missing octets never exceed what was on the wire.
            for d in 0..2 {
                assert!(c.stats.delivered[d] + c.stats.missing[d] >= c.stream[d].len() as u64);
                assert!(c.stats.delivered[d] <= c.stats.wire_bytes[d]);
            }
        }
        got += &format!("## {} packets={} tcp={}\n{}", name(&p), s.packets, s.tcp_packets, digest(&conns));
    }
    if std::env::var_os("RTSE_BLESS").is_some() {
        std::fs::write(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/capture_corpus.golden"), &got).unwrap();
    }
    pretty_assertions::assert_eq!(golden, got, "run with RTSE_BLESS=1 to accept");
}

#[test]
fn streaming_reader_agrees_with_the_in_memory_reader() {
    struct Chunks<'a>(&'a [u8], usize);
    impl std::io::Read for Chunks<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    for p in captures() {
        let data = std::fs::read(&p).unwrap();
        let mut a = Vec::new();
        let sa = read_capture(&data, |ev| a.push(format!("{ev:?}"))).unwrap();
        for chunk in [1000, 65536] {
            let mut b = Vec::new();
            let sb = read_capture_stream(Chunks(&data, chunk), |ev| b.push(format!("{ev:?}"))).unwrap();
            assert_eq!(sa, sb, "{p:?}");
            assert!(a == b, "{p:?}: events differ with {chunk}-octet reads");
        }
    }
}

#[test]
fn mmsx_tpkt_header_in_its_own_segment_still_makes_one_stream() {
    let data = std::fs::read(root().join("corpus/captures/mmsX.pcap")).unwrap();
    let mut pieces = Vec::new();
    read_capture(&data, |ev| {
        if let StreamEvent::Data { dir: Direction::ToServer, bytes, frame, .. } = ev {
            pieces.push((frame, bytes.to_vec()));
        }
    })
    .unwrap();
    // The 4-octet TPKT header, then the rest of the CR in the next frame.
    assert_eq!(pieces.len(), 2);
    assert_eq!(pieces[0].1, [3, 0, 0, 22]);
    assert_eq!(pieces[1].0, pieces[0].0 + 1);
    let stream: Vec<u8> = pieces.into_iter().flat_map(|p| p.1).collect();
    assert_eq!(stream.len(), 22);
    let (tpkt, rest) = rtse_codec::tpkt::parse(&stream).unwrap();
    assert!(rest.is_empty());
    assert_eq!(tpkt.payload[1], 0xe0, "a CR TPDU");
}

#[test]
fn mms_and_goose_has_five_cotp_connections_mostly_mid_stream() {
    let data = std::fs::read(root().join("corpus/captures/Sample_File_MMS_and_GOOSE.pcap")).unwrap();
    let (conns, s) = read(&data);
    let cotp: Vec<(&u64, &Conn)> =
        conns.iter().filter(|(_, c)| c.key.ends_with(":102") && c.stream.iter().any(|s| !s.is_empty())).collect();
    // tshark: COTP in tcp.stream 0, 4, 5, 9, 10.
    assert_eq!(cotp.iter().map(|(id, _)| **id).collect::<Vec<_>>(), [0, 4, 5, 9, 10]);
    assert_eq!(cotp.iter().filter(|(_, c)| !c.syn).count(), 4);
    // Every mid-stream COTP stream starts on a TPKT boundary.
    for (_, c) in &cotp {
        for st in &c.stream {
            if !st.is_empty() {
                assert_eq!(st[..2], [3, 0], "{}", c.key);
            }
        }
    }
    assert!(s.non_tcp > 0, "GOOSE frames are skipped");
    assert_eq!(s.connections, 16);
}

#[test]
fn s7comm_clean_reports_the_segments_tshark_saw_acked_but_not_captured() {
    let data = std::fs::read(root().join("corpus/captures/s7comm_clean.pcap")).unwrap();
    let mut frames = Vec::new();
    read_capture(&data, |ev| {
        if let StreamEvent::Gap { frame, missing, .. } = ev {
            frames.push(frame);
            assert_eq!(missing, 26);
        }
    })
    .unwrap();
    // tshark -Y tcp.analysis.ack_lost_segment
    assert_eq!(frames, [397, 411, 1272, 1455, 1610, 1745, 2001, 2295, 2298, 2858, 3653, 4059]);
}

/// Per tcp.stream: (packets, payload octets) from tshark, against our
/// connection ids and wire counters. Skipped when tshark is not installed.
#[test]
fn tcp_streams_agree_with_tshark() {
    let Ok(v) = std::process::Command::new("tshark").arg("--version").output() else {
        eprintln!("note: tshark not installed, skipping the comparison with tshark");
        return;
    };
    assert!(v.status.success());
    // tshark takes about half a second per file: by default a
    // representative subset (mid-stream, port reuse, lost segments,
    // pcapng, the big one), all of them with RTSE_TSHARK_ALL=1.
    let subset =
        ["COTP_Example.pcapng", "Sample_File_MMS_and_GOOSE.pcap", "p772-transfer-success.pcap", "s7comm_clean.pcap"];
    let all = std::env::var_os("RTSE_TSHARK_ALL").is_some();
    let files: Vec<PathBuf> = captures().into_iter().filter(|p| all || subset.contains(&name(p).as_str())).collect();
    let runs: Vec<_> = files
        .iter()
        .map(|p| {
            std::process::Command::new("tshark")
                .arg("-n")
                .arg("-r")
                .arg(p)
                .args(["-T", "fields", "-e", "tcp.stream", "-e", "tcp.len"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for (p, run) in files.iter().zip(runs) {
        let out = run.wait_with_output().unwrap();
        assert!(out.status.success(), "tshark failed on {p:?}");
        let mut theirs: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let mut f = line.split('\t');
            let (Some(s), Some(l)) = (f.next(), f.next()) else {
                continue;
            };
            let (Ok(s), Ok(l)) = (s.parse::<u64>(), l.parse::<u64>()) else {
                continue;
            };
            let e = theirs.entry(s).or_default();
            e.0 += 1;
            e.1 += l;
        }
        let data = std::fs::read(p).unwrap();
        let (conns, _) = read(&data);
        let ours: BTreeMap<u64, (u64, u64)> = conns
            .iter()
            .map(|(id, c)| {
                (*id, (c.stats.packets[0] + c.stats.packets[1], c.stats.wire_bytes[0] + c.stats.wire_bytes[1]))
            })
            .collect();
        // Packets after a connection closed are tshark's but not in our
        // counters: compare payload octets exactly, packets as at most.
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "{}: tcp.stream numbering",
            name(p)
        );
        for (id, (pk, by)) in &ours {
            let (tpk, tby) = theirs[id];
            assert_eq!(*by, tby, "{} stream {id}: payload octets", name(p));
            assert!(*pk <= tpk, "{} stream {id}: packets", name(p));
        }
    }
}
