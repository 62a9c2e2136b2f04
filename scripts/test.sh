#!/usr/bin/env bash
# Runs every test: the workspace's unit, integration and property tests
# (including the comparisons against tshark and asn1tools when those are
# installed; set RTSE_REQUIRE_TOOLS=1 to make their absence a failure).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-targets --locked
