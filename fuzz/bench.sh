#!/usr/bin/env bash
# Fuzzing throughput, per target, on one core:
#
#  1. libFuzzer's own figure: the target binary (built with -s none -a, the
#     CI build: no sanitizer, overflow checks on) runs RUNS executions from the seed corpus with mutation,
#     pinned to one core; prints executions, wall time and exec/s (and
#     libFuzzer's stat::average_exec_per_sec).
#  2. In-process: every seed through rtse_conformance::fuzz::<target> in a
#     loop (cargo bench -p rtse-conformance --bench fuzz_targets).
#  3. Flaw hunting (--flaws): the time flaw_hunt (one binary, the flaw
#     chosen by RTSE_FLAW) needs to find each flaw, median over 5 runs
#     (-seed=1..5), from the seed corpus (corpus/flaw_hunt/) and from an
#     empty one, each run capped at --cap seconds (default 60; a run that
#     finds nothing counts as '>cap').
#
#   fuzz/bench.sh [--runs N | --seconds S] [--max-len N] [--no-options]
#                 [--no-inprocess] [--flaws [--cap S] [--no-dict] [--flaw NAME]...]
#                 [TARGET...]
#
# Every libFuzzer run uses the target's default flags (fuzz/<target>.options
# via fuzz/options.sh: decode_stack -max_len=128 -reduce_inputs=0; turn_scenario and
# flaw_hunt the operation dictionary and -max_len=64), as CI and the
# documented commands do. --no-options runs with libFuzzer's defaults
# instead (the figures before the options existed); --no-dict drops only
# the dictionary. --seconds runs each target for S seconds instead of N
# runs (the slow simulator targets). --max-len N overrides -max_len.
#
# Targets (issue 7): decode_stack >= 500 000 exec/s, turn_scenario >= 50 000
# exec/s on one core; forgets-given-turn found in under 10 s median from an
# empty corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runs=2000000
seconds=
maxlen=()
cap=60
inprocess=1
flaws=0
only_flaws=()
use_options=1
use_dict=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --max-len) maxlen=(-max_len="$2"); shift 2 ;;
    --cap) cap=$2; shift 2 ;;
    --dict) use_dict=1; shift ;;
    --no-dict) use_dict=0; shift ;;
    --no-options) use_options=0; shift ;;
    --flaw) only_flaws+=("$2"); flaws=1; shift 2 ;;
    --no-inprocess) inprocess=0; shift ;;
    --flaws) flaws=1; shift ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
pin=()
command -v taskset >/dev/null 2>&1 && pin=(taskset -c 0)

cargo fuzz build -s none -a >/dev/null 2>&1 || cargo fuzz build -s none -a
bin=fuzz/target/x86_64-unknown-linux-gnu/release
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# The flags a target runs with: its defaults (unless --no-options), without
# the dictionary if --no-dict, then --max-len (libFuzzer: the last wins).
flags_of() {
  if [ $use_options = 1 ]; then
    fuzz/options.sh "$1" | { if [ $use_dict = 1 ]; then cat; else grep -v '^-dict=' || true; fi; }
  fi
  [ ${#maxlen[@]} -gt 0 ] && printf '%s\n' "${maxlen[@]}"
  return 0
}

if [ -n "$seconds" ]; then
  budget=(-max_total_time="$seconds")
  echo "== libFuzzer, one core, ${seconds} s per target from the seed corpus (-s none -a)"
else
  budget=(-runs="$runs")
  echo "== libFuzzer, one core, $runs runs from the seed corpus (-s none -a)"
fi
printf '%-18s %12s %9s %12s %14s  %s\n' target executions seconds exec/s libfuzzer-avg flags
for t in "${targets[@]}"; do
  # flaw_hunt stops at its first finding: its figure is the flaw table.
  [ "$t" = flaw_hunt ] && continue
  [ -x "$bin/$t" ] || { echo "$t: not built"; continue; }
  mkdir -p "$scratch/$t"
  log="$scratch/$t.log"
  mapfile -t opts < <(flags_of "$t")
  t0=$(date +%s.%N)
  "${pin[@]}" "$bin/$t" "$scratch/$t" "$root/corpus/$t" "${budget[@]}" "${opts[@]}" -seed=1 -timeout=10 \
    -rss_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$scratch/" >"$log" 2>&1 || { echo "$t: FAILED (see below)"; tail -20 "$log"; continue; }
  t1=$(date +%s.%N)
  execs=$(awk '/^stat::number_of_executed_units/ {print $2}' "$log")
  avg=$(awk '/^stat::average_exec_per_sec/ {print $2}' "$log")
  shown=$(printf '%s ' "${opts[@]}" | sed "s#$root/##g")
  awk -v t="$t" -v n="$execs" -v a="$t0" -v b="$t1" -v avg="$avg" -v f="$shown" \
    'BEGIN { s = b - a; printf "%-18s %12d %9.2f %12.0f %14s  %s\n", t, n, s, n / s, avg, f }'
done

if [ $inprocess = 1 ]; then
  echo
  echo "== in-process, one thread, every seed through rtse_conformance::fuzz (cargo bench)"
  cargo bench -q -p rtse-conformance --bench fuzz_targets -- "${targets[@]}" 2>/dev/null
fi

if [ $flaws = 1 ]; then
  echo
  mapfile -t hunt_opts < <(flags_of flaw_hunt)
  echo "== flaw_hunt: seconds to find each flaw, median of 5 runs (-seed=1..5), cap ${cap} s per run, flags: $(printf '%s ' "${hunt_opts[@]}" | sed "s#$root/##g")"
  if [ ${#only_flaws[@]} -gt 0 ]; then
    names=("${only_flaws[@]}")
  else
    # Flaw::name(), in declaration order (the first 11 name arms).
    mapfile -t names < <(grep -oP 'Flaw::\w+ => "\K[a-z-]+(?=",)' conformance/src/flaw.rs | head -11)
  fi
  # One run: seconds to the first crash, or ">cap".
  hunt() { # flaw corpus-dir-or-empty seed
    local f=$1 c=$2 s=$3 d="$scratch/hunt-$1-$3"
    rm -rf "$d"; mkdir -p "$d/corpus" "$d/art"
    local t0 t1
    t0=$(date +%s.%N)
    if RTSE_FLAW="$f" timeout $((cap + 30)) "${pin[@]}" "$bin/flaw_hunt" "$d/corpus" $c -seed="$s" "${hunt_opts[@]}" \
        -max_total_time="$cap" -timeout=10 -rss_limit_mb=1024 -artifact_prefix="$d/art/" >"$d/log" 2>&1; then
      echo ">$cap"
    elif ls "$d/art"/crash-* >/dev/null 2>&1; then
      t1=$(date +%s.%N)
      awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
    else
      echo "error"
    fi
  }
  # Median of 5, '>cap' sorting last.
  median() { printf '%s\n' "$@" | sed "s/^>.*/999999/" | sort -g | sed -n 3p | sed "s/^999999$/>$cap/"; }
  printf '%-26s %-34s %-34s\n' flaw "seed corpus: median (runs)" "empty corpus: median (runs)"
  for f in "${names[@]}"; do
    a=(); b=()
    for s in 1 2 3 4 5; do a+=("$(hunt "$f" "$root/corpus/flaw_hunt" "$s")"); done
    for s in 1 2 3 4 5; do b+=("$(hunt "$f" "" "$s")"); done
    printf '%-26s %-34s %-34s\n' "$f" "$(median "${a[@]}") (${a[*]})" "$(median "${b[@]}") (${b[*]})"
  done
fi
