#!/usr/bin/env python3
"""respdiff: crafted upstream responses through h1server's gateway and through nginx.

A scripted upstream answers `/c/NAME` with the crafted bytes of case NAME (cases.py) and
every other path with a plain `200` whose body is `plain:<path>`. For each case and each
proxy, client A sends `/c/NAME` then `/p/NAME-a` on one connection (reconnecting if the
proxy closed it), and client B sends `/p/NAME-b` on a new connection right after. Any
answer to a `/p/` path whose body is not that path's plain body is a desync.

Usage (from the repository root, after `cargo build --features proxy --example gateway`):

    python3 tests/data/respdiff/respdiff.py [--gateway PATH] [--nginx PATH] [CASE...]

Prints one line per case and writes the table to respdiff-out.md in a temp directory
(its path is printed). Every process it starts is stopped by PID before it exits.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cases import CASES, HOLD, LATE  # noqa: E402

IO_TIMEOUT = 6.0
DRIBBLE = 400


# ---------------------------------------------------------------------------------------
# the scripted upstream
# ---------------------------------------------------------------------------------------
class Upstream:
    def __init__(self, dribble=False):
        # Dribble: the first DRIBBLE bytes of each crafted answer go one per write, so
        # every split point of the head and framing is a read boundary for the proxy.
        self.dribble = dribble
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.seen = []  # (conn number, method, path)
        self.nconn = 0
        self.stopped = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stopped:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                n = self.nconn
                self.nconn += 1
            threading.Thread(target=self.serve, args=(s, n), daemon=True).start()

    def serve(self, s, n):
        s.settimeout(10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        try:
            for _ in range(1000):
                while b"\r\n\r\n" not in buf:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                line = head.split(b"\r\n", 1)[0].decode("latin-1")
                method, path = line.split(" ")[0], line.split(" ")[1]
                # No request here has a body (GET and HEAD only).
                with self.lock:
                    self.seen.append((n, method, path))
                if path.startswith("/c/"):
                    _, data, then = CASES[path[3:]]
                    if self.dribble:
                        for i in range(min(len(data), DRIBBLE)):
                            s.sendall(data[i : i + 1])
                            time.sleep(0.0005)
                        data = data[DRIBBLE:]
                    s.sendall(data)
                    if then == "close":
                        return
                    if then == "hold":
                        time.sleep(HOLD)
                        return
                    if isinstance(then, tuple):  # ("late" | "race", extra)
                        time.sleep(LATE)
                        s.sendall(then[1])
                    continue
                body = ("plain:" + path).encode()
                s.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Up-Conn: %d\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (n, len(body), body)
                )
        except OSError:
            return
        finally:
            try:
                s.close()
            except OSError:
                pass

    def conn_of(self, path):
        with self.lock:
            for n, _, p in self.seen:
                if p == path:
                    return n
        return None


# ---------------------------------------------------------------------------------------
# the client
# ---------------------------------------------------------------------------------------
class Reader:
    def __init__(self, s):
        self.s = s
        self.buf = b""
        self.eof = False
        self.reset = False  # the connection ended with a reset, not an orderly close

    def more(self):
        if self.eof:
            return False
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            raise
        except ConnectionResetError:
            self.reset = True
            d = b""
        except OSError:
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def line(self):
        while b"\r\n" not in self.buf:
            if not self.more():
                raise EOFError("eof in line")
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l

    def take(self, n):
        while len(self.buf) < n:
            if not self.more():
                raise EOFError("eof in body")
        d, self.buf = self.buf[:n], self.buf[n:]
        return d


def read_response(r, method):
    """(status, headers, body, note); note is '' or what went wrong."""
    interim = 0
    while True:
        status_line = r.line()
        parts = status_line.split(b" ", 2)
        status = int(parts[1])
        headers = []
        while True:
            l = r.line()
            if not l:
                break
            k, _, v = l.partition(b":")
            headers.append((k.strip().lower().decode("latin-1"), v.strip().decode("latin-1")))
        if 100 <= status < 200 and status != 101:
            interim += 1
            continue
        break
    h = dict(headers)
    note = "%d×1xx " % interim if interim else ""
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return status, h, b"", note
    if h.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int(r.line().split(b";")[0], 16)
            if size == 0:
                while r.line():
                    pass
                break
            body += r.take(size)
            r.take(2)
        return status, h, body, note
    if "content-length" in h:
        return status, h, r.take(int(h["content-length"])), note
    body = b""
    while r.more():
        pass
    body, r.buf = r.buf, b""
    return status, h, body, note + ("to-reset " if r.reset else "to-close ")


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


CLIENT_VERSION = "HTTP/1.1"


def request(s, r, method, path):
    extra = "Connection: keep-alive\r\n" if CLIENT_VERSION == "HTTP/1.0" else ""
    s.sendall(("%s %s %s\r\nHost: respdiff\r\n%s\r\n" % (method, path, CLIENT_VERSION, extra)).encode())
    t0 = time.monotonic()
    try:
        st, h, body, note = read_response(r, method)
    except socket.timeout:
        return ("timeout", b"", "", time.monotonic() - t0)
    except (EOFError, ValueError, IndexError) as e:
        return ("closed" if not r.buf else "garbled", r.buf[:60], str(e), time.monotonic() - t0)
    closes = h.get("connection", "").lower() == "close" or (
        CLIENT_VERSION == "HTTP/1.0" and h.get("connection", "").lower() != "keep-alive"
    )
    return (st, body, note + ("conn-close" if closes else ""), time.monotonic() - t0)


def short(b, n=28):
    s = repr(b)[2:-1]
    return s if len(s) <= n else s[: n - 1] + "…"


def run_case(port, up, name, pause=0.0):
    method, _, then = CASES[name]
    out = {}
    a = connect(port)
    ra = Reader(a)
    st, body, note, dt = request(a, ra, method, "/c/" + name)
    out["r1"] = (st, body, note, dt)
    pa = "/p/%s-a" % name
    if isinstance(then, tuple) and then[0] == "late":
        time.sleep(3 * LATE)
    elif pause and not (isinstance(then, tuple) and then[0] == "race"):
        time.sleep(pause)
    reconnected = False
    if ra.eof or "conn-close" in note or st in ("timeout", "closed", "garbled"):
        a.close()
        a = connect(port)
        ra = Reader(a)
        reconnected = True
    st2, body2, note2, _ = request(a, ra, "GET", pa)
    if st2 == "closed" and not reconnected:
        # The proxy closed between the two (a late close): a fresh connection.
        a.close()
        a = connect(port)
        ra = Reader(a)
        reconnected = True
        st2, body2, note2, _ = request(a, ra, "GET", pa)
    out["r2"] = (st2, body2, note2, reconnected)
    a.close()
    pb = "/p/%s-b" % name
    b = connect(port)
    st3, body3, note3, _ = request(b, Reader(b), "GET", pb)
    b.close()
    out["r3"] = (st3, body3, note3)
    c1 = up.conn_of("/c/" + name)
    out["reuse"] = (c1 is not None and up.conn_of(pa) == c1, c1 is not None and up.conn_of(pb) == c1)
    desync = []
    for path, (st_, body_) in ((pa, (st2, body2)), (pb, (st3, body3))):
        if st_ == 200 and body_ != ("plain:" + path).encode():
            desync.append(path)
        elif st_ != 200:
            desync.append("%s:%s" % (path, st_))
    out["desync"] = [d for d in desync if ":" not in d]
    out["odd"] = [d for d in desync if ":" in d]
    return out


def fmt(o):
    st, body, note, dt = o["r1"]
    r1 = "%s %s%s" % (st, short(body), (" [" + note.strip() + "]") if note.strip() else "")
    if dt > 2.5:
        r1 += " (%.1fs)" % dt
    reuse = "".join("R" if x else "-" for x in o["reuse"])
    bad = ""
    if o["desync"]:
        bad = "DESYNC " + ",".join(o["desync"])
    elif o["odd"]:
        bad = "next: " + ",".join(o["odd"])
    else:
        bad = "ok"
    return r1, reuse, bad


# ---------------------------------------------------------------------------------------
# the proxies
# ---------------------------------------------------------------------------------------
def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc, secs=20):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("the proxy exited with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d never opened" % port)


def start_gateway(path, up_port, tmp):
    port = free_port()
    env = dict(os.environ)
    env.update(
        GATEWAY_UPSTREAMS="/=http://127.0.0.1:%d" % up_port,
        GATEWAY_ADDR="127.0.0.1:%d" % port,
        GATEWAY_UPSTREAM_TIMEOUT="3s",
        H1_WORKERS="2",
        RUST_LOG=env.get("RUST_LOG", "debug"),
    )
    log = open(os.path.join(tmp, "gateway.log"), "wb")
    p = subprocess.Popen([path], env=env, stdout=log, stderr=log)
    wait_port(port, p)
    return p, port


NGINX_CONF = """
worker_processes 1;
master_process off;
daemon off;
pid %(tmp)s/nginx.pid;
error_log %(tmp)s/nginx-error.log info;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %(tmp)s/cb;
    proxy_temp_path %(tmp)s/pt;
    fastcgi_temp_path %(tmp)s/ft;
    uwsgi_temp_path %(tmp)s/ut;
    scgi_temp_path %(tmp)s/st;
    upstream u { server 127.0.0.1:%(up)d; keepalive 4; }
    server {
        listen 127.0.0.1:%(port)d;
        location / {
            proxy_pass http://u;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 3s;
            proxy_buffering off;
        }
    }
}
"""


def start_nginx(path, up_port, tmp):
    port = free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF % {"tmp": tmp, "up": up_port, "port": port})
    log = open(os.path.join(tmp, "nginx.out"), "wb")
    p = subprocess.Popen([path, "-p", tmp, "-c", conf], stdout=log, stderr=log)
    wait_port(port, p)
    return p, port


def main():
    ap = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
    ap.add_argument("--gateway", default=os.path.join(target, "debug", "examples", "gateway"))
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument(
        "--serve-upstream",
        action="store_true",
        help="only run the scripted upstream: print its port, then one line per case "
        "(method name), then serve until stdin closes (for driving another client)",
    )
    ap.add_argument("--dribble", action="store_true", help="crafted answers one byte per write")
    ap.add_argument("--http10", action="store_true", help="the clients speak HTTP/1.0 (keep-alive)")
    ap.add_argument("cases", nargs="*")
    args = ap.parse_args()
    global CLIENT_VERSION
    if args.http10:
        CLIENT_VERSION = "HTTP/1.0"
    if args.serve_upstream:
        up = Upstream(args.dribble)
        print(up.port)
        for name, (method, _, then) in CASES.items():
            print(method, name, "late" if isinstance(then, tuple) and then[0] == "late" else "")
        print("end", flush=True)
        sys.stdin.read()
        return
    names = args.cases or list(CASES)
    tmp = tempfile.mkdtemp(prefix="respdiff-")
    procs = []
    try:
        up_g, up_n = Upstream(args.dribble), Upstream(args.dribble)
        g, gport = start_gateway(args.gateway, up_g.port, tmp)
        procs.append(g)
        n, nport = start_nginx(args.nginx, up_n.port, tmp)
        procs.append(n)
        rows = []
        print("%-28s | %-44s | %-4s | %-12s || %-44s | %-4s | %s" % (
            "case", "h1server: first answer", "reu", "next", "nginx: first answer", "reu", "next"))
        for name in names:
            # Dribbled extra bytes take a while to arrive: the client waits for them to
            # be in before its next request (else it is the "race" case every time).
            pause = 0.4 if args.dribble else 0.0
            og = run_case(gport, up_g, name, pause)
            on = run_case(nport, up_n, name, pause)
            fg, fn = fmt(og), fmt(on)
            rows.append((name, fg, fn))
            print("%-28s | %-44s | %-4s | %-12s || %-44s | %-4s | %s" % (
                name, fg[0], fg[1], fg[2], fn[0], fn[1], fn[2]), flush=True)
        out = os.path.join(tmp, "respdiff-out.md")
        with open(out, "w") as f:
            f.write("| case | h1server | reused | next | nginx | reused | next |\n|---|---|---|---|---|---|---|\n")
            for name, fg, fn in rows:
                f.write("| %s | %s | %s | %s | %s | %s | %s |\n" % (
                    name, fg[0].replace("|", "\\|"), fg[1], fg[2], fn[0].replace("|", "\\|"), fn[1], fn[2]))
        print("table: %s (logs beside it)" % out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


if __name__ == "__main__":
    main()
