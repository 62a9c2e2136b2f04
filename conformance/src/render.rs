//! Rendering of decoded PDU stacks: an indented tree for people, JSON for
//! scripts. Both render the same `serde_json::Value` made from the codec's
//! `Serialize` implementations, so the two outputs cannot disagree.
//!
//! JSON contract (documented in the README): one object per PDU stack,
//! `{"index", "offset", ["frame", "time", "stream", "direction",] "layers": [...]}`
//! where every element of `layers` has `layer` (tpkt, cotp, session,
//! presentation, acse, rtse, x410, p1) and `pdu` (the standard abbreviation)
//! followed by its fields.

use serde_json::Value;
use std::fmt::Write as _;

/// Render one stack object (as produced for JSON output) as an indented tree.
pub fn tree(stack: &Value) -> String {
    let mut s = String::new();
    let mut head = String::new();
    if let Some(obj) = stack.as_object() {
        for key in ["index", "frame", "time", "stream", "direction", "offset"] {
            if let Some(v) = obj.get(key) {
                let _ = write!(head, "{}{key} {}", if head.is_empty() { "" } else { "  " }, scalar(v));
            }
        }
    }
    let _ = writeln!(s, "── {head}");
    let layers = stack.get("layers").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut depth_of_layer: Vec<(String, usize)> = Vec::new();
    for layer in &layers {
        let name = layer.get("layer").and_then(Value::as_str).unwrap_or("?");
        let pdu = layer.get("pdu").and_then(Value::as_str).unwrap_or("?");
        // A layer sits one deeper than the nearest lower layer above it; two
        // SPDUs of one TSDU sit side by side.
        let depth = match depth_of_layer.iter().rev().find(|(l, _)| rank(l) < rank(name)) {
            Some((_, d)) => d + 1,
            None => 0,
        };
        depth_of_layer.retain(|(l, _)| rank(l) < rank(name));
        depth_of_layer.push((name.to_string(), depth));
        let pad = "  ".repeat(depth);
        let _ = writeln!(s, "{pad}{name} {pdu}");
        if let Some(obj) = layer.as_object() {
            for (k, v) in obj {
                if k == "layer" || k == "pdu" {
                    continue;
                }
                field(&mut s, depth + 1, k, v);
            }
        }
    }
    s
}

fn rank(layer: &str) -> usize {
    ["tpkt", "cotp", "session", "presentation", "acse", "rtse", "x410", "p1"]
        .iter()
        .position(|l| *l == layer)
        .unwrap_or(8)
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn field(s: &mut String, depth: usize, key: &str, v: &Value) {
    let pad = "  ".repeat(depth);
    match v {
        Value::Object(o) if o.is_empty() => {
            let _ = writeln!(s, "{pad}{key}: {{}}");
        }
        Value::Object(o) => {
            let _ = writeln!(s, "{pad}{key}:");
            for (k, v) in o {
                field(s, depth + 1, k, v);
            }
        }
        Value::Array(a) if a.is_empty() => {
            let _ = writeln!(s, "{pad}{key}: []");
        }
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            let items: Vec<String> = a.iter().map(scalar).collect();
            let _ = writeln!(s, "{pad}{key}: [{}]", items.join(", "));
        }
        Value::Array(a) => {
            let _ = writeln!(s, "{pad}{key}:");
            for (i, x) in a.iter().enumerate() {
                field(s, depth + 1, &format!("[{i}]"), x);
            }
        }
        other => {
            let _ = writeln!(s, "{pad}{key}: {}", scalar(other));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tree_nests_layers_and_keeps_sibling_spdus_side_by_side() {
        let v = json!({"index": 1, "offset": "0x0", "layers": [
            {"layer": "tpkt", "pdu": "TPKT", "version": 3, "length": 12},
            {"layer": "cotp", "pdu": "DT", "eot": true},
            {"layer": "session", "pdu": "GT"},
            {"layer": "session", "pdu": "DT"},
            {"layer": "presentation", "pdu": "USER-DATA", "pdvs": [{"pcid": 3}]},
            {"layer": "rtse", "pdu": "RTTR", "octets": "0102"},
        ]});
        let t = tree(&v);
        let expected = concat!(
            "── index 1  offset 0x0\n",
            "tpkt TPKT\n",
            "  version: 3\n",
            "  length: 12\n",
            "  cotp DT\n",
            "    eot: true\n",
            "    session GT\n",
            "    session DT\n",
            "      presentation USER-DATA\n",
            "        pdvs:\n",
            "          [0]:\n",
            "            pcid: 3\n",
            "        rtse RTTR\n",
            "          octets: 0102\n",
        );
        assert_eq!(t, expected);
    }
}
