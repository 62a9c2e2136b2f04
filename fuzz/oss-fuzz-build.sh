#!/bin/bash -eu
# OSS-Fuzz-compatible build (also used by .clusterfuzzlite/build.sh): builds
# every cargo-fuzz target with the sanitizer the base-builder-rust image
# selects ($SANITIZER; its cargo wrapper sets the flags), and puts in $OUT,
# per target: the binary, <target>_seed_corpus.zip (corpus/<target>/ plus
# the regression inputs, so every past finding is re-run first) and
# <target>.options (libFuzzer limits, plus fuzz/<target>.options). Run inside the OSS-Fuzz builder:
#   python infra/helper.py build_fuzzers --external $PWD
cd "$SRC/rtse-lab"
cargo fuzz build -O --debug-assertions
bin=fuzz/target/x86_64-unknown-linux-gnu/release
for t in $(cargo fuzz list); do
  # flaw_hunt crashes by design (it finds deliberate flaws): a benchmark
  # of the fuzzer, not a bug finder; continuous fuzzing would file its
  # every success as a bug.
  [ "$t" = flaw_hunt ] && continue
  cp "$bin/$t" "$OUT/"
  rm -f "$OUT/${t}_seed_corpus.zip"
  zip -q -j "$OUT/${t}_seed_corpus.zip" corpus/"$t"/*
  for f in corpus/regressions/"$t"/*; do
    case "$f" in *.toml|*.md) ;; *) [ -f "$f" ] && zip -q -j "$OUT/${t}_seed_corpus.zip" "$f" ;; esac
  done
  if [ "$t" = turn_scenario ]; then
    cp fuzz/dicts/scenario.dict "$OUT/$t.dict"
  fi
  # The target's own defaults (fuzz/<target>.options: max_len; the
  # dictionary is $OUT/<target>.dict above) after the common limits.
  {
    printf '[libfuzzer]\ntimeout = 10\nrss_limit_mb = 1024\nmalloc_limit_mb = 512\n'
    [ -f "fuzz/$t.options" ] && grep -E '^[a-z_]+ *=' "fuzz/$t.options" | grep -v '^dict' || true
  } > "$OUT/$t.options"
done
