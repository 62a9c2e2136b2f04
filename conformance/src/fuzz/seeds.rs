//! The seed corpus (`corpus/<target>/`), generated from the worked
//! examples (`corpus/examples/*.pcap`), the small real captures
//! (`corpus/captures/`, files up to [`MAX_CAPTURE_SEED`] octets) and PDUs
//! built with the codec's constructors, in each target's input layout
//! (see [`super`]). Regenerating keeps the seeds in step with the codec:
//! `RTSE_BLESS=1 cargo test -p rtse-conformance --test fuzz_seeds` writes
//! them, and the same test without `RTSE_BLESS` fails when the committed
//! files differ from what [`generate`] produces.
//!
//! Everything here goes through the codec: captures are decoded with
//! [`capture::stacks::decode_capture`], and each layer's seed is that
//! layer's PDU as the codec emits it (canonical form), so a seed always
//! parses. Stream seeds keep the TPKTs of one TCP connection in order,
//! with their senders in the sender pattern (16 TPKTs per seed).

use super::{stack_flags, Target};
use rtse_codec::capture::link::LINKTYPE_ETHERNET;
use rtse_codec::capture::write::{PcapFlavor, PcapWriter, PcapngWriter, TcpConversation};
use rtse_codec::capture::{self, stacks::CaptureItem, Direction};
use rtse_codec::session::{
    self, Connect, Linking, Requirements, SerialNumber, Spdu, SpduKind, TokenSetting, Tokens, Tsdu,
};
use rtse_codec::stack::{Sender, Stack};
use rtse_codec::{acse, rtse, tpkt, x410};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

/// Largest capture file taken as a seed (larger files slow every
/// execution; their PDUs are like those of the small ones).
pub const MAX_CAPTURE_SEED: usize = 4096;

/// Most seeds per target (the first ones in source order are kept).
pub const MAX_SEEDS_PER_TARGET: usize = 80;

/// The seeds of every target: file name -> bytes.
pub type Corpus = BTreeMap<Target, BTreeMap<String, Vec<u8>>>;

#[derive(Default)]
struct Builder {
    corpus: Corpus,
    seen: BTreeSet<(Target, Vec<u8>)>,
    counters: BTreeMap<(Target, String), usize>,
}

impl Builder {
    fn add(&mut self, target: Target, source: &str, bytes: Vec<u8>) {
        let files = self.corpus.entry(target).or_default();
        if files.len() >= MAX_SEEDS_PER_TARGET || !self.seen.insert((target, bytes.clone())) {
            return;
        }
        let n = self.counters.entry((target, source.to_string())).or_default();
        *n += 1;
        files.insert(format!("{source}-{n:03}"), bytes);
    }
}

fn prefixed(head: &[u8], body: &[u8]) -> Vec<u8> {
    let mut v = head.to_vec();
    v.extend_from_slice(body);
    v
}

fn sender_bit(s: Sender) -> u16 {
    u16::from(s == Sender::Responder)
}

/// The `presentation_acse` selector of the PPDU an SPDU carries.
fn ppdu_selector(kind: SpduKind) -> u8 {
    match kind {
        SpduKind::Cn => 0,
        SpduKind::Ac => 1,
        SpduKind::Rf => 2,
        SpduKind::Ab => 3,
        _ => 4,
    }
}

fn x410_selector(slot: x410::Slot) -> u8 {
    match slot {
        x410::Slot::Connect => 0,
        x410::Slot::Accept => 1,
        x410::Slot::Refuse => 2,
        x410::Slot::TokenPlease => 3,
        x410::Slot::Abort => 4,
    }
}

#[derive(Default)]
struct Conn {
    tpkts: Vec<(Sender, Vec<u8>)>,
    mid_stream: bool,
    x410: bool,
}

/// The per-layer seeds of one decoded stack.
fn layer_seeds(b: &mut Builder, source: &str, stack: &Stack<'_>, from: Sender, x410_mode: bool) {
    if let Some(t) = &stack.tpkt {
        let mut v = Vec::new();
        tpkt::emit(t, &mut v);
        b.add(Target::TpktCotp, source, v);
    }
    let Some(ss) = &stack.session else { return };
    let mut tsdu = Vec::new();
    session::emit_tsdu(&ss.tsdu, &mut tsdu);
    b.add(Target::Session, source, prefixed(&[0], &tsdu));
    let path = if x410_mode { stack_flags::TSDU_X410 } else { stack_flags::TSDU };
    let [p0, p1] = sender_bit(from).to_be_bytes();
    b.add(Target::DecodeStack, source, prefixed(&[path, p0, p1], &tsdu));
    for (spdu, up) in ss.iter() {
        if up.presentation.is_some() {
            if let Some(ud) = spdu.user_data() {
                b.add(Target::PresentationAcse, source, prefixed(&[ppdu_selector(spdu.kind())], ud));
            }
        }
        if let Some(a) = &up.acse {
            let mut v = vec![5];
            acse::emit(a, &mut v);
            b.add(Target::PresentationAcse, source, v);
            for ext in a.user_information() {
                let mut v = vec![6];
                acse::emit_external(ext, &mut v);
                b.add(Target::PresentationAcse, source, v);
            }
        }
        if let Some(r) = &up.rtse {
            let mut v = Vec::new();
            rtse::emit(r, &mut v);
            b.add(Target::Rtse, source, v);
        }
        if let Some(x) = &up.x410 {
            let mut v = vec![x410_selector(x.slot())];
            x410::emit(x, &mut v);
            b.add(Target::X410, source, v);
        }
    }
}

/// Decode one capture file into seeds; returns its connections' TPKTs.
fn capture_seeds(b: &mut Builder, source: &str, data: &[u8]) -> Vec<Conn> {
    let mut conns: BTreeMap<u64, Conn> = BTreeMap::new();
    let _ = capture::stacks::decode_capture(data, |item| match item {
        CaptureItem::Open { conn, mid_stream, .. } => conns.entry(conn).or_default().mid_stream = mid_stream,
        CaptureItem::Pdu { conn, from, result: Ok(stack), .. } => {
            let c = conns.entry(conn).or_default();
            c.x410 |= stack.session.iter().any(|s| s.iter().any(|(_, up)| up.x410.is_some()));
            if let Some(t) = &stack.tpkt {
                let mut v = Vec::new();
                tpkt::emit(t, &mut v);
                c.tpkts.push((from, v));
            }
            layer_seeds(b, source, &stack, from, c.x410);
        }
        _ => {}
    });
    conns.into_values().filter(|c| !c.tpkts.is_empty()).collect()
}

/// `decode_stack` stream seeds of one connection: 16 TPKTs per seed.
fn stream_seeds(b: &mut Builder, source: &str, conn: &Conn, split: bool) {
    for window in conn.tpkts.chunks(16) {
        let mut pattern = 0u16;
        let mut body = Vec::new();
        for (i, (from, t)) in window.iter().enumerate() {
            pattern |= sender_bit(*from) << i;
            body.extend_from_slice(t);
        }
        let path = if conn.mid_stream { stack_flags::STREAM_MID } else { stack_flags::STREAM };
        let [p0, p1] = pattern.to_be_bytes();
        b.add(Target::DecodeStack, source, prefixed(&[path, p0, p1], &body));
        if split {
            // Pieces of 7 octets: every TPKT header straddles a push.
            let flags = path | stack_flags::SPLIT | (6 << 5);
            b.add(Target::DecodeStack, source, prefixed(&[flags, p0, p1], &body));
        }
    }
}

fn is_capture(data: &[u8]) -> bool {
    matches!(
        data.get(..4),
        Some([0xa1, 0xb2, 0xc3, 0xd4] | [0xd4, 0xc3, 0xb2, 0xa1] | [0xa1, 0xb2, 0x3c, 0x4d] | [0x4d, 0x3c, 0xb2, 0xa1])
            | Some([0x0a, 0x0d, 0x0d, 0x0a])
    )
}

fn sorted_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<io::Result<_>>()?;
    v.sort();
    Ok(v)
}

fn stem(p: &Path) -> String {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("capture");
    name.split('.').next().unwrap_or(name).replace(['.', ' '], "_")
}

/// Synthetic captures: the TPKTs of a worked example over a TCP
/// conversation that ends by RST, one sent in small segments over legacy
/// pcap, and one picked up mid-stream.
fn synthetic_captures(b: &mut Builder, examples: &BTreeMap<String, Vec<Conn>>) -> io::Result<()> {
    let client = "10.0.0.1:40000".parse().unwrap_or_else(|_| unreachable!());
    let server = "10.0.0.2:102".parse().unwrap_or_else(|_| unreachable!());
    let dir = |s: Sender| match s {
        Sender::Initiator => Direction::ToServer,
        Sender::Responder => Direction::ToClient,
    };
    let first = |name: &str| examples.iter().find(|(k, _)| k.starts_with(name)).and_then(|(_, c)| c.first());
    if let Some(c) = first("ex4") {
        let mut conv = TcpConversation::new(client, server);
        conv.syn();
        for (s, t) in &c.tpkts {
            conv.send(dir(*s), t);
        }
        conv.rst(Direction::ToServer);
        let mut w = PcapngWriter::ethernet();
        conv.write_to(&mut w)?;
        b.add(Target::Capture, "synthetic_rst", w.into_inner()?);
    }
    if let Some(c) = first("ex3") {
        let mut conv = TcpConversation::new(client, server);
        conv.syn();
        for (s, t) in &c.tpkts {
            conv.send_segmented(dir(*s), t, &[3, 5]);
        }
        conv.close();
        let mut w = PcapWriter::new(Vec::new(), LINKTYPE_ETHERNET, PcapFlavor { big_endian: true, nanos: true })?;
        conv.write_to(&mut w)?;
        b.add(Target::Capture, "synthetic_segmented", w.into_inner()?);
    }
    if let Some(c) = first("ex6") {
        let mut conv = TcpConversation::new(client, server);
        conv.assume_established();
        for (s, t) in c.tpkts.iter().skip(1) {
            conv.send(dir(*s), t);
        }
        conv.fin(Direction::ToClient);
        let mut w = PcapngWriter::ethernet();
        conv.write_to(&mut w)?;
        b.add(Target::Capture, "synthetic_mid_stream", w.into_inner()?);
    }
    Ok(())
}

/// Session, RTSE and X.410 seeds built with the codec's constructors: the
/// SPDUs and APDUs the examples do not show.
fn synthetic_pdus(b: &mut Builder) {
    let sn = |n| SerialNumber::new(n).unwrap_or_default();
    let turn = Tokens(0x15);
    let one = [
        Spdu::gtc(),
        Spdu::gta(),
        Spdu::gt(turn),
        Spdu::pt(turn, Some(&[0x02, 0x01, 0x00])),
        Spdu::aa(),
        Spdu::ab(session::TD_RELEASE | session::TD_USER_ABORT, None),
        Spdu::fn_(Some(session::TD_RELEASE), None),
        Spdu::dn(None),
        Spdu::rf(session::RF_VERSION_NOT_SUPPORTED, &[]),
        Spdu::cn(
            Connect::new(2, TokenSetting::TURN_CALLED_CHOICE, Requirements(0x0249), &[])
                .with_ssels(Some(b"\x00\x01"), Some(b"\x00\x02"))
                .with_token_item(Tokens(0x15)),
        ),
        Spdu::ac(Connect::new(2, TokenSetting::TURN_RESPONDER, Requirements(0x0249), &[])),
    ];
    let after_gt = [
        Spdu::dt(b"RTTR"),
        Spdu::as_(b"1"),
        Spdu::ar(Linking::new(b"1", sn(3)).with_refs(Some(b"MTA-A/0001"), Some(b"250101115500Z")), b"2"),
        Spdu::mip(sn(2), true),
        Spdu::mip(sn(2), false),
        Spdu::mia(sn(2)),
        Spdu::map(sn(4), true),
        Spdu::maa(sn(4)),
        Spdu::ae(sn(5)),
        Spdu::aea(sn(5)),
        Spdu::ai(Some(session::REASON_LOCAL_ERROR)),
        Spdu::aia(),
        Spdu::ad(None),
        Spdu::ada(),
        Spdu::ed(session::REASON_PROCEDURAL_ERROR, None),
    ];
    let tsdus = one.into_iter().map(Tsdu::one).chain(after_gt.into_iter().map(Tsdu::after_gt));
    for t in tsdus {
        let mut v = Vec::new();
        session::emit_tsdu(&t, &mut v);
        // RTSE's requirements, and no context (for the SI 41/42 pairs).
        b.add(Target::Session, "synthetic", prefixed(&[0x04], &v));
        b.add(Target::DecodeStack, "synthetic", prefixed(&[stack_flags::TSDU, 0, 0], &v));
    }
    // A PT with GT in one TSDU, as basic concatenation allows.
    let mut v = Vec::new();
    session::emit_tsdu(&Tsdu::pair(Spdu::pt(turn, None), Spdu::mia(sn(1))), &mut v);
    b.add(Target::Session, "synthetic", prefixed(&[0x05], &v));
    for r in [
        rtse::RtseApdu::Rttp(0),
        rtse::RtseApdu::Rttp(2),
        rtse::RtseApdu::Rttr(rtse_codec::ber::Octets::owned(vec![0x60, 0x80, 0, 0])),
        rtse::RtseApdu::Rtab(rtse::Rtab::default()),
        rtse::RtseApdu::Rtorj(rtse::Rtorj::default()),
    ] {
        let mut v = Vec::new();
        rtse::emit(&r, &mut v);
        b.add(Target::Rtse, "synthetic", v);
    }
    for (sel, p) in [(3u8, x410::X410Pdu::Priority(1)), (4, x410::X410Pdu::AbortInformation(Default::default()))] {
        let mut v = vec![sel];
        x410::emit(&p, &mut v);
        b.add(Target::X410, "synthetic", v);
    }
}

/// Scripts for `turn_scenario` (and, behind a flaw selector cycling
/// through [`crate::flaw::Flaw::ALL`], `flaw_hunt`): the simulator's
/// built-in scenarios and one of each kind of operation.
fn scenario_seeds(b: &mut Builder) {
    use super::scenario::{Op, Point, Script};
    let kind = |name: &str| Point {
        kind: super::scenario::PDU_KINDS.iter().position(|k| *k == name).unwrap_or(0) as u8,
        n: 0,
    };
    let sub = |side: u8, count: u8, size: u8, at: u8| Op::Submit { side, count: count - 1, size, at, every: 0 };
    let exchange = vec![sub(0, 2, 0, 0), sub(1, 1, 0, 0)];
    let turn_give = vec![Op::Please { side: 1, at: 0 }, sub(0, 1, 0, 0), sub(0, 1, 0, 20)];
    let large = vec![sub(0, 1, 2, 0), sub(1, 1, 1, 0)];
    // How: 0 fin, 1 rst, 2 session-abort, 3 u-abort, 4 cut; dirs: 0 A, 1 B, 2 both.
    let drop = |name: &str, after: bool, how: u8, dirs: u8| Op::Drop { point: kind(name), after, how, dirs };
    let with = |base: &[Op], op: Op| {
        let mut v = base.to_vec();
        v.push(op);
        v
    };
    let scripts: Vec<(&str, u8, u8, Vec<Op>)> = vec![
        ("exchange", 0, 0, exchange.clone()),
        ("turn_give", 0, 0, turn_give.clone()),
        ("large", 0, 0, large.clone()),
        ("x410", 1, 0, exchange.clone()),
        ("monologue", 2, 0, vec![sub(0, 3, 0, 0)]),
        ("b_opens", 2 << 2, 0, exchange.clone()),
        ("both_open", 3 << 2, 0, vec![sub(0, 1, 0, 0), sub(1, 1, 0, 0), sub(1, 2, 1, 10)]),
        ("backlog", 0, 1, vec![Op::Submit { side: 0, count: 3, size: 0, at: 0, every: 1 }, sub(1, 2, 0, 1)]),
        ("field_failure", 0, 0, with(&turn_give, drop("GTC", false, 1, 2))),
        ("fin_after_aea", 0, 0, with(&exchange, drop("AEA", true, 0, 1))),
        ("session_abort_pt", 0, 0, with(&turn_give, drop("PT", false, 2, 0))),
        ("u_abort_dt", 0, 0, with(&exchange, drop("DT", true, 3, 1))),
        ("cut_mip", 0, 0, with(&large, drop("MIP", false, 4, 2))),
        ("drop_at", 0, 0, with(&turn_give, Op::DropAt { at: 15, how: 1, dirs: 2 })),
        ("drop_index", 1, 0, with(&exchange, Op::DropIndex { index: 6, how: 0, dirs: 2 })),
        ("duplicate_gtc", 0, 0, with(&turn_give, Op::Duplicate(kind("GTC")))),
        ("mutate_dt", 0, 0, with(&exchange, Op::Mutate { point: kind("DT"), offset: 12, xor: 0x20 })),
        ("mutate_si", 0, 0, with(&exchange, Op::MutateField { point: kind("AS"), field: 3, xor: 0x01 })),
        ("withhold_pt", 0, 0, with(&turn_give, Op::Withhold { point: kind("PT"), delay: 25 })),
        ("reorder_as", 0, 0, with(&exchange, Op::Reorder(kind("AS")))),
        // The Turn given back and lost: B holds it, A asks again 3 s
        // later, B's GTC (GTC #2) is lost by RST; with the flaw on B
        // (header bit 4) it shows turn-cleared-on-send.
        ("give_back", 0x10, 0, super::scenario::give_back()),
    ];
    for (i, (name, flags, backlog, ops)) in scripts.into_iter().enumerate() {
        let bytes = Script { flags, backlog, ops }.encode();
        b.add(Target::TurnScenario, name, bytes.clone());
        let selector = (i % crate::flaw::Flaw::ALL.len()) as u8;
        b.add(Target::FlawHunt, name, prefixed(&[selector], &bytes));
    }
}

/// Every target's seeds, from the repository at `root`.
pub fn generate(root: &Path) -> io::Result<Corpus> {
    let mut b = Builder::default();
    let mut examples = BTreeMap::new();
    for dir in ["corpus/examples", "corpus/captures"] {
        let is_example = dir.ends_with("examples");
        for path in sorted_files(&root.join(dir))? {
            let data = std::fs::read(&path)?;
            if !is_capture(&data) || data.len() > MAX_CAPTURE_SEED {
                continue;
            }
            let source = stem(&path);
            b.add(Target::Capture, &source, data.clone());
            let conns = capture_seeds(&mut b, &source, &data);
            for c in &conns {
                stream_seeds(&mut b, &source, c, is_example);
            }
            if is_example {
                examples.insert(source, conns);
            }
        }
    }
    synthetic_captures(&mut b, &examples)?;
    synthetic_pdus(&mut b);
    scenario_seeds(&mut b);
    for t in Target::ALL {
        b.corpus.entry(t).or_default();
    }
    Ok(b.corpus)
}

/// Where a target's seeds live.
pub fn dir(root: &Path, target: Target) -> PathBuf {
    root.join("corpus").join(target.name())
}

/// Differences between the committed seeds and `corpus`, one line each
/// (`missing`, `extra`, `differs`); empty when in step.
pub fn diff(root: &Path, corpus: &Corpus) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for (t, files) in corpus {
        let d = dir(root, *t);
        let on_disk: BTreeSet<String> = match std::fs::read_dir(&d) {
            Ok(rd) => rd.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => return Err(e),
        };
        for (name, bytes) in files {
            match std::fs::read(d.join(name)) {
                Ok(b) if b == *bytes => {}
                Ok(_) => out.push(format!("differs: {}/{name}", t.name())),
                Err(_) => out.push(format!("missing: {}/{name}", t.name())),
            }
        }
        for name in on_disk.iter().filter(|n| !files.contains_key(*n)) {
            out.push(format!("extra: {}/{name}", t.name()));
        }
    }
    Ok(out)
}

/// Write `corpus` under `root/corpus/<target>/`, removing files that are
/// no longer generated.
pub fn write(root: &Path, corpus: &Corpus) -> io::Result<()> {
    for (t, files) in corpus {
        let d = dir(root, *t);
        std::fs::create_dir_all(&d)?;
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let keep = e.file_name().to_str().is_some_and(|n| files.contains_key(n));
            if !keep {
                std::fs::remove_file(e.path())?;
            }
        }
        for (name, bytes) in files {
            std::fs::write(d.join(name), bytes)?;
        }
    }
    Ok(())
}
