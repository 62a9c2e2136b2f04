//! `rtse decode` as users run it: the built binary, every input form, both
//! output formats, and the exit-code contract of the README (0 decoded,
//! 1 did not decode, 2 usage or I/O error).

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const LAYERS: [&str; 8] = ["tpkt", "cotp", "session", "presentation", "acse", "rtse", "x410", "p1"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn corpus(rel: &str) -> PathBuf {
    root().join("corpus").join(rel)
}

fn rtse(args: &[&str]) -> Output {
    rtse_stdin(args, None)
}

fn rtse_stdin(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rtse"))
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rtse");
    if let Some(b) = stdin {
        child.stdin.take().unwrap().write_all(b).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// The JSON lines of `--format json` output.
fn json_lines(o: &Output) -> Vec<Value> {
    stdout(o).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// `layer pdu` of each layer of a JSON stack, checking the contract: every
/// layer object has `layer` (one of the eight names) and `pdu` (a string).
fn layers(stack: &Value) -> Vec<String> {
    let Some(ls) = stack["layers"].as_array() else { return vec![] };
    ls.iter()
        .map(|l| {
            let layer = l["layer"].as_str().unwrap_or_else(|| panic!("no layer in {l}"));
            assert!(LAYERS.contains(&layer), "layer name {layer:?} outside the contract");
            let pdu = l["pdu"].as_str().unwrap_or_else(|| panic!("no pdu in {l}"));
            assert!(!pdu.is_empty());
            format!("{layer} {pdu}")
        })
        .collect()
}

/// A scratch file under Cargo's per-target temporary directory.
fn scratch(name: &str, content: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli_decode");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn hex_lines(name: &str) -> Vec<String> {
    std::fs::read_to_string(corpus(&format!("examples/{name}.hex")))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn hex_argument_decodes_in_text_and_json() {
    let o = rtse(&["decode", "--hex", "03 00 00 09 02 f0 80 15 00"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    for want in ["tpkt TPKT", "cotp DT", "session GTC"] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    assert!(stderr(&o).is_empty());

    let o = rtse(&["decode", "--hex", "0300000902f0801500", "--format", "json"]);
    assert_eq!(code(&o), 0);
    let v = json_lines(&o);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["index"], 1);
    assert_eq!(layers(&v[0]), ["tpkt TPKT", "cotp DT", "session GTC"]);
}

#[test]
fn hex_file_with_comments_decodes_every_tpkt() {
    // The example file: a comment line, then one TPKT per line.
    let p = corpus("examples/ex4_turn_please_give_normal.hex");
    let o = rtse(&["decode", p.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json_lines(&o);
    let got: Vec<Vec<String>> = v.iter().map(layers).collect();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0][2..], ["session PT", "presentation USER-DATA", "rtse RTTP"]);
    assert_eq!(got[1][2..], ["session GTC"]);
    assert_eq!(got[2][2..], ["session GTA"]);

    // Comments after the data, separators and a 0x prefix.
    let p =
        scratch("commented.hex", b"# GTC then GTA\n0x03:00:00:09 02-f0-80 15 00  # GTC\n\n0300000902f0801600 # GTA\n");
    let o = rtse(&["decode", p.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got: Vec<Vec<String>> = json_lines(&o).iter().map(layers).collect();
    assert_eq!(got, [["tpkt TPKT", "cotp DT", "session GTC"], ["tpkt TPKT", "cotp DT", "session GTA"]]);
}

#[test]
fn raw_bytes_file_and_stdin_decode_like_the_hex_file() {
    let hex_path = corpus("examples/ex2_connect_normal.hex");
    let from_hex = rtse(&["decode", hex_path.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code(&from_hex), 0, "{}", stderr(&from_hex));
    let want = json_lines(&from_hex);
    assert_eq!(want.len(), 2);
    assert_eq!(
        layers(&want[0])[2..],
        ["session CN", "presentation CP", "acse AARQ", "rtse RTORQ", "p1 MTABindArgument"]
    );

    let raw: Vec<u8> =
        hex_lines("ex2_connect_normal").iter().flat_map(|l| rtse_codec::hex::decode(l).unwrap()).collect();
    let p = scratch("ex2.raw", &raw);
    let o = rtse(&["decode", p.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json_lines(&o), want, "raw file");

    let o = rtse_stdin(&["decode", "-", "--format", "json"], Some(&raw));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json_lines(&o), want, "raw bytes on stdin");

    let text = std::fs::read(&hex_path).unwrap();
    let o = rtse_stdin(&["decode", "-", "--format", "json"], Some(&text));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json_lines(&o), want, "hex text on stdin");
}

#[test]
fn pcap_decodes_with_frame_and_direction() {
    let p = corpus("examples/ex3_transfer_normal.pcap");
    let o = rtse(&["decode", p.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json_lines(&o);
    assert!(!v.is_empty());
    for (i, s) in v.iter().enumerate() {
        assert_eq!(s["index"], i + 1);
        assert!(s["frame"].as_u64().is_some(), "{s}");
        assert!(s["direction"].as_str().unwrap().contains("->"));
        assert_eq!(layers(s)[0], "tpkt TPKT");
    }
    let cotp: Vec<String> = v.iter().map(|s| layers(s)[1].clone()).collect();
    assert_eq!(cotp[..3], ["cotp CR", "cotp CC", "cotp DT"]);
    let all: Vec<String> = v.iter().flat_map(layers).collect();
    assert!(all.iter().any(|l| l == "rtse RTTR"), "{all:?}");
    // The transfer completed by AE is labelled from P1.
    assert!(all.iter().any(|l| l == "p1 Message"), "{all:?}");

    let o = rtse(&["decode", p.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("session AE"));
}

#[test]
fn every_layer_of_every_capture_follows_the_json_contract() {
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["examples", "captures"] {
        for e in std::fs::read_dir(corpus(dir)).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with(".pcap") || name.ends_with(".pcapng") || name == "iec" {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    let mut seen = std::collections::BTreeSet::new();
    for f in &files {
        let o = rtse(&["decode", f.to_str().unwrap(), "--format", "json"]);
        let c = code(&o);
        assert!(c == 0 || c == 1, "{}: exit {c}: {}", f.display(), stderr(&o));
        for s in json_lines(&o) {
            match (s.get("layers"), s.get("error")) {
                (Some(_), None) => {
                    seen.extend(layers(&s).into_iter().map(|l| l.split(' ').next().unwrap().to_string()))
                }
                (None, Some(e)) => {
                    assert_eq!(c, 1, "an error item makes the exit code 1");
                    assert!(LAYERS.contains(&e["layer"].as_str().unwrap()), "{e}");
                    assert!(e["offset"].as_u64().is_some());
                }
                _ => panic!("{}: neither layers nor error: {s}", f.display()),
            }
        }
    }
    // The corpus exercises every layer name.
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), {
        let mut l = LAYERS.map(String::from).to_vec();
        l.sort();
        l
    });
}

#[test]
fn input_that_does_not_decode_exits_1_naming_layer_offset_and_expectation() {
    // A GTC whose LI promises 5 octets of parameters; one follows.
    let o = rtse(&["decode", "--hex", "0300000a02f080150501"]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(err.starts_with("rtse decode: session @ 0x"), "{err}");
    assert!(err.contains(": expected ") && err.contains(", found "), "{err}");
    // The error is printed in the output too, after what did decode.
    assert!(stdout(&o).contains("error: session @ 0x"));

    let o = rtse(&["decode", "--hex", "0300000a02f080150501", "--format", "json"]);
    assert_eq!(code(&o), 1);
    let v = json_lines(&o);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["error"]["layer"], "session");
    let msg = v[0]["error"]["message"].as_str().unwrap();
    let off = v[0]["error"]["offset"].as_u64().unwrap();
    assert_eq!(msg, format!("session @ {off:#x}: expected parameter length, found end of input"));

    // A TPKT cut short: the TPKT layer.
    let o = rtse(&["decode", "--hex", "0300000902f08015"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("tpkt @ 0x"), "{}", stderr(&o));

    // One good stack then a bad one: still 1, the good one printed.
    let o = rtse(&["decode", "--hex", "0300000902f0801500 0300000902f08019ff", "--format", "json"]);
    assert_eq!(code(&o), 1);
    let v = json_lines(&o);
    assert_eq!(v.len(), 2);
    assert!(v[0].get("layers").is_some() && v[1].get("error").is_some());
}

#[test]
fn usage_and_io_errors_exit_2() {
    let missing = root().join("corpus/no-such-file.hex");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["decode", missing.to_str().unwrap()], "cannot read"),
        (vec!["decode"], "required"),
        (vec!["decode", "--hex", "0g"], "invalid hex"),
        (vec!["decode", "--hex", ""], "empty"),
        (vec!["decode", "--hex", "00", "--format", "xml"], "invalid value"),
        (vec!["decode", "--hex", "00", "somefile"], "cannot be used with"),
        (vec!["nonsense"], "unrecognized subcommand"),
    ];
    for (args, why) in cases {
        let o = rtse(&args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{args:?}");
        assert!(stderr(&o).contains(why), "{args:?}: {why:?} not in {}", stderr(&o));
    }
    let empty = scratch("empty.hex", b"");
    let o = rtse(&["decode", empty.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    let o = rtse_stdin(&["decode", "-"], Some(b""));
    assert_eq!(code(&o), 2);
}

#[test]
fn help_documents_the_exit_codes() {
    for args in [&["--help"][..], &["decode", "--help"][..]] {
        let o = rtse(args);
        assert_eq!(code(&o), 0, "{args:?}");
        let help = stdout(&o).split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(help.contains("Exit codes: 0"), "{args:?}: {help}");
        for c in ["1 ", "2 usage or I/O error"] {
            assert!(help.contains(c), "{args:?}: {c:?} not in {help}");
        }
    }
    let o = rtse(&["decode", "--help"]);
    let help = stdout(&o);
    for word in ["--hex", "--format", "json", "pcap", "stdin"] {
        assert!(help.contains(word), "{word} not in decode help");
    }
}
