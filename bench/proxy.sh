#!/usr/bin/env bash
# Proxied keep-alive req/s, side by side: examples/gateway (release, the event loop's
# upstream path) and nginx `proxy_pass` with a keepalive upstream, both in front of the
# same examples/hello, each measured with `wrk -t1 -c64 -d$SECS` (default 10 s) in turn,
# REPEATS times (default 3). Loopback only; every process started here is stopped by its
# PID (nginx with SIGTERM to its master, which takes its workers down).
set -eu
CARGO=${CARGO:-cargo}
SECS=${SECS:-10}
REPEATS=${REPEATS:-3}
UP=18941 GW=18942 NG=18943
command -v wrk >/dev/null || { echo "bench/proxy.sh needs wrk" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "bench/proxy.sh needs nginx" >&2; exit 1; }
$CARGO build --quiet --release --example hello
$CARGO build --quiet --release --features proxy --example gateway
dir="${CARGO_TARGET_DIR:-target}/release/examples"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
wait_port() {
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on $1" >&2; exit 1
}
RUST_LOG=warn "$dir/hello" --port $UP & pids+=($!)
GATEWAY_UPSTREAMS="/=http://127.0.0.1:$UP" GATEWAY_ADDR=127.0.0.1:$GW RUST_LOG=warn "$dir/gateway" & pids+=($!)
mkdir -p "$tmp/logs"
cat > "$tmp/nginx.conf" <<CONF
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $tmp/body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    upstream hello { server 127.0.0.1:$UP; keepalive 64; }
    server {
        listen 127.0.0.1:$NG;
        keepalive_requests 1000000;
        location / {
            proxy_pass http://hello;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF
"$NGINX" -p "$tmp" -c "$tmp/nginx.conf" -g 'daemon off;' & pids+=($!)
wait_port $UP; wait_port $GW; wait_port $NG
curl -fsS "http://127.0.0.1:$GW/" >/dev/null
curl -fsS "http://127.0.0.1:$NG/" >/dev/null
rps() { wrk -t1 -c64 -d"${SECS}s" "http://127.0.0.1:$1/" | awk '/Requests\/sec/ {print $2} /Non-2xx|Socket errors/ {print "ERR " $0 > "/dev/stderr"}'; }
echo "== proxied GET / (hello upstream), wrk -t1 -c64 -d${SECS}s"
for i in $(seq "$REPEATS"); do
  g=$(rps $GW); n=$(rps $NG)
  echo "run $i: gateway $g req/s, nginx $n req/s, ratio $(awk -v g="$g" -v n="$n" 'BEGIN { printf "%.2f", g / n }')"
done
