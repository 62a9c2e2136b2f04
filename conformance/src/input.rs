//! Loading what the user hands `rtse decode` / `rtse timeline`: a file or
//! stdin holding a capture (pcap/pcapng, recognised by magic), hex text, or
//! raw bytes; or a `--hex` string.

use std::io::Read;
use std::path::Path;

/// What the input turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A pcap or pcapng capture (the whole file).
    Capture(Vec<u8>),
    /// Bytes of PDUs (from hex text or a raw file).
    Bytes(Vec<u8>),
}

/// Why the input could not be loaded (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("--hex: invalid hex digit at character {0}")]
    Hex(usize),
    #[error("{path}: input is empty")]
    Empty { path: String },
}

/// pcap (both byte orders, micro/nano) and pcapng magics.
pub fn is_capture(b: &[u8]) -> bool {
    matches!(
        b.get(..4),
        Some([0xd4, 0xc3, 0xb2, 0xa1])
            | Some([0xa1, 0xb2, 0xc3, 0xd4])
            | Some([0x4d, 0x3c, 0xb2, 0xa1])
            | Some([0xa1, 0xb2, 0x3c, 0x4d])
            | Some([0x0a, 0x0d, 0x0d, 0x0a])
    )
}

/// Hex text with `#` comments (to the end of the line) removed.
fn strip_comments(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut in_comment = false;
    for &c in b {
        match c {
            b'#' => in_comment = true,
            b'\n' => {
                in_comment = false;
                out.push(c);
            }
            _ if !in_comment => out.push(c),
            _ => {}
        }
    }
    out
}

/// Whether the bytes look like hex text (digits, separators, white space,
/// an optional 0x prefix, `#` comments) rather than binary.
fn looks_like_hex(b: &[u8]) -> bool {
    if !b.is_ascii() {
        return false;
    }
    let b = &strip_comments(b)[..];
    let t = b.iter().position(|c| !c.is_ascii_whitespace()).map_or(&b[..0], |i| &b[i..]);
    let t = t.strip_prefix(b"0x").unwrap_or(t);
    !t.is_empty()
        && t.iter().all(|c| c.is_ascii_hexdigit() || c.is_ascii_whitespace() || *c == b':' || *c == b'-')
        && t.iter().filter(|c| c.is_ascii_hexdigit()).count() % 2 == 0
}

/// Turn raw file/stdin content into an [`Input`].
pub fn classify(data: Vec<u8>, path: &str) -> Result<Input, InputError> {
    if data.is_empty() {
        return Err(InputError::Empty { path: path.to_string() });
    }
    if is_capture(&data) {
        return Ok(Input::Capture(data));
    }
    if looks_like_hex(&data) {
        let text = String::from_utf8_lossy(&strip_comments(&data)).into_owned();
        return rtse_codec::hex::decode(&text).map(Input::Bytes).map_err(InputError::Hex);
    }
    Ok(Input::Bytes(data))
}

/// Read `path` (`-` = stdin).
pub fn load(path: &str) -> Result<Input, InputError> {
    let mut data = Vec::new();
    let res = if path == "-" {
        std::io::stdin().lock().read_to_end(&mut data).map(|_| ())
    } else {
        std::fs::read(Path::new(path)).map(|d| data = d)
    };
    res.map_err(|source| InputError::Io { path: path.to_string(), source })?;
    classify(data, path)
}

/// Parse a `--hex` argument.
pub fn from_hex(s: &str) -> Result<Input, InputError> {
    let b = rtse_codec::hex::decode(s).map_err(InputError::Hex)?;
    if b.is_empty() {
        return Err(InputError::Empty { path: "--hex".into() });
    }
    Ok(Input::Bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_hex_raw_and_captures() {
        assert_eq!(
            classify(b"03 00 00 09\n02f08015 00\n".to_vec(), "f").unwrap(),
            Input::Bytes(vec![3, 0, 0, 9, 2, 0xf0, 0x80, 0x15, 0])
        );
        assert_eq!(classify(vec![3, 0, 0, 9], "f").unwrap(), Input::Bytes(vec![3, 0, 0, 9]));
        assert!(matches!(classify(vec![0xd4, 0xc3, 0xb2, 0xa1, 0], "f").unwrap(), Input::Capture(_)));
        assert!(matches!(classify(vec![], "f"), Err(InputError::Empty { .. })));
        assert!(matches!(from_hex("0g"), Err(InputError::Hex(1))));
        assert_eq!(
            classify(b"# GTC\n0300000902f0801500 # give\n".to_vec(), "f").unwrap(),
            Input::Bytes(vec![3, 0, 0, 9, 2, 0xf0, 0x80, 0x15, 0])
        );
    }
}
