#!/bin/bash
# Syscalls, context switches and CPU per request of a server under the harness's pinned
# c64 load (docs/BENCHMARKS.md, "Run 23"): the server on CPU 1, `wrk -t1 -cCONNS` on CPU 0,
# `perf stat` counting the server's syscall tracepoints for the run.
#
#   bench/syscalls.sh target/release/examples/hello            # port 8090, 5 s, 64 connections
#   bench/syscalls.sh /path/to/mio-limit 8087 5 512             # any server that takes --port
#
# Needs perf (Debian linux-perf; root, or perf_event_paranoid <= 1, for the tracepoints),
# wrk, curl and taskset. Prints requests/s, CPU µs a request (user in brackets), wrk's p99
# and each count divided by the requests. The server is started here and stopped by its PID.
set -euo pipefail
BIN=${1:?usage: bench/syscalls.sh SERVER [PORT] [SECS] [CONNS]}
PORT=${2:-8090} SECS=${3:-5} CONNS=${4:-64}
for tool in perf wrk curl taskset; do
    command -v "$tool" >/dev/null || { echo "bench/syscalls.sh: $tool is missing" >&2; exit 1; }
done
if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then
    echo "bench/syscalls.sh: something already answers on port $PORT" >&2; exit 1
fi
STAT=$(mktemp /tmp/h1syscalls.XXXXXX)
taskset -c 1 "$BIN" --port "$PORT" >/dev/null 2>&1 &
SP=$!
trap 'kill -TERM $SP 2>/dev/null || true; rm -f "$STAT"' EXIT
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
taskset -c 0 wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$PORT/" >/dev/null
read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$SP/stat")
EVENTS=syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_epoll_wait
EVENTS=$EVENTS,syscalls:sys_enter_sched_yield,syscalls:sys_enter_futex,syscalls:sys_enter_write
perf stat -x, -e "$EVENTS,context-switches" -p "$SP" -o "$STAT" -- sleep "$((SECS + 1))" &
PP=$!
OUT=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${SECS}"s --latency "http://127.0.0.1:$PORT/")
wait $PP
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$SP/stat")
N=$(echo "$OUT" | awk '/requests in/{print $1}')
P99=$(echo "$OUT" | awk '$1=="99%"{print $2}')
python3 - "$STAT" "$N" "$SECS" "$u0" "$s0" "$u1" "$s1" "$(getconf CLK_TCK)" "$P99" <<'PY'
import sys
stat, n, secs, u0, s0, u1, s1, tck, p99 = sys.argv[1:]
n, secs, tck = int(n), int(secs), int(tck)
u, s = (int(u1) - int(u0)) / tck, (int(s1) - int(s0)) / tck
counts = {}
for line in open(stat):
    f = line.strip().split(",")
    if len(f) > 2 and f[0].replace(".", "").isdigit():
        counts[f[2].split(":")[-1].replace("sys_enter_", "")] = float(f[0])
# The counts cover SECS + 1 s (perf outlives wrk a little): an idle second adds none.
print(f"requests/s {n / secs:.0f}  CPU {(u + s) / n * 1e6:.2f} us/req (user {u / n * 1e6:.2f})  p99 {p99}")
print("per request: " + "  ".join(f"{k} {v / n:.3f}" for k, v in counts.items()))
PY
