#!/usr/bin/env python3
"""Writes the seed inputs of fuzz/corpus/<target>/seed-* (docs/FUZZING.md).

Real requests and the classic smuggling and framing cases, in each target's input
format (src/fuzz_harness.rs, src/conn/fuzz.rs). Run from the repository root:
    python3 fuzz/seeds.py
It only adds or rewrites files named seed-*; what the fuzzer kept stays.
"""
import hashlib
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

H = b"Host: example.com\r\n"
HEADS = [
    b"GET / HTTP/1.1\r\n" + H + b"\r\n",
    b"GET /search?q=fuzz&lang=en HTTP/1.1\r\n" + H + b"User-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
    b"GET http://example.com/p?q HTTP/1.1\r\n" + H + b"\r\n",
    b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n",
    b"GET * HTTP/1.1\r\n" + H + b"\r\n",
    b"HEAD /x HTTP/1.1\r\n" + H + b"\r\n",
    b"POST /form HTTP/1.1\r\n" + H + b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\na=1&b=2",
    b"POST /c HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5, 5\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x5\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:\tCHUNKED \r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + H + b"X-Folded: a\r\n b\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + H + b"X-Folded: a\r\n\tb\r\n\r\n",
    b"GET / HTTP/1.1\n" + b"Host: example.com\n\n",
    b"GET / HTTP/1.1\r\nHost: example.com\n\r\n",
    b"GET / HTTP/1.1\rHost: example.com\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + H + b"Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"POST /u HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"\r\n\r\nGET / HTTP/1.1\r\n" + H + b"\r\n",
    b"GET / HTTP/2.0\r\n" + H + b"\r\n",
    b"GET / HTTP/1.2\r\n" + H + b"\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"GET /\xc3\xa9 HTTP/1.1\r\n" + H + b"\r\n",
    b"GET / HTTP/1.1\r\n" + H + b"X-Nul: a\x00b\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + H + b"X-Utf8: \xc3\xa9\r\n\r\n",
    b"GET  / HTTP/1.1\r\n" + H + b"\r\n",
    b"get / HTTP/1.1\r\n" + H + b"\r\n",
    b"UPDATEREDIRECTREF / HTTP/1.1\r\n" + H + b"\r\n",
    b"A" * 40 + b" / HTTP/1.1\r\n" + H + b"\r\n",
    b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n" + H + b"\r\n",
    b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: v\r\n" % i for i in range(120)) + b"\r\n",
    b"GET / HTTP/1.1\r\n" + H + b": empty-name\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + H + b"\r\nGET /2 HTTP/1.1\r\n" + H + b"\r\n",
]

CHUNKED = [
    b"5\r\nhello\r\n0\r\n\r\n",
    b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    b"0\r\n\r\n",
    b"A\r\n0123456789\r\n0\r\n\r\n",
    b"0000000000000005\r\nhello\r\n0\r\n\r\n",
    b"00000000000000005\r\nhello\r\n0\r\n\r\n",
    b"ffffffffffffffff\r\nx\r\n0\r\n\r\n",
    b"5;foo\r\nhello\r\n0;bar\r\n\r\n",
    b"5 ; a = b ;\tc\r\nhello\r\n0\r\n\r\n",
    b'5;a="q\\"uo;ted"\r\nhello\r\n0\r\n\r\n',
    b"5\r\nhello\r\n0\r\nTrailer-A: 1\r\nB: two words\r\n\r\n",
    b"1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"5\nhello\n0\n\n",
    b"5\r\nhello\n0\r\n\r\n",
    b"5\rhello\r\n0\r\n\r\n",
    b"5 \r\nhello\r\n0\r\n\r\n",
    b"-5\r\nhello\r\n0\r\n\r\n",
    b"0x5\r\nhello\r\n0\r\n\r\n",
    b"5\r\nhelloX0\r\n\r\n",
    b"5\r\nhello\r\n0\r\nX : y\r\n\r\n",
    b"5\r\nhello\r\n0\r\nX: y\r\n z\r\n\r\n",
    b"3\r\n\r\n\r\r\n0\r\n\r\n",
    b"4\r\n\r\n\r\n\r\n0\r\n\r\n",
]

def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)

def key(data):
    return hashlib.sha1(data).hexdigest()[:12]

# --- head: [limits][start/fields][bytes] ---------------------------------------------
for h in HEADS:
    write("head", key(h), b"\x00\x00" + h)
# A few under small limits, at an offset, with fields already in the list.
for a, b in [(0x01, 0x00), (0x02, 0x0b), (0x14, 0x01), (0x28, 0x02), (0x40, 0x18), (0x80, 0x00)]:
    for h in HEADS[:12:3]:
        data = bytes([a, b]) + b"\r\n\r\n"[: b & 7] + h
        write("head", key(data), data)

# --- chunked: [limit][split count][split sizes][body] ----------------------------------
for c in CHUNKED:
    write("chunked", key(c), b"\x00\x00" + c)
for a, splits in [(0x02, [1, 2]), (0x04, [3]), (0x05, [0, 7, 1]), (0x07, [2, 5])]:
    for c in CHUNKED[:8]:
        data = bytes([a, len(splits)]) + bytes(splits) + c
        write("chunked", key(data), data)

# --- conn: [3 config bytes][ops] (src/conn/fuzz.rs) --------------------------------------
def data(b):
    """Data ops: bytes arrive (4095 at most per op)."""
    out = b""
    while b:
        piece, b = b[:4095], b[4095:]
        n = len(piece)
        out += bytes([(n >> 8) << 4 | 0, n & 0xFF]) + piece
    return out

BLOCK, EOF, READABLE, WRITABLE, WORK, COMPLETE, DEFERRED, DRAIN, TURN = (
    b"\x01", b"\x02", b"\x04", b"\x05", b"\x07", b"\x08", b"\x0a", b"\x0b", b"\x0d")
RESET = b"\x03"
def room(kind, b):  # 0 unlimited, 1 bytes, 2 ×64, 3 ×4096
    return bytes([kind << 4 | 6, b])
def wait(b, unit):  # unit 0 ms, 1 ×10ms, 2 ×100ms, 3 s
    return bytes([unit << 4 | 9, b])
def others(k):
    return bytes([k << 4 | 12])

def serve(req, cfg=b"\x00\x00\x00", split=None):
    """Client sends req (in two reads at `split`), then the loop and a worker answer."""
    parts = [req] if split is None else [req[:split], req[split:]]
    s = cfg
    for p in parts:
        s += data(p) + READABLE + WORK + COMPLETE
    return s + TURN

P = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
CH = (b"POST /k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: t\r\n\r\nGET /d HTTP/1.1\r\nHost: x\r\n\r\n")
CONN = {
    "pipelined": serve(P),
    "pipelined-split": serve(P, split=40),
    "chunked-pipelined": serve(CH),
    "chunked-split": serve(CH, split=70),
    "cl-te": serve(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
    "te-cl": serve(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
    "double-cl": serve(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 30\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
    "obs-fold-te": serve(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"),
    "bare-lf": serve(b"GET /lf HTTP/1.1\nHost: x\n\nGET /lf2 HTTP/1.1\nHost: x\n\n"),
    "bare-lf-chunk": serve(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n"),
    "expect-continue": b"\x00\x00\x00" + data(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n") + READABLE + data(b"abc") + READABLE + WORK + COMPLETE,
    "head-method": serve(b"HEAD /b HTTP/1.1\r\nHost: x\r\n\r\nHEAD /s HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n"),
    "http10": serve(b"GET /s HTTP/1.0\r\n\r\n"),
    "http10-keepalive": serve(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n"),
    "stream": serve(b"GET /s123 HTTP/1.1\r\nHost: x\r\n\r\nGET /S HTTP/1.1\r\nHost: x\r\n\r\n", cfg=b"\x00\x00\x02"),
    "big-slow-reader": b"\x00\x00\x00" + room(1, 100) + data(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n") + READABLE + WORK + COMPLETE + room(2, 50) + WRITABLE + wait(20, 1) + room(0, 0) + WRITABLE + TURN,
    "write-timeout": b"\x00\x00\xc0" + room(1, 10) + data(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n") + READABLE + WORK + COMPLETE + wait(100, 0) + wait(100, 0),
    "close": serve(b"GET /c HTTP/1.1\r\nHost: x\r\n\r\nGET /after-close HTTP/1.1\r\nHost: x\r\n\r\n"),
    "slowloris": b"\x00\x00\x04" + data(b"GET / HTTP/1.1\r\n") + READABLE + wait(10, 0) + data(b"Host: x\r\n") + READABLE + wait(60, 0) + TURN,
    "idle-timeout": serve(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") + wait(3, 3) + TURN,
    "body-timeout": b"\x00\x00\x10" + data(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc") + READABLE + wait(60, 0) + TURN,
    "eof-mid-head": b"\x00\x00\x00" + data(b"GET / HTTP/1.1\r\nHo") + EOF + READABLE,
    "reset-mid-body": b"\x00\x00\x00" + data(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc") + RESET + READABLE,
    "reset-in-flight": b"\x00\x00\x00" + data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") + READABLE + RESET + READABLE + WORK + COMPLETE,
    "upload": serve(b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n" + b"u" * 3000, cfg=b"\x2c\x00\x00", split=100),
    "upload-refused": serve(b"POST /U HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\nExpect: 100-continue\r\n\r\n" + b"u" * 3000, cfg=b"\x2c\x00\x01", split=80),
    "upload-ignored": serve(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n" + b"u" * 3000, cfg=b"\x2c\x00\x00"),
    "small-limits": serve(b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: x\r\n\r\n", cfg=b"\x01\x05\x00"),
    "too-many-headers": serve(b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n", cfg=b"\x00\x01\x00"),
    "body-too-large": serve(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" + b"z" * 32 + b"\r\n0\r\n\r\n", cfg=b"\x08\x00\x00"),
    "budget": b"\x00\x40\x00" + others(2) + data(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 30000\r\n\r\n" + b"p" * 4000) + READABLE + others(0) + DEFERRED + TURN,
    "max-requests": serve(P + P, cfg=b"\xc0\x10\x00"),
    "drain": b"\x00\x00\x00" + data(P) + READABLE + DRAIN + WORK + COMPLETE + TURN,
    "empty-lines": serve(b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n\r\n"),
    "spurious-wakeup": b"\x00\x00\x00" + BLOCK + READABLE + data(P) + READABLE + BLOCK + data(b"GET /z HTTP/1.1\r\nHost: x\r\n\r\n") + READABLE + WORK + COMPLETE + READABLE + TURN,
    "channel": serve(b"GET /Cabc HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n") + b"\x3e" + COMPLETE + TURN + b"\x1e" + TURN + b"\x0f" + COMPLETE + TURN,
    "channel-slow-reader": b"\x00\x00\x02" + room(1, 20) + data(b"GET /C HTTP/1.1\r\nHost: x\r\n\r\n") + READABLE + WORK + COMPLETE + b"\xfe\xfe" + TURN + room(0, 0) + WRITABLE + b"\x0f" + TURN,
    "channel-http10": serve(b"GET /C10 HTTP/1.0\r\n\r\n") + b"\x2e" + TURN + b"\x0f" + TURN,
    "garbage": serve(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
    "h2-preface": serve(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
}
for name, s in CONN.items():
    write("conn", name, s)
# The same requests dribbled one byte per read.
for name in ["pipelined", "chunked-pipelined", "expect-continue"]:
    req = {"pipelined": P, "chunked-pipelined": CH,
           "expect-continue": b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc"}[name]
    s = b"\x00\x00\x00" + b"".join(data(bytes([c])) + READABLE for c in req) + WORK + COMPLETE + TURN
    write("conn", name + "-dribbled", s)

# --- conn_split: [3 config bytes][k][k sizes - 1][client bytes] ---------------------------
SPLIT = {
    "pipelined": (b"\x00\x00\x00", P),
    "chunked-pipelined": (b"\x00\x00\x00", CH),
    "cl-te": (b"\x00\x00\x00", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
    "bare-lf": (b"\x00\x00\x00", b"GET /lf HTTP/1.1\nHost: x\n\nGET /lf2 HTTP/1.1\nHost: x\n\n"),
    "empty-lines": (b"\x00\x00\x00", b"\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n\r\n"),
    "expect-continue": (b"\x00\x00\x00", b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabcGET /y HTTP/1.1\r\nHost: x\r\n\r\n"),
    "head-and-streams": (b"\x00\x00\x02", b"HEAD /b HTTP/1.1\r\nHost: x\r\n\r\nGET /s12 HTTP/1.1\r\nHost: x\r\n\r\nGET /C HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n"),
    "http10": (b"\x00\x00\x00", b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\nGET /c HTTP/1.0\r\n\r\n"),
    "upload": (b"\x2c\x00\x00", b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 1500\r\n\r\n" + b"u" * 1500 + b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n"),
    "upload-refused": (b"\x2c\x00\x00", b"POST /U HTTP/1.1\r\nHost: x\r\nContent-Length: 1500\r\n\r\n" + b"u" * 1500),
    "small-limits": (b"\x01\x05\x00", b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    "max-batch": (b"\xc0\x10\x00", P + P + P),
    "bad-after-good": (b"\x00\x00\x00", b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
    "chunk-ext-trailers": (b"\x00\x00\x00", b"POST /k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"q\\\"x\";b\r\nhello\r\n0\r\nT: 1\r\nU: 2\r\n\r\nGET /z HTTP/1.1\r\nHost: x\r\n\r\n"),
}
for name, (cfg, client) in SPLIT.items():
    write("conn_split", name + "-bytewise", cfg + b"\x00" + client)
    write("conn_split", name + "-split", cfg + b"\x03" + bytes([6, 0, 40]) + client)

# --- multipart: [limits a][limits b | split count][boundary c][sizes][body] -----------------
# (src/multipart/fuzz.rs). a = b = 0: the default limits; c < 0x80 picks a named boundary:
# 0 "xyz", 1 "AaB03x", 2 "-", 3 "----WebKitFormBoundary7MA4YWxkTrZu0gW", 4 "a", 5 "b-",
# 6 "simple boundary", 7 seventy characters.
def cd(name, extra=b"", filename=None, ctype=None):
    h = b'Content-Disposition: form-data; name="' + name + b'"'
    if filename is not None:
        h += b'; filename="' + filename + b'"'
    h += extra + b"\r\n"
    if ctype is not None:
        h += b"Content-Type: " + ctype + b"\r\n"
    return h

def form(b, parts, preamble=b"", epilogue=b"", close=True):
    out = preamble
    for head, data in parts:
        out += b"--" + b + b"\r\n" + head + b"\r\n" + data + b"\r\n"
    if close:
        out += b"--" + b + b"--" + epilogue
    return out

X = b"xyz"
FIELD = (cd(b"a"), b"hello")
FILE = (cd(b"f", filename=b"a.txt", ctype=b"text/plain"), b"line 1\r\nline 2\r\n")
MULTIPART = {
    "field": (0, form(X, [FIELD])),
    "file": (0, form(X, [FILE])),
    "fields-and-files": (0, form(X, [FIELD, FILE, (cd(b"b"), b""), (cd(b"g", filename=b""), b"")])),
    "rfc7578": (1, b"--AaB03x\r\ncontent-disposition: form-data; name=\"field1\"\r\ncontent-type: text/plain;charset=UTF-8\r\ncontent-transfer-encoding: quoted-printable\r\n\r\nJoe owes =E2=82=AC100.\r\n--AaB03x--"),
    "rfc2046": (6, b"This is the preamble.  It is to be ignored, though it\r\nis a handy place for mail composers to include an\r\nexplanatory note to non-MIME conformant readers.\r\n\r\n--simple boundary\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nThis is implicitly typed plain US-ASCII text.\r\nIt does NOT end with a linebreak.\r\n--simple boundary\r\nContent-Disposition: form-data; name=\"b\"\r\nContent-type: text/plain; charset=us-ascii\r\n\r\nThis is explicitly typed plain US-ASCII text.\r\nIt DOES end with a linebreak.\r\n\r\n--simple boundary--\r\n\r\nThis is the epilogue.  It is also to be ignored.\r\n"),
    "webkit": (3, form(b"----WebKitFormBoundary7MA4YWxkTrZu0gW", [FIELD, FILE])),
    "preamble-epilogue": (0, form(X, [FIELD], preamble=b"junk\r\n--xy\r\n-- xyz\r\n", epilogue=b"\r\n--xyz\r\nmore")),
    "padding": (0, b"--xyz \t\r\n" + cd(b"a") + b"\r\nv\r\n--xyz\t\r\n" + cd(b"b") + b"\r\nw\r\n--xyz-- \r\n"),
    "empty-form": (0, b"--xyz--"),
    "no-parts-then-close-in-preamble": (0, b"\r\n--xyz--\r\n"),
    "look-alikes": (0, form(X, [(cd(b"a"), b"\r\n--xy\r\n--xyzz\r-\r\n--\r\r\n--x\n--xyz"[:-4] + b"\r\r\n-"), (cd(b"f", filename=b"b"), b"\r\n\r\n--\r\n--xy")])),
    "crlf-edges": (0, form(X, [(cd(b"a"), b"\r\n"), (cd(b"b"), b"\r"), (cd(b"c"), b"\n"), (cd(b"d"), b"\r\n\r\n")])),
    "dash-boundary": (2, form(b"-", [FIELD, (cd(b"b"), b"---\r\n---x\r\n-")])),
    "dash-b": (5, form(b"b-", [(cd(b"a"), b"\r\n--b\r\n--b--x")])),
    "long-boundary": (7, form(b"0123456789012345678901234567890123456789012345678901234567890123456789", [FIELD])),
    "long-header": (0, form(X, [(cd(b"a" * 9000), b"v")])),
    "many-headers": (0, form(X, [(b"".join(b"X-%d: v\r\n" % i for i in range(300)) + cd(b"a"), b"v")])),
    "quoted-names": (0, form(X, [(b'Content-Disposition: form-data; name="a\\"b"; filename="C:\\dir\\f.txt"\r\n', b"x")])),
    "utf8-names": (0, form(X, [(cd("é".encode(), filename="ü.txt".encode()), b"\xff\xfe")])),
    "non-utf8-field": (0, form(X, [(cd(b"a"), b"\xff")])),
    "truncated": (0, form(X, [FIELD], close=False)),
    "truncated-in-delimiter": (0, form(X, [FIELD], close=False) + b"--xy"),
    "truncated-after-close-dash": (0, form(X, [FIELD], close=False) + b"--xyz-"),
    "no-boundary-line": (0, b"just some bytes\r\n--xy\r\n"),
    "text-after-boundary": (0, b"--xyzabc\r\n" + cd(b"a") + b"\r\nv\r\n--xyz--"),
    "text-after-padding": (0, b"--xyz  x\r\n"),
    "bare-lf-header": (0, b"--xyz\r\nContent-Disposition: form-data; name=a\n\nv\r\n--xyz--"),
    "bare-cr-header": (0, b"--xyz\r\nContent-Disposition: form-data; name=a\r\rv\r\n--xyz--"),
    "lf-delimiter": (0, b"--xyz\n" + cd(b"a") + b"\nv\n--xyz--\n"),
    "folded-header": (0, b"--xyz\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\nv\r\n--xyz--"),
    "duplicate-header": (0, form(X, [(cd(b"a") + cd(b"b"), b"v")])),
    "no-disposition": (0, form(X, [(b"Content-Type: text/plain\r\n", b"v")])),
    "no-headers": (0, b"--xyz\r\n\r\nv\r\n--xyz--"),
    "not-form-data": (0, form(X, [(b"Content-Disposition: attachment; name=a\r\n", b"v")])),
    "no-name": (0, form(X, [(b"Content-Disposition: form-data; filename=a\r\n", b"v")])),
    "bad-params": (0, form(X, [(b"Content-Disposition: form-data; name=a; name=b\r\n", b"v")])),
}
for name, (c, body) in MULTIPART.items():
    write("multipart", name, b"\x00\x00" + bytes([c]) + body)
    # Byte sizes 1, 2, 3, 7 and an empty feed, cycled.
    write("multipart", name + "-split", b"\x00\x50" + bytes([c]) + bytes([1, 2, 3, 7, 0]) + body)
# Each limit small (a, b): parts 1 / 3, header 40 / 100 bytes, field 5 / 20, fields 8 / 30,
# file 5 / 100, total 50 / 300.
LIMITS = form(X, [(cd(b"a"), b"0123456"), (cd(b"b"), b"0123456789012"), (cd(b"f", filename=b"x"), b"0123456789"), FIELD])
for a, b in [(0x01, 0), (0x02, 0), (0x03, 0), (0x04, 0), (0x08, 0), (0x0c, 0), (0x10, 0), (0x20, 0),
             (0x30, 0), (0x40, 0), (0x80, 0), (0xc0, 0), (0xb0, 0), (0, 0x01), (0, 0x02), (0, 0x03),
             (0, 0x04), (0, 0x08), (0, 0x0c), (0xfe, 0x0f)]:
    write("multipart", "limits-%02x-%02x" % (a, b), bytes([a, b, 0]) + LIMITS)
    write("multipart", "limits-%02x-%02x-bytewise" % (a, b), bytes([a, b | 0x10, 0, 1]) + LIMITS)
# Fields limits crossing: the fields' sum passes 30 (at the second field's 11th byte) before
# the second field passes 20 (at its 21st).
CROSS = form(X, [(cd(b"a"), b"x" * 20), (cd(b"b"), b"y" * 21)])
write("multipart", "fields-limit-first", bytes([0xf0, 0x00, 0]) + CROSS)
# The total limit passed in the epilogue and inside a malformed part.
write("multipart", "total-in-epilogue", bytes([0x00, 0x0c, 0]) + form(X, [FIELD], epilogue=b"\r\n" + b"e" * 400))
write("multipart", "total-after-bad-header", bytes([0x00, 0x08, 0]) + b"--xyz\r\nbad header\r\n\r\n" + b"z" * 60)
# Boundaries from the input: 0x80 | n, then n bytes.
write("multipart", "own-boundary", b"\x00\x00\x83q-\x01" + form(b"q-\x01", [FIELD]))
write("multipart", "own-boundary-space", b"\x00\x00\x85 a b " + form(b" a b ", [FIELD]))

# --- client: [limits][control][3 request bytes][k sizes][the upstream's bytes] ------------
# control: 1 + (bits 0-1 % 3) requests, bit 2 no EOF, bits 4-7 k. A request byte: method
# (bits 0-1: GET HEAD CONNECT POST), Connection: close (4), Upgrade (8), Expect (16),
# forbid_reuse (32). limits: head (bits 0-1), fields (2-3), body (4-6) (src/client/fuzz.rs).
GET, HEAD, CONNECT, POST = 0, 1, 2, 3
CLOSE, UPGRADE, EXPECT, FORBID = 4, 8, 16, 32
GATEWAY = 64
OK5 = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED_OK = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer-A: 1\r\n\r\n")
CLIENT = {
    "length": (GET, OK5),
    "chunked": (GET, CHUNKED_OK),
    "chunked-quoted-ext": (GET, b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 ; a="q\\"x" ;b\r\nhello\r\n0\r\n\r\n'),
    "until-close": (GET, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this until the end"),
    "http10": (GET, b"HTTP/1.0 200 OK\r\n\r\nuntil close"),
    "http10-keep-alive": (GET, b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"),
    "connection-close": (GET, b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"),
    "request-close": (GET | CLOSE, OK5),
    "forbid-reuse": (POST | FORBID, OK5),
    "head-with-length": (HEAD, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
    "head-with-chunked": (HEAD, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
    "204-with-bytes": (GET, b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello"),
    "304": (GET, b"HTTP/1.1 304 Not Modified\r\nContent-Length: 500\r\nETag: \"x\"\r\n\r\n"),
    "100-skipped": (GET, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n" + OK5),
    "100-expected": (POST | EXPECT, b"HTTP/1.1 100 Continue\r\n\r\n" + OK5),
    "103-early-hints": (GET, b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n" + OK5),
    "101-asked": (GET | UPGRADE, b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x02hi"),
    "101-unasked": (GET, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"),
    "connect-200": (CONNECT, b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01"),
    "connect-407": (CONNECT, b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 3\r\n\r\nno!"),
    "cl-te": (GET, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"),
    "te-cl": (GET, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n"),
    "te-gzip-chunked": (GET, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
    "te-chunked-chunked": (GET, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "te-identity": (GET, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nabc"),
    "te-http10": (GET, b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "cl-twice-same": (GET, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5, 5\r\n\r\nhello"),
    "cl-differ": (GET, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
    "cl-plus": (GET, b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello"),
    "cl-empty": (GET, b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nhello"),
    "cl-huge": (GET, b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n"),
    "obs-fold": (GET, b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n"),
    "space-before-colon": (GET, b"HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello"),
    "bare-lf": (GET, b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello"),
    "empty-lines-first": (GET, b"\r\n\r\n" + OK5),
    "bare-lf-chunk": (GET, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n"),
    "chunk-too-large": (GET, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nx"),
    "chunk-17-digits": (GET, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000005\r\nhello\r\n0\r\n\r\n"),
    "garbage": (GET, b"SSH-2.0-OpenSSH_9.6\r\n"),
    "http2": (GET, b"HTTP/2 200\r\n\r\n"),
    "status-99": (GET, b"HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n"),
    "status-999": (GET, b"HTTP/1.1 999 High\r\nContent-Length: 0\r\n\r\n"),
    "no-reason": (GET, b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"),
    "eof-mid-head": (GET, b"HTTP/1.1 200 OK\r\nContent-Le"),
    "eof-mid-body": (GET, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
    "eof-mid-chunk": (GET, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"),
    "nothing": (GET, b""),
    "interim-storm": (GET, b"HTTP/1.1 102 Processing\r\n\r\n" * 40 + OK5),
}
for name, (req, resp) in CLIENT.items():
    write("client", name, bytes([0, 0, req, 0, 0]) + resp)
# Keep-alive: two or three requests on one connection, the answers back to back.
PIPE = {
    "pipelined": ([GET, HEAD, POST], OK5 + b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n" + CHUNKED_OK),
    "pipelined-head-smuggle": ([HEAD, GET, GET], b"HTTP/1.1 200 OK\r\nContent-Length: 23\r\n\r\nHTTP/1.1 200 OK\r\n\r\nX" + OK5),
    "pipelined-204": ([GET, GET, GET], b"HTTP/1.1 204 No Content\r\n\r\n" + CHUNKED_OK + b"HTTP/1.0 200 OK\r\n\r\nend"),
    "pipelined-expect": ([POST | EXPECT, GET | UPGRADE, GET], b"HTTP/1.1 100 Continue\r\n\r\n" + OK5 + b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"),
    # A 1xx or 204 that frames a body leaves the connection out of step: not reused
    # (`frames_a_body`); `Content-Length: 0` frames nothing.
    "pipelined-204-length": ([GET, GET, GET], b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n" + OK5 + OK5),
    "pipelined-204-chunked": ([GET, GET, GET], b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n" + OK5 + OK5),
    "pipelined-204-length-0": ([GET, GET, GET], b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n" + OK5 + OK5),
    "pipelined-103-length": ([GET, GET, GET], b"HTTP/1.1 103 Early Hints\r\nContent-Length: 3\r\n\r\n" + OK5 + OK5 + OK5),
    "pipelined-100-skipped-chunked": ([GET, GET, GET], b"HTTP/1.1 100 Continue\r\nTransfer-Encoding: chunked\r\n\r\n" + OK5 + OK5 + OK5),
    "pipelined-204-length-gateway": ([GET | GATEWAY, GET | GATEWAY, GET | GATEWAY], b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n" + OK5 + OK5),
}
for name, (reqs, resp) in PIPE.items():
    write("client", name, bytes([0, len(reqs) - 1]) + bytes(reqs) + resp)
# Small limits (head 60 B, one field, body 5 B), an upstream that does not close, and
# pieces of chosen sizes.
for name in ["length", "chunked", "until-close", "103-early-hints", "interim-storm", "cl-twice-same"]:
    req, resp = CLIENT[name]
    write("client", name + "-small-limits", bytes([0x26, 0, req, 0, 0]) + resp)
    write("client", name + "-no-eof", bytes([0, 4, req, 0, 0]) + resp)
    write("client", name + "-split", bytes([0, 0x30, req, 0, 0, 3, 0, 17]) + resp)
# The gateway's way (expect_response, conn/forward.rs): bit 64 of a request byte.
for name in ["length", "chunked", "100-expected", "head-with-length", "103-early-hints", "101-unasked"]:
    req, resp = CLIENT[name]
    write("client", name + "-gateway", bytes([0, 0, req | GATEWAY, 0, 0]) + resp)
