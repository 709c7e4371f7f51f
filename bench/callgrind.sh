#!/bin/bash
# User-space instructions per request of examples/hello, counted by callgrind (docs/BENCHMARKS.md,
# "The bare loop's cost"): deterministic where timings on a shared VM are not, so two builds can
# be compared on any machine. The kernel's part (the TCP path) is not counted.
#
#   bench/callgrind.sh                 # builds examples/hello (release) and measures it
#   BIN=/path/to/hello bench/callgrind.sh
#   N=20000 PORT=8095 bench/callgrind.sh
#
# Needs valgrind, ab (apache2-utils) and curl. Output: the request count, failures, and the
# instructions per request (loop and workers together); the profile stays in $OUT for
# callgrind_annotate --inclusive=yes.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in valgrind callgrind_control callgrind_annotate ab curl; do
    command -v "$tool" >/dev/null || { echo "bench/callgrind.sh: $tool is missing (apt-get install valgrind apache2-utils curl)" >&2; exit 1; }
done
N=${N:-20000}
PORT=${PORT:-8095}
OUT=${OUT:-$(mktemp -d /tmp/h1callgrind.XXXXXX)/callgrind.out}
if [ -z "${BIN:-}" ]; then
    ${CARGO:-cargo} build --release --example hello --quiet
    BIN=${CARGO_TARGET_DIR:-target}/release/examples/hello
fi
if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then
    echo "bench/callgrind.sh: something already answers on port $PORT (set PORT)" >&2; exit 1
fi
H1_WORKERS=2 valgrind --tool=callgrind --callgrind-out-file="$OUT" "$BIN" --port "$PORT" >/dev/null 2>&1 &
VP=$!
trap 'kill -INT $VP 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.2; done
ab -q -k -n 2000 -c 8 "http://127.0.0.1:$PORT/" >/dev/null
callgrind_control -z $VP >/dev/null
RESULT=$(ab -q -k -n "$N" -c 8 "http://127.0.0.1:$PORT/")
callgrind_control -d $VP >/dev/null
sleep 1
kill -INT $VP 2>/dev/null || true
sleep 1
kill -KILL $VP 2>/dev/null || true
wait $VP 2>/dev/null || true
trap - EXIT
DONE=$(echo "$RESULT" | awk '/Complete requests/{print $3}')
FAILED=$(echo "$RESULT" | awk '/Failed requests/{print $3}')
DUMP=$(ls -1 "$OUT".* 2>/dev/null | tail -1)
TOTAL=$(callgrind_annotate "$DUMP" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}')
echo "requests $DONE, failed $FAILED, instructions $TOTAL, per request $((TOTAL / DONE))"
echo "profile: $DUMP (callgrind_annotate --inclusive=yes $DUMP)"
