#!/usr/bin/env bash
# bench/proxy.sh — the reverse proxy's benchmark (`make bench-proxy`, or `TESTS=proxy
# bench/run.sh`): wrk keep-alive load on examples/hello directly, through nginx
# `proxy_pass` (keepalive upstream pool), and through examples/gateway (h1server::proxy),
# each in front of the same examples/hello. Prints req/s, latency, each process's CPU per
# request, and the machine's CPU taken by *other* work during each run (from /proc/stat
# minus the processes started here), since a busy machine skews every figure.
# Every process it starts is stopped by its PID (also on error and Ctrl-C); every load is
# bounded (wrk -d, and a timeout around it). Only 127.0.0.1.
set -euo pipefail

DURATION=${DURATION:-10}
# nginx and the gateway are measured in turn, ROUNDS times each (the figures of a VM move
# by ±20 % from one minute to the next): the summary gives each round's ratio and the
# medians.
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
UPSTREAM_PORT=${UPSTREAM_PORT:-8091}
NGINX_PORT=${NGINX_PORT:-8092}
GATEWAY_PORT=${GATEWAY_PORT:-8093}
PIN=${PIN:-auto}
CARGO=${CARGO:-cargo}
for v in DURATION ROUNDS CONNS THREADS UPSTREAM_PORT NGINX_PORT GATEWAY_PORT; do
    case ${!v} in '' | *[!0-9]* | 0) echo "bench: $v=${!v}: must be a positive whole number" >&2; exit 2 ;; esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
die() { echo "bench: $*" >&2; exit 1; }
command -v wrk >/dev/null || die "wrk not found: apt-get install -y wrk (or sh .ci/deps.sh)"
nginx=/usr/sbin/nginx
[ -x "$nginx" ] || nginx=$(command -v nginx) || die "nginx not found: apt-get install -y nginx"

ncpu=$(nproc)
if [ "$PIN" = auto ] && [ "$ncpu" -ge 2 ] && command -v taskset >/dev/null; then PIN=1; fi
if [ "$PIN" = 1 ]; then
    # wrk alone on CPU 0; the upstream and the proxy under test share CPU 1 (the same for
    # nginx and the gateway).
    server_pin=(taskset -c 1); client_pin=(taskset -c 0)
    pin_why="wrk on CPU 0; examples/hello and the proxy under test on CPU 1"
else
    server_pin=(); client_pin=(); pin_why="not pinned"
fi

echo "== machine"
echo "  cpus         : $ncpu, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
echo "  load average : $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  commit       : $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
echo "  pinning      : $pin_why"

echo "== build"
echo "  \$ $CARGO build --release --example hello --example gateway --features proxy"
"$CARGO" build --release --example hello --example gateway --features proxy
target_dir=$("$CARGO" metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
hello="$target_dir/release/examples/hello"
gateway="$target_dir/release/examples/gateway"
OUT=${OUT:-$(mktemp -d /tmp/h1proxybench.XXXXXX)}
mkdir -p "$OUT/nginx-tmp"
echo "  outputs      : $OUT"

pids=()
stop_all() {
    local p i
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
        i=0
        while [ $i -lt 50 ] && kill -0 "$p" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    pids=()
}
trap stop_all EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT

wait_port() { # port pid
    python3 bench/measure.py wait "$1" "$2" 15
}

for p in $UPSTREAM_PORT $NGINX_PORT $GATEWAY_PORT; do python3 bench/measure.py free "$p"; done

echo "== upstream: examples/hello on 127.0.0.1:$UPSTREAM_PORT"
"${server_pin[@]}" "$hello" --port "$UPSTREAM_PORT" >"$OUT/hello.log" 2>&1 &
hello_pid=$!; pids+=("$hello_pid")
wait_port "$UPSTREAM_PORT" "$hello_pid"

cat >"$OUT/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log warn;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $OUT/nginx-tmp/body;
    proxy_temp_path $OUT/nginx-tmp/proxy;
    fastcgi_temp_path $OUT/nginx-tmp/fastcgi;
    uwsgi_temp_path $OUT/nginx-tmp/uwsgi;
    scgi_temp_path $OUT/nginx-tmp/scgi;
    upstream hello { server 127.0.0.1:$UPSTREAM_PORT; keepalive 64; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://hello;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
EOF

run() { # name, proxy pid or -, url
    local name=$1 ppid=$2 url=$3
    echo "== $name: wrk -t$THREADS -c$CONNS -d${DURATION}s $url"
    python3 - "$name" "$ppid" "$hello_pid" "$OUT" "$((DURATION + 30))" "${client_pin[@]}" \
        wrk -t"$THREADS" -c"$CONNS" -d"$DURATION"s --latency "$url" <<'PY'
import json, os, re, resource, subprocess, sys, time
name, ppid, upid, out, limit = sys.argv[1:6]
argv = sys.argv[6:]
tck = os.sysconf("SC_CLK_TCK")
def ticks(pid):
    if pid == "-":
        return 0
    with open(f"/proc/{pid}/stat") as f:
        x = f.read().rsplit(")", 1)[1].split()
    return int(x[11]) + int(x[12])
def machine():
    with open("/proc/stat") as f:
        x = [int(v) for v in f.readline().split()[1:]]
    idle = x[3] + x[4]
    return sum(x) - idle, sum(x)
def kids():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
p0, u0, k0, (b0, t0), w0 = ticks(ppid), ticks(upid), kids(), machine(), time.monotonic()
with open(os.path.join(out, name + ".txt"), "w") as f:
    p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
    try:
        rc = p.wait(timeout=float(limit))
    except subprocess.TimeoutExpired:
        p.kill(); p.wait()
        sys.exit(f"bench: {name}: wrk still running after {limit}s: stopped")
wall = time.monotonic() - w0
p1, u1, k1, (b1, t1) = ticks(ppid), ticks(upid), kids(), machine()
o = open(os.path.join(out, name + ".txt")).read()
if rc != 0:
    sys.exit(f"bench: {name}: wrk exited {rc}:\n{o}")
n = int(re.search(r"(\d+) requests in", o).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", o).group(1))
lat = {q: re.search(rf"^\s+{q}%\s+(\S+)", o, re.M).group(1) for q in ("50", "99")}
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", o)
errs = re.search(r"Socket errors:.*", o)
proxy_s, up_s, wrk_s = (p1 - p0) / tck, (u1 - u0) / tck, k1 - k0
busy_s = (b1 - b0) / tck
ncpu = os.cpu_count()
other_s = max(0.0, busy_s - proxy_s - up_s - wrk_s)
print(f"  requests     : {n} in {wall:.1f} s = {rps:.0f} req/s; p50 {lat['50']}, p99 {lat['99']}")
print(f"  errors       : non-2xx {bad.group(1) if bad else 0}; {errs.group(0) if errs else 'no socket errors'}")
if ppid != "-":
    print(f"  proxy CPU    : {1e6 * proxy_s / n:.1f} µs/req ({100 * proxy_s / wall:.0f} % of a core)")
print(f"  upstream CPU : {1e6 * up_s / n:.1f} µs/req ({100 * up_s / wall:.0f} % of a core)")
print(f"  wrk CPU      : {1e6 * wrk_s / n:.1f} µs/req")
print(f"  other CPU    : {100 * other_s / wall:.0f} % of a core "
      f"(machine busy {100 * busy_s / wall:.0f} % of {ncpu} cores, minus the processes above)")
with open(os.path.join(out, "results.jsonl"), "a") as f:
    f.write(json.dumps(dict(name=name, requests=n, rps=rps, p50=lat["50"], p99=lat["99"],
        proxy_us_per_req=1e6 * proxy_s / n if ppid != "-" else None,
        upstream_us_per_req=1e6 * up_s / n, other_cpu_pct=100 * other_s / wall)) + "\n")
if bad:
    sys.exit(f"bench: {name}: {bad.group(1)} non-2xx responses")
PY
}

: >"$OUT/results.jsonl"
run direct - "http://127.0.0.1:$UPSTREAM_PORT/"

echo "== nginx proxy_pass (keepalive 64) on 127.0.0.1:$NGINX_PORT"
"${server_pin[@]}" "$nginx" -p "$OUT" -e "$OUT/nginx-error.log" -c "$OUT/nginx.conf" >/dev/null 2>&1 &
nginx_pid=$!; pids+=("$nginx_pid")
wait_port "$NGINX_PORT" "$nginx_pid"

# The same idle pool per upstream as nginx's `keepalive 64`.
echo "== examples/gateway on 127.0.0.1:$GATEWAY_PORT (RUST_LOG=warn: no access log line per request, like nginx's access_log off; GATEWAY_MAX_IDLE_PER_HOST=64, like keepalive 64)"
GATEWAY_UPSTREAMS="/=http://127.0.0.1:$UPSTREAM_PORT" GATEWAY_ADDR="127.0.0.1:$GATEWAY_PORT" RUST_LOG=warn \
    GATEWAY_MAX_IDLE_PER_HOST=64 "${server_pin[@]}" "$gateway" >"$OUT/gateway.log" 2>&1 &
gw_pid=$!; pids+=("$gw_pid")
wait_port "$GATEWAY_PORT" "$gw_pid"

for round in $(seq 1 "$ROUNDS"); do
    run "nginx-$round" "$nginx_pid" "http://127.0.0.1:$NGINX_PORT/"
    run "gateway-$round" "$gw_pid" "http://127.0.0.1:$GATEWAY_PORT/"
done

echo "== summary"
python3 - "$OUT/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"  {'':10} {'req/s':>9} {'p50':>9} {'p99':>9} {'proxy µs/req':>13} {'other CPU':>10}")
for r in rows:
    pu = f"{r['proxy_us_per_req']:.1f}" if r["proxy_us_per_req"] is not None else "-"
    print(f"  {r['name']:10} {r['rps']:9.0f} {r['p50']:>9} {r['p99']:>9} {pu:>13} {r['other_cpu_pct']:9.0f}%")
by = {r["name"]: r for r in rows}
rounds = sorted(int(n.split("-")[1]) for n in by if n.startswith("nginx-"))
ratios = []
for i in rounds:
    ng, gw = by[f"nginx-{i}"], by[f"gateway-{i}"]
    rr = gw["rps"] / ng["rps"]
    cr = gw["proxy_us_per_req"] / ng["proxy_us_per_req"]
    ratios.append((rr, cr))
    print(f"  round {i}: gateway/nginx req/s {rr:.2f}x, proxy CPU per request {cr:.2f}x")
def median(v):
    v = sorted(v)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
if ratios:
    print(f"  median of {len(ratios)}: req/s {median([r for r, _ in ratios]):.2f}x nginx, "
          f"CPU per request {median([c for _, c in ratios]):.2f}x nginx")
PY
