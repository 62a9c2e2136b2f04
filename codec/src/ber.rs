//! BER reading and writing shared by the presentation, ACSE, RTSE, X.410 and
//! P1 modules.
//!
//! Headers (identifier and length octets, long-form tags and lengths,
//! indefinite lengths) are read with `asn1-rs`; everything above the header is
//! ours so that every error carries a layer and an offset. Reading accepts
//! what real peers send: indefinite lengths anywhere, constructed strings
//! (joined), non-minimal lengths. Writing emits one canonical form: definite,
//! minimal lengths, low-tag form where possible.
//!
//! Offsets: a [`Reader`] knows the offset of its first byte relative to the
//! slice the layer's `parse` was given (`base`), so every [`Tlv`] and every
//! error it yields is relative to that slice.

use crate::error::{Error, Found, Layer, Result};
use crate::limits::{MAX_DEPTH, MAX_INT_LEN};
use asn1_rs::FromBer;
use core::fmt;
use std::borrow::Cow;

/// BER tag class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Universal = 0,
    Application = 1,
    Context = 2,
    Private = 3,
}

/// A BER tag: class, primitive/constructed, number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag {
    pub class: Class,
    pub constructed: bool,
    pub number: u32,
}

impl Tag {
    pub const fn new(class: Class, constructed: bool, number: u32) -> Self {
        Tag { class, constructed, number }
    }
    /// UNIVERSAL primitive tag.
    pub const fn univ(number: u32) -> Self {
        Tag::new(Class::Universal, false, number)
    }
    /// UNIVERSAL constructed tag (SEQUENCE = 16, SET = 17, EXTERNAL = 8).
    pub const fn univ_c(number: u32) -> Self {
        Tag::new(Class::Universal, true, number)
    }
    /// Context-specific primitive `[n] IMPLICIT` of a primitive type.
    pub const fn ctx(number: u32) -> Self {
        Tag::new(Class::Context, false, number)
    }
    /// Context-specific constructed `[n]` (explicit, or implicit SET/SEQUENCE).
    pub const fn ctx_c(number: u32) -> Self {
        Tag::new(Class::Context, true, number)
    }
    /// APPLICATION primitive.
    pub const fn app(number: u32) -> Self {
        Tag::new(Class::Application, false, number)
    }
    /// APPLICATION constructed.
    pub const fn app_c(number: u32) -> Self {
        Tag::new(Class::Application, true, number)
    }
    /// Same class and number, either form (for string types that may be
    /// sent constructed).
    pub const fn same_type(self, other: Tag) -> bool {
        self.class as u8 == other.class as u8 && self.number == other.number
    }
}

pub const INTEGER: Tag = Tag::univ(2);
pub const BIT_STRING: Tag = Tag::univ(3);
pub const OCTET_STRING: Tag = Tag::univ(4);
pub const NULL: Tag = Tag::univ(5);
pub const OID: Tag = Tag::univ(6);
pub const OBJECT_DESCRIPTOR: Tag = Tag::univ(7);
pub const EXTERNAL: Tag = Tag::univ_c(8);
pub const ENUMERATED: Tag = Tag::univ(10);
pub const SEQUENCE: Tag = Tag::univ_c(16);
pub const SET: Tag = Tag::univ_c(17);
pub const NUMERIC_STRING: Tag = Tag::univ(18);
pub const PRINTABLE_STRING: Tag = Tag::univ(19);
pub const T61_STRING: Tag = Tag::univ(20);
pub const IA5_STRING: Tag = Tag::univ(22);
pub const UTC_TIME: Tag = Tag::univ(23);

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Show the identifier octet for low tags, as people read hex dumps.
        if self.number < 31 {
            let b = (self.class as u8) << 6 | (self.constructed as u8) << 5 | self.number as u8;
            return write!(f, "0x{b:02x}");
        }
        let c = match self.class {
            Class::Universal => "UNIVERSAL ",
            Class::Application => "APPLICATION ",
            Class::Context => "",
            Class::Private => "PRIVATE ",
        };
        write!(f, "[{c}{}]{}", self.number, if self.constructed { " constructed" } else { "" })
    }
}

/// One decoded TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: Tag,
    /// Offset of the identifier octet, relative to the layer's input.
    pub offset: usize,
    /// Offset of the first content octet, relative to the layer's input.
    pub content_offset: usize,
    /// The content octets (for an indefinite length: up to, not including,
    /// the end-of-contents octets).
    pub content: &'a [u8],
    /// Whether the length was indefinite.
    pub indefinite: bool,
    /// The whole TLV, header and end-of-contents included.
    pub raw: &'a [u8],
    /// Nesting depth of this TLV (0 at the layer's top level).
    pub depth: usize,
}

/// A cursor over consecutive TLVs.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
    depth: usize,
    layer: Layer,
}

impl<'a> Reader<'a> {
    /// A reader over a layer's whole input (offsets relative to `data`).
    pub fn new(layer: Layer, data: &'a [u8]) -> Self {
        Reader { data, pos: 0, base: 0, depth: 0, layer }
    }

    /// A reader over `data` whose first byte sits at `base` in the layer's
    /// input, at nesting `depth`.
    pub fn at(layer: Layer, data: &'a [u8], base: usize, depth: usize) -> Self {
        Reader { data, pos: 0, base, depth, layer }
    }

    pub fn layer(&self) -> Layer {
        self.layer
    }
    /// Whether every TLV has been read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }
    /// Offset (relative to the layer's input) of the next unread byte.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }
    /// The unread bytes.
    pub fn rest(&self) -> &'a [u8] {
        &self.data[self.pos.min(self.data.len())..]
    }

    /// An error at the reader's current position.
    pub fn err(&self, expected: &'static str, found: Found) -> Error {
        Error::new(self.layer, self.offset(), expected, found)
    }

    /// The tag of the next TLV without consuming it.
    pub fn peek_tag(&self) -> Option<Tag> {
        let rest = self.rest();
        if rest.is_empty() {
            return None;
        }
        read_header(self.layer, rest).ok().map(|h| h.tag)
    }

    /// Read the next TLV; `what` names it in errors.
    ///
    /// The common TLV (a header [`read_header_fast`] reads, a definite
    /// length within the input) is read here, without the error paths;
    /// anything else, errors included, by [`Reader::read_general`], which
    /// gives the same TLV wherever this does (test
    /// `read_agrees_with_read_general`). The error paths made every read
    /// save and restore six registers and build its TLV on the stack: 73
    /// instructions a TLV.
    #[inline]
    pub fn read(&mut self, what: &'static str) -> Result<Tlv<'a>> {
        let rest = self.rest();
        if self.depth <= MAX_DEPTH {
            if let Some(Header { tag, header_len, len: Some(n) }) = read_header_fast(rest) {
                let total = header_len + n;
                if let (Some(content), Some(raw)) = (rest.get(header_len..total), rest.get(..total)) {
                    let start = self.offset();
                    self.pos += total;
                    return Ok(Tlv {
                        tag,
                        offset: start,
                        content_offset: start + header_len,
                        content,
                        indefinite: false,
                        raw,
                        depth: self.depth,
                    });
                }
            }
        }
        self.read_general(what)
    }

    /// [`Reader::read`] for every input: indefinite lengths, the headers
    /// asn1-rs reads, and every error.
    #[inline(never)]
    fn read_general(&mut self, what: &'static str) -> Result<Tlv<'a>> {
        let rest = self.rest();
        let start = self.offset();
        if rest.is_empty() {
            return Err(Error::eof(self.layer, start, what));
        }
        if self.depth > MAX_DEPTH {
            return Err(Error::new(self.layer, start, what, Found::Depth(self.depth)));
        }
        let h = read_header(self.layer, rest).map_err(|e| e.shift(start))?;
        let hl = h.header_len;
        let (content, total, indefinite) = match h.len {
            Some(n) => {
                if rest.len() - hl < n {
                    return Err(Error::new(
                        self.layer,
                        start + 1,
                        "length within the enclosing value",
                        Found::Length(n),
                    ));
                }
                (&rest[hl..hl + n], hl + n, false)
            }
            None => {
                let n = find_eoc(self.layer, &rest[hl..], self.depth + 1).map_err(|e| e.shift(start + hl))?;
                (&rest[hl..hl + n], hl + n + 2, true)
            }
        };
        self.pos += total;
        Ok(Tlv {
            tag: h.tag,
            offset: start,
            content_offset: start + hl,
            content,
            indefinite,
            raw: &rest[..total],
            depth: self.depth,
        })
    }

    /// Read the next TLV and require `tag`.
    pub fn expect(&mut self, tag: Tag, what: &'static str) -> Result<Tlv<'a>> {
        let at = self.offset();
        let t = self.read(what)?;
        if t.tag != tag {
            return Err(Error::new(self.layer, at, what, Found::Tag(t.tag)));
        }
        Ok(t)
    }

    /// Read the next TLV if it has `tag`.
    pub fn optional(&mut self, tag: Tag, what: &'static str) -> Result<Option<Tlv<'a>>> {
        // The common header decides inline (as `peek_tag` would: it reads
        // the same header); `peek_tag` handles the rest.
        match read_header_fast(self.rest()) {
            Some(h) if h.tag != tag => return Ok(None),
            Some(_) => return self.read(what).map(Some),
            None => {}
        }
        if self.peek_tag() == Some(tag) {
            self.read(what).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Require that nothing is left.
    pub fn finish(&self, what: &'static str) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.err(what, Found::Trailing(self.data.len() - self.pos)))
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Header {
    tag: Tag,
    header_len: usize,
    len: Option<usize>,
}

#[inline]
fn read_header(layer: Layer, data: &[u8]) -> Result<Header> {
    if let Some(h) = read_header_fast(data) {
        return Ok(h);
    }
    read_header_asn1rs(layer, data)
}

/// The common headers, decoded without asn1-rs (a quarter of a token
/// stack's decode time went to asn1-rs's general header parser): a
/// low-form tag (number < 31) with a short-form length, an indefinite
/// length on a constructed value, or a long-form length of one or two
/// octets. `None` for anything else (high tag numbers, longer length
/// forms, indefinite length on a primitive value, too few octets), which
/// [`read_header_asn1rs`] reads or rejects. Both give the same header for
/// every input the fast path accepts (X.690 8.1.2.2, 8.1.3.3-8.1.3.6; a
/// non-minimal long form is accepted in BER, as asn1-rs does).
#[inline]
fn read_header_fast(data: &[u8]) -> Option<Header> {
    let (&id, rest) = data.split_first()?;
    if id & 0x1f == 0x1f {
        return None;
    }
    let class = match id >> 6 {
        0 => Class::Universal,
        1 => Class::Application,
        2 => Class::Context,
        _ => Class::Private,
    };
    let constructed = id & 0x20 != 0;
    let tag = Tag::new(class, constructed, u32::from(id & 0x1f));
    let (header_len, len) = match *rest {
        [l, ..] if l < 0x80 => (2, Some(usize::from(l))),
        [0x80, ..] if constructed => (2, None),
        [0x81, n, ..] => (3, Some(usize::from(n))),
        [0x82, h, l, ..] => (4, Some(usize::from(u16::from_be_bytes([h, l])))),
        _ => return None,
    };
    Some(Header { tag, header_len, len })
}

#[cold]
#[inline(never)]
fn read_header_asn1rs(layer: Layer, data: &[u8]) -> Result<Header> {
    match asn1_rs::Header::from_ber(data) {
        Ok((rest, h)) => {
            let class = match h.class() {
                asn1_rs::Class::Universal => Class::Universal,
                asn1_rs::Class::Application => Class::Application,
                asn1_rs::Class::ContextSpecific => Class::Context,
                asn1_rs::Class::Private => Class::Private,
            };
            let tag = Tag::new(class, h.is_constructed(), h.tag().0);
            let len = match h.length() {
                asn1_rs::Length::Definite(n) => Some(n),
                asn1_rs::Length::Indefinite => None,
            };
            Ok(Header { tag, header_len: data.len() - rest.len(), len })
        }
        Err(e) => {
            // Work out where the header broke, for the offset.
            let what = match e {
                asn1_rs::nom::Err::Incomplete(_) => {
                    return Err(Error::eof(layer, data.len(), "BER identifier and length octets"))
                }
                asn1_rs::nom::Err::Error(asn1_rs::Error::ConstructExpected)
                | asn1_rs::nom::Err::Failure(asn1_rs::Error::ConstructExpected) => {
                    "definite length on a primitive value"
                }
                _ => "BER identifier and length octets",
            };
            let off = if (data[0] & 0x1f) == 0x1f { 1 } else { 1.min(data.len()) };
            Err(Error::new(layer, off, what, data.get(off).map_or(Found::EndOfInput, |b| Found::Byte(*b))))
        }
    }
}

/// Length of indefinite-length content: the octets before the matching
/// end-of-contents. Iterative, bounded by [`MAX_DEPTH`].
fn find_eoc(layer: Layer, data: &[u8], depth: usize) -> Result<usize> {
    let mut pos = 0usize;
    let mut open = 1usize; // indefinite values not yet closed
    loop {
        if depth + open > MAX_DEPTH + 1 {
            return Err(Error::new(layer, pos, "end-of-contents", Found::Depth(depth + open)));
        }
        let rest = &data[pos..];
        if rest.len() < 2 {
            return Err(Error::eof(layer, data.len(), "end-of-contents octets 00 00"));
        }
        if rest[0] == 0 && rest[1] == 0 {
            open -= 1;
            if open == 0 {
                return Ok(pos);
            }
            pos += 2;
            continue;
        }
        let h = read_header(layer, rest).map_err(|e| e.shift(pos))?;
        match h.len {
            Some(n) => {
                if rest.len() - h.header_len < n {
                    return Err(Error::new(layer, pos + 1, "length within the enclosing value", Found::Length(n)));
                }
                pos += h.header_len + n;
            }
            None => {
                open += 1;
                pos += h.header_len;
            }
        }
    }
}

impl<'a> Tlv<'a> {
    /// A reader over this TLV's content (for constructed values).
    pub fn reader(&self, layer: Layer) -> Reader<'a> {
        Reader::at(layer, self.content, self.content_offset, self.depth + 1)
    }

    /// An error about this TLV's content.
    pub fn err(&self, layer: Layer, expected: &'static str, found: Found) -> Error {
        Error::new(layer, self.content_offset, expected, found)
    }

    fn require_primitive(&self, layer: Layer, what: &'static str) -> Result<()> {
        if self.tag.constructed {
            Err(Error::new(layer, self.offset, what, Found::Tag(self.tag)))
        } else {
            Ok(())
        }
    }

    /// INTEGER / ENUMERATED content as i64 (at most [`MAX_INT_LEN`] octets).
    pub fn int(&self, layer: Layer, what: &'static str) -> Result<i64> {
        self.require_primitive(layer, what)?;
        let c = self.content;
        if c.is_empty() {
            return Err(self.err(layer, what, Found::Length(0)));
        }
        if c.len() > MAX_INT_LEN {
            return Err(self.err(layer, what, Found::Length(c.len())));
        }
        let mut v: i64 = if c[0] & 0x80 != 0 { -1 } else { 0 };
        for &b in c {
            v = (v << 8) | i64::from(b);
        }
        Ok(v)
    }

    /// INTEGER that must be in `0..=max`.
    pub fn uint(&self, layer: Layer, what: &'static str, max: u64) -> Result<u64> {
        let v = self.int(layer, what)?;
        if v < 0 || v as u64 > max {
            return Err(self.err(layer, what, Found::Value(v as u64)));
        }
        Ok(v as u64)
    }

    /// NULL: empty content.
    pub fn null(&self, layer: Layer, what: &'static str) -> Result<()> {
        self.require_primitive(layer, what)?;
        if self.content.is_empty() {
            Ok(())
        } else {
            Err(self.err(layer, what, Found::Length(self.content.len())))
        }
    }

    /// BOOLEAN.
    pub fn boolean(&self, layer: Layer, what: &'static str) -> Result<bool> {
        self.require_primitive(layer, what)?;
        match self.content {
            [b] => Ok(*b != 0),
            c => Err(self.err(layer, what, Found::Length(c.len()))),
        }
    }

    /// String-like content (OCTET STRING and the character strings), joining
    /// the segments of a constructed encoding. Borrowed when primitive.
    pub fn octets(&self, layer: Layer, what: &'static str) -> Result<Octets<'a>> {
        if !self.tag.constructed {
            return Ok(Octets::borrowed(self.content));
        }
        let mut out = Vec::new();
        join_segments(layer, self, what, &mut out)?;
        Ok(Octets(Cow::Owned(out)))
    }

    /// BIT STRING: (unused bits, octets); constructed encodings joined.
    pub fn bits(&self, layer: Layer, what: &'static str) -> Result<BitString<'a>> {
        let whole = self.octets(layer, what)?;
        let Some(&unused) = whole.first() else {
            return Err(self.err(layer, what, Found::Length(0)));
        };
        if unused > 7 || (unused > 0 && whole.len() == 1) {
            return Err(self.err(layer, what, Found::Byte(unused)));
        }
        let data = match whole.0 {
            Cow::Borrowed(b) => Octets::borrowed(&b[1..]),
            Cow::Owned(v) => Octets(Cow::Owned(v[1..].to_vec())),
        };
        Ok(BitString { unused, data })
    }

    /// OBJECT IDENTIFIER (content kept raw, validated).
    pub fn oid(&self, layer: Layer, what: &'static str) -> Result<Oid<'a>> {
        self.require_primitive(layer, what)?;
        let c = self.content;
        if c.is_empty() || c[c.len() - 1] & 0x80 != 0 {
            return Err(self.err(layer, what, Found::Other("malformed object identifier")));
        }
        Ok(Oid(Cow::Borrowed(c)))
    }
}

fn join_segments(layer: Layer, t: &Tlv<'_>, what: &'static str, out: &mut Vec<u8>) -> Result<()> {
    let mut r = t.reader(layer);
    while !r.is_empty() {
        let seg = r.read(what)?;
        if !seg.tag.same_type(Tag::new(Class::Universal, false, 4)) && !seg.tag.same_type(t.tag) {
            // X.690 8.7.3.2: segments are OCTET STRINGs (or of the outer type).
            if seg.tag.number != 4 || seg.tag.class != Class::Universal {
                return Err(Error::new(layer, seg.offset, what, Found::Tag(seg.tag)));
            }
        }
        if seg.tag.constructed {
            join_segments(layer, &seg, what, out)?;
        } else {
            out.extend_from_slice(seg.content);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Value types shared by the BER layers.

/// Octets borrowed from the input (or joined from a constructed string).
/// Shown and serialised as lower-case hex.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Octets<'a>(pub Cow<'a, [u8]>);

impl<'a> Octets<'a> {
    pub const fn borrowed(b: &'a [u8]) -> Self {
        Octets(Cow::Borrowed(b))
    }
    pub fn owned(v: Vec<u8>) -> Octets<'static> {
        Octets(Cow::Owned(v))
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// The octets as text if they are printable ASCII (for display).
    pub fn as_text(&self) -> Option<&str> {
        let s = core::str::from_utf8(&self.0).ok()?;
        s.bytes().all(|b| (0x20..0x7f).contains(&b)).then_some(s)
    }
    pub fn into_owned(self) -> Octets<'static> {
        Octets(Cow::Owned(self.0.into_owned()))
    }
}

impl core::ops::Deref for Octets<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Octets<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Octets(\"{}\")", crate::hex::encode(&self.0))
    }
}

impl serde::Serialize for Octets<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(&crate::hex::encode(&self.0))
    }
}

/// A BIT STRING value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub struct BitString<'a> {
    pub unused: u8,
    pub data: Octets<'a>,
}

impl BitString<'_> {
    /// Whether named bit `n` (bit 0 = most significant bit of the first octet) is set.
    pub fn bit(&self, n: usize) -> bool {
        self.data.get(n / 8).is_some_and(|b| b & (0x80 >> (n % 8)) != 0)
    }
    pub fn into_owned(self) -> BitString<'static> {
        BitString { unused: self.unused, data: self.data.into_owned() }
    }
}

/// An OBJECT IDENTIFIER, kept as its content octets; shown dotted.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Oid<'a>(pub Cow<'a, [u8]>);

/// No content octets (not a valid OID): the filler of unused
/// [`crate::inline::InlineList`] slots.
impl Default for Oid<'_> {
    fn default() -> Self {
        Oid(Cow::Borrowed(&[]))
    }
}

impl<'a> Oid<'a> {
    /// From content octets known to be valid (constants).
    pub const fn from_raw(raw: &'a [u8]) -> Self {
        Oid(Cow::Borrowed(raw))
    }
    /// From arcs (at least two; the first 0..=2).
    pub fn from_arcs(arcs: &[u64]) -> Oid<'static> {
        let mut v = Vec::new();
        let first = arcs.first().copied().unwrap_or(0) * 40 + arcs.get(1).copied().unwrap_or(0);
        push_base128(&mut v, first);
        for &a in arcs.iter().skip(2) {
            push_base128(&mut v, a);
        }
        Oid(Cow::Owned(v))
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// The arcs (a u64 per arc; arcs beyond u64 saturate).
    pub fn arcs(&self) -> impl Iterator<Item = u64> + '_ {
        let mut first = true;
        let mut pending: Option<u64> = None;
        let mut i = 0usize;
        let raw = &self.0;
        core::iter::from_fn(move || {
            if let Some(p) = pending.take() {
                return Some(p);
            }
            if i >= raw.len() {
                return None;
            }
            let mut v: u64 = 0;
            while i < raw.len() {
                let b = raw[i];
                i += 1;
                v = v.saturating_mul(128).saturating_add(u64::from(b & 0x7f));
                if b & 0x80 == 0 {
                    break;
                }
            }
            if first {
                first = false;
                let (a, b) = if v < 40 {
                    (0, v)
                } else if v < 80 {
                    (1, v - 40)
                } else {
                    (2, v - 80)
                };
                pending = Some(b);
                return Some(a);
            }
            Some(v)
        })
    }
    pub fn into_owned(self) -> Oid<'static> {
        Oid(Cow::Owned(self.0.into_owned()))
    }
}

fn push_base128(v: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 10];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = (n & 0x7f) as u8 | if i == tmp.len() - 1 { 0 } else { 0x80 };
        n >>= 7;
        if n == 0 {
            break;
        }
    }
    v.extend_from_slice(&tmp[i..]);
}

impl fmt::Display for Oid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.arcs().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Oid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({self})")
    }
}

impl serde::Serialize for Oid<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

// ---------------------------------------------------------------------------
// Writing: canonical definite-length BER.

/// Write identifier octets for `tag`.
pub fn write_tag(out: &mut Vec<u8>, tag: Tag) {
    let lead = (tag.class as u8) << 6 | (tag.constructed as u8) << 5;
    if tag.number < 31 {
        out.push(lead | tag.number as u8);
    } else {
        out.push(lead | 0x1f);
        push_base128(out, u64::from(tag.number));
    }
}

/// Write a definite length in minimal form.
pub fn write_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Number of octets [`write_len`] writes for `len`.
pub const fn len_len(len: usize) -> usize {
    if len < 0x80 {
        1
    } else {
        1 + (usize::BITS as usize / 8 - len.leading_zeros() as usize / 8)
    }
}

/// Write a TLV whose content `f` writes; the length is patched in afterwards
/// (content is moved only when the length needs more than one octet).
pub fn write_tlv(out: &mut Vec<u8>, tag: Tag, f: impl FnOnce(&mut Vec<u8>)) {
    write_tag(out, tag);
    let at = out.len();
    out.push(0);
    f(out);
    let len = out.len() - at - 1;
    if len < 0x80 {
        out[at] = len as u8;
    } else {
        // Long form without a heap buffer: `0x80 | n` then n length octets.
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out[at] = 0x80 | (8 - skip) as u8;
        out.splice(at + 1..at + 1, bytes[skip..].iter().copied());
    }
}

/// Primitive TLV with the given content.
pub fn write_prim(out: &mut Vec<u8>, tag: Tag, content: &[u8]) {
    write_tag(out, tag);
    write_len(out, content.len());
    out.extend_from_slice(content);
}

/// Minimal two's-complement content octets of an INTEGER.
pub fn int_content(v: i64) -> ([u8; 8], usize) {
    let b = v.to_be_bytes();
    let mut i = 0;
    while i < 7 && ((b[i] == 0 && b[i + 1] & 0x80 == 0) || (b[i] == 0xff && b[i + 1] & 0x80 != 0)) {
        i += 1;
    }
    (b, i)
}

/// INTEGER (or ENUMERATED, or an implicitly tagged integer) with `tag`.
pub fn write_int(out: &mut Vec<u8>, tag: Tag, v: i64) {
    let (b, i) = int_content(v);
    write_prim(out, tag, &b[i..]);
}

/// BIT STRING with `tag`.
pub fn write_bits(out: &mut Vec<u8>, tag: Tag, bits: &BitString<'_>) {
    write_tag(out, tag);
    write_len(out, bits.data.len() + 1);
    out.push(bits.unused);
    out.extend_from_slice(&bits.data);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `optional` gives what peeking the tag and then reading gave (its
    /// former body), and leaves the reader at the same place, for every
    /// identifier octet, length form and shortfall, and for a tag that
    /// matches and one that does not.
    #[test]
    fn optional_agrees_with_peek_then_read() {
        let body: Vec<u8> = (0..300u16).map(|i| (i * 5) as u8).collect();
        for id in 0..=255u8 {
            for len in [&[0x00][..], &[0x03], &[0x80], &[0x81, 0x02], &[0x82, 0x01, 0x00], &[0x83, 0, 0, 1], &[]] {
                for have in [0usize, 2, 3, 260] {
                    let mut input = vec![id];
                    input.extend_from_slice(len);
                    input.extend_from_slice(&body[..have]);
                    input.extend_from_slice(&[0, 0]);
                    let t = read_header(Layer::Acse, &input).map(|h| h.tag).ok();
                    for tag in [t.unwrap_or(INTEGER), Tag::ctx(3), SEQUENCE] {
                        for depth in [0, MAX_DEPTH + 1] {
                            let mut a = Reader::at(Layer::Acse, &input, 3, depth);
                            let mut b = a.clone();
                            let got = a.optional(tag, "value");
                            let want = if b.peek_tag() == Some(tag) { b.read("value").map(Some) } else { Ok(None) };
                            assert_eq!(got, want, "{input:02x?} {tag:?} depth {depth}");
                            assert_eq!(a.pos, b.pos, "{input:02x?}");
                        }
                    }
                }
            }
        }
        assert_eq!(Reader::new(Layer::Acse, &[]).optional(INTEGER, "value"), Ok(None));
    }

    #[test]
    fn read_agrees_with_read_general() {
        // Headers of every identifier octet with short and long lengths,
        // contents that fit, fall one short or run on, at the top level,
        // at the depth limit and past it, from offset 0 and from a later
        // one: `read` and `read_general` give the same TLV or error and
        // leave the reader at the same place.
        let body: Vec<u8> = (0..300u16).map(|i| (i * 7) as u8).collect();
        let mut fast = 0;
        let mut check = |input: &[u8]| {
            for depth in [0, MAX_DEPTH, MAX_DEPTH + 1] {
                for skip in [0, 1] {
                    let mut a = Reader::at(Layer::Acse, input, 5, depth);
                    if skip == 1 && a.read("first").is_err() {
                        continue;
                    }
                    let mut b = a.clone();
                    let (ra, rb) = (a.read("value"), b.read_general("value"));
                    assert_eq!(ra, rb, "{input:02x?} depth {depth}");
                    assert_eq!((a.pos, a.offset()), (b.pos, b.offset()), "{input:02x?}");
                    if ra.is_ok() && !ra.as_ref().is_ok_and(|t| t.indefinite) {
                        fast += 1;
                    }
                }
            }
        };
        for id in 0..=255u8 {
            for n in [0usize, 1, 2, 5, 0x7f, 0x80, 0xff, 0x100, 0x12c] {
                let mut forms = vec![vec![0x82, (n >> 8) as u8, n as u8]];
                if n < 0x80 {
                    forms.push(vec![n as u8]);
                }
                if n < 0x100 {
                    forms.push(vec![0x81, n as u8]);
                }
                for len in forms {
                    for have in [n.saturating_sub(1), n, n + 3] {
                        let mut input = vec![id];
                        input.extend_from_slice(&len);
                        input.extend_from_slice(&body[..have.min(body.len())]);
                        check(&input);
                        let mut twice = input.clone();
                        twice.extend_from_slice(&input);
                        check(&twice);
                    }
                }
            }
            check(&[id]);
            check(&[id, 0x80, 0x04, 0x00, 0x00, 0x00]);
            check(&[id, 0x83, 0x00, 0x00, 0x01, 0xaa]);
            check(&[id | 0x1f, 0x81, 0x01, 0x00]);
        }
        check(&[]);
        assert!(fast > 10_000, "{fast}");
    }

    #[test]
    fn fast_header_path_agrees_with_asn1_rs() {
        // Every identifier octet with every first length octet, and the
        // one- and two-octet long forms with assorted values; plus inputs
        // cut short. Wherever the fast path answers, asn1-rs must answer
        // the same; where it declines, asn1-rs decides.
        let mut answered = 0;
        let mut check = |b: &[u8]| {
            if let Some(h) = read_header_fast(b) {
                answered += 1;
                assert_eq!(Ok(h), read_header_asn1rs(Layer::Rtse, b).map_err(|e| e.to_string()), "{b:02x?}");
            }
        };
        for id in 0..=255u8 {
            for l in 0..=255u8 {
                check(&[id, l, 0x00, 0xff]);
                check(&[id, l, 0x7f]);
                check(&[id, l]);
            }
            for n in [0u16, 1, 0x7f, 0x80, 0xff, 0x100, 0x1234, 0xffff] {
                let [h, l] = n.to_be_bytes();
                check(&[id, 0x81, l]);
                check(&[id, 0x82, h, l]);
                check(&[id, 0x82, h]);
            }
            check(&[id]);
        }
        assert!(answered > 100_000);
        assert_eq!(read_header_fast(&[0x04, 0x80, 0, 0]), None, "indefinite primitive goes to asn1-rs (an error)");
        assert_eq!(read_header_fast(&[0x1f, 0x21, 0x00]), None, "high tag number goes to asn1-rs");
    }

    #[test]
    fn reads_definite_indefinite_and_constructed_strings() {
        // SEQUENCE (indefinite) { OCTET STRING constructed (indefinite) {04 01 61, 04 02 62 63}, INTEGER 5 }
        let b = [0x30, 0x80, 0x24, 0x80, 0x04, 0x01, b'a', 0x04, 0x02, b'b', b'c', 0, 0, 0x02, 0x01, 0x05, 0, 0];
        let mut r = Reader::new(Layer::Rtse, &b);
        let seq = r.expect(SEQUENCE, "SEQUENCE").unwrap();
        assert!(seq.indefinite);
        assert!(r.is_empty());
        let mut inner = seq.reader(Layer::Rtse);
        let s = inner.read("string").unwrap();
        assert_eq!(s.octets(Layer::Rtse, "s").unwrap().as_bytes(), b"abc");
        let i = inner.expect(INTEGER, "int").unwrap();
        assert_eq!(i.offset, 13);
        assert_eq!(i.int(Layer::Rtse, "int").unwrap(), 5);
        inner.finish("end").unwrap();
    }

    #[test]
    fn errors_carry_offsets() {
        let b = [0x30, 0x05, 0x02, 0x01];
        let e = Reader::new(Layer::Acse, &b).read("AARQ").unwrap_err();
        assert_eq!(e.offset, 1);
        let b = [0x30, 0x03, 0x02, 0x05, 0x01];
        let t = Reader::new(Layer::Acse, &b).read("x").unwrap();
        let e = t.reader(Layer::Acse).read("int").unwrap_err();
        assert_eq!((e.offset, e.found), (3, Found::Length(5)));
        let e = Reader::new(Layer::Acse, &[0x30, 0x80, 0x02, 0x01, 0x00]).read("x").unwrap_err();
        assert_eq!(e.found, Found::EndOfInput);
    }

    #[test]
    fn depth_is_bounded() {
        let mut b = Vec::new();
        for _ in 0..200 {
            b.extend_from_slice(&[0x30, 0x80]);
        }
        let e = Reader::new(Layer::Rtse, &b).read("x").unwrap_err();
        assert!(matches!(e.found, Found::Depth(_) | Found::EndOfInput), "{e}");
    }

    #[test]
    fn writes_canonical_lengths_and_integers() {
        let mut out = Vec::new();
        write_tlv(&mut out, SEQUENCE, |o| o.extend_from_slice(&[0u8; 200]));
        assert_eq!(&out[..3], &[0x30, 0x81, 200]);
        assert_eq!(out.len(), 203);
        for (v, enc) in [(0i64, &[0u8][..]), (127, &[0x7f]), (128, &[0, 0x80]), (-1, &[0xff]), (-129, &[0xff, 0x7f])] {
            let mut o = Vec::new();
            write_int(&mut o, INTEGER, v);
            assert_eq!(&o[2..], enc, "{v}");
            let t = Reader::new(Layer::Rtse, &o).read("i").unwrap();
            assert_eq!(t.int(Layer::Rtse, "i").unwrap(), v);
        }
        let mut o = Vec::new();
        write_tag(&mut o, Tag::ctx_c(30));
        assert_eq!(o, [0xbe]);
        for n in [0usize, 127, 128, 255, 256, 65535, 65536] {
            let mut o = Vec::new();
            write_len(&mut o, n);
            assert_eq!(o.len(), len_len(n), "{n}");
        }
    }

    #[test]
    fn oid_round_trip_and_display() {
        let o = Oid::from_arcs(&[2, 6, 0, 2, 12]);
        assert_eq!(o.as_bytes(), &[0x56, 0x00, 0x02, 0x0c]);
        assert_eq!(o.to_string(), "2.6.0.2.12");
        assert_eq!(Oid::from_raw(&[0x52, 0x01, 0x00, 0x01]).to_string(), "2.2.1.0.1");
        assert_eq!(Oid::from_arcs(&[1, 2, 840, 113549]).to_string(), "1.2.840.113549");
    }
}
