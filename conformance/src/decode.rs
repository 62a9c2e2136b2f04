//! `rtse decode`: bytes or a capture in, every layer out.

use crate::cli::{exit, DecodeArgs, Format, ModeArg, Start};
use crate::input::{self, Input};
use rtse_codec::capture::{self, stacks::CaptureItem, CaptureSummary};
use rtse_codec::presentation::Mode;
use rtse_codec::stack::{self, AssociationDecoder, Context, Sender, Stack};
use rtse_codec::{acse, presentation, rtse, Error};
use serde_json::{json, Value};
use std::io::Write;

/// One decoded unit of output: a stack as JSON, or an error.
#[derive(Debug)]
pub struct Item {
    /// Extra keys put before `layers` (index, offset, frame, ...).
    pub head: serde_json::Map<String, Value>,
    pub result: Result<Value, Error>,
}

fn stack_json(s: &Stack<'_>) -> Value {
    serde_json::to_value(s).unwrap_or_else(|e| json!([{ "error": e.to_string() }]))
}

/// Where to start, when asked to recognise it: a TPKT stream if the bytes
/// start with a plausible TPKT header, a TSDU if the first octet is an SPDU
/// identifier, else a BER value.
fn recognise(b: &[u8]) -> Start {
    if b.len() >= 7 && b[0] == 3 && b[1] == 0 && usize::from(u16::from_be_bytes([b[2], b[3]])) >= 7 {
        return Start::Tpkt;
    }
    match b[0] {
        // Presentation (CP/CPA SET, User-data), ACSE, RTSE tags.
        0x31 | 0x61 | 0x40 | 0xa0 => Start::Presentation,
        0x60 | 0x62..=0x64 => Start::Acse,
        0xb0..=0xb2 | 0xb6 | 0x02 | 0x04 | 0x24 => Start::Rtse,
        _ => Start::Session,
    }
}

/// Decode bytes starting at `start`; one [`Item`] per PDU stack.
pub fn decode_bytes(bytes: &[u8], start: Start, mode: ModeArg) -> Vec<Item> {
    let start = if start == Start::Auto { recognise(bytes) } else { start };
    let mut ctx = match mode {
        ModeArg::Auto => Context::default(),
        ModeArg::Normal => Context::with_mode(Mode::Normal),
        ModeArg::X410 => Context::with_mode(Mode::X410),
    };
    let mut items = Vec::new();
    let head = |i: usize, off: usize| {
        let mut m = serde_json::Map::new();
        m.insert("index".into(), json!(i));
        m.insert("offset".into(), json!(format!("{off:#x}")));
        m
    };
    match start {
        Start::Tpkt | Start::Auto => {
            // Consecutive TPKTs; the sender alternates as far as we can tell
            // (a CN is the initiator's, an AC the responder's).
            let mut dec = AssociationDecoder::new();
            if let ModeArg::Normal | ModeArg::X410 = mode {
                dec.ctx = ctx;
            }
            let mut from = Sender::Initiator;
            let mut rest = bytes;
            let mut off = 0usize;
            while !rest.is_empty() {
                let n = match rtse_codec::tpkt::frame_len(rest) {
                    Ok(Some(n)) if n <= rest.len() => n,
                    Ok(_) => {
                        let e = Error::eof(rtse_codec::Layer::Tpkt, bytes.len(), "TPKT of the length in its header");
                        items.push(Item { head: head(items.len() + 1, off), result: Err(e) });
                        break;
                    }
                    Err(e) => {
                        items.push(Item { head: head(items.len() + 1, off), result: Err(e.shift(off)) });
                        break;
                    }
                };
                let (one, tail) = rest.split_at(n);
                let sender = sender_hint(one).unwrap_or(from);
                dec.push(sender, one, |d| {
                    let result = d.result.map(|s| stack_json(&s)).map_err(|e| e.shift(off));
                    items.push(Item { head: head(items.len() + 1, off), result });
                });
                from = sender;
                off += n;
                rest = tail;
            }
        }
        Start::Session => {
            let r = stack::decode_tsdu(&mut ctx, Sender::Initiator, bytes).map(|s| stack_json(&s));
            items.push(Item { head: head(1, 0), result: r });
        }
        Start::Presentation => items.push(Item { head: head(1, 0), result: decode_ber(bytes, start) }),
        Start::Acse | Start::Rtse => items.push(Item { head: head(1, 0), result: decode_ber(bytes, start) }),
    }
    items
}

/// The sender of a TPKT when the PDU tells: CN is the initiator's, AC/RF the
/// responder's.
fn sender_hint(tpkt: &[u8]) -> Option<Sender> {
    match tpkt.get(7) {
        Some(0x0d) => Some(Sender::Initiator),
        Some(0x0e) | Some(0x0c) => Some(Sender::Responder),
        _ => None,
    }
}

fn layer_value<T: serde::Serialize>(layer: &str, pdu: &T) -> Value {
    let mut v = serde_json::to_value(pdu).unwrap_or(Value::Null);
    if let Value::Object(o) = &mut v {
        let mut m = serde_json::Map::new();
        m.insert("layer".into(), json!(layer));
        m.extend(std::mem::take(o));
        *o = m;
    }
    v
}

fn decode_ber(bytes: &[u8], start: Start) -> Result<Value, Error> {
    let v = match start {
        Start::Acse => {
            let (a, rest) = acse::parse(bytes)?;
            trailing(bytes, rest, rtse_codec::Layer::Acse)?;
            vec![layer_value("acse", &a)]
        }
        Start::Rtse => vec![layer_value("rtse", &rtse::parse_exact(bytes)?)],
        _ => {
            // A CP/CPA (SET) or User-data.
            let slot = if bytes.first() == Some(&0x31) {
                presentation::PpduSlot::Connect
            } else {
                presentation::PpduSlot::Data
            };
            let (p, rest) = presentation::parse_for(slot, bytes).or_else(|e| {
                if slot == presentation::PpduSlot::Connect {
                    presentation::parse_for(presentation::PpduSlot::Accept, bytes)
                } else {
                    Err(e)
                }
            })?;
            trailing(bytes, rest, rtse_codec::Layer::Presentation)?;
            vec![layer_value("presentation", &p)]
        }
    };
    Ok(Value::Array(v))
}

fn trailing(all: &[u8], rest: &[u8], layer: rtse_codec::Layer) -> Result<(), Error> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(Error::new(layer, all.len() - rest.len(), "end of input", rtse_codec::Found::Trailing(rest.len())))
    }
}

/// Decode a capture, calling `on` with each PDU stack (tagged with frame,
/// time, TCP stream and direction) as soon as it completes.
pub fn decode_capture(data: &[u8], mut on: impl FnMut(Item)) -> Result<CaptureSummary, Error> {
    let mut index = 0usize;
    capture::stacks::decode_capture(data, |it| {
        if let CaptureItem::Pdu { conn, frame, time, from, stream_offset, result } = it {
            index += 1;
            let mut head = serde_json::Map::new();
            head.insert("index".into(), json!(index));
            head.insert("frame".into(), json!(frame));
            head.insert("time".into(), json!(format!("{}.{:09}", time.secs, time.nanos)));
            head.insert("stream".into(), json!(conn));
            head.insert(
                "direction".into(),
                json!(match from {
                    Sender::Initiator => "initiator->responder",
                    Sender::Responder => "responder->initiator",
                }),
            );
            head.insert("offset".into(), json!(format!("{stream_offset:#x}")));
            on(Item { head, result: result.as_ref().map(stack_json).map_err(|e| *e) });
        }
    })
}

/// Our decoder's view of a capture in the one-line-per-frame form of
/// [`crate::tshark::pdu_summary`], for comparison with tshark.
pub fn pdu_summary(data: &[u8]) -> Result<String, Error> {
    #[derive(Default)]
    struct Line {
        frame: u64,
        stream: u64,
        cotp: Vec<String>,
        ses: Vec<u8>,
        acse: Vec<String>,
        rtse: Vec<String>,
        errors: Vec<String>,
    }
    let mut lines: Vec<Line> = Vec::new();
    capture::stacks::decode_capture(data, |it| {
        let CaptureItem::Pdu { conn, frame, result, .. } = it else { return };
        if lines.last().is_none_or(|l| l.frame != frame || l.stream != conn) {
            lines.push(Line { frame, stream: conn, ..Line::default() });
        }
        let Some(line) = lines.last_mut() else { return };
        match result {
            Ok(stack) => {
                if let Some(t) = &stack.tpdu {
                    line.cotp.push(t.name().to_string());
                }
                line.ses.extend(stack.spdu_kinds().map(|k| k.si()));
                if let Some(ss) = &stack.session {
                    for (_, up) in ss.iter() {
                        if let Some(a) = &up.acse {
                            line.acse.push(a.name().to_string());
                        }
                        if let Some(r) = &up.rtse {
                            line.rtse.push(r.name().to_string());
                        }
                    }
                }
            }
            Err(e) => line.errors.push(e.layer.to_string()),
        }
    })?;
    let mut out = String::new();
    for l in lines {
        out.push_str(&format!("{} s{} cotp={}", l.frame, l.stream, l.cotp.join(",")));
        if !l.ses.is_empty() {
            let ses: Vec<String> = l.ses.iter().map(u8::to_string).collect();
            out.push_str(&format!(" ses={}", ses.join(",")));
        }
        if !l.acse.is_empty() {
            out.push_str(&format!(" acse={}", l.acse.join(",")));
        }
        if !l.rtse.is_empty() {
            out.push_str(&format!(" rtse={}", l.rtse.join(",")));
        }
        if !l.errors.is_empty() {
            out.push_str(&format!(" error={}", l.errors.join(",")));
        }
        out.push('\n');
    }
    Ok(out)
}

/// Prints items as they come and remembers whether any failed.
struct Printer<'w> {
    format: Format,
    out: &'w mut dyn Write,
    err: &'w mut dyn Write,
    /// Some item did not decode.
    failed: bool,
    /// Writing the output failed (a closed pipe): stop printing.
    io_error: bool,
}

impl Printer<'_> {
    fn print(&mut self, it: Item) {
        if self.io_error {
            return;
        }
        let mut obj = it.head;
        match &it.result {
            Ok(layers) => {
                obj.insert("layers".into(), layers.clone());
            }
            Err(e) => {
                self.failed = true;
                obj.insert("error".into(), json!({"layer": e.layer, "offset": e.offset, "message": e.to_string()}));
            }
        }
        let v = Value::Object(obj);
        let r = match self.format {
            Format::Json => writeln!(self.out, "{v}"),
            Format::Text => {
                let mut h = v;
                if let Value::Object(o) = &mut h {
                    o.remove("error");
                }
                let r = write!(self.out, "{}", crate::render::tree(&h));
                match &it.result {
                    Err(e) => r.and_then(|_| writeln!(self.out, "error: {e}")),
                    Ok(_) => r,
                }
            }
        };
        self.io_error = r.is_err();
        if let Err(e) = &it.result {
            let _ = writeln!(self.err, "rtse decode: {e}");
        }
    }
}

/// `rtse decode`.
pub fn run(a: &DecodeArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let loaded = match (&a.hex, &a.input) {
        (Some(h), _) => input::from_hex(h),
        (None, Some(p)) => input::load(p),
        (None, None) => Err(input::InputError::Empty { path: "INPUT".into() }),
    };
    let mut p = Printer { format: a.format, out, err, failed: false, io_error: false };
    match loaded {
        Err(e) => {
            let _ = writeln!(p.err, "rtse decode: {e}");
            return exit::USAGE;
        }
        Ok(Input::Bytes(b)) => decode_bytes(&b, a.start, a.mode).into_iter().for_each(|it| p.print(it)),
        Ok(Input::Capture(c)) => {
            if let Err(e) = decode_capture(&c, |it| p.print(it)) {
                // Stacks before the damage were printed; the capture error
                // itself means the input did not (all) decode.
                let _ = writeln!(p.err, "rtse decode: {e}");
                return exit::FAIL;
            }
        }
    }
    if p.io_error {
        exit::USAGE
    } else if p.failed {
        exit::FAIL
    } else {
        exit::OK
    }
}
