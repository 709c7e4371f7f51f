#!/bin/bash
# Alternating pinned c64 A/B: server CPU µs per request from /proc/PID/stat.
set -u
measure() { # bin port
  taskset -c 1 "$1" --port "$2" >/dev/null 2>&1 & local P=$!
  for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:$2/ && break; sleep 0.1; done
  taskset -c 0 wrk -t1 -c64 -d2s http://127.0.0.1:$2/ >/dev/null 2>&1
  local t0=$(awk '{print $14+$15}' /proc/$P/stat)
  local out=$(taskset -c 0 wrk -t1 -c64 -d6s http://127.0.0.1:$2/ 2>&1)
  local t1=$(awk '{print $14+$15}' /proc/$P/stat)
  kill $P; wait $P 2>/dev/null
  local reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$out" | awk -v r=$reqs -v d=$((t1-t0)) -v n=$1 '/Requests\/sec/ {printf "%s %s req/s %.2f us/req\n", n, $2, d*10000/r}'
}
for i in 1 2 3 4 5; do
  measure /work/hello-base 8091
  measure /work/hello-new 8090
done
