//! The seed corpus (`corpus/<target>/`) is exactly what
//! `rtse_conformance::fuzz::seeds::generate` produces from the examples and
//! captures, so seeds stay in step with the codec. Regenerate with
//! `RTSE_BLESS=1 cargo test -p rtse-conformance --test fuzz_seeds`.

use rtse_conformance::fuzz::{seeds, Outcome, Target};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn committed_seeds_are_what_the_generator_produces() {
    let corpus = seeds::generate(&root()).unwrap();
    if std::env::var_os("RTSE_BLESS").is_some() {
        seeds::write(&root(), &corpus).unwrap();
    }
    let diff = seeds::diff(&root(), &corpus).unwrap();
    assert!(
        diff.is_empty(),
        "corpus/<target>/ is out of step with the generator (RTSE_BLESS=1 rewrites it):\n{}",
        diff.join("\n")
    );
}

#[test]
fn every_target_has_seeds_and_they_decode() {
    let corpus = seeds::generate(&root()).unwrap();
    let total: usize = corpus.values().map(|f| f.len()).sum();
    assert!(total <= 600, "{total} seeds: keep the seed set small");
    for t in Target::ALL {
        let files = &corpus[&t];
        assert!(files.len() >= 5, "{}: only {} seeds", t.name(), files.len());
        if t == Target::FlawHunt {
            // Its seeds run the reference against a flaw: detecting it
            // (a panic, for libFuzzer) is the point; the scripts are
            // turn_scenario's, which must run clean.
            continue;
        }
        let rejected: Vec<String> = files
            .iter()
            .filter_map(|(name, bytes)| match t.run(bytes) {
                Outcome::Decoded => None,
                Outcome::Rejected(e) => Some(format!("{name}: {e}")),
            })
            .collect();
        // Seeds are the codec's own output for PDUs that decoded; only a
        // capture may hold other traffic that does not.
        if t != Target::Capture {
            assert!(rejected.is_empty(), "{}: seeds rejected:\n{}", t.name(), rejected.join("\n"));
        }
    }
}

#[test]
fn the_split_pass_runs_on_one_stream_input_in_eight_and_on_the_split_seeds() {
    use rtse_conformance::fuzz::{split_piece, stack_flags};
    // Header octet 0 of decode_stack: the two stream paths are half of the
    // 256 values; the split pass (a second whole decode) runs on one in
    // eight of those, still chosen by the input so a finding replays.
    let stream = (0..=255u8).filter(|f| f & stack_flags::PATH <= stack_flags::STREAM_MID);
    let split = stream.clone().filter(|&f| split_piece(f).is_some()).count();
    assert_eq!((split, stream.count()), (16, 128));
    assert_eq!(split_piece(stack_flags::SPLIT | (6 << 5)), Some(7));
    assert_eq!(split_piece(stack_flags::SPLIT | (7 << 5)), Some(8));
    assert_eq!(split_piece(stack_flags::SPLIT | 0x08), None);
    assert_eq!(split_piece(0), None);
    // The seed corpus keeps split inputs, so the oracle runs from the
    // first executions on.
    let corpus = seeds::generate(&root()).unwrap();
    let n =
        corpus[&Target::DecodeStack].values().filter(|b| b.first().is_some_and(|&f| split_piece(f).is_some())).count();
    assert!(n >= 5, "only {n} decode_stack seeds run the split pass");
}
