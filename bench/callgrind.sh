#!/bin/bash
# User-space instructions per request of examples/hello, counted by callgrind (docs/BENCHMARKS.md,
# "The bare loop's cost"): deterministic where timings on a shared VM are not, so two builds can
# be compared on any machine. The kernel's part (the TCP path) is not counted.
#
#   bench/callgrind.sh                 # builds examples/hello (release) and measures it
#   BIN=/path/to/hello bench/callgrind.sh
#   N=20000 PORT=8095 bench/callgrind.sh
#   CLIENT=wrk bench/callgrind.sh      # the harness's load instead: wrk -t1 -c64 for SECS (8) s,
#                                      # server and wrk on CPUs 1 and 0 (the shape of its c64 run)
#
# Needs valgrind, ab (apache2-utils) and curl. Output: the request count, failures, and the
# instructions per request (loop and workers together); the profile stays in $OUT for
# callgrind_annotate --inclusive=yes.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENT=${CLIENT:-ab}
case $CLIENT in ab | wrk) ;; *) echo "bench/callgrind.sh: CLIENT must be ab or wrk" >&2; exit 2 ;; esac
for tool in valgrind callgrind_control callgrind_annotate "$CLIENT" curl; do
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
SERVER_PIN=() CLIENT_PIN=()
if [ "$CLIENT" = wrk ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    SERVER_PIN=(taskset -c 1) CLIENT_PIN=(taskset -c 0)
fi
# ab: 2 workers, as the table's figures; wrk: the default workers, as the harness runs it.
WORKERS=2
[ "$CLIENT" = wrk ] && WORKERS=${H1_WORKERS:-}
env ${WORKERS:+H1_WORKERS=$WORKERS} "${SERVER_PIN[@]}" valgrind --tool=callgrind --callgrind-out-file="$OUT" "$BIN" --port "$PORT" >/dev/null 2>&1 &
VP=$!
trap 'kill -INT $VP 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.2; done
if [ "$CLIENT" = wrk ]; then
    "${CLIENT_PIN[@]}" wrk -t1 -c64 -d3s "http://127.0.0.1:$PORT/" >/dev/null
    callgrind_control -z $VP >/dev/null
    WRK=$("${CLIENT_PIN[@]}" wrk -t1 -c64 -d"${SECS:-8}"s "http://127.0.0.1:$PORT/")
    # ab's report lines, so the sums below read both.
    RESULT=$(echo "$WRK" | awk '/requests in/{print "Complete requests: " $1}
        /Non-2xx/{bad += $NF} /Socket errors/{for (i = 4; i <= NF; i += 2) bad += $i}
        END{print "Failed requests: " bad + 0}')
else
    ab -q -k -n 2000 -c 8 "http://127.0.0.1:$PORT/" >/dev/null
    callgrind_control -z $VP >/dev/null
    RESULT=$(ab -q -k -n "$N" -c 8 "http://127.0.0.1:$PORT/")
fi
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
