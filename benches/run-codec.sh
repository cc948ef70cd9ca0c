#!/usr/bin/env bash
# Runs the codec benchmarks: criterion groups resp-proto/decode and resp-proto/encode
# (resp-proto and the redis crate side by side), then the hiredis reader on the same corpora
# when libhiredis-dev is installed. Short runs by default; pass criterion options to change.
#
#   benches/run-codec.sh [criterion options…]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
opts=("$@")
if [ ${#opts[@]} -eq 0 ]; then
    opts=(--warm-up-time 1 --measurement-time 3)
fi
cargo bench -p redis-benches --bench codec -- "${opts[@]}"
cargo run -q --release -p redis-benches --bin write-corpora -- target/corpora
bin="$(benches/hiredis/build.sh | tail -1)"
if [ -x "$bin" ]; then
    echo "hiredis reader, 16 KiB reads, median of passes:"
    "$bin" target/corpora 3 array_1000x100 integers_1m nested_100x10 bulk_10mb map_1000
else
    echo "$bin"
fi
