#!/usr/bin/env python3
"""Differential black-box run of request framing: h1server beside nginx and Go net/http.

Starts each server on 127.0.0.1 (a free port each), sends every case of cases.py on a
fresh connection in one write, reads the answers until the server closes or 2 s pass with
nothing new, and records the statuses in order plus how the connection ended:
`C` closed, `R` reset, `T` still open after the timeout. Prints one line per case where
the servers disagree, with a class (see README.md), then kills the servers it started by
their PIDs. Standard library only.

    python3 tests/data/differential/diff.py --h1 /work/target-diff/debug/examples/hello
"""

import argparse
import concurrent.futures
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cases import cases  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
IDLE = 2.0  # seconds with nothing new before a connection is judged still open
CAP = 8.0  # hard cap per connection


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_listening(port, proc, what):
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited early ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on {port}")


def start_nginx(binary, tmp):
    port = free_port()
    d = os.path.join(tmp, "nginx")
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    user = "user root;" if os.geteuid() == 0 else ""
    conf = f"""daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
{user}
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    access_log off;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        location = / {{ return 200 "ok"; }}
        location / {{ return 404; }}
    }}
}}
"""
    path = os.path.join(d, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    p = subprocess.Popen([binary, "-p", d, "-e", os.path.join(d, "error.log"), "-c", path],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(port, p, "nginx")
    return p, port


def start_go(tmp, go_bin):
    port = free_port()
    if go_bin is None:
        go_bin = os.path.join(tmp, "goref")
        subprocess.run(["go", "build", "-o", go_bin, "."], cwd=os.path.join(HERE, "goref"),
                       check=True, env=dict(os.environ, GOFLAGS="-mod=mod"))
    p = subprocess.Popen([go_bin, str(port)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(port, p, "go")
    return p, port


def start_h1(binary):
    port = free_port()
    env = dict(os.environ, RUST_LOG="warn")
    p = subprocess.Popen([binary, "--port", str(port)], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(port, p, "h1server")
    return p, port


def exchange(port, data, drip=False):
    """Sends `data` in one write (or, with `drip`, one byte per write 1 ms apart, the rest
    at once past 600 bytes); returns (bytes read, how it ended: C, R or T)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    got = b""
    end = "T"
    try:
        if drip:
            for i in range(min(len(data), 600)):
                s.sendall(data[i:i + 1])
                time.sleep(0.001)
            s.sendall(data[600:])
        else:
            s.sendall(data)
    except OSError:
        pass  # the server closed early: read what it answered before that
    start = time.monotonic()
    s.settimeout(IDLE)
    while end == "T" and time.monotonic() - start < CAP:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            end = "R"
            break
        if not chunk:
            end = "C"
            break
        got += chunk
    s.close()
    return got, end


def statuses(raw, head_method=False):
    """The status codes of the responses in `raw`, in order (1xx included)."""
    out = []
    i = 0
    while i < len(raw):
        j = raw.find(b"\r\n\r\n", i)
        if j < 0:
            out.append("?partial")
            break
        head = raw[i:j].split(b"\r\n")
        parts = head[0].split(b" ")
        code = parts[1].decode("latin-1") if len(parts) > 1 else "?"
        out.append(code)
        fields = {}
        for h in head[1:]:
            k, _, v = h.partition(b":")
            fields[k.strip().lower()] = v.strip().lower()
        i = j + 4
        if code.startswith("1") or code in ("204", "304") or head_method:
            head_method = False
            continue
        if fields.get(b"transfer-encoding", b"").endswith(b"chunked"):
            while True:
                k = raw.find(b"\r\n", i)
                if k < 0:
                    return out + ["?chunk"]
                size = int(raw[i:k].split(b";")[0], 16)
                i = k + 2 + size + 2
                if size == 0:
                    break
        elif b"content-length" in fields:
            i += int(fields[b"content-length"])
        else:
            break  # until close
    return out


def run_case(ports, case):
    group, name, data = case
    row = {}
    head = data.startswith(b"HEAD ")
    for srv, port in ports.items():
        raw, end = exchange(port, data, drip=srv.endswith("/drip"))
        row[srv] = (tuple(statuses(raw, head)), end)
    return group, name, row


def finals(v):
    return [s for s in v[0] if not s.startswith("1")]


def classify(row):
    """The class of a disagreement (README.md): FRAMING, ACCEPTS, STRICTER, STATUS, CLOSE."""
    h1 = row["h1"]
    if "h1/drip" in row and row["h1/drip"] != h1:
        return "SPLIT"  # h1's own verdict depends on how the bytes arrive
    refs = [row[k] for k in row if not k.startswith("h1")]
    if all(r == h1 for r in refs):
        return None
    hf = finals(h1)
    rf = [finals(r) for r in refs]
    h_ok = bool(hf) and hf[0].startswith("2")
    r_ok = [bool(f) and f[0].startswith("2") for f in rf]
    if h_ok and refs and not any(r_ok):
        return "ACCEPTS"  # h1 served what every reference refused
    if h_ok and all(r_ok) and any(len(f) != len(hf) for f in rf):
        return "FRAMING"  # all served the first, but split the rest differently
    if h_ok and len(hf) > 1 and any(ok and len(f) != len(hf) for ok, f in zip(r_ok, rf)):
        return "FRAMING"
    if not h_ok and any(r_ok):
        return "STRICTER"
    if [s for s in hf] != [s for s in rf[0]] or any(f != rf[0] for f in rf):
        if len(hf) != len(rf[0]):
            return "COUNT"
        return "STATUS"
    return "CLOSE"


def fmt(v):
    return (" ".join(v[0]) or "-") + " |" + v[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--h1", required=True, help="h1server's examples/hello binary")
    ap.add_argument("--nginx", default="/usr/sbin/nginx")
    ap.add_argument("--go", default=None, help="a built goref binary (else `go build`)")
    ap.add_argument("--no-go", action="store_true")
    ap.add_argument("--filter", default="", help="only cases whose group/name contains this")
    ap.add_argument("--all", action="store_true", help="print agreeing cases too")
    ap.add_argument("--jobs", type=int, default=12)
    ap.add_argument("--drip", action="store_true",
                    help="also send each case to h1server one byte per write (column h1/drip)")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="h1-diff-")
    procs = []
    try:
        ports = {}
        p, ports["h1"] = start_h1(args.h1)
        procs.append(p)
        p, ports["nginx"] = start_nginx(args.nginx, tmp)
        procs.append(p)
        if not args.no_go and (args.go or shutil.which("go")):
            p, ports["go"] = start_go(tmp, args.go)
            procs.append(p)
        if args.drip:
            ports["h1/drip"] = ports["h1"]
        todo = [c for c in cases() if args.filter in f"{c[0]}/{c[1]}"]
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as ex:
            results = list(ex.map(lambda c: run_case(ports, c), todo))
        names = list(ports)
        print("| class | case | " + " | ".join(names) + " |")
        print("|---|---|" + "---|" * len(names))
        counts = {}
        for group, name, row in results:
            cls = classify(row)
            counts[cls or "same"] = counts.get(cls or "same", 0) + 1
            if cls or args.all:
                cells = " | ".join(fmt(row[n]).replace("|", "\\|") for n in names)
                print(f"| {cls or 'same'} | {group}: {name} | {cells} |")
        print()
        print(f"{len(results)} cases: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
