//! tshark as an independent check of the codec: the PDU sequence tshark
//! sees in a capture, in the same one-line-per-frame form that
//! [`crate::decode::pdu_summary`] produces from our own decoder, so the two
//! can be compared line by line.
//!
//! Line format (one per frame that carries COTP):
//! `<frame> s<tcp stream> cotp=<CR,DT,...> [ses=<SI,...>] [acse=<AARQ,...>] [rtse=<RTORQ,...>]`
//! Session SPDUs are given by SI code (tshark names SI 41 "MAP" whether it is
//! MAP or AE, so codes are the fair comparison).

use std::path::Path;
use std::process::Command;

/// Whether a usable tshark is on the PATH.
pub fn available() -> bool {
    Command::new("tshark").arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

const FIELDS: &[&str] = &[
    "frame.number",
    "tcp.stream",
    "cotp.type",
    "ses.type",
    "acse.aarq_element",
    "acse.aare_element",
    "acse.rlrq_element",
    "acse.rlre_element",
    "acse.abrt_element",
    "rtse.rtorq_apdu_element",
    "rtse.rtoac_apdu_element",
    "rtse.rtorj_apdu_element",
    "rtse.rttp_apdu",
    "rtse.rttr_apdu",
    "rtse.rtab_apdu_element",
];

/// tshark's view of `path`, one line per frame carrying COTP.
pub fn pdu_summary(path: &Path) -> Result<String, String> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(path).args([
        "-o",
        "rtse.reassemble:FALSE",
        "-d",
        "tcp.port==102,tpkt",
        "-Y",
        "cotp",
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().map_err(|e| format!("cannot run tshark: {e}"))?;
    if !out.status.success() {
        return Err(format!("tshark failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = String::new();
    for row in text.lines() {
        let f: Vec<&str> = row.split('|').collect();
        if f.len() < FIELDS.len() {
            continue;
        }
        let cotp: Vec<&str> = f[2]
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|t| match t {
                "0x0e" => "CR",
                "0x0d" => "CC",
                "0x0f" => "DT",
                "0x08" => "DR",
                "0x07" => "ER",
                _ => "?",
            })
            .collect();
        let mut line = format!("{} s{} cotp={}", f[0], f[1], cotp.join(","));
        if !f[3].is_empty() {
            line.push_str(&format!(" ses={}", f[3]));
        }
        let names = |range: std::ops::Range<usize>, labels: &[&str]| -> Vec<String> {
            let mut v = Vec::new();
            for (i, label) in range.zip(labels) {
                let n = f[i].split(',').filter(|s| !s.is_empty()).count();
                for _ in 0..n {
                    v.push(label.to_string());
                }
            }
            v
        };
        let acse = names(4..9, &["AARQ", "AARE", "RLRQ", "RLRE", "ABRT"]);
        if !acse.is_empty() {
            line.push_str(&format!(" acse={}", acse.join(",")));
        }
        let rtse = names(9..15, &["RTORQ", "RTOAC", "RTORJ", "RTTP", "RTTR", "RTAB"]);
        if !rtse.is_empty() {
            line.push_str(&format!(" rtse={}", rtse.join(",")));
        }
        lines.push_str(&line);
        lines.push('\n');
    }
    Ok(lines)
}
