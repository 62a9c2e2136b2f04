#!/bin/bash -eu
# ClusterFuzzLite entry point: the same build as OSS-Fuzz.
exec bash "$SRC/rtse-lab/fuzz/oss-fuzz-build.sh"
