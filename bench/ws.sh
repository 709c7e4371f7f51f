#!/usr/bin/env bash
# WebSocket broadcast: examples/chat (release, H1_WORKERS workers, default 2) with CLIENTS
# members (default 1000), one of which sends MESSAGES texts (default 2000); prints
# deliveries/s and the server's RSS per connection (examples/ws_bench.rs). Loopback only;
# the chat server is stopped by its PID (SIGTERM) when done.
set -eu
CARGO=${CARGO:-cargo}
CLIENTS=${CLIENTS:-1000}
MESSAGES=${MESSAGES:-2000}
WORKERS=${H1_WORKERS:-2}
PORT=${PORT:-18931}
$CARGO build --quiet --release --features ws --example chat --example ws_bench
dir="${CARGO_TARGET_DIR:-target}/release/examples"
H1_ADDR=127.0.0.1:$PORT H1_WORKERS=$WORKERS RUST_LOG=warn "$dir/chat" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
i=0
until (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 100 ] || { echo "chat did not start" >&2; exit 1; }; sleep 0.1
done
echo "== chat: $WORKERS workers, $CLIENTS clients, $MESSAGES messages"
"$dir/ws_bench" --addr 127.0.0.1:$PORT --clients "$CLIENTS" --messages "$MESSAGES" --pid $pid
