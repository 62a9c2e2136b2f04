//! Our decoder against tshark, frame by frame, on every capture that carries
//! the OSI stack (corpus/captures and corpus/examples).
//!
//! * `corpus/**/<capture>.tshark-pdus.txt` is tshark's view, committed as a
//!   golden file; our decoder must produce the same lines.
//! * When tshark is installed the golden files are checked against a fresh
//!   tshark run (`RTSE_REQUIRE_TOOLS=1` makes its absence a failure;
//!   `RTSE_BLESS=1` rewrites the golden files from tshark).

use rtse_conformance::{decode, tshark};
use std::path::{Path, PathBuf};

/// The OSI-stack captures (the S7comm ones carry no session layer).
const CAPTURES: &[&str] = &[
    "captures/x400-ping-refuse.pcap",
    "captures/x400-ping-success.pcap",
    "captures/p772-transfer-success.pcap",
    "captures/mms.pcap",
    "captures/Sample_File_MMS_and_GOOSE.pcap",
    "captures/piccolo.pcap",
    "captures/iec",
    "captures/iec61850_get_name_list.pcap",
    "captures/iec61850_get_variable_access_attributes.pcap",
    "captures/iec61850_read.pcap",
    "captures/iec61850_release.pcap",
    "captures/iec61850_write.pcap",
    "captures/COTP_Example.pcapng",
    "captures/mmsX.pcap",
    "examples/ex1_cotp_cr_cc.pcap",
    "examples/ex2_connect_normal.pcap",
    "examples/ex3_transfer_normal.pcap",
    "examples/ex4_turn_please_give_normal.pcap",
    "examples/ex5_recovery_normal.pcap",
    "examples/ex6_x410_mode.pcap",
    "examples/ex7_abort_normal.pcap",
];

/// Captures whose session AC is malformed (see corpus/captures/SOURCES.md);
/// tshark flags them too.
const MALFORMED_AC: &[&str] = &["iec", "iec61850_"];

fn corpus(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus").join(rel)
}

fn golden_path(rel: &str) -> PathBuf {
    corpus(&format!("{rel}.tshark-pdus.txt"))
}

fn require_tools() -> bool {
    std::env::var("RTSE_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

#[test]
fn golden_files_match_a_fresh_tshark_run() {
    if !tshark::available() {
        assert!(!require_tools(), "tshark is required (RTSE_REQUIRE_TOOLS=1) but not installed");
        eprintln!("note: tshark not installed; golden files not re-checked");
        return;
    }
    let bless = std::env::var("RTSE_BLESS").is_ok_and(|v| v == "1");
    let mut diffs = Vec::new();
    for rel in CAPTURES {
        let fresh = tshark::pdu_summary(&corpus(rel)).unwrap();
        let gp = golden_path(rel);
        if bless {
            std::fs::write(&gp, &fresh).unwrap();
            continue;
        }
        let golden = std::fs::read_to_string(&gp).unwrap_or_default();
        if golden != fresh {
            diffs.push(format!("{rel}:\n--- golden\n{golden}--- tshark now\n{fresh}"));
        }
    }
    assert!(diffs.is_empty(), "tshark disagrees with the golden files:\n{}", diffs.join("\n"));
}

#[test]
fn our_decoder_sees_the_pdus_tshark_sees() {
    let mut diffs = Vec::new();
    for rel in CAPTURES {
        let golden = std::fs::read_to_string(golden_path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let data = std::fs::read(corpus(rel)).unwrap();
        let ours = decode::pdu_summary(&data).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let malformed = MALFORMED_AC.iter().any(|m| rel.contains(m));
        let g: Vec<&str> = golden.lines().collect();
        let o: Vec<&str> = ours.lines().collect();
        if g.len() != o.len() {
            diffs.push(format!(
                "{rel}: {} lines from tshark, {} from us\n--- tshark\n{golden}--- ours\n{ours}",
                g.len(),
                o.len()
            ));
            continue;
        }
        for (gl, ol) in g.iter().zip(&o) {
            if let Some((head, _)) = ol.split_once(" error=") {
                // Only the known-malformed AC may fail, and at the session
                // layer; compare what precedes the session layer.
                assert!(malformed && ol.ends_with("error=session"), "{rel}: unexpected error: {ol}");
                let head = head.split(" ses=").next().unwrap_or(head);
                assert!(gl.starts_with(head), "{rel}: tshark `{gl}`, ours `{ol}`");
            } else if gl != ol {
                diffs.push(format!("{rel}: tshark `{gl}`, ours `{ol}`"));
            }
        }
        if malformed {
            assert!(o.iter().any(|l| l.contains("error=session")), "{rel}: the malformed AC was not reported");
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
