#!/usr/bin/env python3
"""The measuring half of bench/run.sh: it reads /proc and parses wrk/ab output; run.sh
starts and stops the server. Standard library only (python3 is on every machine).

    measure.py free    PORT                   fail if something already answers on PORT
    measure.py wait    PORT PID SECS          wait until GET / answers 200 (fails if PID died)
    measure.py load    NAME PID OUT SECS -- CMD...   run wrk/ab (at most SECS), print its figures
    measure.py conns   PORT PID N SECS OUT    RSS before/after N idle keep-alive connections
    measure.py summary OUT                    one line per test from OUT/results.jsonl

Every network wait has a timeout and every loop a bound, so a broken server fails the
run instead of hanging it. It never signals a process: the PIDs are only read.

With BENCH_TLS=1 in the environment every connection it opens speaks TLS (the server's
certificate is not checked: the bench made it).
"""

import json
import os
import re
import resource
import shlex
import socket
import ssl
import subprocess
import sys
import time

TCK = os.sysconf("SC_CLK_TCK")


def die(msg):
    print(f"bench: {msg}", file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- /proc readers
def proc_state(pid):
    """The one-letter state from /proc/PID/stat, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def is_alive(pid):
    return proc_state(pid) not in (None, "Z", "X")


def cpu_ticks(pid):
    """utime + stime of the whole process (all its threads, live and exited), in ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5), after "pid (comm)"


def status(pid, key):
    """A number from /proc/PID/status (VmRSS in kB, Threads)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def children_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def record(out, rec):
    with open(os.path.join(out, "results.jsonl"), "a") as f:
        f.write(json.dumps(rec) + "\n")


# ---------------------------------------------------------------- a tiny HTTP client
TLS = os.environ.get("BENCH_TLS") == "1"
_ctx = None


def connect(port, timeout):
    """A connection to 127.0.0.1:port (over TLS with BENCH_TLS=1)."""
    global _ctx
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=timeout)
    if not TLS:
        return s
    if _ctx is None:
        _ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _ctx.check_hostname = False
        _ctx.verify_mode = ssl.CERT_NONE
    return _ctx.wrap_socket(s, server_hostname="127.0.0.1")


def get(sock, deadline):
    """Sends GET / on a keep-alive connection; returns the status code of the answer."""
    sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        if time.monotonic() > deadline:
            raise TimeoutError("no response head")
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the response head")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    want = int(m.group(1)) if m else 0
    while len(body) < want:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed in the response body")
        body += chunk
    return int(head.split()[1])


def cmd_free(port):
    try:
        socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
    except OSError:
        return
    die(f"127.0.0.1:{port} is already in use by another program: stop it or set PORT")


def cmd_wait(port, pid, secs):
    deadline = time.monotonic() + float(secs)
    last = "no answer"
    while time.monotonic() < deadline:
        if not is_alive(pid):
            die(f"the server (PID {pid}) exited before answering on 127.0.0.1:{port}")
        try:
            with connect(port, 1) as s:
                s.settimeout(1)
                code = get(s, time.monotonic() + 1)
                if code == 200:
                    return
                last = f"status {code}"
        except OSError as e:
            last = str(e)
        time.sleep(0.05)
    die(f"the server (PID {pid}) did not answer GET / with 200 within {secs}s ({last})")


# ---------------------------------------------------------------- wrk / ab output
def parse_wrk(o):
    r = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", o)
    if m:
        r["requests"] = int(m.group(1))
        r["secs"] = float(m.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60}[m.group(3)]
    m = re.search(r"Requests/sec:\s+([\d.]+)", o)
    r["rps"] = float(m.group(1)) if m else None
    for p in ("50", "99"):
        m = re.search(rf"^\s+{p}%\s+(\S+)", o, re.M)
        r[f"p{p}"] = m.group(1) if m else "?"
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", o)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", o)
    r["failed"] = sum(int(x) for x in m.groups()) if m else 0
    r["errors"] = (f"socket errors: connect {m.group(1)}, read {m.group(2)}, write {m.group(3)}, "
                   f"timeout {m.group(4)}") if m else "socket errors: none"
    return r


def parse_ab(o):
    r = {}
    m = re.search(r"Complete requests:\s+(\d+)", o)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"Time taken for tests:\s+([\d.]+) seconds", o)
    if m:
        r["secs"] = float(m.group(1))
    m = re.search(r"Requests per second:\s+([\d.]+)", o)
    r["rps"] = float(m.group(1)) if m else None
    for p in ("50", "99"):
        m = re.search(rf"^\s+{p}%\s+(\d+)", o, re.M)
        r[f"p{p}"] = f"{m.group(1)}ms" if m else "?"
    m = re.search(r"Failed requests:\s+(\d+)", o)
    r["failed"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx responses:\s+(\d+)", o)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Keep-Alive requests:\s+(\d+)", o)
    r["errors"] = f"keep-alive requests: {m.group(1) if m else 0}"
    return r


def cmd_load(name, pid, out, secs, argv):
    tool = os.path.basename(next((a for a in argv if a in ("wrk", "ab") or a.endswith(("/wrk", "/ab"))), ""))
    if tool not in ("wrk", "ab"):
        die(f"load: the command must run wrk or ab: {shlex.join(argv)}")
    print(f"  $ {shlex.join(argv)}")
    sys.stdout.flush()
    raw = os.path.join(out, f"{name}.txt")
    c0, s0, t0 = cpu_ticks(pid), children_cpu_s(), time.monotonic()
    with open(raw, "w") as f:
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
        try:
            rc = p.wait(timeout=float(secs))
        except subprocess.TimeoutExpired:
            p.kill()  # our own child, by its Popen handle
            p.wait()
            die(f"{name}: {tool} still running after {secs}s: stopped (output in {raw})")
    wall = time.monotonic() - t0
    if not is_alive(pid):
        die(f"{name}: the server (PID {pid}) exited during the run (its log is in {out})")
    c1, s1 = cpu_ticks(pid), children_cpu_s()
    with open(raw) as f:
        o = f.read()
    if rc != 0:
        tail = "\n".join(o.strip().splitlines()[-5:])
        die(f"{name}: {tool} exited with status {rc} (output in {raw}):\n{tail}")
    r = parse_wrk(o) if tool == "wrk" else parse_ab(o)
    n = r.get("requests")
    if not n:
        die(f"{name}: no request count in {tool}'s output ({raw})")
    srv_s, cli_s = (c1 - c0) / TCK, s1 - s0
    r.update(name=name, tool=tool, cmd=shlex.join(argv), server_cpu_s=srv_s, client_cpu_s=cli_s,
             server_us_per_req=1e6 * srv_s / n, client_us_per_req=1e6 * cli_s / n, wall_s=wall)
    print(f"  requests     : {n} in {r.get('secs', wall):.2f} s = {r['rps']:.0f} req/s")
    note = f"as {tool} reports it"
    if tool == "wrk" and "-s" in argv:  # bench/pipeline.lua
        note = "wrk times each pipelined write as one; its percentiles are unreliable here"
    print(f"  latency      : p50 {r['p50']}  p99 {r['p99']}  ({note})")
    print(f"  errors       : failed {r['failed']}, non-2xx {r['non2xx']} ({r['errors']})")
    print(f"  server CPU   : {r['server_us_per_req']:.2f} µs/req "
          f"({srv_s:.2f} s utime+stime from /proc/{pid}/stat, {srv_s / wall * 100:.0f} % of a core)")
    print(f"  client CPU   : {r['client_us_per_req']:.2f} µs/req ({cli_s:.2f} s, getrusage of {tool})")
    print(f"  raw output   : {raw}")
    record(out, r)
    if r["failed"] or r["non2xx"]:
        die(f"{name}: {r['failed']} failed and {r['non2xx']} non-2xx responses")


# ---------------------------------------------------------------- idle connections
def cmd_conns(port, pid, n, secs, out):
    n, deadline = int(n), time.monotonic() + float(secs)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 64), hard))
    rss0, thr0 = status(pid, "VmRSS"), status(pid, "Threads")
    print(f"  fresh server : VmRSS {rss0} KB, {thr0} threads (idle, before any request)")
    socks, failed, err = [], 0, ""
    t0 = time.monotonic()
    for _ in range(n):
        if time.monotonic() > deadline:
            err = f"stopped opening after {secs}s"
            break
        try:
            s = connect(port, 5)
            s.settimeout(5)
            if get(s, time.monotonic() + 5) != 200:
                raise ConnectionError("not 200")
            socks.append(s)
        except OSError as e:  # includes timeouts and EMFILE
            failed += 1
            err = str(e)
            if failed >= 20:
                break
    opened = time.monotonic() - t0
    time.sleep(0.5)  # let the server finish its bookkeeping before reading its RSS
    rss1, thr1 = status(pid, "VmRSS"), status(pid, "Threads")
    still_open = 0
    for s in socks:
        if TLS:  # look under the TLS layer (a closed connection reads b"" there too)
            s = socket.socket(fileno=os.dup(s.fileno()))
        s.setblocking(False)
        try:
            still_open += s.recv(1, socket.MSG_PEEK) != b""  # data would be a protocol error
        except BlockingIOError:
            still_open += 1
        except OSError:
            pass
    for s in socks:
        s.close()
    ok = len(socks)
    per = (rss1 - rss0) / ok if ok else float("nan")
    print(f"  connections  : {ok} opened, 1 request each ({opened:.2f} s), {failed} failed, "
          f"{still_open} still open when measured")
    print(f"  server VmRSS : {rss0} KB -> {rss1} KB with them open; threads {thr0} -> {thr1}")
    print(f"  per idle conn: {per:.2f} KB")
    record(out, {"name": "memory", "conns": ok, "failed": failed, "rss_before_kb": rss0,
                 "rss_after_kb": rss1, "threads_before": thr0, "threads_after": thr1,
                 "kb_per_conn": per})
    if ok < n or still_open < ok:
        die(f"memory: wanted {n} idle connections, opened {ok}, {still_open} still open ({err})")


def cmd_summary(out):
    path = os.path.join(out, "results.jsonl")
    if not os.path.exists(path):
        return
    print("test       req/s       p50       p99      failed non2xx  server µs/req  client µs/req")
    for line in open(path):
        r = json.loads(line)
        if r["name"] == "memory":
            print(f"memory     {r['conns']} idle conns: {r['kb_per_conn']:.2f} KB each "
                  f"(VmRSS {r['rss_before_kb']} -> {r['rss_after_kb']} KB, threads "
                  f"{r['threads_before']} -> {r['threads_after']})")
        else:
            print(f"{r['name']:<10} {r['rps']:>9.0f} {r['p50']:>9} {r['p99']:>9} {r['failed']:>9} "
                  f"{r['non2xx']:>6} {r['server_us_per_req']:>14.2f} {r['client_us_per_req']:>14.2f}")


def main(a):
    try:
        if a[:1] == ["free"] and len(a) == 2:
            cmd_free(a[1])
        elif a[:1] == ["wait"] and len(a) == 4:
            cmd_wait(a[1], a[2], a[3])
        elif a[:1] == ["load"] and len(a) > 6 and a[5] == "--":
            cmd_load(a[1], a[2], a[3], a[4], a[6:])
        elif a[:1] == ["conns"] and len(a) == 6:
            cmd_conns(*a[1:])
        elif a[:1] == ["summary"] and len(a) == 2:
            cmd_summary(a[1])
        else:
            die("usage: see the docstring at the top of bench/measure.py")
    except (OSError, KeyError) as e:  # e.g. the server died and /proc/PID is gone
        die(f"{a[0]}: {e}")
    except KeyboardInterrupt:  # Ctrl-C reaches the whole group; run.sh stops the server
        sys.exit(130)


if __name__ == "__main__":
    main(sys.argv[1:])
