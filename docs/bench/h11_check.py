"""examples/hello on 127.0.0.1:8432 and the demo on 127.0.0.1:8431, checked with h11.

Strict HTTP/1.1 checks with h11 over raw sockets: each case is sent twice on one
connection (keep-alive reuse), as GET and as HEAD where GET applies, and then once with
Connection: close. Prints every problem found."""
import socket, sys, h11, json

def exchange(port, method, target, headers=(), body=b"", close=False):
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(5)
    c = h11.Connection(h11.CLIENT)
    hs = [("Host", f"127.0.0.1:{port}")] + list(headers)
    if body: hs.append(("Content-Length", str(len(body))))
    if close: hs.append(("Connection", "close"))
    s.sendall(c.send(h11.Request(method=method, target=target, headers=hs)))
    if body: s.sendall(c.send(h11.Data(data=body)))
    s.sendall(c.send(h11.EndOfMessage()))
    resp, data, closed = None, b"", None
    while True:
        ev = c.next_event()
        if ev is h11.NEED_DATA:
            chunk = s.recv(65536)
            c.receive_data(chunk)
            continue
        if isinstance(ev, h11.Response): resp = ev
        elif isinstance(ev, h11.Data): data += ev.data
        elif isinstance(ev, h11.EndOfMessage): break
        elif isinstance(ev, h11.ConnectionClosed): break
    if close:
        try:
            closed = s.recv(1) == b""
        except socket.timeout:
            closed = False
    else:
        # reuse: the connection must take another request
        try:
            c.start_next_cycle()
            s.sendall(c.send(h11.Request(method="GET", target="/", headers=[("Host", "x")])))
            s.sendall(c.send(h11.EndOfMessage()))
            while True:
                ev = c.next_event()
                if ev is h11.NEED_DATA: c.receive_data(s.recv(65536)); continue
                if isinstance(ev, h11.Response): closed = ("reused", ev.status_code); break
        except Exception as e:
            closed = ("not reusable", repr(e))
    s.close()
    h = [(k.decode().lower(), v.decode()) for k, v in resp.headers]
    return resp.status_code, h, data, closed

VOLATILE = {"date", "x-request-id", "x-correlation-id"}
problems = []
def check(port, method, target, headers=(), body=b"", dynamic_len=False):
    name = f"{port} {method} {target} {[k for k,_ in headers]}"
    try:
        st, h, data, reuse = exchange(port, method, target, headers, body)
    except Exception as e:
        problems.append(f"{name}: h11 rejected the exchange: {e!r}"); return
    names = [k for k, _ in h]
    d = dict(h)
    if names.count("date") != 1: problems.append(f"{name}: {names.count('date')} Date fields")
    if data and "content-type" not in d: problems.append(f"{name}: {st} body of {len(data)} bytes without Content-Type")
    if "content-length" in d and method != "HEAD" and int(d["content-length"]) != len(data):
        problems.append(f"{name}: Content-Length {d['content-length']} != {len(data)}")
    if st == 405 and "allow" not in d: problems.append(f"{name}: 405 without Allow")
    if st == 401 and "www-authenticate" not in d: problems.append(f"{name}: 401 without WWW-Authenticate")
    if st in (201,) and "location" not in d: problems.append(f"{name}: 201 without Location")
    if st in (429, 503) and "retry-after" not in d: problems.append(f"{name}: {st} without Retry-After (advisory)")
    if st in (204, 304) and (data or "content-length" in d or "transfer-encoding" in d): problems.append(f"{name}: {st} with framing/body")
    if reuse is None or reuse[0] != "reused": problems.append(f"{name}: keep-alive not reusable: {reuse}")
    if method == "GET":
        sth, hh, datah, _ = exchange(port, "HEAD", target, headers)
        if datah: problems.append(f"{name}: HEAD has a body")
        if sth != st: problems.append(f"{name}: HEAD status {sth} != GET {st}")
        a = {k: v for k, v in h if k not in VOLATILE and not (dynamic_len and k == "content-length")}
        b = {k: v for k, v in hh if k not in VOLATILE and not (dynamic_len and k == "content-length")}
        if a != b: problems.append(f"{name}: HEAD fields differ: GET {a} HEAD {b}")
    # Connection: close must be honoured
    st2, h2, _, closed = exchange(port, method, target, headers, body, close=True)
    if dict(h2).get("connection", "").lower() != "close": problems.append(f"{name}: Connection: close not echoed ({dict(h2).get('connection')})")
    if not closed: problems.append(f"{name}: connection not closed after Connection: close")
    print(f"{st:3} {name} {dict((k,v) for k,v in h if k in ('content-type','content-length','transfer-encoding','allow','cache-control','vary'))}")

AUTH = [("Authorization", "Bearer dev-token")]
JSONH = AUTH + [("Content-Type", "application/json")]
D, H = 8431, 8432
for t in ["/", "/assets/page.css", "/assets/page.js", "/healthz", "/readyz", "/startupz", "/parcels/PX-42", "/parcels//PX-42", "/debug/routes", "/nope", "/api/v1/users"]:
    check(D, "GET", t, dynamic_len=t in ("/healthz",))
check(D, "GET", "/", [("Accept", "text/html")])
check(D, "GET", "/metrics", dynamic_len=True)
check(D, "GET", "/api/v1/users", AUTH)
check(D, "GET", "/api/v1/users?limit=abc", AUTH)
check(D, "GET", "/api/v1/users/1", AUTH)
check(D, "GET", "/api/v1/users/999999", AUTH)
check(D, "GET", "/api/v1/users/abc", AUTH)
check(D, "POST", "/api/v1/users", JSONH, b'{"name":"Zed","email":"zed@example.com"}')
check(D, "POST", "/api/v1/users", JSONH, b'{"name":')
check(D, "POST", "/api/v1/users", JSONH, b'{"name":"","email":"x"}')
check(D, "POST", "/api/v1/users", AUTH + [("Content-Type", "text/plain")], b'hi')
check(D, "PUT", "/api/v1/users/1", JSONH, b'{"name":"Ada L.","email":"ada@example.com"}')
check(D, "DELETE", "/api/v1/users/1", AUTH)
check(D, "DELETE", "/healthz")
check(D, "OPTIONS", "/healthz")
check(D, "OPTIONS", "*")
check(D, "POST", "/api/v1/uploads", AUTH + [("Content-Type", "multipart/form-data; boundary=XX")], b"--XX--\r\n")
for t in ["/", "/plaintext", "/sleep?ms=5", "/stream?n=3", "/stream?n=0", "/nope"]:
    check(H, "GET", t)
check(H, "POST", "/", [("Content-Type", "text/plain")], b"hi")
print("\n".join(["PROBLEMS:"] + problems))
