//! Every input the fuzzers ever found (crash, hang or oracle violation) is
//! kept in `corpus/regressions/<target>/` with a note beside it
//! (`<file>.toml`: root cause, fix, expected outcome). This test replays
//! each one through the same library function the fuzz target calls and
//! asserts the expected outcome: a clean decode, or an error naming the
//! layer and offset (and, when the note says, the expectation). A target
//! without its folder, or an input without its note, fails the test.

use rtse_conformance::fuzz::{Outcome, Target};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Note {
    /// How it was found (command, date).
    found: String,
    /// Why it failed.
    root_cause: String,
    /// What changed.
    fix: String,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// `decoded`, `rejected`, `detected` (flaw_hunt: the flaw is found,
    /// that is, the target panics naming the invariant) or `violation` (an
    /// open turn_scenario finding, panicking naming the invariant).
    outcome: String,
    /// `detected` / `violation` only: the invariant the report must name.
    invariant: Option<String>,
    layer: Option<String>,
    offset: Option<usize>,
    expected: Option<String>,
}

fn dir(t: Target) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/regressions").join(t.name())
}

fn inputs(d: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(d)
        .unwrap_or_else(|e| panic!("{}: {e} (every fuzz target needs its regression folder)", d.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| !matches!(p.extension().and_then(|x| x.to_str()), Some("toml" | "md")))
        .collect();
    v.sort();
    v
}

fn check(t: Target, input: &Path) -> Result<(), String> {
    let name = format!("{}/{}", t.name(), input.file_name().unwrap().to_string_lossy());
    let note_path = input.with_file_name(format!("{}.toml", input.file_name().unwrap().to_string_lossy()));
    let note = std::fs::read_to_string(&note_path).map_err(|e| format!("{name}: note {}: {e}", note_path.display()))?;
    let note: Note = toml::from_str(&note).map_err(|e| format!("{name}: note: {e}"))?;
    for (field, v) in [("found", &note.found), ("root_cause", &note.root_cause), ("fix", &note.fix)] {
        if v.trim().is_empty() {
            return Err(format!("{name}: note has an empty {field}"));
        }
    }
    let data = std::fs::read(input).map_err(|e| format!("{name}: {e}"))?;
    let e = &note.expect;
    let got = std::panic::catch_unwind(|| t.run(&data));
    // `violation`: an open finding (a turn_scenario input the reference
    // still fails); the note says why it is not fixed yet. Fixing it turns
    // this into a failure, and the note into `decoded`.
    if e.outcome == "detected" || e.outcome == "violation" {
        let msg = match got {
            Ok(o) => return Err(format!("{name}: expected {} naming an invariant, got {o:?}", e.outcome)),
            Err(p) => panic_text(&*p),
        };
        let inv = e.invariant.as_deref().ok_or_else(|| format!("{name}: a detection names its invariant"))?;
        let want = format!("VIOLATION {inv}:");
        let kind = if e.outcome == "detected" { "detected" } else { "invariant violated" };
        return if msg.contains(kind) && msg.contains(&want) {
            Ok(())
        } else {
            Err(format!("{name}: expected a detection naming {inv}, got: {msg}"))
        };
    }
    let got = got.map_err(|p| format!("{name}: panicked: {}", panic_text(&*p)))?;
    match (e.outcome.as_str(), &got) {
        ("decoded", Outcome::Decoded) => Ok(()),
        ("rejected", Outcome::Rejected(err)) => {
            let layer = e.layer.as_deref().ok_or_else(|| format!("{name}: a rejection names its layer"))?;
            let offset = e.offset.ok_or_else(|| format!("{name}: a rejection names its offset"))?;
            let exp_ok = e.expected.as_deref().is_none_or(|x| x == err.expected);
            if err.layer.as_str() == layer && err.offset == offset && exp_ok {
                Ok(())
            } else {
                Err(format!("{name}: expected rejection at {layer} @ {offset:#x}, got {err}"))
            }
        }
        (want, _) => Err(format!("{name}: expected {want}, got {got:?}")),
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

#[test]
fn every_regression_input_gives_its_expected_outcome() {
    let mut failures = Vec::new();
    let mut n = 0;
    for t in Target::ALL {
        for input in inputs(&dir(t)) {
            n += 1;
            if let Err(e) = check(t, &input) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{} of {n} regression inputs failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn a_missing_folder_or_note_fails() {
    let tmp = std::env::temp_dir().join(format!("rtse-fuzz-reg-{}", std::process::id()));
    let missing = tmp.join("nope");
    assert!(std::panic::catch_unwind(|| inputs(&missing)).is_err());
    std::fs::create_dir_all(&tmp).unwrap();
    let input = tmp.join("crash-x");
    std::fs::write(&input, [0u8]).unwrap();
    let err = check(Target::Rtse, &input).unwrap_err();
    assert!(err.contains("note"), "{err}");
    std::fs::write(
        tmp.join("crash-x.toml"),
        "found = \"f\"\nroot_cause = \"r\"\nfix = \"x\"\n[expect]\noutcome = \"decoded\"\n",
    )
    .unwrap();
    // One zero octet is not an RTSE APDU: the expectation is checked.
    let err = check(Target::Rtse, &input).unwrap_err();
    assert!(err.contains("expected decoded"), "{err}");
    std::fs::remove_dir_all(&tmp).unwrap();
}
