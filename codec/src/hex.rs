//! Hex helpers (display, JSON, `--hex` input).

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex of `b`.
pub fn encode(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(DIGITS[(x >> 4) as usize] as char);
        s.push(DIGITS[(x & 15) as usize] as char);
    }
    s
}

/// Parse hex, ignoring ASCII white space, `:` and `-` separators and an
/// optional `0x` prefix. On failure returns the offset (in `s`) of the
/// offending character.
pub fn decode(s: &str) -> Result<Vec<u8>, usize> {
    let t = s.trim_start();
    let skip = s.len() - t.len();
    let t = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
    let base = s.len() - t.len();
    let _ = skip;
    let mut out = Vec::with_capacity(t.len() / 2);
    let mut hi: Option<u8> = None;
    let mut hi_at = 0;
    for (i, c) in t.char_indices() {
        if c.is_ascii_whitespace() || c == ':' || c == '-' {
            continue;
        }
        let v = c.to_digit(16).ok_or(base + i)? as u8;
        match hi.take() {
            None => {
                hi = Some(v);
                hi_at = base + i;
            }
            Some(h) => out.push(h << 4 | v),
        }
    }
    match hi {
        Some(_) => Err(hi_at),
        None => Ok(out),
    }
}

/// serde helper: bytes as a hex string.
pub fn ser<S: serde::Serializer>(b: &&[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&encode(b))
}

/// serde helper: bytes as their length (for bulky payloads shown elsewhere).
pub fn ser_len<S: serde::Serializer>(b: &&[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(b.len() as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        assert_eq!(super::encode(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(super::decode("0x00 ab:10\n").unwrap(), vec![0, 0xab, 0x10]);
        assert_eq!(super::decode("0g"), Err(1));
        assert_eq!(super::decode("abc"), Err(2));
    }
}
