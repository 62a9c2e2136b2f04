//! Captures to PDU stacks: capture reading and TCP reassembly feeding one
//! [`AssociationDecoder`] per TCP connection. The client (SYN sender, see
//! [`ConnKey`]) is taken as the association-initiator.
//!
//! Memory stays bounded by the open connections: a connection's decoder is
//! dropped at its `Close`.

use super::{CaptureSummary, CloseHow, ConnId, ConnKey, Direction, StreamEvent, Timestamp};
use crate::error::Result;
use crate::stack::{AssociationDecoder, Sender, Stack};
use std::io::Read;

/// What decoding a capture yields, in capture order.
// `Pdu` lends its stack (several hundred octets) rather than holding it:
// moving it from the stream decoder's result into the item was a copy of
// the whole stack per PDU.
#[derive(Debug)]
pub enum CaptureItem<'s> {
    /// A TCP connection appeared; `mid_stream` when its start was not
    /// captured (decoding resynchronises on the first plausible TPKT).
    Open { conn: ConnId, key: ConnKey, frame: u64, time: Timestamp, mid_stream: bool },
    /// A TPKT completed in `frame`: its stack, or why it did not decode.
    Pdu { conn: ConnId, frame: u64, time: Timestamp, from: Sender, stream_offset: u64, result: &'s Result<Stack<'s>> },
    /// Octets of one direction were not captured.
    Gap { conn: ConnId, frame: u64, from: Sender, missing: u64 },
    /// The connection ended.
    Close { conn: ConnId, frame: u64, time: Timestamp, how: CloseHow },
}

/// The sender of a direction: the client is the association-initiator.
pub const fn sender_of(dir: Direction) -> Sender {
    match dir {
        Direction::ToServer => Sender::Initiator,
        Direction::ToClient => Sender::Responder,
    }
}

/// A connection, before and after we know whether it carries RFC 1006.
#[derive(Debug)]
enum Conn {
    /// No payload yet; `iso_port` when either side is on port 102.
    Undecided {
        iso_port: bool,
        mid_stream: bool,
    },
    Tpkt(Box<AssociationDecoder>),
    /// Not RFC 1006 (e.g. NetBIOS beside MMS): ignored.
    Other,
}

/// Turns capture events into [`CaptureItem`]s. A connection is decoded when
/// either side is on port 102 (RFC 1006's ISO-TSAP port), or when its first
/// payload starts with a plausible TPKT header; other TCP traffic is
/// ignored, as tshark hands it to other dissectors.
#[derive(Debug, Default)]
pub struct StackDecoder {
    conns: super::ConnMap<Conn>,
}

impl StackDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Handle one capture event.
    pub fn event(&mut self, ev: StreamEvent<'_>, on: &mut impl FnMut(CaptureItem<'_>)) {
        match ev {
            StreamEvent::Open { conn, key, frame, time, syn_seen } => {
                let iso_port = key.server.port() == ISO_TSAP_PORT || key.client.port() == ISO_TSAP_PORT;
                self.conns.insert(conn, Conn::Undecided { iso_port, mid_stream: !syn_seen });
                on(CaptureItem::Open { conn, key, frame, time, mid_stream: !syn_seen });
            }
            StreamEvent::Data { conn, dir, frame, time, bytes, .. } => {
                let from = sender_of(dir);
                let c = self.conns.entry(conn).or_insert(Conn::Undecided { iso_port: false, mid_stream: true });
                if let Conn::Undecided { iso_port, mid_stream } = *c {
                    *c = if iso_port || looks_like_tpkt_stream(bytes, mid_stream) {
                        // Built in its box (a decoder is a few hundred octets).
                        let mut d = Box::<AssociationDecoder>::default();
                        if mid_stream {
                            d.resync(Sender::Initiator);
                            d.resync(Sender::Responder);
                        }
                        Conn::Tpkt(d)
                    } else {
                        Conn::Other
                    };
                }
                if let Conn::Tpkt(d) = c {
                    d.push_lent(from, bytes, |x| {
                        on(CaptureItem::Pdu {
                            conn,
                            frame,
                            time,
                            from,
                            stream_offset: x.stream_offset,
                            result: &x.result,
                        })
                    });
                }
            }
            StreamEvent::Gap { conn, dir, frame, missing, .. } => {
                let from = sender_of(dir);
                if let Some(Conn::Tpkt(d)) = self.conns.get_mut(&conn) {
                    d.gap(from, missing);
                    on(CaptureItem::Gap { conn, frame, from, missing });
                }
            }
            StreamEvent::Close { conn, frame, time, how, .. } => {
                self.conns.remove(&conn);
                on(CaptureItem::Close { conn, frame, time, how });
            }
            StreamEvent::Anomaly { .. } | StreamEvent::Skipped { .. } => {}
        }
    }
}

/// RFC 1006's well-known port.
pub const ISO_TSAP_PORT: u16 = 102;

fn looks_like_tpkt_stream(first: &[u8], mid_stream: bool) -> bool {
    match crate::stack::find_tpkt(first) {
        Some(0) => true,
        Some(_) => mid_stream,
        None => false,
    }
}

/// Decode every TPKT of every TCP connection in a pcap/pcapng file.
pub fn decode_capture(data: &[u8], mut on: impl FnMut(CaptureItem<'_>)) -> Result<CaptureSummary> {
    let mut d = StackDecoder::new();
    super::read_capture(data, |ev| d.event(ev, &mut on))
}

/// [`decode_capture`] over a reader, with memory bounded by the open
/// connections rather than the file size.
pub fn decode_capture_stream<R: Read>(r: R, mut on: impl FnMut(CaptureItem<'_>)) -> Result<CaptureSummary> {
    let mut d = StackDecoder::new();
    super::read_capture_stream(r, |ev| d.event(ev, &mut on))
}
