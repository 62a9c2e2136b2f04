//! Shared helpers for the rtse/x410/p1 tests: the worked examples' bytes.
#![allow(dead_code)]

use rtse_codec::ber::Reader;
use rtse_codec::hex;
use rtse_codec::Layer;

fn load(name: &str) -> serde_json::Value {
    let path = format!("{}/../corpus/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// Bytes of `examples_bytes.json` entry `ex`/`key`.
pub fn example(ex: &str, key: &str) -> Vec<u8> {
    let v = load("examples_bytes.json");
    hex::decode(v[ex][key].as_str().unwrap_or_else(|| panic!("{ex}/{key}"))).unwrap()
}

/// The asn1tools hex of part `part` of example `ex` (`asn1tools_decodes.json`).
pub fn asn1tools(ex: &str, part: &str) -> (Vec<u8>, String) {
    let v = load("asn1tools_decodes.json");
    let e = v[ex]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["part"].as_str() == Some(part))
        .unwrap_or_else(|| panic!("{ex}: {part}"));
    (hex::decode(e["hex"].as_str().unwrap()).unwrap(), e["decoded"].as_str().unwrap().to_owned())
}

/// The one TLV that starts `skip` octets after the first occurrence of
/// `needle` (hex) in `bytes`.
pub fn tlv_after(bytes: &[u8], needle: &str, skip: usize) -> Vec<u8> {
    let n = hex::decode(needle).unwrap();
    let at = bytes.windows(n.len()).position(|w| w == n).unwrap_or_else(|| panic!("{needle} not found"));
    let mut r = Reader::new(Layer::Rtse, &bytes[at + skip..]);
    r.read("test TLV").unwrap().raw.to_vec()
}

pub fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// Every truncation and every single-octet replacement of `input` through
/// `parse`: never a panic, errors within the input.
pub fn hammer<T>(input: &[u8], parse: impl Fn(&[u8]) -> Result<T, rtse_codec::Error>) -> (usize, usize) {
    let (mut ok, mut err) = (0, 0);
    let mut check = |b: &[u8]| match parse(b) {
        Ok(_) => ok += 1,
        Err(e) => {
            assert!(e.offset <= b.len(), "{e} beyond {} octets: {}", b.len(), hex::encode(b));
            err += 1;
        }
    };
    for n in 0..input.len() {
        check(&input[..n]);
    }
    let mut b = input.to_vec();
    for i in 0..b.len() {
        let orig = b[i];
        for v in 0..=255u8 {
            if v != orig {
                b[i] = v;
                check(&b);
            }
        }
        b[i] = orig;
    }
    (ok, err)
}

/// Other BER encodings of the same value, for "peers send it differently"
/// tests. `depth` limits how deep the rewrite goes (below it the octets are
/// kept: opaque `ANY` values are compared as octets).
#[derive(Clone, Copy, Debug)]
pub enum Variant {
    /// Indefinite lengths on every constructed value.
    Indefinite,
    /// Every length in long form `82 hh ll`.
    LongLengths,
    /// Primitive strings (04, 14, 16, 17, 12, 13 and context-tagged strings
    /// given as `strings`) split into constructed OCTET STRING segments.
    ChoppedStrings,
}

pub fn rewrite(raw: &[u8], v: Variant, depth: usize, strings: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut r = Reader::new(Layer::Rtse, raw);
    while !r.is_empty() {
        let t = r.read("rewrite").unwrap();
        let tag_len = tag_len(t.raw);
        let tag = &t.raw[..tag_len];
        if depth == 0 {
            out.extend_from_slice(t.raw);
            continue;
        }
        let is_string = !t.tag.constructed
            && (matches!(t.raw[0], 0x04 | 0x12 | 0x13 | 0x14 | 0x16 | 0x17) || strings.contains(&t.raw[0]));
        match v {
            Variant::Indefinite if t.tag.constructed => {
                out.extend_from_slice(tag);
                out.push(0x80);
                out.extend(rewrite(t.content, v, depth - 1, strings));
                out.extend_from_slice(&[0, 0]);
            }
            Variant::LongLengths => {
                let inner =
                    if t.tag.constructed { rewrite(t.content, v, depth - 1, strings) } else { t.content.to_vec() };
                out.extend_from_slice(tag);
                out.extend_from_slice(&[0x82, (inner.len() >> 8) as u8, inner.len() as u8]);
                out.extend(inner);
            }
            Variant::ChoppedStrings if is_string && t.content.len() >= 2 => {
                let mut c = tag.to_vec();
                c[0] |= 0x20;
                out.extend(c);
                out.push(0x80);
                for chunk in t.content.chunks(t.content.len().div_ceil(2)) {
                    out.extend_from_slice(&[0x04, chunk.len() as u8]);
                    out.extend_from_slice(chunk);
                }
                out.extend_from_slice(&[0, 0]);
            }
            _ if t.tag.constructed => {
                let inner = rewrite(t.content, v, depth - 1, strings);
                out.extend_from_slice(tag);
                rtse_codec::ber::write_len(&mut out, inner.len());
                out.extend(inner);
            }
            _ => out.extend_from_slice(t.raw),
        }
    }
    out
}

fn tag_len(raw: &[u8]) -> usize {
    if raw[0] & 0x1f == 0x1f {
        2 + raw[1..].iter().position(|b| b & 0x80 == 0).unwrap()
    } else {
        1
    }
}

/// The members of the SET `raw` (one TLV) in reverse order.
pub fn reversed_members(raw: &[u8]) -> Vec<u8> {
    let mut r = Reader::new(Layer::Rtse, raw);
    let t = r.read("set").unwrap();
    let mut members = Vec::new();
    let mut m = t.reader(Layer::Rtse);
    while !m.is_empty() {
        members.push(m.read("member").unwrap().raw);
    }
    members.reverse();
    let content: Vec<u8> = members.concat();
    let mut out = raw[..tag_len(raw)].to_vec();
    rtse_codec::ber::write_len(&mut out, content.len());
    out.extend(content);
    out
}
