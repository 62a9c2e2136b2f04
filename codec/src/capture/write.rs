//! Writing captures: pcapng ([`PcapngWriter`]) and legacy pcap
//! ([`PcapWriter`]) into any `io::Write` (a `Vec<u8>` for memory), and
//! [`TcpConversation`], which synthesises the frames of a two-party TCP
//! conversation (handshake, data in chosen segment sizes, FIN or RST) with
//! correct sequence/acknowledgement numbers and IPv4/TCP checksums, over
//! Ethernet (optionally VLAN-tagged), Linux SLL/SLL2, raw IP or BSD
//! loopback, IPv4 or IPv6. Wireshark reads the result without complaint.

use super::link::{
    flags, LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_LOOP, LINKTYPE_NULL, LINKTYPE_RAW,
};
use super::{Direction, Timestamp};
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

/// Snap length written in file headers.
pub const SNAPLEN: u32 = 262_144;

/// Something frames can be written into.
pub trait FrameSink {
    /// Write one frame: `data` captured, `orig_len` on the wire.
    fn write_frame(&mut self, time: Timestamp, data: &[u8], orig_len: u32) -> io::Result<()>;
}

/// A pcapng file being written: one little-endian section; interfaces are
/// added with [`Self::add_interface`]; packets are Enhanced Packet Blocks.
#[derive(Debug)]
pub struct PcapngWriter<W: Write> {
    out: W,
    /// Timestamp units per second of each interface.
    units: Vec<u64>,
    /// Interface that [`FrameSink::write_frame`] writes to.
    pub current: u32,
}

impl PcapngWriter<Vec<u8>> {
    /// A pcapng in memory with one Ethernet interface (microseconds).
    pub fn ethernet() -> Self {
        let mut w = PcapngWriter::new(Vec::new()).unwrap_or_else(|_| unreachable!("Vec write"));
        let _ = w.add_interface(LINKTYPE_ETHERNET, false);
        w
    }
}

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

impl<W: Write> PcapngWriter<W> {
    /// Start a file: writes the Section Header Block.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut b = Vec::with_capacity(28);
        b.extend_from_slice(&0x0A0D_0D0Au32.to_le_bytes());
        b.extend_from_slice(&28u32.to_le_bytes());
        b.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&(-1i64).to_le_bytes());
        b.extend_from_slice(&28u32.to_le_bytes());
        out.write_all(&b)?;
        Ok(PcapngWriter { out, units: Vec::new(), current: 0 })
    }

    /// Add an interface (Interface Description Block) of `link_type`, with
    /// nanosecond timestamps (`if_tsresol` 9) or the default microseconds.
    /// Returns its interface id.
    pub fn add_interface(&mut self, link_type: u32, nanos: bool) -> io::Result<u32> {
        let opts_len = if nanos { 8 + 4 } else { 0 };
        let len = 20 + opts_len;
        let mut b = Vec::with_capacity(len);
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&(len as u32).to_le_bytes());
        b.extend_from_slice(&(link_type as u16).to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&SNAPLEN.to_le_bytes());
        if nanos {
            // if_tsresol = 9 (10^-9 s), padded; opt_endofopt.
            b.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0]);
            b.extend_from_slice(&[0, 0, 0, 0]);
        }
        b.extend_from_slice(&(len as u32).to_le_bytes());
        self.out.write_all(&b)?;
        self.units.push(if nanos { 1_000_000_000 } else { 1_000_000 });
        Ok((self.units.len() - 1) as u32)
    }

    /// Write one packet on `interface` (an Enhanced Packet Block).
    pub fn packet(&mut self, interface: u32, time: Timestamp, data: &[u8], orig_len: u32) -> io::Result<()> {
        let units = self.units.get(interface as usize).copied().unwrap_or(1_000_000);
        let ts = time.secs.saturating_mul(units).saturating_add(u64::from(time.nanos) / (1_000_000_000 / units));
        let pad = pad4(data.len());
        let len = 32 + data.len() + pad;
        let mut b = Vec::with_capacity(28);
        b.extend_from_slice(&6u32.to_le_bytes());
        b.extend_from_slice(&(len as u32).to_le_bytes());
        b.extend_from_slice(&interface.to_le_bytes());
        b.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(ts as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&orig_len.max(data.len() as u32).to_le_bytes());
        self.out.write_all(&b)?;
        self.out.write_all(data)?;
        self.out.write_all(&[0u8; 3][..pad])?;
        self.out.write_all(&(len as u32).to_le_bytes())
    }

    /// Flush and return the output.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }

    /// The output so far.
    pub fn get_ref(&self) -> &W {
        &self.out
    }
}

impl<W: Write> FrameSink for PcapngWriter<W> {
    fn write_frame(&mut self, time: Timestamp, data: &[u8], orig_len: u32) -> io::Result<()> {
        self.packet(self.current, time, data, orig_len)
    }
}

/// Options of a legacy pcap file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PcapFlavor {
    /// Write every field big-endian (as a big-endian host would).
    pub big_endian: bool,
    /// Nanosecond timestamps (magic 0xa1b23c4d) instead of microseconds.
    pub nanos: bool,
}

/// A legacy pcap file being written.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    flavor: PcapFlavor,
}

impl<W: Write> PcapWriter<W> {
    /// Start a file: writes the 24-octet header.
    pub fn new(mut out: W, link_type: u32, flavor: PcapFlavor) -> io::Result<Self> {
        let magic: u32 = if flavor.nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut b = Vec::with_capacity(24);
        let w32 = |b: &mut Vec<u8>, v: u32| {
            b.extend_from_slice(&if flavor.big_endian { v.to_be_bytes() } else { v.to_le_bytes() })
        };
        w32(&mut b, magic);
        let (maj, min) = (2u16, 4u16);
        for v in [maj, min] {
            b.extend_from_slice(&if flavor.big_endian { v.to_be_bytes() } else { v.to_le_bytes() });
        }
        w32(&mut b, 0);
        w32(&mut b, 0);
        w32(&mut b, SNAPLEN);
        w32(&mut b, link_type);
        out.write_all(&b)?;
        Ok(PcapWriter { out, flavor })
    }

    /// Write one packet record.
    pub fn packet(&mut self, time: Timestamp, data: &[u8], orig_len: u32) -> io::Result<()> {
        let frac = if self.flavor.nanos { time.nanos } else { time.nanos / 1000 };
        let fields = [time.secs as u32, frac, data.len() as u32, orig_len.max(data.len() as u32)];
        for v in fields {
            self.out.write_all(&if self.flavor.big_endian { v.to_be_bytes() } else { v.to_le_bytes() })?;
        }
        self.out.write_all(data)
    }

    /// Flush and return the output.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> FrameSink for PcapWriter<W> {
    fn write_frame(&mut self, time: Timestamp, data: &[u8], orig_len: u32) -> io::Result<()> {
        self.packet(time, data, orig_len)
    }
}

/// How [`TcpConversation`] frames its IP packets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkEncap {
    /// Ethernet II, with these 802.1Q VLAN ids outermost first (two or more
    /// is QinQ: the outer tags use EtherType 0x88a8).
    Ethernet { vlans: Vec<u16> },
    /// Linux cooked capture v1.
    Sll,
    /// Linux cooked capture v2.
    Sll2,
    /// Raw IP (LINKTYPE_RAW).
    Raw,
    /// BSD loopback, host (little-endian) byte order address family.
    Null,
    /// OpenBSD loopback, network byte order address family.
    Loop,
}

impl LinkEncap {
    /// Plain Ethernet.
    pub const fn ethernet() -> Self {
        LinkEncap::Ethernet { vlans: Vec::new() }
    }
    /// The LINKTYPE_* of frames built this way.
    pub fn link_type(&self) -> u32 {
        match self {
            LinkEncap::Ethernet { .. } => LINKTYPE_ETHERNET,
            LinkEncap::Sll => LINKTYPE_LINUX_SLL,
            LinkEncap::Sll2 => LINKTYPE_LINUX_SLL2,
            LinkEncap::Raw => LINKTYPE_RAW,
            LinkEncap::Null => LINKTYPE_NULL,
            LinkEncap::Loop => LINKTYPE_LOOP,
        }
    }
}

/// One synthesised frame.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Frame {
    pub time: Timestamp,
    pub link_type: u32,
    #[serde(serialize_with = "ser_hex")]
    pub data: Vec<u8>,
    /// Length on the wire (more than `data.len()` after [`Frame::truncate`]).
    pub orig_len: u32,
}

impl Frame {
    /// Keep only the first `caplen` octets, as a capture with a small snap
    /// length would.
    pub fn truncate(&mut self, caplen: usize) {
        self.data.truncate(caplen);
    }
}

fn ser_hex<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    crate::hex::ser(&b, s)
}

fn checksum_add(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
    }
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    sum
}

fn checksum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn mac(dir_client: bool) -> [u8; 6] {
    if dir_client {
        [0x02, 0, 0, 0, 0, 0x01]
    } else {
        [0x02, 0, 0, 0, 0, 0x02]
    }
}

/// Frames of a two-party TCP conversation, with correct sequence and
/// acknowledgement numbers. Each call appends frames (one time tick apart)
/// to [`Self::frames`]; write them with [`Self::write_to`], or reorder,
/// duplicate or drop them first.
#[derive(Debug, Clone)]
pub struct TcpConversation {
    client: SocketAddr,
    server: SocketAddr,
    link: LinkEncap,
    /// Initial sequence numbers (client, server).
    isn: [u32; 2],
    /// Next sequence number to send (ToServer = client's, ToClient = server's).
    seq: [u32; 2],
    time: Timestamp,
    tick_ns: u64,
    ip_id: u16,
    frames: Vec<Frame>,
}

impl TcpConversation {
    /// A conversation between `client` and `server` over Ethernet, ISNs
    /// 1000 (client) and 5000 (server), starting at 1 000 000 000 s, one
    /// millisecond between frames. If one address is IPv4 and the other
    /// IPv6, the IPv4 one is written as an IPv4-mapped IPv6 address.
    pub fn new(client: SocketAddr, server: SocketAddr) -> Self {
        let (client, server) = match (client.ip(), server.ip()) {
            (IpAddr::V4(c), IpAddr::V6(_)) => (SocketAddr::new(IpAddr::V6(c.to_ipv6_mapped()), client.port()), server),
            (IpAddr::V6(_), IpAddr::V4(s)) => (client, SocketAddr::new(IpAddr::V6(s.to_ipv6_mapped()), server.port())),
            _ => (client, server),
        };
        TcpConversation {
            client,
            server,
            link: LinkEncap::ethernet(),
            isn: [1000, 5000],
            seq: [1000, 5000],
            time: Timestamp::new(1_000_000_000, 0),
            tick_ns: 1_000_000,
            ip_id: 1,
            frames: Vec::new(),
        }
    }

    /// Use another link encapsulation.
    pub fn with_link(mut self, link: LinkEncap) -> Self {
        self.link = link;
        self
    }

    /// Use these initial sequence numbers (client, server); the SYNs carry
    /// them, data starts one after.
    pub fn with_isn(mut self, client: u32, server: u32) -> Self {
        self.isn = [client, server];
        self.seq = [client, server];
        self
    }

    /// Start at `time`, `tick_ns` nanoseconds between frames.
    pub fn with_time(mut self, time: Timestamp, tick_ns: u64) -> Self {
        self.time = time;
        self.tick_ns = tick_ns;
        self
    }

    /// The client and server addresses.
    pub fn endpoints(&self) -> (SocketAddr, SocketAddr) {
        (self.client, self.server)
    }

    /// Next sequence number `dir`'s sender will use.
    pub fn next_seq(&self, dir: Direction) -> u32 {
        self.seq[dir.index()]
    }

    /// Sequence number of stream offset `offset` in `dir` (the octet after
    /// the SYN is offset 0).
    pub fn seq_at(&self, dir: Direction, offset: u64) -> u32 {
        self.isn[dir.index()].wrapping_add(1).wrapping_add(offset as u32)
    }

    /// Frames built so far.
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }

    /// Take the frames built so far.
    pub fn take_frames(&mut self) -> Vec<Frame> {
        std::mem::take(&mut self.frames)
    }

    /// Write (and take) the frames built so far into `sink`.
    pub fn write_to(&mut self, sink: &mut impl FrameSink) -> io::Result<()> {
        for f in self.take_frames() {
            sink.write_frame(f.time, &f.data, f.orig_len)?;
        }
        Ok(())
    }

    /// SYN, SYN-ACK, ACK.
    pub fn syn(&mut self) -> &mut Self {
        let (c, s) = (Direction::ToServer, Direction::ToClient);
        self.raw(c, self.seq[0], 0, flags::SYN, &[]);
        self.seq[0] = self.seq[0].wrapping_add(1);
        self.raw(s, self.seq[1], self.seq[0], flags::SYN | flags::ACK, &[]);
        self.seq[1] = self.seq[1].wrapping_add(1);
        self.raw(c, self.seq[0], self.seq[1], flags::ACK, &[]);
        self
    }

    /// Skip the handshake: sequence numbers continue as if it had happened
    /// (for conversations captured mid-stream).
    pub fn assume_established(&mut self) -> &mut Self {
        self.seq = [self.isn[0].wrapping_add(1), self.isn[1].wrapping_add(1)];
        self
    }

    /// One data segment (PSH, ACK) of all of `bytes` from `dir`'s sender.
    pub fn send(&mut self, dir: Direction, bytes: &[u8]) -> &mut Self {
        let d = dir.index();
        self.raw(dir, self.seq[d], self.seq[1 - d], flags::PSH | flags::ACK, bytes);
        self.seq[d] = self.seq[d].wrapping_add(bytes.len() as u32);
        self
    }

    /// `bytes` in segments of the given sizes (the last size repeats; a
    /// size of 0 counts as 1).
    pub fn send_segmented(&mut self, dir: Direction, bytes: &[u8], sizes: &[usize]) -> &mut Self {
        let mut rest = bytes;
        let mut i = 0;
        while !rest.is_empty() {
            let size = sizes.get(i).or(sizes.last()).copied().unwrap_or(rest.len()).max(1).min(rest.len());
            let (seg, tail) = rest.split_at(size);
            self.send(dir, seg);
            rest = tail;
            i += 1;
        }
        self
    }

    /// Move `dir`'s sequence number on by `n` octets without writing a
    /// frame: octets sent but not captured, or sent by [`Self::raw`]
    /// segments the caller laid out itself (overlapping retransmissions).
    pub fn advance(&mut self, dir: Direction, n: u32) -> &mut Self {
        let d = dir.index();
        self.seq[d] = self.seq[d].wrapping_add(n);
        self
    }

    /// A pure ACK from `dir`'s sender of everything the other side sent.
    pub fn ack(&mut self, dir: Direction) -> &mut Self {
        let d = dir.index();
        self.raw(dir, self.seq[d], self.seq[1 - d], flags::ACK, &[]);
        self
    }

    /// FIN (with ACK) from `dir`'s sender.
    pub fn fin(&mut self, dir: Direction) -> &mut Self {
        let d = dir.index();
        self.raw(dir, self.seq[d], self.seq[1 - d], flags::FIN | flags::ACK, &[]);
        self.seq[d] = self.seq[d].wrapping_add(1);
        self
    }

    /// FIN from both sides, then the last ACK.
    pub fn close(&mut self) -> &mut Self {
        self.fin(Direction::ToServer).fin(Direction::ToClient).ack(Direction::ToServer)
    }

    /// RST (with ACK) from `dir`'s sender.
    pub fn rst(&mut self, dir: Direction) -> &mut Self {
        let d = dir.index();
        self.raw(dir, self.seq[d], self.seq[1 - d], flags::RST | flags::ACK, &[]);
        self
    }

    /// Any segment: `dir`'s sender, explicit sequence and acknowledgement
    /// numbers and flags (see [`super::link::flags`]). Does not move the
    /// conversation's sequence numbers (for retransmissions, overlaps,
    /// out-of-window segments).
    pub fn raw(&mut self, dir: Direction, seq: u32, ack: u32, tcp_flags: u8, payload: &[u8]) -> &mut Self {
        let data = self.build(dir, seq, ack, tcp_flags, payload);
        let orig_len = data.len() as u32;
        self.frames.push(Frame { time: self.time, link_type: self.link.link_type(), data, orig_len });
        self.time = Timestamp::from_nanos(self.time.as_nanos().saturating_add(self.tick_ns));
        self
    }

    fn build(&mut self, dir: Direction, seq: u32, ack: u32, tcp_flags: u8, payload: &[u8]) -> Vec<u8> {
        let (src, dst) = match dir {
            Direction::ToServer => (self.client, self.server),
            Direction::ToClient => (self.server, self.client),
        };
        // TCP header (no options), checksum filled in below.
        let mut tcp = Vec::with_capacity(20 + payload.len());
        tcp.extend_from_slice(&src.port().to_be_bytes());
        tcp.extend_from_slice(&dst.port().to_be_bytes());
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&(if tcp_flags & flags::ACK != 0 { ack } else { 0 }).to_be_bytes());
        tcp.push(5 << 4);
        tcp.push(tcp_flags);
        tcp.extend_from_slice(&65535u16.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 0]);
        tcp.extend_from_slice(payload);
        let tcp_len = tcp.len();
        let mut ip = Vec::with_capacity(40);
        let ethertype: u16;
        let mut sum = 0u32;
        match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                ethertype = 0x0800;
                let total = (20 + tcp_len) as u16;
                ip.extend_from_slice(&[0x45, 0]);
                ip.extend_from_slice(&total.to_be_bytes());
                ip.extend_from_slice(&self.ip_id.to_be_bytes());
                self.ip_id = self.ip_id.wrapping_add(1);
                ip.extend_from_slice(&[0x40, 0, 64, 6, 0, 0]);
                ip.extend_from_slice(&s.octets());
                ip.extend_from_slice(&d.octets());
                let c = checksum_fold(checksum_add(0, &ip));
                ip[10..12].copy_from_slice(&c.to_be_bytes());
                sum = checksum_add(sum, &s.octets());
                sum = checksum_add(sum, &d.octets());
                sum = checksum_add(sum, &[0, 6]);
                sum = checksum_add(sum, &(tcp_len as u16).to_be_bytes());
            }
            (s, d) => {
                let to6 = |a: IpAddr| match a {
                    IpAddr::V6(a) => a,
                    IpAddr::V4(a) => a.to_ipv6_mapped(),
                };
                let (s, d) = (to6(s), to6(d));
                ethertype = 0x86DD;
                ip.extend_from_slice(&[0x60, 0, 0, 0]);
                ip.extend_from_slice(&(tcp_len as u16).to_be_bytes());
                ip.extend_from_slice(&[6, 64]);
                ip.extend_from_slice(&s.octets());
                ip.extend_from_slice(&d.octets());
                sum = checksum_add(sum, &s.octets());
                sum = checksum_add(sum, &d.octets());
                sum = checksum_add(sum, &(tcp_len as u32).to_be_bytes());
                sum = checksum_add(sum, &[0, 0, 0, 6]);
            }
        }
        let c = checksum_fold(checksum_add(sum, &tcp));
        tcp[16..18].copy_from_slice(&c.to_be_bytes());

        let from_client = dir == Direction::ToServer;
        let mut f = Vec::with_capacity(24 + ip.len() + tcp.len());
        let af6 = ethertype == 0x86DD;
        match &self.link {
            LinkEncap::Ethernet { vlans } => {
                f.extend_from_slice(&mac(!from_client));
                f.extend_from_slice(&mac(from_client));
                for (i, v) in vlans.iter().enumerate() {
                    let tpid: u16 = if i + 1 < vlans.len() { 0x88a8 } else { 0x8100 };
                    f.extend_from_slice(&tpid.to_be_bytes());
                    f.extend_from_slice(&(v & 0x0fff).to_be_bytes());
                }
                f.extend_from_slice(&ethertype.to_be_bytes());
            }
            LinkEncap::Sll => {
                // Packet type: 0 = to us, 4 = sent by us (the client host).
                f.extend_from_slice(&(if from_client { 4u16 } else { 0 }).to_be_bytes());
                f.extend_from_slice(&1u16.to_be_bytes());
                f.extend_from_slice(&6u16.to_be_bytes());
                f.extend_from_slice(&mac(from_client));
                f.extend_from_slice(&[0, 0]);
                f.extend_from_slice(&ethertype.to_be_bytes());
            }
            LinkEncap::Sll2 => {
                f.extend_from_slice(&ethertype.to_be_bytes());
                f.extend_from_slice(&[0, 0]);
                f.extend_from_slice(&1u32.to_be_bytes());
                f.extend_from_slice(&1u16.to_be_bytes());
                f.push(if from_client { 4 } else { 0 });
                f.push(6);
                f.extend_from_slice(&mac(from_client));
                f.extend_from_slice(&[0, 0]);
            }
            LinkEncap::Raw => {}
            // AF_INET 2; AF_INET6 24 (NetBSD/OpenBSD value, which Wireshark
            // accepts for both loopback link types).
            LinkEncap::Null => f.extend_from_slice(&(if af6 { 24u32 } else { 2 }).to_le_bytes()),
            LinkEncap::Loop => f.extend_from_slice(&(if af6 { 24u32 } else { 2 }).to_be_bytes()),
        }
        f.extend_from_slice(&ip);
        f.extend_from_slice(&tcp);
        f
    }
}
