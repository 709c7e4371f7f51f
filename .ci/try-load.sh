#!/bin/sh
# Starts examples/hello on 127.0.0.1:PORT, runs a short bounded load (wrk or ab -k), stops
# the server it started (by its PID).
set -eu
tool=$1; port=$2
bin=target/release/examples/hello
H1_WORKERS=${H1_WORKERS:-2} $bin --port "$port" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
i=0; until curl -fs "http://127.0.0.1:$port/" >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.05; done
case $tool in
  wrk) wrk -t1 -c64 -d5s --latency "http://127.0.0.1:$port/" ;;
  ab)  ab -k -n 50000 -c 50 "http://127.0.0.1:$port/" ;;
esac
