//! pcap and pcapng record framing, on bytes (no I/O).
//!
//! [`RecordReader::next`] is given the bytes from the current record
//! boundary on and answers either one record (its length, and the packet if
//! it is one) or how many octets it needs to see the whole record. Lengths
//! are checked against [`crate::limits`] before anything is buffered, so a
//! damaged length field gives an error, never a huge allocation or a wait
//! for gigabytes. Block bodies are parsed with the `pcap-parser` crate;
//! framing (how long a record is, where it starts) is done here so that
//! every error carries the absolute file offset of what was wrong.

use super::Timestamp;
use crate::error::{Error, Found, Layer, Result};
use crate::limits::{MAX_CAPTURE_BLOCK_LEN, MAX_CAPTURE_INTERFACES, MAX_CAPTURE_PACKET_LEN};

/// pcapng Section Header Block type (same in both byte orders).
pub const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
/// pcapng Interface Description Block.
pub const PCAPNG_IDB: u32 = 1;
/// pcapng obsolete Packet Block.
pub const PCAPNG_PB: u32 = 2;
/// pcapng Simple Packet Block.
pub const PCAPNG_SPB: u32 = 3;
/// pcapng Enhanced Packet Block.
pub const PCAPNG_EPB: u32 = 6;
/// pcapng byte-order magic, as written by the writer's byte order.
pub const PCAPNG_BOM: u32 = 0x1A2B_3C4D;

/// Legacy pcap magics (as read little-endian from the first 4 octets).
const PCAP_LE_US: u32 = 0xa1b2_c3d4;
const PCAP_LE_NS: u32 = 0xa1b2_3c4d;
const PCAP_LE_MODIFIED: u32 = 0xa1b2_cd34;
const PCAP_BE_US: u32 = 0xd4c3_b2a1;
const PCAP_BE_NS: u32 = 0x4d3c_b2a1;

/// One captured frame, borrowing the capture bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RawPacket<'a> {
    /// 1-based frame number, counting every packet record of the file.
    pub frame: u64,
    /// Capture time (pcapng: per-interface resolution and offset applied;
    /// Simple Packet Blocks have none and get 0).
    pub time: Timestamp,
    /// LINKTYPE_* of the interface the frame was captured on.
    pub link_type: u32,
    /// pcapng interface id (0 for pcap).
    pub interface: u32,
    /// The captured octets (`caplen` of them).
    #[serde(serialize_with = "crate::hex::ser")]
    pub data: &'a [u8],
    /// Length of the frame on the wire; more than `data.len()` if the
    /// capture truncated it.
    pub orig_len: u32,
}

/// What [`RecordReader::next`] found at the front of its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// A complete record of `len` octets; `packet` if it holds a frame.
    Record { len: usize, packet: Option<RawPacket<'a>> },
    /// The record needs this many octets (counted from the front of the
    /// input) before it can be read; always at most
    /// [`MAX_CAPTURE_BLOCK_LEN`] plus a header.
    Need(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Interface {
    link_type: u32,
    /// Timestamp units per second (if_tsresol).
    units: u64,
    /// Seconds added to every timestamp (if_tsoffset).
    offset: i64,
    snaplen: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Format {
    #[default]
    Unknown,
    Pcap {
        big_endian: bool,
        nanos: bool,
        /// The "modified" (Kuznetzov) format: 24-octet record headers.
        modified: bool,
        link_type: u32,
    },
    Pcapng {
        big_endian: bool,
        interfaces: Vec<Interface>,
    },
}

/// Splits a capture file into records. Feed it the bytes from the current
/// record boundary on (see [`Step`]); it tracks the absolute offset itself.
#[derive(Debug, Clone, Default)]
pub struct RecordReader {
    format: Format,
    pos: u64,
    frames: u64,
    link_types: Vec<u32>,
}

/// The fields of a pcap packet record.
#[derive(Debug, PartialEq, Eq)]
struct Record<'a> {
    ts_sec: u32,
    /// Microseconds or nanoseconds, as the file header says.
    ts_frac: u32,
    orig_len: u32,
    data: &'a [u8],
}

/// A standard (not "modified") pcap record whose length the caller has
/// checked: its 16-octet header and the captured octets, read by hand
/// (pcap-parser's parser, the same fields by test
/// `standard_record_agrees_with_pcap_parser`, cost some 50 instructions a
/// record).
fn standard_record(rec: &[u8], big_endian: bool) -> Record<'_> {
    Record {
        ts_sec: rd32(rec, 0, big_endian),
        ts_frac: rd32(rec, 4, big_endian),
        orig_len: rd32(rec, 12, big_endian),
        data: rec.get(16..).unwrap_or_default(),
    }
}

fn rd32(b: &[u8], at: usize, big_endian: bool) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    if big_endian {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

fn rd16(b: &[u8], at: usize, big_endian: bool) -> u16 {
    let mut w = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        w.copy_from_slice(s);
    }
    if big_endian {
        u16::from_be_bytes(w)
    } else {
        u16::from_le_bytes(w)
    }
}

/// Time from a 64-bit count of `units` per second plus `offset` seconds.
fn pcapng_time(high: u32, low: u32, units: u64, offset: i64) -> Timestamp {
    let ts = (u64::from(high) << 32) | u64::from(low);
    let units = units.max(1);
    let secs = ts / units;
    let frac = ts % units;
    let nanos = (u128::from(frac) * 1_000_000_000 / u128::from(units)) as u32;
    let secs =
        if offset >= 0 { secs.saturating_add(offset as u64) } else { secs.saturating_sub(offset.unsigned_abs()) };
    Timestamp::new(secs, nanos)
}

impl RecordReader {
    /// A reader expecting the first octet of a capture file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Absolute file offset of the next record.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Whether the file header (pcap header or first SHB) was read.
    pub fn started(&self) -> bool {
        self.format != Format::Unknown
    }

    /// Frames read so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Link types seen so far, in order of appearance.
    pub fn link_types(&self) -> &[u32] {
        &self.link_types
    }

    /// `"pcap"`, `"pcapng"` or `""` before the header.
    pub fn format_name(&self) -> &'static str {
        match self.format {
            Format::Unknown => "",
            Format::Pcap { .. } => "pcap",
            Format::Pcapng { .. } => "pcapng",
        }
    }

    /// What a file that ends here was in the middle of (for the error).
    pub fn expecting(&self) -> &'static str {
        match self.format {
            Format::Unknown => "pcap file header or pcapng section header block",
            Format::Pcap { .. } => "complete pcap packet record",
            Format::Pcapng { .. } => "complete pcapng block",
        }
    }

    fn err(&self, rel: usize, expected: &'static str, found: Found) -> Error {
        let at = usize::try_from(self.pos).unwrap_or(usize::MAX).saturating_add(rel);
        Error::new(Layer::Capture, at, expected, found)
    }

    fn add_link_type(&mut self, lt: u32) {
        if !self.link_types.contains(&lt) && self.link_types.len() < MAX_CAPTURE_INTERFACES {
            self.link_types.push(lt);
        }
    }

    /// Read the record at the front of `buf` (which starts at
    /// [`Self::position`]). On `Step::Record` the reader has moved past it.
    pub fn next<'a>(&mut self, buf: &'a [u8]) -> Result<Step<'a>> {
        let step = match self.format {
            Format::Unknown => self.header(buf)?,
            Format::Pcap { big_endian, nanos, modified, link_type } => {
                self.pcap_record(buf, big_endian, nanos, modified, link_type)?
            }
            Format::Pcapng { .. } => self.pcapng_block(buf)?,
        };
        if let Step::Record { len, .. } = step {
            self.pos += len as u64;
        }
        Ok(step)
    }

    fn header<'a>(&mut self, buf: &'a [u8]) -> Result<Step<'a>> {
        if buf.len() < 4 {
            return Ok(Step::Need(4));
        }
        let magic = rd32(buf, 0, false);
        match magic {
            PCAPNG_SHB => self.pcapng_block(buf),
            PCAP_LE_US | PCAP_LE_NS | PCAP_LE_MODIFIED | PCAP_BE_US | PCAP_BE_NS => {
                if buf.len() < 24 {
                    return Ok(Step::Need(24));
                }
                let head = &buf[..24];
                let (_, h) = pcap_parser::parse_pcap_header(head).map_err(|_| {
                    self.err(0, "pcap file header", Found::Word(u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]])))
                })?;
                // The upper 16 bits of the link-type field carry FCS
                // information (pcap spec "LinkType and additional information").
                let link_type = (h.network.0 as u32) & 0xFFFF;
                self.format = Format::Pcap {
                    big_endian: h.is_bigendian(),
                    nanos: h.is_nanosecond_precision(),
                    modified: h.is_modified_format(),
                    link_type,
                };
                // The header snaplen is not trusted (files in the wild carry
                // 0 or 0xffffffff): each record's caplen is checked instead.
                self.add_link_type(link_type);
                Ok(Step::Record { len: 24, packet: None })
            }
            _ => Err(self.err(
                0,
                "pcap or pcapng magic",
                Found::Word(u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]])),
            )),
        }
    }

    fn pcap_record<'a>(
        &mut self,
        buf: &'a [u8],
        big_endian: bool,
        nanos: bool,
        modified: bool,
        link_type: u32,
    ) -> Result<Step<'a>> {
        let hdr = if modified { 24 } else { 16 };
        if buf.len() < hdr {
            return Ok(Step::Need(hdr));
        }
        let caplen = rd32(buf, 8, big_endian) as usize;
        if caplen > MAX_CAPTURE_PACKET_LEN {
            return Err(self.err(8, "packet capture length of at most 262144", Found::Length(caplen)));
        }
        let total = hdr + caplen;
        if buf.len() < total {
            return Ok(Step::Need(total));
        }
        let rec = &buf[..total];
        let b = if modified {
            let (_, b) = pcap_parser::parse_pcap_frame_modified(rec)
                .map_err(|_| self.err(0, "pcap packet record", Found::Length(caplen)))?;
            Record { ts_sec: b.ts_sec, ts_frac: b.ts_usec, orig_len: b.origlen, data: b.data }
        } else {
            standard_record(rec, big_endian)
        };
        self.frames += 1;
        let frac = if nanos { b.ts_frac } else { b.ts_frac.saturating_mul(1000) };
        let packet = RawPacket {
            frame: self.frames,
            time: Timestamp::new(u64::from(b.ts_sec), frac),
            link_type,
            interface: 0,
            data: b.data,
            orig_len: b.orig_len,
        };
        Ok(Step::Record { len: total, packet: Some(packet) })
    }

    fn pcapng_block<'a>(&mut self, buf: &'a [u8]) -> Result<Step<'a>> {
        if buf.len() < 12 {
            return Ok(Step::Need(12));
        }
        let raw_type = rd32(buf, 0, false);
        let big_endian = if raw_type == PCAPNG_SHB {
            match rd32(buf, 8, false) {
                PCAPNG_BOM => false,
                0x4D3C_2B1A => true,
                bom => {
                    return Err(self.err(8, "pcapng byte-order magic 0x1a2b3c4d", Found::Word(bom.swap_bytes())));
                }
            }
        } else {
            match self.format {
                Format::Pcapng { big_endian, .. } => big_endian,
                _ => false,
            }
        };
        let btype = if big_endian { raw_type.swap_bytes() } else { raw_type };
        let len = rd32(buf, 4, big_endian) as usize;
        let min = if btype == PCAPNG_SHB { 28 } else { 12 };
        if len < min || len % 4 != 0 {
            return Err(self.err(4, "pcapng block length (a multiple of 4, at least 12)", Found::Length(len)));
        }
        if len > MAX_CAPTURE_BLOCK_LEN {
            return Err(self.err(4, "pcapng block length of at most 16 MiB", Found::Length(len)));
        }
        if buf.len() < len {
            return Ok(Step::Need(len));
        }
        let block = &buf[..len];
        if rd32(block, len - 4, big_endian) as usize != len {
            return Err(self.err(
                len - 4,
                "trailing block length equal to the leading one",
                Found::Length(rd32(block, len - 4, big_endian) as usize),
            ));
        }
        let packet = match btype {
            PCAPNG_SHB => {
                pcap_parser::parse_sectionheaderblock(block)
                    .map_err(|_| self.err(0, "well-formed section header block", Found::Other("bad options")))?;
                let major = rd16(block, 12, big_endian);
                if major != 1 {
                    return Err(self.err(12, "pcapng major version 1", Found::Value(u64::from(major))));
                }
                // A new section: new byte order, interfaces numbered anew.
                self.format = Format::Pcapng { big_endian, interfaces: Vec::new() };
                None
            }
            PCAPNG_IDB => {
                let parsed = if big_endian {
                    pcap_parser::parse_interfacedescriptionblock_be(block)
                } else {
                    pcap_parser::parse_interfacedescriptionblock_le(block)
                };
                let (_, idb) = parsed
                    .map_err(|_| self.err(0, "well-formed interface description block", Found::Other("bad options")))?;
                let units = idb.ts_resolution().ok_or_else(|| {
                    self.err(0, "if_tsresol of at most 10^19 or 2^63 units per second", Found::Byte(idb.if_tsresol))
                })?;
                let link_type = u32::from(idb.linktype.0 as u16);
                // pcap-parser 0.17 reads if_tsoffset little-endian whatever
                // the section's byte order: read it here.
                let offset = idb
                    .options
                    .iter()
                    .find(|o| o.code == pcap_parser::OptionCode::IfTsoffset)
                    .and_then(|o| o.value().get(..8))
                    .map(|v| {
                        let mut w = [0u8; 8];
                        w.copy_from_slice(v);
                        if big_endian {
                            i64::from_be_bytes(w)
                        } else {
                            i64::from_le_bytes(w)
                        }
                    })
                    .unwrap_or(0);
                let iface = Interface { link_type, units, offset, snaplen: idb.snaplen };
                let count = match &self.format {
                    Format::Pcapng { interfaces, .. } => interfaces.len(),
                    _ => 0,
                };
                if count >= MAX_CAPTURE_INTERFACES {
                    return Err(self.err(0, "at most 4096 interfaces per section", Found::Length(count + 1)));
                }
                if let Format::Pcapng { interfaces, .. } = &mut self.format {
                    interfaces.push(iface);
                }
                self.add_link_type(link_type);
                None
            }
            PCAPNG_EPB => {
                let parsed = if big_endian {
                    pcap_parser::parse_enhancedpacketblock_be(block)
                } else {
                    pcap_parser::parse_enhancedpacketblock_le(block)
                };
                let caplen = rd32(block, 20, big_endian) as usize;
                if caplen > MAX_CAPTURE_PACKET_LEN {
                    return Err(self.err(20, "packet capture length of at most 262144", Found::Length(caplen)));
                }
                let (_, epb) = parsed.map_err(|_| {
                    self.err(0, "well-formed enhanced packet block", Found::Other("inconsistent lengths or options"))
                })?;
                let iface = self.interface(epb.if_id, 8)?;
                let data = epb.data.get(..caplen).unwrap_or(epb.data);
                self.frames += 1;
                Some(RawPacket {
                    frame: self.frames,
                    time: pcapng_time(epb.ts_high, epb.ts_low, iface.units, iface.offset),
                    link_type: iface.link_type,
                    interface: epb.if_id,
                    data,
                    orig_len: epb.origlen,
                })
            }
            PCAPNG_SPB => {
                let parsed = if big_endian {
                    pcap_parser::parse_simplepacketblock_be(block)
                } else {
                    pcap_parser::parse_simplepacketblock_le(block)
                };
                let (_, spb) = parsed.map_err(|_| {
                    self.err(0, "well-formed simple packet block", Found::Other("inconsistent lengths"))
                })?;
                let iface = self.interface(0, 0)?;
                // Captured length: the original length, cut by the
                // interface snaplen and by the block.
                let mut caplen = spb.origlen as usize;
                if iface.snaplen != 0 {
                    caplen = caplen.min(iface.snaplen as usize);
                }
                let data = spb.data.get(..caplen).unwrap_or(spb.data);
                self.frames += 1;
                Some(RawPacket {
                    frame: self.frames,
                    time: Timestamp::default(),
                    link_type: iface.link_type,
                    interface: 0,
                    data,
                    orig_len: spb.origlen,
                })
            }
            PCAPNG_PB => {
                // Obsolete Packet Block (pcap-parser treats it as unknown):
                // if_id u16, drops u16, ts high, ts low, caplen, len, data.
                if len < 32 {
                    return Err(self.err(4, "packet block length of at least 32", Found::Length(len)));
                }
                let if_id = u32::from(rd16(block, 8, big_endian));
                let caplen = rd32(block, 20, big_endian) as usize;
                let origlen = rd32(block, 24, big_endian);
                let data = block
                    .get(28..28 + caplen)
                    .filter(|_| 28 + caplen <= len - 4)
                    .ok_or_else(|| self.err(20, "packet block caplen within the block", Found::Length(caplen)))?;
                let iface = self.interface(if_id, 8)?;
                self.frames += 1;
                Some(RawPacket {
                    frame: self.frames,
                    time: pcapng_time(
                        rd32(block, 12, big_endian),
                        rd32(block, 16, big_endian),
                        iface.units,
                        iface.offset,
                    ),
                    link_type: iface.link_type,
                    interface: if_id,
                    data,
                    orig_len: origlen,
                })
            }
            // Name resolution, statistics, decryption secrets, custom and
            // unknown blocks: skipped (not frames).
            _ => None,
        };
        if !matches!(self.format, Format::Pcapng { .. }) {
            return Err(self.err(0, "pcapng section header block first", Found::Word(btype)));
        }
        Ok(Step::Record { len, packet })
    }

    fn interface(&self, id: u32, rel: usize) -> Result<Interface> {
        match &self.format {
            Format::Pcapng { interfaces, .. } => interfaces.get(id as usize).copied().ok_or_else(|| {
                self.err(rel, "interface id of an earlier interface description block", Found::Value(u64::from(id)))
            }),
            _ => Err(self.err(0, "pcapng section header block first", Found::Other("packet block"))),
        }
    }
}

/// Common link types by name (for summaries and errors).
pub fn link_type_name(lt: u32) -> &'static str {
    match lt {
        0 => "NULL",
        1 => "ETHERNET",
        12 | 14 | 101 => "RAW",
        108 => "LOOP",
        113 => "LINUX_SLL",
        228 => "IPV4",
        229 => "IPV6",
        276 => "LINUX_SLL2",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_record_agrees_with_pcap_parser() {
        // Records of assorted header words and lengths in both byte
        // orders, as `pcap_record` hands them over (caplen octets after
        // the header): the hand-read fields are pcap-parser's.
        let words = [0u32, 1, 0x7f, 0x80, 0xff, 0x100, 0x1234_5678, 0x8000_0000, 0xffff_fffe, u32::MAX];
        let mut compared = 0;
        for big_endian in [false, true] {
            let put = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
            for (i, &w) in words.iter().enumerate() {
                for caplen in [0usize, 1, 3, 60, 1514] {
                    let mut rec = Vec::new();
                    rec.extend_from_slice(&put(w));
                    rec.extend_from_slice(&put(words[(i + 3) % words.len()]));
                    rec.extend_from_slice(&put(caplen as u32));
                    rec.extend_from_slice(&put(words[(i + 7) % words.len()]));
                    rec.extend((0..caplen).map(|k| (k * 31 + i) as u8));
                    let parsed = if big_endian {
                        pcap_parser::parse_pcap_frame_be(&rec)
                    } else {
                        pcap_parser::parse_pcap_frame(&rec)
                    };
                    let (_, b) = parsed.unwrap();
                    let want = Record { ts_sec: b.ts_sec, ts_frac: b.ts_usec, orig_len: b.origlen, data: b.data };
                    assert_eq!(standard_record(&rec, big_endian), want, "{big_endian} {w:x} {caplen}");
                    compared += 1;
                }
            }
        }
        assert_eq!(compared, 100);
    }
}
