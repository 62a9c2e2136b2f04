#!/usr/bin/env bash
# Fuzz smoke run: build every cargo-fuzz target (no sanitizer, so the stable
# toolchain does), run each for FUZZ_SECONDS (default 20) from its seed
# corpus (corpus/<target>/, read-only: new inputs go to a scratch folder),
# and fail on the first finding, printing the reproducing input in hex and
# the commands to reproduce and keep it as a regression.
#
#   scripts/fuzz-smoke.sh                 # every target, 20 s each
#   FUZZ_SECONDS=300 scripts/fuzz-smoke.sh session capture
#
# Overflow checks and debug assertions are on (-a): an arithmetic overflow
# is a finding too. Each target runs with its default flags from
# fuzz/<target>.options (fuzz/options.sh). See docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${FUZZ_SECONDS:-20}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz-smoke: installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

# The fuzz workspace's lock file is committed: fail if it is stale.
cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null

t0=$(date +%s)
cargo fuzz build -s none -a
echo "fuzz-smoke: built every target in $(( $(date +%s) - t0 )) s"

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t/corpus" "$scratch/$t/artifacts"
  log="$scratch/$t/log"
  # The target's default flags (fuzz/<target>.options: -max_len, -dict).
  mapfile -t opts < <(fuzz/options.sh "$t")
  if [ "$t" = flaw_hunt ]; then
    # flaw_hunt crashes when it finds its flaw: that is a pass. It must
    # find forgets-given-turn (the field failure) from the seeds in time.
    echo "fuzz-smoke: flaw_hunt must find forgets-given-turn within ${secs} s"
    if RTSE_FLAW=forgets-given-turn cargo fuzz run -s none -a flaw_hunt "$scratch/$t/corpus" "$root/corpus/$t" -- \
        "${opts[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=512 \
        -artifact_prefix="$scratch/$t/artifacts/" >"$log" 2>&1; then
      status=1
      echo "fuzz-smoke: flaw_hunt FAILED: forgets-given-turn not found in ${secs} s"
    elif grep -q "flaw forgets-given-turn detected" "$log"; then
      echo "fuzz-smoke: flaw_hunt ok: forgets-given-turn found"
    else
      status=1
      echo "fuzz-smoke: flaw_hunt FAILED (not a detection):"
      grep -E "panicked at|ERROR: libFuzzer|SUMMARY" -A6 "$log" | head -40 || tail -40 "$log"
    fi
    continue
  fi
  echo "fuzz-smoke: $t for ${secs} s"
  if cargo fuzz run -s none -a "$t" "$scratch/$t/corpus" "$root/corpus/$t" -- \
      "${opts[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=512 \
      -artifact_prefix="$scratch/$t/artifacts/" -print_final_stats=1 >"$log" 2>&1; then
    execs=$(grep -m1 '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    rate=$(grep -m1 '^stat::average_exec_per_sec' "$log" | awk '{print $2}')
    echo "fuzz-smoke: $t ok: ${execs:-?} executions, ${rate:-?} exec/s"
  else
    status=1
    echo "fuzz-smoke: $t FAILED"
    grep -E "panicked at|^fuzz:|ERROR: libFuzzer|SUMMARY" -A6 "$log" | head -40 || tail -40 "$log"
    for a in "$scratch/$t/artifacts"/*; do
      [ -f "$a" ] || continue
      name=$(basename "$a")
      echo "fuzz-smoke: reproducing input $t/$name ($(wc -c <"$a") octets), hex:"
      od -An -tx1 -v "$a" | tr -d ' \n'
      echo
      echo "fuzz-smoke: reproduce: echo <hex> | xxd -r -p > $name && cargo fuzz run -s none $t $name"
      echo "fuzz-smoke: keep it:   cp $name corpus/regressions/$t/ and write $name.toml (see corpus/regressions/README.md)"
    done
  fi
done
exit $status
