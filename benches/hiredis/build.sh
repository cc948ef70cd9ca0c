#!/usr/bin/env bash
# Builds the hiredis reader benchmark into target/hiredis-reader-bench when libhiredis-dev
# is installed; otherwise says so and exits 0, so callers can go on without it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/target/hiredis-reader-bench"
if [ ! -f /usr/include/hiredis/read.h ]; then
    echo "hiredis harness skipped: libhiredis-dev is not installed (apt-get install libhiredis-dev)"
    exit 0
fi
mkdir -p "$root/target"
cc -O2 -o "$out" "$here/reader_bench.c" -lhiredis
echo "$out"
