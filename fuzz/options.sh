#!/usr/bin/env bash
# The libFuzzer flags a target runs with by default, one per line, from
# fuzz/<target>.options (the OSS-Fuzz format: `key = value` lines under
# `[libfuzzer]`); `dict` is a path relative to fuzz/, printed absolute.
# Used by scripts/fuzz-smoke.sh, fuzz/bench.sh and fuzz/oss-fuzz-build.sh,
# so CI, the benchmark and the documented commands agree:
#
#   cargo fuzz run -s none -a decode_stack CORPUS -- $(fuzz/options.sh decode_stack)
set -euo pipefail
dir=$(cd "$(dirname "$0")" && pwd)
f="$dir/$1.options"
[ -f "$f" ] || exit 0
awk -v dir="$dir" '
  /^\[/ { sec = $0; next }
  sec == "[libfuzzer]" && /=/ {
    k = $0; sub(/[ \t]*=.*/, "", k); gsub(/^[ \t]+/, "", k)
    v = $0; sub(/^[^=]*=[ \t]*/, "", v); sub(/[ \t]+$/, "", v)
    if (k == "dict") v = dir "/" v
    print "-" k "=" v
  }' "$f"
