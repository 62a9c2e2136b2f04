//! `rtse run` and `rtse cases` through the command-line entry point:
//! exit codes (0, 1, 2, 4), the matrix, reports on stdout.

use rtse_conformance::cli::{exit, main_with};

fn rtse(args: &[&str]) -> (u8, String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let argv = std::iter::once("rtse").chain(args.iter().copied()).map(std::ffi::OsString::from);
    let code = main_with(argv, &mut out, &mut err);
    (code, String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned())
}

#[test]
fn cases_list_and_show() {
    let (code, out, _) = rtse(&["cases", "list"]);
    assert_eq!(code, exit::OK);
    let n: usize = out.lines().last().unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(n >= 150, "{n} cases");
    assert!(out.contains("turn.recovery.field-failure "));
    let (code, out, _) = rtse(&["cases", "show", "turn.recovery.field-failure"]);
    assert_eq!(code, exit::OK);
    assert!(out.contains("requirement = ") && out.contains("recover = \"15\""), "{out}");
    assert_eq!(rtse(&["cases", "show", "no.such"]).0, exit::NO_CASES);
    assert_eq!(rtse(&["cases", "list", "no.such"]).0, exit::NO_CASES);
}

#[test]
fn run_exit_codes() {
    assert_eq!(rtse(&["run", "no.such.case"]).0, exit::NO_CASES);
    assert_eq!(rtse(&["run", "--report", "xml=/tmp/x"]).0, exit::USAGE);
    assert_eq!(rtse(&["run", "--iut", "ftp://x"]).0, exit::USAGE);
    assert_eq!(rtse(&["run", "--iut", "flaw:nonsense"]).0, exit::USAGE);
    assert_eq!(rtse(&["run", "--declare", "/nonexistent/decl.toml", "--iut", "reference"]).0, exit::USAGE);
    let (code, out, _) = rtse(&["run", "--iut", "reference", "turn.please", "--color", "never"]);
    assert_eq!(code, exit::OK, "{out}");
    // A flaw fails cases nobody declared: unexpected.
    let (code, out, _) = rtse(&["run", "--iut", "flaw:ignores-please", "turn.please.idle-holder", "--color", "never"]);
    assert_eq!(code, exit::FAIL, "{out}");
    assert!(out.contains("timeout: nothing within"), "{out}");
}

#[test]
fn declared_divergence_is_expected_and_stale_entries_fail() {
    let dir = std::env::temp_dir().join(format!("rtse-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.join("d.toml");
    std::fs::write(&d, "[[expected]]\ncase = \"turn.please.idle-holder\"\nverdict = \"fail\"\nreason = \"ignores pleases (ticket 7)\"\n").unwrap();
    let ds = d.to_str().unwrap();
    let (code, out, _) =
        rtse(&["run", "--iut", "flaw:ignores-please", "--declare", ds, "turn.please.idle-holder", "--color", "never"]);
    assert_eq!(code, exit::OK, "{out}");
    assert!(out.contains("known divergence"), "{out}");
    std::fs::write(&d, "[[expected]]\ncase = \"turn.gone\"\nverdict = \"fail\"\nreason = \"old\"\n").unwrap();
    let (code, out, _) =
        rtse(&["run", "--iut", "reference", "--declare", ds, "turn.please.idle-holder", "--color", "never"]);
    assert_eq!(code, exit::FAIL, "{out}");
    assert!(out.contains("stale declaration entry: turn.gone"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn matrix_on_stdout_json() {
    let (code, out, err) = rtse(&["run", "turn.recovery", "--report", "json=-"]);
    assert_eq!(code, exit::OK, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["iut"], "reference");
    let m = j["matrix"].as_array().unwrap();
    let fgt = m.iter().find(|x| x["flaw"] == "forgets-given-turn").unwrap();
    assert!(fgt["caught_by"].as_array().unwrap().iter().any(|c| c == "turn.recovery.field-failure"));
    for c in j["cases"].as_array().unwrap() {
        assert_eq!(c["verdict"], "pass");
        assert!(c["seed"].is_u64());
    }
}

#[test]
fn results_are_deterministic() {
    let a = rtse(&["run", "--iut", "flaw:duplicates-on-resume", "recovery.iut-sending", "--report", "json=-"]).1;
    let b = rtse(&["run", "--iut", "flaw:duplicates-on-resume", "recovery.iut-sending", "--report", "json=-"]).1;
    assert_eq!(a, b);
    assert!(a.contains("\"fail\""));
}
