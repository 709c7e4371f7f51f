"""The generated inputs for diff.py: each case is (group, name, bytes).

Every case is a first request whose framing (or line, or field) is mutated, followed on
the same connection by `GET /second` with `Connection: close`. The first request goes to
`/` (200 on every server when accepted), the second to `/second` (404 on every server),
so the sequence of statuses shows how each server split the bytes: `200 404` is the
plain reading, `200` alone means the second request was swallowed (as body, say),
`400` means refused, `200 400` means the first body was read short and its rest parsed
as a request, and so on.
"""

SECOND = b"GET /second HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
CHUNKED_HELLO = b"5\r\nhello\r\n0\r\n\r\n"


def b(s):
    return s if isinstance(s, bytes) else s.encode("latin-1")


def req(fields=b"", body=b"", line=b"POST / HTTP/1.1", host=b"Host: t\r\n"):
    """A request head (line, Host, fields) and body; `fields` end with CRLF each."""
    return b(line) + b"\r\n" + b(host) + b(fields) + b"\r\n" + b(body)


def cl(value, body=b"hello"):
    return req(b"Content-Length: " + b(value) + b"\r\n", body)


def te(value, body=CHUNKED_HELLO, line=b"POST / HTTP/1.1"):
    return req(b"Transfer-Encoding: " + b(value) + b"\r\n", body, line=line)


def chunked(body):
    return te(b"chunked", b(body))


def cases():
    out = []

    def add(group, name, first, second=SECOND):
        out.append((group, name, b(first) + second))

    # -- Content-Length forms (RFC 9112 §6.3, RFC 9110 §8.6) --------------------------
    g = "cl"
    add(g, "baseline CL 5", cl("5"))
    add(g, "no body GET", req(line="GET / HTTP/1.1"))
    add(g, "CL 0", cl("0", b""))
    add(g, "duplicate same", req(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"))
    add(g, "duplicate differing 5/6", req(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello"))
    add(g, "duplicate differing 6/5", req(b"Content-Length: 6\r\nContent-Length: 5\r\n", b"hello"))
    add(g, "list 5, 5", cl("5, 5"))
    add(g, "list 5,5", cl("5,5"))
    add(g, "list 5 ,5", cl("5 ,5"))
    add(g, "list 5, 6", cl("5, 6"))
    add(g, "list 5,", cl("5,"))
    add(g, "list ,5", cl(",5"))
    add(g, "plus sign", cl("+5"))
    add(g, "minus sign", cl("-5"))
    add(g, "minus zero", cl("-0", b""))
    add(g, "leading zero 05", cl("05"))
    add(g, "many leading zeros", cl("0" * 30 + "5"))
    add(g, "OWS around", cl(" \t5\t "))
    add(g, "no OWS", req(b"Content-Length:5\r\n", b"hello"))
    add(g, "space inside 5 5", cl("5 5"))
    add(g, "hex 0x5", cl("0x5"))
    add(g, "decimal point 5.0", cl("5.0"))
    add(g, "exponent 5e0", cl("5e0"))
    add(g, "underscore 0_5", cl("0_5"))
    add(g, "arabic-indic digit", cl("\u0665".encode("utf-8")))
    add(g, "NUL after value", cl("5\x00"))
    add(g, "empty value", cl(""))
    add(g, "2^32+5 (truncation)", cl("4294967301"))
    add(g, "2^64+5 (wrap)", cl("18446744073709551621"))
    add(g, "u64::MAX", cl("18446744073709551615"))
    add(g, "20 nines", cl("9" * 20))
    add(g, "over max body (2 MB)", cl("2000000"))
    add(g, "body longer than CL 3", cl("3"))
    add(g, "body shorter than CL 10", cl("10"))
    add(g, "space before colon", req(b"Content-Length : 5\r\n", b"hello"))
    add(g, "tab before colon", req(b"Content-Length\t: 5\r\n", b"hello"))
    add(g, "leading space on the field line", req(b" Content-Length: 5\r\n", b"hello"))
    add(g, "obs-fold onto X", req(b"X: y\r\n Content-Length: 5\r\n", b"hello"))
    add(g, "obs-fold value continuation", req(b"Content-Length: 5\r\n 0\r\n", b"hello"))
    add(g, "obs-fold value on next line", req(b"Content-Length:\r\n 5\r\n", b"hello"))
    add(g, "underscore name Content_Length", req(b"Content_Length: 5\r\n", b"hello"))
    add(g, "lower-case name", req(b"content-length: 5\r\n", b"hello"))
    add(g, "GET with CL body", cl("5").replace(b"POST", b"GET", 1))
    add(g, "HEAD with CL body", cl("5").replace(b"POST", b"HEAD", 1))
    add(g, "OPTIONS with CL body", cl("5").replace(b"POST", b"OPTIONS", 1))
    add(g, "HTTP/1.0 CL keep-alive", req(b"Content-Length: 5\r\nConnection: keep-alive\r\n", b"hello", line="POST / HTTP/1.0"))

    # -- Transfer-Encoding forms (RFC 9112 §6.1, §7) ------------------------------------
    g = "te"
    add(g, "baseline chunked", te("chunked"))
    add(g, "Chunked", te("Chunked"))
    add(g, "CHUNKED", te("CHUNKED"))
    add(g, "chunked, chunked", te("chunked, chunked"))
    add(g, "two fields chunked/chunked", req(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", CHUNKED_HELLO))
    add(g, "two fields gzip/chunked", req(b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", CHUNKED_HELLO))
    add(g, "two fields chunked/gzip", req(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", CHUNKED_HELLO))
    add(g, "identity", te("identity", b"hello"))
    add(g, "identity, chunked", te("identity, chunked"))
    add(g, "chunked, identity", te("chunked, identity"))
    add(g, "gzip, chunked", te("gzip, chunked"))
    add(g, "chunked, gzip", te("chunked, gzip"))
    add(g, "gzip alone", te("gzip", b"hello"))
    add(g, "unknown x", te("x", b"hello"))
    add(g, "empty value", te("", b"hello"))
    add(g, "trailing space", te("chunked "))
    add(g, "leading tab", te("\tchunked"))
    add(g, "vertical tab before", te("\x0bchunked"))
    add(g, "form feed before", te("\x0cchunked"))
    add(g, "NUL after", te("chunked\x00"))
    add(g, "chunked;q=1", te("chunked;q=1"))
    add(g, "quoted", te('"chunked"'))
    add(g, "chunk (truncated)", te("chunk"))
    add(g, "chunkedx", te("chunkedx"))
    add(g, ", chunked", te(", chunked"))
    add(g, "chunked,", te("chunked,"))
    add(g, "space before colon", req(b"Transfer-Encoding : chunked\r\n", CHUNKED_HELLO))
    add(g, "obs-fold value on next line", req(b"Transfer-Encoding:\r\n chunked\r\n", CHUNKED_HELLO))
    add(g, "obs-fold onto X", req(b"X: y\r\n Transfer-Encoding: chunked\r\n", CHUNKED_HELLO))
    add(g, "obs-fold continuation after chunked", req(b"Transfer-Encoding: chunked\r\n , identity\r\n", CHUNKED_HELLO))
    add(g, "underscore name", req(b"Transfer_Encoding: chunked\r\n", CHUNKED_HELLO))
    add(g, "HTTP/1.0 chunked", te("chunked", line="POST / HTTP/1.0"))
    add(g, "HTTP/1.0 chunked keep-alive", req(b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n", CHUNKED_HELLO, line="POST / HTTP/1.0"))
    add(g, "GET chunked", te("chunked", line="GET / HTTP/1.1"))

    # -- both ----------------------------------------------------------------------------
    g = "cl+te"
    add(g, "TE then CL 5", req(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", CHUNKED_HELLO))
    add(g, "CL then TE", req(b"Content-Length: 15\r\nTransfer-Encoding: chunked\r\n", CHUNKED_HELLO))
    add(g, "TE + CL 0", req(b"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n", CHUNKED_HELLO))
    add(g, "identity + CL", req(b"Transfer-Encoding: identity\r\nContent-Length: 5\r\n", b"hello"))
    add(g, "bad TE + CL", req(b"Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n", b"hello"))
    add(g, "HTTP/1.0 TE + CL", req(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\nConnection: keep-alive\r\n", b"hello", line="POST / HTTP/1.0"))
    add(g, "CL + folded TE", req(b"Content-Length: 5\r\nX: y\r\n Transfer-Encoding: chunked\r\n", b"hello"))
    add(g, "CL + TE_ underscore", req(b"Content-Length: 5\r\nTransfer_Encoding: chunked\r\n", b"hello"))
    add(g, "CL + TE space-colon", req(b"Content-Length: 5\r\nTransfer-Encoding : chunked\r\n", b"hello"))

    # -- chunk sizes and data (RFC 9112 §7.1) ------------------------------------------------
    g = "chunk"
    add(g, "upper-case hex A", chunked("A\r\nhellohello\r\n0\r\n\r\n"))
    add(g, "leading zeros 005", chunked("005\r\nhello\r\n0\r\n\r\n"))
    add(g, "20 leading zeros", chunked("0" * 20 + "5\r\nhello\r\n0\r\n\r\n"))
    add(g, "0x5", chunked("0x5\r\nhello\r\n0\r\n\r\n"))
    add(g, "+5", chunked("+5\r\nhello\r\n0\r\n\r\n"))
    add(g, "-5", chunked("-5\r\nhello\r\n0\r\n\r\n"))
    add(g, "leading space", chunked(" 5\r\nhello\r\n0\r\n\r\n"))
    add(g, "trailing space", chunked("5 \r\nhello\r\n0\r\n\r\n"))
    add(g, "trailing tab", chunked("5\t\r\nhello\r\n0\r\n\r\n"))
    add(g, "space then ext", chunked("5 ;a=b\r\nhello\r\n0\r\n\r\n"))
    add(g, "ext then space", chunked("5; a=b\r\nhello\r\n0\r\n\r\n"))
    add(g, "ext plain", chunked("5;a=b\r\nhello\r\n0\r\n\r\n"))
    add(g, "ext name only", chunked("5;a\r\nhello\r\n0\r\n\r\n"))
    add(g, "ext empty ;", chunked("5;\r\nhello\r\n0\r\n\r\n"))
    add(g, "ext quoted with ;", chunked('5;a="b;c"\r\nhello\r\n0\r\n\r\n'))
    add(g, "ext quoted with bare LF", chunked('5;a="b\nc"\r\nhello\r\n0\r\n\r\n'))
    add(g, "ext quoted with CRLF", chunked('5;a="b\r\nc"\r\nhello\r\n0\r\n\r\n'))
    add(g, "ext with bare CR", chunked("5;a=b\rc\r\nhello\r\n0\r\n\r\n"))
    add(g, "ext with bare LF", chunked("5;a=b\nhello\r\n0\r\n\r\n"))
    add(g, "ext with NUL", chunked("5;a=\x00\r\nhello\r\n0\r\n\r\n"))
    add(g, "ext with DEL", chunked("5;a=\x7f\r\nhello\r\n0\r\n\r\n"))
    add(g, "ext with high byte", chunked("5;a=\xff\r\nhello\r\n0\r\n\r\n"))
    add(g, "ext with space in value", chunked("5;a=b c\r\nhello\r\n0\r\n\r\n"))
    add(g, "ext on last chunk", chunked("5\r\nhello\r\n0;a=b\r\n\r\n"))
    add(g, "last chunk 000", chunked("5\r\nhello\r\n000\r\n\r\n"))
    add(g, "size bare LF", chunked("5\nhello\r\n0\r\n\r\n"))
    add(g, "size bare CR", chunked("5\rhello\r\n0\r\n\r\n"))
    add(g, "data then bare LF", chunked("5\r\nhello\n0\r\n\r\n"))
    add(g, "data then nothing", chunked("5\r\nhello0\r\n\r\n"))
    add(g, "data then XX", chunked("5\r\nhelloXX0\r\n\r\n"))
    add(g, "data shorter (4 of 5)", chunked("5\r\nhell\r\n0\r\n\r\n"))
    add(g, "data longer (6 of 5)", chunked("5\r\nhelloo\r\n0\r\n\r\n"))
    add(g, "last chunk bare LF", chunked("5\r\nhello\r\n0\n\r\n"))
    add(g, "final bare LF", chunked("5\r\nhello\r\n0\r\n\n"))
    add(g, "final CR only", chunked("5\r\nhello\r\n0\r\n\r"))
    add(g, "no final CRLF", chunked("5\r\nhello\r\n0\r\n"))
    add(g, "huge size 16 f", chunked("f" * 16 + "\r\nhello\r\n0\r\n\r\n"))
    add(g, "huge size 17 digits wraps to 5", chunked("1" + "0" * 15 + "5\r\nhello\r\n0\r\n\r\n"))
    add(g, "size 8 digits 00000005", chunked("00000005\r\nhello\r\n0\r\n\r\n"))
    add(g, "size over max body", chunked("200000\r\nhello\r\n0\r\n\r\n"))
    add(g, "underscore 0_5", chunked("0_5\r\nhello\r\n0\r\n\r\n"))
    add(g, "empty size line", chunked("\r\nhello\r\n0\r\n\r\n"))
    add(g, "two chunks", chunked("2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n"))
    add(g, "no chunks, only last", chunked("0\r\n\r\n"))

    # -- trailers (RFC 9112 §7.1.2) --------------------------------------------------------
    g = "trailer"
    add(g, "plain trailer", chunked("5\r\nhello\r\n0\r\nX: y\r\n\r\n"))
    add(g, "folded trailer", chunked("5\r\nhello\r\n0\r\nX: y\r\n z\r\n\r\n"))
    add(g, "trailer Content-Length", chunked("5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n"))
    add(g, "trailer Transfer-Encoding", chunked("5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"))
    add(g, "trailer Host", chunked("5\r\nhello\r\n0\r\nHost: x\r\n\r\n"))
    add(g, "trailer bare LF", chunked("5\r\nhello\r\n0\r\nX: y\n\r\n"))
    add(g, "trailer NUL", chunked("5\r\nhello\r\n0\r\nX: a\x00b\r\n\r\n"))
    add(g, "trailer no colon", chunked("5\r\nhello\r\n0\r\nXy\r\n\r\n"))
    add(g, "trailer space before colon", chunked("5\r\nhello\r\n0\r\nX : y\r\n\r\n"))
    add(g, "trailer empty name", chunked("5\r\nhello\r\n0\r\n: y\r\n\r\n"))
    add(g, "trailer bare CR in value", chunked("5\r\nhello\r\n0\r\nX: a\rb\r\n\r\n"))
    add(g, "trailer then missing final CRLF", chunked("5\r\nhello\r\n0\r\nX: y\r\n"))

    # -- line endings (RFC 9112 §2.2) ----------------------------------------------------------
    g = "eol"
    add(g, "all bare LF (GET)", b"GET / HTTP/1.1\nHost: t\n\n")
    add(g, "all bare LF (POST CL)", b"POST / HTTP/1.1\nHost: t\nContent-Length: 5\n\nhello")
    add(g, "request line bare LF", b"GET / HTTP/1.1\nHost: t\r\n\r\n")
    add(g, "request line bare CR", b"GET / HTTP/1.1\rHost: t\r\n\r\n")
    add(g, "header bare CR end", b"GET / HTTP/1.1\r\nHost: t\rX: y\r\n\r\n")
    add(g, "bare CR in value", b"GET / HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n")
    add(g, "end LF CRLF", b"GET / HTTP/1.1\r\nHost: t\n\r\n")
    add(g, "end CRLF LF", b"GET / HTTP/1.1\r\nHost: t\r\n\n")
    add(g, "end CR CR", b"GET / HTTP/1.1\r\nHost: t\r\n\r\r\n")
    add(g, "empty lines before", b"\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
    add(g, "bare LF lines before", b"\n\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
    add(g, "CR-only line before", b"\rGET / HTTP/1.1\r\nHost: t\r\n\r\n")
    add(g, "chunked all bare LF", b"POST / HTTP/1.1\nHost: t\nTransfer-Encoding: chunked\n\n5\nhello\n0\n\n")

    # -- NUL and control bytes (RFC 9110 §5.1, §5.5) --------------------------------------------
    g = "ctl"
    add(g, "NUL in name", req(b"X\x00: y\r\n", line="GET / HTTP/1.1"))
    add(g, "NUL in value", req(b"X: a\x00b\r\n", line="GET / HTTP/1.1"))
    add(g, "SOH in value", req(b"X: a\x01b\r\n", line="GET / HTTP/1.1"))
    add(g, "DEL in value", req(b"X: a\x7fb\r\n", line="GET / HTTP/1.1"))
    add(g, "ESC in value", req(b"X: a\x1bb\r\n", line="GET / HTTP/1.1"))
    add(g, "obs-text in value", req(b"X: a\xe9b\r\n", line="GET / HTTP/1.1"))
    add(g, "tab inside value", req(b"X: a\tb\r\n", line="GET / HTTP/1.1"))
    add(g, "high byte in name", req(b"X\xe9: y\r\n", line="GET / HTTP/1.1"))
    add(g, "space in name", req(b"X Y: z\r\n", line="GET / HTTP/1.1"))
    add(g, "empty name", req(b": y\r\n", line="GET / HTTP/1.1"))
    add(g, "separator in name", req(b"X(): y\r\n", line="GET / HTTP/1.1"))
    add(g, "slash in name", req(b"X/Y: y\r\n", line="GET / HTTP/1.1"))
    add(g, "no colon", req(b"Xy\r\n", line="GET / HTTP/1.1"))
    add(g, "NUL in target", b"GET /\x00 HTTP/1.1\r\nHost: t\r\n\r\n")
    add(g, "NUL in method", b"G\x00ET / HTTP/1.1\r\nHost: t\r\n\r\n")
    add(g, "NUL before request", b"\x00GET / HTTP/1.1\r\nHost: t\r\n\r\n")

    # -- request line (RFC 9112 §3) ---------------------------------------------------------------
    g = "line"
    def line(l, extra=b""):
        return b(l) + b"\r\nHost: t\r\n" + b(extra) + b"\r\n"
    add(g, "double space after method", line("GET  / HTTP/1.1"))
    add(g, "double space before version", line("GET /  HTTP/1.1"))
    add(g, "tab separators", line("GET\t/\tHTTP/1.1"))
    add(g, "trailing space", line("GET / HTTP/1.1 "))
    add(g, "leading space", line(" GET / HTTP/1.1"))
    add(g, "missing version (0.9)", b"GET /\r\n\r\n")
    add(g, "missing version with fields", line("GET /"))
    add(g, "HTTP/1.10", line("GET / HTTP/1.10"))
    add(g, "HTTP/1.2", line("GET / HTTP/1.2"))
    add(g, "HTTP/1.9", line("GET / HTTP/1.9"))
    add(g, "HTTP/2.0", line("GET / HTTP/2.0"))
    add(g, "HTTP/3.0", line("GET / HTTP/3.0"))
    add(g, "HTTP/0.9", line("GET / HTTP/0.9"))
    add(g, "HTTP/1", line("GET / HTTP/1"))
    add(g, "HTTP/1.", line("GET / HTTP/1."))
    add(g, "HTTP/ 1.1", line("GET / HTTP/ 1.1"))
    add(g, "http/1.1", line("GET / http/1.1"))
    add(g, "HTTP/1.1x", line("GET / HTTP/1.1x"))
    add(g, "HTTPS/1.1", line("GET / HTTPS/1.1"))
    add(g, "lower-case method", line("get / HTTP/1.1"))
    add(g, "unknown method FOO", line("FOO / HTTP/1.1"))
    add(g, "method with separator", line("G(T / HTTP/1.1"))
    add(g, "space in target", line("GET /a b HTTP/1.1"))
    add(g, "percent junk in target", line("GET /%zz HTTP/1.1"))
    add(g, "DEL in target", line("GET /\x7f HTTP/1.1"))
    add(g, "high byte in target", line("GET /\xe9 HTTP/1.1"))
    add(g, "fragment in target", line("GET /#f HTTP/1.1"))
    add(g, "asterisk GET", line("GET * HTTP/1.1"))
    add(g, "asterisk OPTIONS", line("OPTIONS * HTTP/1.1"))
    add(g, "no slash", line("GET t HTTP/1.1"))
    add(g, "query only", line("GET ?a HTTP/1.1"))
    add(g, "double slash", line("GET //t/ HTTP/1.1"))
    add(g, "absolute-form same host", line("GET http://t/ HTTP/1.1"))
    add(g, "absolute-form other host", line("GET http://other/ HTTP/1.1"))
    add(g, "absolute-form upper scheme", line("GET HTTP://t/ HTTP/1.1"))
    add(g, "absolute-form https", line("GET https://t/ HTTP/1.1"))
    add(g, "absolute-form ftp", line("GET ftp://t/ HTTP/1.1"))
    add(g, "absolute-form no path", line("GET http://t HTTP/1.1"))
    add(g, "absolute-form userinfo", line("GET http://u@t/ HTTP/1.1"))
    add(g, "absolute-form empty host", line("GET http:/// HTTP/1.1"))
    add(g, "absolute-form no Host", b"GET http://t/ HTTP/1.1\r\n\r\n")
    add(g, "authority-form GET", line("GET t:80 HTTP/1.1"))
    add(g, "CONNECT authority", line("CONNECT t:80 HTTP/1.1"))
    add(g, "long method 40", line("M" * 40 + " / HTTP/1.1"))
    add(g, "target 8000", line("GET /" + "a" * 8000 + " HTTP/1.1"))
    add(g, "target 9000", line("GET /" + "a" * 9000 + " HTTP/1.1"))

    # -- Host (RFC 9112 §3.2, RFC 9110 §7.2) ----------------------------------------------------------
    g = "host"
    def host(h, l="GET / HTTP/1.1"):
        return b(l) + b"\r\n" + b(h) + b"\r\n"
    add(g, "missing 1.1", host(""))
    add(g, "missing 1.0", host("", "GET / HTTP/1.0"))
    add(g, "duplicate same", host("Host: t\r\nHost: t\r\n"))
    add(g, "duplicate differing", host("Host: t\r\nHost: u\r\n"))
    add(g, "userinfo", host("Host: u@t\r\n"))
    add(g, "empty", host("Host: \r\n"))
    add(g, "port", host("Host: t:80\r\n"))
    add(g, "port empty", host("Host: t:\r\n"))
    add(g, "port letters", host("Host: t:ab\r\n"))
    add(g, "port huge", host("Host: t:99999999\r\n"))
    add(g, "ipv6", host("Host: [::1]:80\r\n"))
    add(g, "ipv6 unbracketed", host("Host: ::1\r\n"))
    add(g, "space inside", host("Host: t u\r\n"))
    add(g, "slash", host("Host: t/x\r\n"))
    add(g, "comma list", host("Host: t, u\r\n"))
    add(g, "underscore", host("Host: t_u\r\n"))
    add(g, "percent", host("Host: t%41\r\n"))
    add(g, "high byte", host("Host: t\xe9\r\n"))
    add(g, "backslash", host("Host: t\\u\r\n"))
    add(g, "folded", host("Host: t\r\n u\r\n"))
    add(g, "lower-case name", host("host: t\r\n"))

    # -- Expect (RFC 9110 §10.1.1) ----------------------------------------------------------------
    g = "expect"
    add(g, "100-continue, body at once", req(b"Expect: 100-continue\r\nContent-Length: 5\r\n", b"hello"))
    add(g, "100-Continue case", req(b"Expect: 100-Continue\r\nContent-Length: 5\r\n", b"hello"))
    add(g, "unknown expectation", req(b"Expect: foo\r\nContent-Length: 5\r\n", b"hello"))
    add(g, "100-continue, foo", req(b"Expect: 100-continue, foo\r\nContent-Length: 5\r\n", b"hello"))
    add(g, "100-continue on GET no body", req(b"Expect: 100-continue\r\n", line="GET / HTTP/1.1"))
    add(g, "100-continue HTTP/1.0", req(b"Expect: 100-continue\r\nContent-Length: 5\r\nConnection: keep-alive\r\n", b"hello", line="POST / HTTP/1.0"))
    add(g, "empty Expect", req(b"Expect: \r\nContent-Length: 5\r\n", b"hello"))
    add(g, "100-continue twice", req(b"Expect: 100-continue\r\nExpect: 100-continue\r\nContent-Length: 5\r\n", b"hello"))

    # -- long lines and counts --------------------------------------------------------------------------
    g = "long"
    add(g, "field value 7000", req(b"X: " + b"a" * 7000 + b"\r\n", line="GET / HTTP/1.1"))
    add(g, "field value 70000", req(b"X: " + b"a" * 70000 + b"\r\n", line="GET / HTTP/1.1"))
    add(g, "field name 1000", req(b"X" * 1000 + b": y\r\n", line="GET / HTTP/1.1"))
    add(g, "100 fields", req(b"".join(b"X%d: y\r\n" % i for i in range(100)), line="GET / HTTP/1.1"))
    add(g, "chunk ext 10000", chunked("5;" + "a" * 10000 + "\r\nhello\r\n0\r\n\r\n"))
    add(g, "many chunk exts", chunked("5" + ";a=b" * 2000 + "\r\nhello\r\n0\r\n\r\n"))

    # -- Connection --------------------------------------------------------------------------------------
    g = "conn"
    add(g, "close on first", req(b"Connection: close\r\n", line="GET / HTTP/1.1"))
    add(g, "keep-alive, close", req(b"Connection: keep-alive, close\r\n", line="GET / HTTP/1.1"))
    add(g, "CLOSE upper", req(b"Connection: CLOSE\r\n", line="GET / HTTP/1.1"))
    add(g, "1.0 no keep-alive", req(line="GET / HTTP/1.0"))
    add(g, "1.0 keep-alive", req(b"Connection: keep-alive\r\n", line="GET / HTTP/1.0"))
    add(g, "1.0 Keep-Alive, foo", req(b"Connection: foo, Keep-Alive\r\n", line="GET / HTTP/1.0"))

    # -- more: mixed and rarer forms ---------------------------------------------------------------
    g = "more"
    add(g, "h2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    add(g, "h2c upgrade", req(b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n", line="GET / HTTP/1.1"))
    add(g, "websocket upgrade on plain route", req(b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", line="GET / HTTP/1.1"))
    add(g, "1000 empty lines before", b"\r\n" * 1000 + b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    add(g, "trailer 70000 bytes", chunked("5\r\nhello\r\n0\r\nX: " + "a" * 70000 + "\r\n\r\n"))
    add(g, "200 trailer fields", chunked("5\r\nhello\r\n0\r\n" + "".join("X%d: y\r\n" % i for i in range(200)) + "\r\n"))
    add(g, "TE chunked + empty TE field", req(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: \r\n", CHUNKED_HELLO))
    add(g, "empty TE field + TE chunked", req(b"Transfer-Encoding: \r\nTransfer-Encoding: chunked\r\n", CHUNKED_HELLO))
    add(g, "CL 5 + empty CL field", req(b"Content-Length: 5\r\nContent-Length: \r\n", b"hello"))
    add(g, "CL 5 + CL 05", req(b"Content-Length: 5\r\nContent-Length: 05\r\n", b"hello"))
    add(g, "CL vertical tab after", cl("5\x0b"))
    add(g, "CL form feed before", cl("\x0c5"))
    add(g, "Expect 100-continue + chunked", req(b"Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n", CHUNKED_HELLO))
    add(g, "Expect 100-continue + CL 0", req(b"Expect: 100-continue\r\nContent-Length: 0\r\n"))
    add(g, "Expect 100-continue + CL over max", req(b"Expect: 100-continue\r\nContent-Length: 2000000\r\n"))
    add(g, "Connection close with body", req(b"Connection: close\r\nContent-Length: 5\r\n", b"hello"))
    add(g, "1.0 body no keep-alive", req(b"Content-Length: 5\r\n", b"hello", line="POST / HTTP/1.0"))
    add(g, "TRACE with body", cl("5").replace(b"POST", b"TRACE", 1))
    add(g, "HEAD chunked", te("chunked", line="HEAD / HTTP/1.1"))
    add(g, "DELETE chunked", te("chunked", line="DELETE / HTTP/1.1"))
    add(g, "absolute-form + invalid Host", b"GET http://t/ HTTP/1.1\r\nHost: a b\r\n\r\n")
    add(g, "absolute-form + two Hosts", b"GET http://t/ HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n")
    add(g, "absolute-form + empty Host", b"GET http://t/ HTTP/1.1\r\nHost: \r\n\r\n")
    add(g, "absolute-form bad port", line("GET http://t:ab/ HTTP/1.1"))
    add(g, "absolute-form unclosed ipv6", line("GET http://[::1/ HTTP/1.1"))
    add(g, "absolute-form query, no path", line("GET http://t?x HTTP/1.1"))
    add(g, "absolute-form port", line("GET http://t:80/ HTTP/1.1"))
    add(g, "1.0 two Hosts", b"GET / HTTP/1.0\r\nHost: t\r\nHost: u\r\nConnection: keep-alive\r\n\r\n")
    add(g, "1.0 invalid Host", b"GET / HTTP/1.0\r\nHost: a b\r\nConnection: keep-alive\r\n\r\n")
    add(g, "Host trailing dot", host("Host: t.\r\n"))
    add(g, "Host upper-case", host("Host: T\r\n"))
    add(g, "Host OWS", host("Host:  t \t\r\n"))
    add(g, "Host ipv6 zone", host("Host: [fe80::1%25eth0]\r\n"))
    add(g, "Host ipvfuture", host("Host: [v1.x]\r\n"))
    add(g, "chunk ext BWS around ;", chunked("5 ; a=b\r\nhello\r\n0\r\n\r\n"))
    add(g, "chunk ext BWS around =", chunked("5;a = b\r\nhello\r\n0\r\n\r\n"))
    add(g, "chunk ext tab BWS", chunked("5\t;\ta\t=\tb\r\nhello\r\n0\r\n\r\n"))
    add(g, "chunk ext = no value", chunked("5;a=\r\nhello\r\n0\r\n\r\n"))
    add(g, "chunk ext escaped quote", chunked('5;a="b\\"c"\r\nhello\r\n0\r\n\r\n'))
    add(g, "chunk ext two", chunked("5;a=b;c=d\r\nhello\r\n0\r\n\r\n"))
    add(g, "chunk ext slash in token", chunked("5;a=b/c\r\nhello\r\n0\r\n\r\n"))
    add(g, "chunk ext ;; ", chunked("5;;a\r\nhello\r\n0\r\n\r\n"))
    add(g, "last chunk with BWS ext", chunked("5\r\nhello\r\n0 ;a\r\n\r\n"))
    add(g, "trailer OWS value", chunked("5\r\nhello\r\n0\r\nX:\t y \t\r\n\r\n"))
    add(g, "trailer obs-text", chunked("5\r\nhello\r\n0\r\nX: \xe9\r\n\r\n"))
    add(g, "chunk data bare CR after", chunked("5\r\nhello\r0\r\n\r\n"))
    add(g, "chunk LF then CR after data", chunked("5\r\nhello\n\r0\r\n\r\n"))
    add(g, "empty value fields", req(b"X:\r\nY: \r\n", line="GET / HTTP/1.1"))
    add(g, "field name trailing tab", req(b"X\t: y\r\n", line="GET / HTTP/1.1"))
    add(g, "Connection with NUL", req(b"Connection: close\x00\r\n", line="GET / HTTP/1.1"))
    add(g, "Content-Length twice in list across fields", req(b"Content-Length: 5\r\nContent-Length: 5, 5\r\n", b"hello"))

    # -- percent-encoding in the target (RFC 3986 §2.1, RFC 9112 §3) ---------------------------------
    g = "pct"
    for t in ["/%zz", "/%", "/%4", "/%4g", "/a%2", "/%41", "/%2f", "/%00", "/%%41", "/?a=%zz",
              "/?a=%", "/?a=100%", "/a?%41", "/x%zz/y", "http://t/%zz", "http://t/?%zz", "/%e9",
              "/a<b", "/a\"b", "/a{b}", "/a|b", "/a\\b", "/a^b", "/a`b", "/a[b]"]:
        add(g, "target " + t, line("GET " + t + " HTTP/1.1"))

    # -- bounds on lines the head limits do not cover -------------------------------------------------
    g = "bound"
    add(g, "chunk ext 100000", chunked("5;" + "a" * 100000 + "\r\nhello\r\n0\r\n\r\n"))
    add(g, "chunk ext 2 MB", chunked("5;" + "a" * 2000000 + "\r\nhello\r\n0\r\n\r\n"))
    add(g, "last-chunk ext 100000", chunked("5\r\nhello\r\n0;" + "a" * 100000 + "\r\n\r\n"))
    add(g, "100000 empty lines before", b"\r\n" * 100000 + b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    add(g, "1000 zero-size chunk-ext lines", chunked("5\r\nhello\r\n" + "1;a\r\nx\r\n" * 1000 + "0\r\n\r\n"))
    add(g, "10000 one-byte chunks", chunked("1\r\nx\r\n" * 10000 + "0\r\n\r\n"))
    add(g, "1000 trailer fields of 10 bytes", chunked("5\r\nhello\r\n0\r\n" + "".join("X%04d: y\r\n" % i for i in range(1000)) + "\r\n"))

    # -- quoted chunk-ext values (RFC 9110 §5.6.4: qdtext includes HTAB, SP, obs-text) ----------------
    g = "qext"
    add(g, "quoted obs-text", chunked('5;a="\xe9\xff"\r\nhello\r\n0\r\n\r\n'))
    add(g, "quoted HTAB and SP", chunked('5;a="b\t c"\r\nhello\r\n0\r\n\r\n'))
    add(g, "quoted-pair HTAB", chunked('5;a="b\\\tc"\r\nhello\r\n0\r\n\r\n'))
    add(g, "quoted-pair obs-text", chunked('5;a="b\\\xe9"\r\nhello\r\n0\r\n\r\n'))
    add(g, "quoted empty", chunked('5;a=""\r\nhello\r\n0\r\n\r\n'))
    add(g, "quoted DEL", chunked('5;a="\x7f"\r\nhello\r\n0\r\n\r\n'))
    add(g, "quoted NUL", chunked('5;a="\x00"\r\nhello\r\n0\r\n\r\n'))
    add(g, "quoted-pair NUL", chunked('5;a="\\\x00"\r\nhello\r\n0\r\n\r\n'))
    add(g, "quote in token value", chunked('5;a=b"c\r\nhello\r\n0\r\n\r\n'))
    add(g, "quoted then junk", chunked('5;a="b"c\r\nhello\r\n0\r\n\r\n'))
    add(g, "quoted then BWS ;", chunked('5;a="b" ;c\r\nhello\r\n0\r\n\r\n'))
    add(g, "quoted name", chunked('5;"a"=b\r\nhello\r\n0\r\n\r\n'))
    return out
