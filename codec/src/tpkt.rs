//! RFC 1006 TPKT: `03 00 LL LL` followed by exactly one TPDU.
//!
//! A TCP stream is framed on the length field, never on segment boundaries;
//! [`frame_len`] tells a stream reader how long the next TPKT is.

use crate::error::{Error, Found, Layer, Result};

/// Octets in the TPKT header.
pub const HEADER_LEN: usize = 4;
/// The only version RFC 1006 defines.
pub const VERSION: u8 = 3;
/// Smallest meaningful TPKT: header + LI + code + one octet (a DT's EOT).
pub const MIN_LEN: usize = 7;

/// A TPKT; `payload` is the TPDU it frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tpkt<'a> {
    pub version: u8,
    pub reserved: u8,
    pub payload: &'a [u8],
}

impl serde::Serialize for Tpkt<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Tpkt", 2)?;
        st.serialize_field("version", &self.version)?;
        st.serialize_field("length", &self.length())?;
        st.end()
    }
}

impl<'a> Tpkt<'a> {
    /// A version-3 TPKT around `payload`.
    pub const fn new(payload: &'a [u8]) -> Self {
        Tpkt { version: VERSION, reserved: 0, payload }
    }
    /// Value of the length field (header included).
    pub fn length(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }
    /// Octets [`emit`] writes.
    pub fn encoded_len(&self) -> usize {
        self.length()
    }
}

/// The total length of the TPKT at the start of `buf`, once its header is
/// there: `Ok(None)` if fewer than 4 octets are available, an error if the
/// header is not a TPKT header (version != 3 or length < 7), in which case
/// the TCP stream cannot be resynchronised by the standard.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    check_header(buf).map(Some)
}

fn check_header(buf: &[u8]) -> Result<usize> {
    // Plain indexing (not nom): this runs for every TPKT of a stream.
    let [version, _reserved, h, l, ..] = *buf else {
        return Err(Error::eof(Layer::Tpkt, buf.len(), "TPKT header"));
    };
    if version != VERSION {
        return Err(Error::new(Layer::Tpkt, 0, "TPKT version 3", Found::Byte(version)));
    }
    let len = usize::from(u16::from_be_bytes([h, l]));
    if len < MIN_LEN {
        return Err(Error::new(Layer::Tpkt, 2, "TPKT length of at least 7", Found::Length(len)));
    }
    Ok(len)
}

/// Parse one TPKT from the front of `input`; returns it and what follows.
pub fn parse(input: &[u8]) -> Result<(Tpkt<'_>, &[u8])> {
    if input.len() < HEADER_LEN {
        return Err(Error::eof(Layer::Tpkt, input.len(), "TPKT header"));
    }
    let len = check_header(input)?;
    if input.len() < len {
        return Err(Error::eof(Layer::Tpkt, input.len(), "TPKT payload of the length in the header"));
    }
    let tpkt = Tpkt { version: input[0], reserved: input[1], payload: &input[HEADER_LEN..len] };
    Ok((tpkt, &input[len..]))
}

/// Parse a TPKT that must fill `input` exactly.
pub fn parse_exact(input: &[u8]) -> Result<Tpkt<'_>> {
    let (t, rest) = parse(input)?;
    if !rest.is_empty() {
        return Err(Error::new(Layer::Tpkt, input.len() - rest.len(), "end of TPKT", Found::Trailing(rest.len())));
    }
    Ok(t)
}

/// Append the TPKT to `out`, version and reserved octets as they are in
/// `tpkt` (what was read is what is written; RFC 1006 senders write 0,
/// receivers ignore it). Payloads over 65 531 octets cannot be framed; the
/// length field then saturates (callers segment with DT/EOT first).
pub fn emit(tpkt: &Tpkt<'_>, out: &mut Vec<u8>) {
    let len = (tpkt.payload.len() + HEADER_LEN).min(u16::MAX as usize) as u16;
    out.extend_from_slice(&[tpkt.version, tpkt.reserved]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(tpkt.payload);
}

/// Append just the header of a TPKT whose payload is `payload_len` octets.
pub fn emit_header(payload_len: usize, out: &mut Vec<u8>) {
    let len = (payload_len + HEADER_LEN).min(u16::MAX as usize) as u16;
    out.extend_from_slice(&[VERSION, 0]);
    out.extend_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_round_trips() {
        let b = [3, 0, 0, 9, 2, 0xf0, 0x80, 0x15, 0x00, 0xaa];
        let (t, rest) = parse(&b).unwrap();
        assert_eq!(t.payload, &[2, 0xf0, 0x80, 0x15, 0]);
        assert_eq!(rest, &[0xaa]);
        let mut out = Vec::new();
        emit(&t, &mut out);
        assert_eq!(out, &b[..9]);
        assert_eq!(frame_len(&b[..3]).unwrap(), None);
        assert_eq!(frame_len(&b).unwrap(), Some(9));
        // A non-zero reserved octet survives the round trip (fuzz finding).
        let (t, _) = parse(&[3, 2, 0, 7, 2, 0xf0, 0x80]).unwrap();
        let mut out = Vec::new();
        emit(&t, &mut out);
        assert_eq!(out, [3, 2, 0, 7, 2, 0xf0, 0x80]);
    }

    #[test]
    fn rejects_bad_headers_with_offsets() {
        let e = parse(&[4, 0, 0, 9]).unwrap_err();
        assert_eq!(e.to_string(), "tpkt @ 0x0: expected TPKT version 3, found 0x04");
        let e = parse(&[3, 0, 0, 6]).unwrap_err();
        assert_eq!((e.offset, e.found), (2, Found::Length(6)));
        let e = parse(&[3, 0, 0, 9, 1]).unwrap_err();
        assert_eq!((e.offset, e.found), (5, Found::EndOfInput));
        assert!(parse_exact(&[3, 0, 0, 7, 2, 0xf0, 0x80, 0]).is_err());
    }
}
