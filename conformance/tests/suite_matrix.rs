//! The suite against the in-process reference MTA and every flaw: the
//! reference passes every case, every flaw fails at least one (the suite's
//! mutation score is 100%), and `forgets-given-turn` is caught by the
//! field-failure case.

use rtse_codec::presentation::Mode;
use rtse_conformance::flaw::Flaw;
use rtse_conformance::suite::{self, case, Verdict};

fn print_failures(rs: &[suite::CaseResult]) -> String {
    rs.iter()
        .filter(|r| r.verdict != Verdict::Pass && r.verdict != Verdict::Skipped)
        .map(|r| {
            let trace: Vec<String> = r.trace.iter().map(ToString::to_string).collect();
            format!("{} {:?}: {}\n{}", r.id, r.verdict, r.reason.as_deref().unwrap_or(""), trace.join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[test]
fn reference_passes_everything_and_every_flaw_is_caught() {
    let cases = case::builtin().unwrap();
    let m = suite::matrix(&cases, &suite::Capabilities::both());
    let bad = print_failures(&m.reference);
    assert!(bad.is_empty(), "the reference must pass every applicable case:\n{bad}");
    for (f, caught) in &m.flaws {
        eprintln!("{f}: {}", caught.join(", "));
    }
    assert_eq!(m.survivors(), Vec::<Flaw>::new(), "flaws no case catches");
    assert!((m.score() - 1.0).abs() < f64::EPSILON);
    let fgt = &m.flaws.iter().find(|(f, _)| *f == Flaw::ForgetsGivenTurn).unwrap().1;
    assert!(fgt.iter().any(|c| c == "turn.recovery.field-failure"), "{fgt:?}");
    assert!(fgt.iter().any(|c| c == "turn.recovery.field-failure@x410"), "caught in X.410 mode too: {fgt:?}");
}

#[test]
fn reference_passes_everything_in_x410_mode() {
    let cases = case::builtin().unwrap();
    let caps = suite::Capabilities::all(Mode::X410);
    let rs = suite::run_all(&cases, &mut suite::InProcessIut::new(Mode::X410, None), &caps, None);
    let bad = print_failures(&rs);
    assert!(bad.is_empty(), "{bad}");
}
