//! X.224 / ISO 8073 class 0 TPDUs: CR, CC, DT, DR, ER.
//!
//! `LI code fixed-part variable-part user-data`; LI counts the header after
//! itself, not the user data. Parameters are `code len value`.

use crate::ber::Octets;
use crate::error::{Error, Found, Layer, Result};
use nom::bytes::complete::take;
use nom::number::complete::u8 as nom_u8;
use nom::Parser;

pub const CODE_CR: u8 = 0xE0;
pub const CODE_CC: u8 = 0xD0;
pub const CODE_DT: u8 = 0xF0;
pub const CODE_DR: u8 = 0x80;
pub const CODE_ER: u8 = 0x70;

/// Parameter codes used in CR/CC over RFC 1006.
pub const PARAM_TPDU_SIZE: u8 = 0xC0;
pub const PARAM_CALLING_TSAP: u8 = 0xC1;
pub const PARAM_CALLED_TSAP: u8 = 0xC2;
/// ER: the header of the offending TPDU.
pub const PARAM_INVALID_TPDU: u8 = 0xC1;

/// One TPDU. JSON: `{"pdu": "CR", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "pdu")]
pub enum Tpdu<'a> {
    #[serde(rename = "CR")]
    Cr(Connect<'a>),
    #[serde(rename = "CC")]
    Cc(Connect<'a>),
    #[serde(rename = "DT")]
    Dt(Data<'a>),
    #[serde(rename = "DR")]
    Dr(Disconnect<'a>),
    #[serde(rename = "ER")]
    Er(Reject<'a>),
}

/// A variable-part parameter kept as it came.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Param<'a> {
    pub code: u8,
    pub value: Octets<'a>,
}

/// CR and CC.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Connect<'a> {
    /// Low nibble of the code octet (CDT, 0 in class 0).
    pub credit: u8,
    pub dst_ref: u16,
    pub src_ref: u16,
    /// Class (high nibble) and option bits; 0x00 for class 0.
    pub class_options: u8,
    /// TPDU size parameter value (size = 2^value), if present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpdu_size: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calling_tsap: Option<Octets<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub called_tsap: Option<Octets<'a>>,
    /// Other parameters, in the order received.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<Param<'a>>,
    /// User data after the header (not allowed in class 0; kept if sent).
    #[serde(skip_serializing_if = "<[u8]>::is_empty", serialize_with = "crate::hex::ser")]
    pub user_data: &'a [u8],
}

impl Connect<'_> {
    /// Class (0..=4).
    pub fn class(&self) -> u8 {
        self.class_options >> 4
    }
    /// Negotiated maximum TPDU size in octets (128 when absent).
    pub fn max_tpdu_size(&self) -> usize {
        match self.tpdu_size {
            Some(v @ 7..=13) => 1usize << v,
            _ => 128,
        }
    }
}

/// DT (class 0: one octet `EOT|NR` after the code).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Data<'a> {
    /// End of TSDU.
    pub eot: bool,
    /// TPDU-NR (always 0 in class 0).
    pub nr: u8,
    /// Octets of the TSDU carried by this DT.
    #[serde(rename = "user_data_len", serialize_with = "crate::hex::ser_len")]
    pub user_data: &'a [u8],
}

/// DR.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Disconnect<'a> {
    pub dst_ref: u16,
    pub src_ref: u16,
    pub reason: u8,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<Param<'a>>,
    #[serde(skip_serializing_if = "<[u8]>::is_empty", serialize_with = "crate::hex::ser")]
    pub user_data: &'a [u8],
}

/// ER.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reject<'a> {
    pub dst_ref: u16,
    pub cause: u8,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<Param<'a>>,
}

impl Tpdu<'_> {
    /// Standard abbreviation (`"CR"`, `"DT"`...).
    pub const fn name(&self) -> &'static str {
        match self {
            Tpdu::Cr(_) => "CR",
            Tpdu::Cc(_) => "CC",
            Tpdu::Dt(_) => "DT",
            Tpdu::Dr(_) => "DR",
            Tpdu::Er(_) => "ER",
        }
    }
}

type NomRes<'a, T> = nom::IResult<&'a [u8], T>;

fn at(input: &[u8], rest: &[u8]) -> usize {
    input.len() - rest.len()
}

fn params<'a>(hdr: &'a [u8], base: usize) -> Result<Vec<Param<'a>>> {
    param_iter(hdr, base).collect()
}

/// The parameters of a variable part one at a time, ending after the
/// first error: a CR or CC, whose parameters go to typed fields, builds no
/// vector of them (an allocation per CR and CC).
fn param_iter<'a>(hdr: &'a [u8], base: usize) -> impl Iterator<Item = Result<Param<'a>>> {
    let mut rest = hdr;
    let mut count = 0;
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let r = next_param(hdr, &mut rest, base, count);
        if r.is_err() {
            rest = &[];
        }
        count += 1;
        Some(r)
    })
}

/// The parameter at the front of `rest` (the `count`th of `hdr`), and
/// `rest` moved past it.
fn next_param<'a>(hdr: &'a [u8], rest: &mut &'a [u8], base: usize, count: usize) -> Result<Param<'a>> {
    if count >= crate::limits::MAX_SESSION_PARAMS {
        return Err(Error::new(
            Layer::Cotp,
            base + at(hdr, rest),
            "at most 64 parameters",
            Found::Other("more parameters"),
        ));
    }
    let here = base + at(hdr, rest);
    let r: NomRes<'a, (u8, u8)> = (nom_u8, nom_u8).parse(*rest);
    let Ok((r2, (code, len))) = r else {
        return Err(Error::eof(Layer::Cotp, here + rest.len(), "parameter length"));
    };
    let r: NomRes<'a, &'a [u8]> = take(len as usize).parse(r2);
    let Ok((r3, value)) = r else {
        return Err(Error::new(
            Layer::Cotp,
            here + 1,
            "parameter value within the header",
            Found::Length(len as usize),
        ));
    };
    *rest = r3;
    Ok(Param { code, value: Octets::borrowed(value) })
}

/// Parse one TPDU that fills `input` (a TPKT payload).
pub fn parse(input: &[u8]) -> Result<Tpdu<'_>> {
    // A class 0 DT (LI 2, no variable part), nearly every TPDU of an
    // association: read here, the rest by `parse_general`, which gives the
    // same for it (test `dt_fast_path_agrees`). Writing the general
    // function's multi-variant result cost 30 instructions a TPDU.
    if let [2, code_octet, eot_nr, ..] = *input {
        if code_octet & 0xF0 == CODE_DT {
            return Ok(Tpdu::Dt(Data { eot: eot_nr & 0x80 != 0, nr: eot_nr & 0x7F, user_data: &input[3..] }));
        }
    }
    parse_general(input)
}

#[inline(never)]
fn parse_general(input: &[u8]) -> Result<Tpdu<'_>> {
    let [li, code_octet, ..] = *input else {
        return Err(Error::eof(
            Layer::Cotp,
            input.len(),
            if input.is_empty() { "length indicator" } else { "TPDU code" },
        ));
    };
    if li == 0 || li == 255 {
        return Err(Error::new(Layer::Cotp, 0, "length indicator 1..254", Found::Byte(li)));
    }
    let hdr_end = 1 + li as usize;
    if input.len() < hdr_end {
        return Err(Error::new(Layer::Cotp, 0, "header within the TPKT", Found::Length(li as usize)));
    }
    let header = &input[2..hdr_end];
    let user_data = &input[hdr_end..];
    let code = code_octet & 0xF0;
    // Fixed part lengths after the code octet.
    let fixed = match code {
        CODE_CR | CODE_CC | CODE_DR => 5,
        CODE_DT => 1,
        CODE_ER => 3,
        _ => {
            return Err(Error::new(Layer::Cotp, 1, "TPDU code CR, CC, DT, DR or ER", Found::Byte(code_octet)));
        }
    };
    if header.len() < fixed {
        return Err(Error::new(Layer::Cotp, 0, "length indicator covering the fixed part", Found::Byte(li)));
    }
    let (fx, var) = header.split_at(fixed);
    let var_base = 2 + fixed;
    // `fx` has `fixed` (5 for CR/CC/DR, 3 for ER) octets.
    let ref2 = |o: usize| -> u16 { fx.get(o..o + 2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]])) };
    Ok(match code {
        CODE_CR | CODE_CC => {
            let mut c = Connect {
                credit: code_octet & 0x0F,
                dst_ref: ref2(0),
                src_ref: ref2(2),
                class_options: fx[4],
                user_data,
                ..Connect::default()
            };
            for p in param_iter(var, var_base) {
                let p = p?;
                match p.code {
                    PARAM_TPDU_SIZE if p.value.len() == 1 && c.tpdu_size.is_none() => c.tpdu_size = Some(p.value[0]),
                    PARAM_CALLING_TSAP if c.calling_tsap.is_none() => c.calling_tsap = Some(p.value),
                    PARAM_CALLED_TSAP if c.called_tsap.is_none() => c.called_tsap = Some(p.value),
                    _ => c.other.push(p),
                }
            }
            if code == CODE_CR {
                Tpdu::Cr(c)
            } else {
                Tpdu::Cc(c)
            }
        }
        CODE_DT => {
            if !var.is_empty() {
                // Class 0 DT has no variable part; tolerate class 2-4 style params.
                params(var, var_base)?;
            }
            Tpdu::Dt(Data { eot: fx[0] & 0x80 != 0, nr: fx[0] & 0x7F, user_data })
        }
        CODE_DR => Tpdu::Dr(Disconnect {
            dst_ref: ref2(0),
            src_ref: ref2(2),
            reason: fx[4],
            other: params(var, var_base)?,
            user_data,
        }),
        _ => Tpdu::Er(Reject { dst_ref: ref2(0), cause: fx[2], other: params(var, var_base)? }),
    })
}

fn push_param(out: &mut Vec<u8>, code: u8, value: &[u8]) {
    out.push(code);
    out.push(value.len().min(255) as u8);
    out.extend_from_slice(&value[..value.len().min(255)]);
}

/// Append the TPDU to `out` (parameters in the canonical order: TPDU size,
/// calling TSAP, called TSAP, then the others as received).
pub fn emit(tpdu: &Tpdu<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    out.push(0); // LI, patched below
    let user_data: &[u8] = match tpdu {
        Tpdu::Cr(c) | Tpdu::Cc(c) => {
            let code = if matches!(tpdu, Tpdu::Cr(_)) { CODE_CR } else { CODE_CC };
            out.push(code | (c.credit & 0x0F));
            out.extend_from_slice(&c.dst_ref.to_be_bytes());
            out.extend_from_slice(&c.src_ref.to_be_bytes());
            out.push(c.class_options);
            if let Some(s) = c.tpdu_size {
                push_param(out, PARAM_TPDU_SIZE, &[s]);
            }
            if let Some(t) = &c.calling_tsap {
                push_param(out, PARAM_CALLING_TSAP, t);
            }
            if let Some(t) = &c.called_tsap {
                push_param(out, PARAM_CALLED_TSAP, t);
            }
            for p in &c.other {
                push_param(out, p.code, &p.value);
            }
            c.user_data
        }
        Tpdu::Dt(d) => {
            out.push(CODE_DT);
            out.push(if d.eot { 0x80 } else { 0 } | (d.nr & 0x7F));
            d.user_data
        }
        Tpdu::Dr(d) => {
            out.push(CODE_DR);
            out.extend_from_slice(&d.dst_ref.to_be_bytes());
            out.extend_from_slice(&d.src_ref.to_be_bytes());
            out.push(d.reason);
            for p in &d.other {
                push_param(out, p.code, &p.value);
            }
            d.user_data
        }
        Tpdu::Er(e) => {
            out.push(CODE_ER);
            out.extend_from_slice(&e.dst_ref.to_be_bytes());
            out.push(e.cause);
            for p in &e.other {
                push_param(out, p.code, &p.value);
            }
            &[]
        }
    };
    out[start] = (out.len() - start - 1).min(254) as u8;
    out.extend_from_slice(user_data);
}

/// Octets [`emit`] writes.
pub fn encoded_len(tpdu: &Tpdu<'_>) -> usize {
    let plen = |ps: &[Param<'_>]| ps.iter().map(|p| 2 + p.value.len().min(255)).sum::<usize>();
    match tpdu {
        Tpdu::Cr(c) | Tpdu::Cc(c) => {
            7 + c.tpdu_size.map_or(0, |_| 3)
                + c.calling_tsap.as_ref().map_or(0, |t| 2 + t.len())
                + c.called_tsap.as_ref().map_or(0, |t| 2 + t.len())
                + plen(&c.other)
                + c.user_data.len()
        }
        Tpdu::Dt(d) => 3 + d.user_data.len(),
        Tpdu::Dr(d) => 7 + plen(&d.other) + d.user_data.len(),
        Tpdu::Er(e) => 5 + plen(&e.other),
    }
}

/// Header of a class-0 DT: `02 f0 80` (EOT) or `02 f0 00`.
pub const fn dt_header(eot: bool) -> [u8; 3] {
    [2, CODE_DT, if eot { 0x80 } else { 0 }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex;

    /// `parse` (with its DT fast path) gives what `parse_general` gives for
    /// every LI, code octet and third octet, with and without user data.
    #[test]
    fn dt_fast_path_agrees() {
        for li in [0u8, 1, 2, 3, 6, 255] {
            for code in 0..=255u8 {
                for third in [0x00u8, 0x80, 0x7f, 0xff] {
                    for tail in [&[][..], &[0x01, 0x00], &[0xc0, 0x01, 0x0b, 0x99]] {
                        let mut b = vec![li, code, third];
                        b.extend_from_slice(tail);
                        for cut in [1, 2, b.len()] {
                            assert_eq!(parse(&b[..cut]), parse_general(&b[..cut]), "{:02x?}", &b[..cut]);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn example_1_cr_cc() {
        let cr = hex::decode("11e00000000100c0010bc1020001c2020001").unwrap();
        let t = parse(&cr).unwrap();
        let Tpdu::Cr(c) = &t else { panic!("{t:?}") };
        assert_eq!((c.dst_ref, c.src_ref, c.class(), c.max_tpdu_size()), (0, 1, 0, 2048));
        assert_eq!(c.calling_tsap.as_deref(), Some(&[0u8, 1][..]));
        let mut out = Vec::new();
        emit(&t, &mut out);
        assert_eq!(out, cr);
        assert_eq!(encoded_len(&t), cr.len());
    }

    #[test]
    fn dt_and_errors() {
        let b = [2, 0xf0, 0x80, 0x15, 0x00];
        let t = parse(&b).unwrap();
        assert_eq!(t, Tpdu::Dt(Data { eot: true, nr: 0, user_data: &[0x15, 0] }));
        let e = parse(&[2, 0x10, 0x80]).unwrap_err();
        assert_eq!(e.to_string(), "cotp @ 0x1: expected TPDU code CR, CC, DT, DR or ER, found 0x10");
        let e = parse(&[9, 0xf0, 0x80]).unwrap_err();
        assert_eq!(e.offset, 0);
        let e = parse(&[0x07, 0xe0, 0, 0, 0, 1, 0, 0xc0]).unwrap_err();
        assert_eq!(e.to_string(), "cotp @ 0x8: expected parameter length, found end of input");
    }
}
