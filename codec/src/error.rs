//! One error type for every layer: which layer, where (absolute byte offset in
//! the outermost input), what was expected and what was found.
//!
//! Every parser in this crate reports offsets relative to the slice it was
//! given; a parser that hands a sub-slice to another layer shifts the inner
//! error with [`Error::shift`], so that by the time an error leaves the
//! whole-stack decoder its offset counts from the first byte of the TPKT (or
//! TSDU) the caller passed in.
//!
//! Display: `session @ 0x1c: expected parameter length, found end of input`.

use core::fmt;

/// The layers of the stack, bottom-up, plus capture reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// pcap / pcapng / link / IP / TCP reassembly.
    Capture,
    /// RFC 1006 TPKT header.
    Tpkt,
    /// X.224 / ISO 8073 class 0 TPDUs.
    Cotp,
    /// X.225 session SPDUs.
    Session,
    /// X.226 presentation PPDUs (normal mode).
    Presentation,
    /// X.227 ACSE APDUs.
    Acse,
    /// X.228 RTSE APDUs (normal mode).
    Rtse,
    /// X.410-1984 RTS PDUs.
    X410,
    /// X.411 P1: bind and MTS-APDU labels.
    P1,
}

impl Layer {
    /// The lower-case name used in error messages and in JSON (`"session"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Layer::Capture => "capture",
            Layer::Tpkt => "tpkt",
            Layer::Cotp => "cotp",
            Layer::Session => "session",
            Layer::Presentation => "presentation",
            Layer::Acse => "acse",
            Layer::Rtse => "rtse",
            Layer::X410 => "x410",
            Layer::P1 => "p1",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What stood at the offset instead of what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// The input ended.
    EndOfInput,
    /// An octet that is not allowed here (a code, a flag byte...).
    Byte(u8),
    /// A decoded number that is out of range or not allowed.
    Value(u64),
    /// A length that does not fit (too long for what contains it, or a limit).
    Length(usize),
    /// A BER tag other than the expected one.
    Tag(crate::ber::Tag),
    /// Octets left over after a complete PDU where nothing may follow.
    Trailing(usize),
    /// Nesting deeper than [`crate::limits::MAX_DEPTH`].
    Depth(usize),
    /// Something described in words (e.g. "duplicate member").
    Other(&'static str),
    /// A 32-bit word shown in hex (a file magic, a block type): `0xa1b2c3d4`.
    Word(u32),
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::EndOfInput => f.write_str("end of input"),
            Found::Byte(b) => write!(f, "0x{b:02x}"),
            Found::Value(v) => write!(f, "value {v}"),
            Found::Length(n) => write!(f, "length {n}"),
            Found::Tag(t) => write!(f, "tag {t}"),
            Found::Trailing(n) => write!(f, "{n} trailing octets"),
            Found::Depth(d) => write!(f, "nesting depth {d}"),
            Found::Other(s) => f.write_str(s),
            Found::Word(w) => write!(f, "{w:#010x}"),
        }
    }
}

/// Coarse classification of an [`Error`], derived from what was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The input ended early: more bytes might make it valid.
    Truncated,
    /// A named limit (depth, size, count) was exceeded.
    Limit,
    /// Bytes that no amount of further input makes valid.
    Invalid,
}

/// A decoding error: layer, absolute offset, expectation, finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    /// The layer whose parser failed.
    pub layer: Layer,
    /// Absolute byte offset of the failure in the outermost input.
    pub offset: usize,
    /// What the parser expected at `offset`, in words ("SPDU identifier").
    pub expected: &'static str,
    /// What it found instead.
    pub found: Found,
}

impl Error {
    /// A new error at `offset` (relative to the slice being parsed).
    pub const fn new(layer: Layer, offset: usize, expected: &'static str, found: Found) -> Self {
        Error { layer, offset, expected, found }
    }

    /// Input ended at `offset` while `expected` was being read.
    pub const fn eof(layer: Layer, offset: usize, expected: &'static str) -> Self {
        Error::new(layer, offset, expected, Found::EndOfInput)
    }

    /// Make the offset absolute by adding the offset of the slice this error
    /// was reported against.
    #[must_use]
    pub const fn shift(mut self, base: usize) -> Self {
        self.offset += base;
        self
    }

    /// The kind of error.
    pub const fn kind(&self) -> ErrorKind {
        match self.found {
            Found::EndOfInput => ErrorKind::Truncated,
            Found::Depth(_) => ErrorKind::Limit,
            _ => ErrorKind::Invalid,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} @ {:#x}: expected {}, found {}", self.layer, self.offset, self.expected, self.found)
    }
}

impl std::error::Error for Error {}

/// Result alias used by every parser in the crate.
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_layer_offset_expectation_and_finding() {
        let e = Error::eof(Layer::Session, 0x1c, "parameter length");
        assert_eq!(e.to_string(), "session @ 0x1c: expected parameter length, found end of input");
        assert_eq!(e.shift(4).offset, 0x20);
        assert_eq!(e.kind(), ErrorKind::Truncated);
        let e = Error::new(Layer::Cotp, 5, "TPDU code", Found::Byte(0xff));
        assert_eq!(e.to_string(), "cotp @ 0x5: expected TPDU code, found 0xff");
        assert_eq!(e.kind(), ErrorKind::Invalid);
        let e = Error::new(Layer::Capture, 0, "pcap or pcapng magic", Found::Word(0x1234));
        assert_eq!(e.to_string(), "capture @ 0x0: expected pcap or pcapng magic, found 0x00001234");
    }
}
