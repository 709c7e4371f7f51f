#!/usr/bin/env bash
# bench/run.sh — the project's own load benchmark (`make bench`), runnable from a fresh clone.
# Builds examples/hello in release, and for each test starts it on 127.0.0.1:$PORT, waits
# until it answers, measures, and stops it by its PID (also on error and Ctrl-C). Prints
# every command it runs and the machine, so a result can be reproduced. Then runs the
# workplace's side-by-side harness when ../shared/bench exists beside the checkout.
# Every load is bounded in time (wrk -d, ab -t) and count (ab -n, IDLE_CONNS).
# Settings (environment): see usage() below and docs/BENCHMARKS.md.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/run.sh            (settings from the environment; `make bench` runs it)
  TESTS=memory,keepalive,pipeline,ab,peers   what to run, in this order (also: nginx; and
                  proxy: bench/proxy.sh, examples/gateway vs nginx proxy_pass)
  TLS=0           1: HTTPS — hello built with --features tls, a self-signed certificate
                  made with openssl in OUT, wrk over https (and nginx with the same one)
  DURATION=10     seconds per wrk run, and ab's time limit (ab -t)
  PORT=8090       port on 127.0.0.1 for examples/hello
  CONNS=64        wrk connections (-c);  THREADS=1  wrk threads (-t)
  PIPELINE=16     requests per write in the pipelined test (bench/pipeline.lua)
  AB_REQUESTS=1000000  ab -n (ab stops at this count or after DURATION s, whichever first)
  AB_CONNS=64     ab -c
  IDLE_CONNS=1000 idle keep-alive connections in the memory test (1 request each)
  PIN=auto        auto: taskset server and clients apart when there are >= 2 CPUs; 1; 0
  SERVER_CPUS=1 CLIENT_CPUS=0   taskset -c lists used when pinning
  OUT=            directory for raw outputs and server logs (default: a new /tmp/h1bench.*)
  H1_*            passed to the server as they are (docs/CONFIG.md), e.g. H1_WORKERS=2
EOF
}
case ${1:-} in -h|--help) usage; exit 0 ;; '') ;; *) usage >&2; exit 2 ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

TESTS=${TESTS:-memory,keepalive,pipeline,ab,peers}
DURATION=${DURATION:-10}
PORT=${PORT:-8090}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
PIPELINE=${PIPELINE:-16}
AB_REQUESTS=${AB_REQUESTS:-1000000}
AB_CONNS=${AB_CONNS:-64}
IDLE_CONNS=${IDLE_CONNS:-1000}
PIN=${PIN:-auto}
TLS=${TLS:-0}
SERVER_CPUS=${SERVER_CPUS:-1}
CLIENT_CPUS=${CLIENT_CPUS:-0}
CARGO=${CARGO:-cargo}
PEERS_DIR="$(dirname "$root")/shared/bench" # ../shared/bench beside the checkout

die() { echo "bench: $*" >&2; exit 1; }

for v in DURATION PORT CONNS THREADS PIPELINE AB_REQUESTS AB_CONNS IDLE_CONNS; do
    case ${!v} in '' | *[!0-9]* | 0) die "$v=${!v}: must be a positive whole number" ;; esac
done
tests=" ${TESTS//,/ } "
for t in $tests; do
    case $t in memory | keepalive | pipeline | ab | peers | nginx | proxy) ;; *) die "TESTS: unknown test '$t' (memory keepalive pipeline ab peers nginx proxy)" ;; esac
done
wants() { [[ $tests == *" $1 "* ]]; }

# ---------------------------------------------------------------- tools (fail early, say the package)
need() { # command, Debian package
    command -v "$1" >/dev/null 2>&1 ||
        die "$1 not found: install the Debian package '$2' (apt-get install -y $2, or sh .ci/deps.sh)"
}
need python3 python3
command -v "$CARGO" >/dev/null 2>&1 || die "$CARGO not found: install Rust (https://rustup.rs)"
if wants keepalive || wants pipeline; then need wrk wrk; fi
if wants ab; then need ab apache2-utils; fi
case $TLS in 0 | 1) ;; *) die "TLS=$TLS: use 0 or 1" ;; esac
if [ "$TLS" = 1 ]; then need openssl openssl; fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
if wants nginx; then [ -x "$nginx_bin" ] || die "nginx not found: install the Debian package 'nginx'"; fi

ncpu=$(nproc)
case $PIN in
    auto)
        if [ "$ncpu" -lt 2 ]; then pin=0; pin_why="not pinned: $ncpu CPU"
        elif ! command -v taskset >/dev/null 2>&1; then pin=0; pin_why="not pinned: no taskset (Debian package util-linux)"
        else pin=1; fi ;;
    1 | yes) need taskset util-linux; pin=1 ;;
    0 | no) pin=0; pin_why="not pinned: PIN=$PIN" ;;
    *) die "PIN=$PIN: use auto, 1 or 0" ;;
esac
if [ $pin = 1 ]; then
    server_pin=(taskset -c "$SERVER_CPUS"); client_pin=(taskset -c "$CLIENT_CPUS")
    pin_why="server on CPU $SERVER_CPUS, clients on CPU $CLIENT_CPUS (taskset -c; PIN=0 turns it off)"
else
    server_pin=(); client_pin=()
fi

# ---------------------------------------------------------------- machine
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
echo "== machine"
echo "  cpus         : $ncpu (nproc), ${cpu_model:-unknown model}"
echo "  kernel       : $(uname -srm)"
echo "  load average : $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every figure)"
echo "  commit       : $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
echo "  rustc        : $(rustc -V 2>/dev/null || echo '?')"
echo "  pinning      : $pin_why"
h1vars=$(env | grep '^H1_' | sort | tr '\n' ' ' || true)
echo "  server env   : ${h1vars:-no H1_* variables (defaults, docs/CONFIG.md)}"

# ---------------------------------------------------------------- build
echo "== build"
features=()
[ "$TLS" = 1 ] && features=(--features tls)
echo "  \$ $CARGO build --release --example hello ${features[*]}"
"$CARGO" build --release --example hello "${features[@]}"
target_dir=$("$CARGO" metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
hello="$target_dir/release/examples/hello"
[ -x "$hello" ] || die "$hello: not built"

OUT=${OUT:-$(mktemp -d /tmp/h1bench.XXXXXX)}
mkdir -p "$OUT"
: >"$OUT/results.jsonl"
echo "  outputs      : $OUT"
scheme=http
if [ "$TLS" = 1 ]; then
    # One certificate for h1server and nginx: ECDSA P-256, the usual choice today.
    echo "  \$ openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ... (in $OUT)"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2>/dev/null || die "openssl failed"
    export H1_TLS_CERT="$OUT/cert.pem" H1_TLS_KEY="$OUT/key.pem" BENCH_TLS=1
    scheme=https
fi

# IDLE_CONNS sockets on each side need file descriptors; the server caps its connections
# at its open-file limit - 64 (docs/CONFIG.md, max_connections).
nofile_hard=$(ulimit -Hn)
if [ "$nofile_hard" = unlimited ] || [ "$nofile_hard" -gt 1048576 ]; then nofile_hard=1048576; fi
ulimit -n "$nofile_hard" 2>/dev/null || true

# ---------------------------------------------------------------- the server, one per test
server_pid=
is_alive() { # not gone, not a zombie (its state is the field after "(comm)" in /proc/PID/stat)
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    case ${st%% *} in '' | Z | X) return 1 ;; esac
}
stop_server() {
    [ -n "$server_pid" ] || return 0
    local pid=$server_pid i=0
    server_pid=
    kill -TERM "$pid" 2>/dev/null || true
    # A graceful drain closes idle connections at once; give it 5 s, then force.
    while [ $i -lt 50 ] && is_alive "$pid"; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
trap stop_server EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

start_server() { # test name
    local log="$OUT/server-$1.log"
    python3 bench/measure.py free "$PORT"
    echo "  \$ ${server_pin[*]}${server_pin:+ }$hello --port $PORT    (log: $log)"
    "${server_pin[@]}" "$hello" --port "$PORT" >"$log" 2>&1 &
    server_pid=$!
    echo "  server PID   : $server_pid"
    if ! python3 bench/measure.py wait "$PORT" "$server_pid" 15; then
        tail -n 5 "$log" >&2
        exit 1 # the server did not start: nothing else can be measured
    fi
}

failed=""
run_test() { # name, command... with @PID standing for the server's PID (measure.py prints the figures)
    local name=$1 a args=()
    shift
    echo "== $name"
    start_server "$name"
    for a in "$@"; do [ "$a" = @PID ] && args+=("$server_pid") || args+=("$a"); done
    "${args[@]}" || failed="$failed $name"
    stop_server
}

url="$scheme://127.0.0.1:$PORT/"
limit=$((DURATION + 30)) # a hung client is stopped after this many seconds

if wants memory; then
    run_test memory python3 bench/measure.py conns "$PORT" @PID "$IDLE_CONNS" 60 "$OUT"
fi
if wants keepalive; then
    run_test keepalive python3 bench/measure.py load keepalive @PID "$OUT" $limit -- \
        "${client_pin[@]}" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION"s --latency "$url"
fi
if wants pipeline; then
    run_test pipeline python3 bench/measure.py load pipeline @PID "$OUT" $limit -- \
        "${client_pin[@]}" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION"s --latency \
        -s bench/pipeline.lua "$url" -- "$PIPELINE"
fi
if wants ab; then
    run_test ab python3 bench/measure.py load ab @PID "$OUT" $limit -- \
        "${client_pin[@]}" ab -k -q -t "$DURATION" -n "$AB_REQUESTS" -c "$AB_CONNS" "$url"
fi

# nginx (worker_processes 1, `return 200 "Hello, World!"`, keep-alive; with TLS=1 the
# same certificate) under the keep-alive wrk load: the peer the TLS bar is set against.
# Stopped by SIGTERM to its master's PID; the run checks that no worker is left.
nginx_pid=
stop_nginx() {
    [ -n "$nginx_pid" ] || return 0
    local pid=$nginx_pid i=0
    nginx_pid=
    kill -TERM "$pid" 2>/dev/null || true
    while [ $i -lt 50 ] && is_alive "$pid"; do sleep 0.1; i=$((i + 1)); done
    wait "$pid" 2>/dev/null || true
    if pgrep -P "$pid" >/dev/null 2>&1; then echo "bench: nginx workers of $pid left behind" >&2; failed="$failed nginx-stop"; fi
}
trap 'stop_server; stop_nginx' EXIT
if wants nginx; then
    echo "== nginx"
    mkdir -p "$OUT/nginx"
    ssl="" certs=""
    if [ "$TLS" = 1 ]; then
        ssl=" ssl"
        certs="ssl_certificate $OUT/cert.pem; ssl_certificate_key $OUT/key.pem; ssl_protocols TLSv1.2 TLSv1.3;"
    fi
    cat >"$OUT/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $OUT/nginx/nginx.pid;
error_log $OUT/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    client_body_temp_path $OUT/nginx; proxy_temp_path $OUT/nginx; fastcgi_temp_path $OUT/nginx;
    uwsgi_temp_path $OUT/nginx; scgi_temp_path $OUT/nginx;
    server {
        listen 127.0.0.1:$PORT$ssl;
        $certs
        location / { default_type text/plain; return 200 "Hello, World!"; }
    }
}
NGINX
    python3 bench/measure.py free "$PORT"
    echo "  \$ ${server_pin[*]}${server_pin:+ }$nginx_bin -p $OUT/nginx -c $OUT/nginx/nginx.conf    (config: $OUT/nginx/nginx.conf)"
    "${server_pin[@]}" "$nginx_bin" -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf" -e "$OUT/nginx/error.log" &
    nginx_pid=$!
    echo "  nginx master : $nginx_pid"
    python3 bench/measure.py wait "$PORT" "$nginx_pid" 15 || exit 1
    worker=$(pgrep -P "$nginx_pid" | head -n1)
    echo "  nginx worker : $worker (its CPU is the server CPU below)"
    python3 bench/measure.py load nginx "$worker" "$OUT" $limit -- \
        "${client_pin[@]}" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION"s --latency "$url" ||
        failed="$failed nginx"
    stop_nginx
fi

if [ -s "$OUT/results.jsonl" ]; then
    echo "== summary (server: examples/hello; one fresh server per test)"
    python3 bench/measure.py summary "$OUT"
fi

# ---------------------------------------------------------------- the peers, when the harness is here
if wants peers; then
    echo "== peers"
    if [ -d "$PEERS_DIR" ]; then
        [ -x "$PEERS_DIR/run.sh" ] || die "$PEERS_DIR exists but has no executable run.sh"
        set -x
        "$PEERS_DIR/run.sh" --pipeline 16 --repeats 3 \
            --only mio-limit,hyper,actix-web,may_minihttp,nginx,go-nethttp,tiny_http \
            --peer "h1server=$hello --port 8090 8090" || failed="$failed peers"
        { set +x; } 2>/dev/null
    else
        echo "  skipped: $PEERS_DIR is absent (the workplace's side-by-side harness; not needed)"
    fi
fi

# ---------------------------------------------------------------- the reverse proxy, when asked
if wants proxy; then
    echo "== proxy (bench/proxy.sh)"
    stop_server
    DURATION=$DURATION CONNS=$CONNS THREADS=$THREADS PIN=$PIN bench/proxy.sh || failed="$failed proxy"
fi

[ -z "$failed" ] || die "failed:$failed (details above; outputs in $OUT)"
