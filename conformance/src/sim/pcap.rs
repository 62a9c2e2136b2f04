//! pcapng export of a run: each transport connection is one TCP
//! conversation with its own client port (A or B as client, whoever opened
//! it), every TPKT sent (delivered or not; a cut TPKT up to the cut) at its
//! virtual time, and the connection's end (FIN or RST) where it happened.

use super::Outcome;
use crate::loopback::TraceKind;
use crate::tracker::CloseHow;
use rtse_codec::capture::write::{Frame, FrameSink, PcapngWriter, TcpConversation};
use rtse_codec::capture::{Direction, Timestamp};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Base of the virtual clock in the capture (2025-01-01T00:00:00Z).
const EPOCH: u64 = 1_735_689_600;

fn addr(side: usize, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + side as u8)), port)
}

/// The run as a pcapng file (Ethernet/IPv4/TCP port 102).
#[must_use]
pub fn export(o: &Outcome) -> Vec<u8> {
    let cuts: BTreeMap<usize, usize> = o.cuts.iter().copied().collect();
    let mut convs: Vec<TcpConversation> = Vec::new();
    let mut frames: Vec<Frame> = Vec::new();
    let mut closed = vec![false; o.initiators.len()];
    let ts = |t: u64| Timestamp::new(EPOCH + t / 1_000_000_000, (t % 1_000_000_000) as u32);
    for (i, t) in o.trace.iter().enumerate() {
        let time = ts(t.time);
        if matches!(t.kind, TraceKind::Open) {
            let init = o.initiators.get(t.conn).copied().unwrap_or(0);
            let client = addr(init, 40_000 + t.conn as u16);
            let server = addr(1 - init, 102);
            let mut c = TcpConversation::new(client, server).with_time(time, 1_000);
            c.syn();
            convs.push(c);
        }
        let init = o.initiators.get(t.conn).copied().unwrap_or(0);
        let dir = |from: usize| if from == init { Direction::ToServer } else { Direction::ToClient };
        let Some(c) = convs.get_mut(t.conn) else { continue };
        if closed.get(t.conn).copied().unwrap_or(true) && !matches!(t.kind, TraceKind::Open) {
            continue;
        }
        match &t.kind {
            TraceKind::Open => {}
            TraceKind::Pdu { bytes, .. } => {
                let n = cuts.get(&i).copied().unwrap_or(bytes.len());
                c.send(dir(t.from), &bytes[..n.min(bytes.len())]);
            }
            TraceKind::Closed(CloseHow::Fin) => {
                c.fin(dir(t.from));
                c.fin(dir(1 - t.from));
                closed[t.conn] = true;
            }
            TraceKind::Closed(_) => {
                c.rst(dir(t.from));
                closed[t.conn] = true;
            }
        }
        for mut f in c.take_frames() {
            f.time = time;
            frames.push(f);
        }
    }
    frames.sort_by_key(|f| (f.time.secs, f.time.nanos));
    let mut w = PcapngWriter::ethernet();
    for f in &frames {
        let _ = w.write_frame(f.time, &f.data, f.orig_len);
    }
    w.into_inner().unwrap_or_default()
}
