"""Crafted upstream responses for respdiff.py.

Each case: name -> (method of the first request, response bytes, then) where `then` is
what the upstream does on that connection after writing the bytes:

* "keep"  - go on reading requests on the same connection (plain answers);
* "close" - close the connection;
* "hold"  - keep the connection open for HOLD seconds without reading, then close it
            (a close-delimited body on a connection the upstream meant to keep);
* ("late", extra) - wait LATE seconds, write `extra`, then go on as "keep"; the client
            waits 3 x LATE before its next request, so `extra` comes while the proxy holds
            the connection idle in its pool;
* ("race", extra) - the same, but the client sends its next request at once: `extra`
            then arrives after the proxy sent that request on the pooled connection, and
            no proxy can tell it from an answer (the upstream answered wrongly).

Answers that a proxy might take for the next request's own are the SMUG response below:
a client that ever receives "SMUGGLED" (or any body but the plain one for its path) was
desynchronised.
"""

SMUG = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Smuggled: 1\r\n\r\nSMUGGLED"
HOLD = 1.0
LATE = 0.15


def ok(fields, body=b"", status=b"200 OK", version=b"HTTP/1.1", eol=b"\r\n"):
    head = version + b" " + status + eol
    for f in fields:
        head += f + eol
    return head + eol + body


def chunked(body):
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


CASES = {}


def case(name, data, then="keep", method="GET"):
    assert name not in CASES, name
    CASES[name] = (method, data, then)


# --- Content-Length -----------------------------------------------------------------
case("cl_ok", ok([b"Content-Length: 5"], b"hello"))
case("cl_dup_equal", ok([b"Content-Length: 5", b"Content-Length: 5"], b"hello"))
case("cl_dup_diff", ok([b"Content-Length: 5", b"Content-Length: 6"], b"hello!" + SMUG))
case("cl_dup_diff_rev", ok([b"Content-Length: 6", b"Content-Length: 5"], b"hello!" + SMUG))
case("cl_list_same", ok([b"Content-Length: 5, 5"], b"hello"))
case("cl_list_diff", ok([b"Content-Length: 5, 6"], b"hello!" + SMUG))
case("cl_list_trailing_comma", ok([b"Content-Length: 5,"], b"hello"))
case("cl_plus", ok([b"Content-Length: +5"], b"hello" + SMUG))
case("cl_minus", ok([b"Content-Length: -5"], b"hello" + SMUG))
case("cl_leading_zeros", ok([b"Content-Length: 005"], b"hello"))
case("cl_ws_around", ok([b"Content-Length:   5  "], b"hello"))
case("cl_tab", ok([b"Content-Length:\t5"], b"hello"))
case("cl_inner_space", ok([b"Content-Length: 5 0"], b"hello" + SMUG))
case("cl_hex", ok([b"Content-Length: 0x5"], b"hello" + SMUG))
case("cl_empty", ok([b"Content-Length: "], b"hello" + SMUG))
case("cl_huge_overflow", ok([b"Content-Length: 99999999999999999999999"], b"hello"), "close")
case("cl_big_then_close", ok([b"Content-Length: 1000000000"], b"hello"), "close")
case("cl_extra_bytes", ok([b"Content-Length: 5"], b"hello" + SMUG))
case("cl_extra_bytes_late", ok([b"Content-Length: 5"], b"hello"), ("late", SMUG))
case("cl_extra_bytes_race", ok([b"Content-Length: 5"], b"hello"), ("race", SMUG))
case("cl_short_then_close", ok([b"Content-Length: 10"], b"hello"), "close")
case("cl_space_before_colon", ok([b"Content-Length : 5"], b"hello" + SMUG))
case("cl_underscore", ok([b"Content_Length: 5"], b"hello"), "close")

# --- Transfer-Encoding ------------------------------------------------------------------
case("te_chunked", ok([b"Transfer-Encoding: chunked"], chunked(b"hello")))
case("te_Chunked_case", ok([b"Transfer-Encoding: ChUnKeD"], chunked(b"hello")))
case("te_chunked_chunked", ok([b"Transfer-Encoding: chunked, chunked"], b"5\r\n0\r\n\r\n\r\n0\r\n\r\n" + SMUG))
case("te_two_fields", ok([b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked"], chunked(b"hello")))
case("te_gzip_chunked", ok([b"Transfer-Encoding: gzip, chunked"], chunked(b"hello")))
case("te_chunked_gzip", ok([b"Transfer-Encoding: chunked, gzip"], chunked(b"hello")), "close")
case("te_identity", ok([b"Transfer-Encoding: identity"], b"hello"), "close")
case("te_identity_cl", ok([b"Transfer-Encoding: identity", b"Content-Length: 5"], b"hello" + SMUG))
case("te_gzip_only", ok([b"Transfer-Encoding: gzip"], b"hello"), "close")
case("te_empty", ok([b"Transfer-Encoding: "], b"hello"), "close")
case("te_cl", ok([b"Transfer-Encoding: chunked", b"Content-Length: 5"], chunked(b"hello")))
case("cl_te", ok([b"Content-Length: 5", b"Transfer-Encoding: chunked"], chunked(b"hello")))
case("te_cl_smug", ok([b"Content-Length: 4", b"Transfer-Encoding: chunked"], b"0\r\n\r\n" + SMUG))
case("te_http10", ok([b"Transfer-Encoding: chunked"], chunked(b"hello"), version=b"HTTP/1.0"), "close")
case("te_space_before_colon", ok([b"Transfer-Encoding : chunked", b"Content-Length: 5"], b"hello"), "close")
case("te_vertical_tab", ok([b"Transfer-Encoding: \x0bchunked"], chunked(b"hello")), "close")

# --- chunked framing ---------------------------------------------------------------------
case("ch_ext", ok([b"Transfer-Encoding: chunked"], b"5;a=b\r\nhello\r\n0;c=\"d\"\r\n\r\n"))
case("ch_ext_bare", ok([b"Transfer-Encoding: chunked"], b"5;\r\nhello\r\n0\r\n\r\n" + SMUG))
case("ch_size_leading_zeros", ok([b"Transfer-Encoding: chunked"], b"0005\r\nhello\r\n0000\r\n\r\n"))
case("ch_size_trailing_ws", ok([b"Transfer-Encoding: chunked"], b"5 \r\nhello\r\n0\r\n\r\n" + SMUG))
case("ch_size_plus", ok([b"Transfer-Encoding: chunked"], b"+5\r\nhello\r\n0\r\n\r\n" + SMUG))
case("ch_size_0x", ok([b"Transfer-Encoding: chunked"], b"0x5\r\nhello\r\n0\r\n\r\n" + SMUG))
case("ch_size_overflow", ok([b"Transfer-Encoding: chunked"], b"10000000000000005\r\nhello\r\n0\r\n\r\n" + SMUG))
case("ch_bare_lf", ok([b"Transfer-Encoding: chunked"], b"5\nhello\n0\n\n" + SMUG))
case("ch_bare_cr", ok([b"Transfer-Encoding: chunked"], b"5\rhello\r\n0\r\n\r\n" + SMUG))
case("ch_data_too_long", ok([b"Transfer-Encoding: chunked"], b"5\r\nhello!!\r\n0\r\n\r\n" + SMUG))
case("ch_trailer", ok([b"Transfer-Encoding: chunked"], b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"))
case("ch_trailer_cl", ok([b"Transfer-Encoding: chunked"], b"5\r\nhello\r\n0\r\nContent-Length: 47\r\n\r\n" + SMUG))
case("ch_trailer_bad", ok([b"Transfer-Encoding: chunked"], b"5\r\nhello\r\n0\r\nno colon\r\n\r\n" + SMUG))
case("ch_no_last_crlf", ok([b"Transfer-Encoding: chunked"], b"5\r\nhello\r\n0\r\n" + SMUG))
case("ch_extra_bytes", ok([b"Transfer-Encoding: chunked"], chunked(b"hello") + SMUG))
case("ch_short_then_close", ok([b"Transfer-Encoding: chunked"], b"5\r\nhel"), "close")
case("ch_no_last_chunk_close", ok([b"Transfer-Encoding: chunked"], b"5\r\nhello\r\n"), "close")

# --- line endings, folding, field syntax -------------------------------------------------
case("lf_everywhere", ok([b"Content-Length: 5"], b"hello", eol=b"\n"))
case("lf_status_only", b"HTTP/1.1 200 OK\nContent-Length: 5\r\n\r\nhello")
case("cr_status", b"HTTP/1.1 200 OK\rContent-Length: 5\r\n\r\nhello" + SMUG)
case("cr_in_field", b"HTTP/1.1 200 OK\r\nX-A: a\rContent-Length: 47\r\nContent-Length: 5\r\n\r\nhello" + SMUG)
case("cr_end_head", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\rhello" + SMUG)
case("obs_fold", ok([b"X-A: a", b" b", b"Content-Length: 5"], b"hello"))
case("obs_fold_cl", ok([b"X-A: a", b" Content-Length: 47", b"Content-Length: 5"], b"hello" + SMUG))
case("obs_fold_first", ok([b" X-A: a", b"Content-Length: 5"], b"hello"))
case("nul_in_field", ok([b"X-A: a\x00b", b"Content-Length: 5"], b"hello"))
case("no_colon", ok([b"X-A a", b"Content-Length: 5"], b"hello"))
case("leading_empty_lines", b"\r\n\r\n" + ok([b"Content-Length: 5"], b"hello"))
case("garbage_before", b"XHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "close")
case("head_too_big", ok([b"X-Big: " + b"a" * 8000] * 10 + [b"Content-Length: 5"], b"hello"))

# --- status line ---------------------------------------------------------------------------
case("st_no_reason", ok([b"Content-Length: 5"], b"hello", status=b"200"))
case("st_no_reason_sp", ok([b"Content-Length: 5"], b"hello", status=b"200 "))
case("st_two_spaces", ok([b"Content-Length: 5"], b"hello", status=b" 200 OK"))
case("st_non_number", ok([b"Content-Length: 5"], b"hello", status=b"2x0 OK"), "close")
case("st_4_digits", ok([b"Content-Length: 5"], b"hello", status=b"2000 OK"), "close")
case("st_2_digits", ok([b"Content-Length: 5"], b"hello", status=b"20 OK"), "close")
case("st_099", ok([b"Content-Length: 5"], b"hello", status=b"099 Low"), "close")
case("st_600", ok([b"Content-Length: 5"], b"hello", status=b"600 High"))
case("st_999", ok([b"Content-Length: 5"], b"hello", status=b"999 High"))
case("st_http10", ok([b"Content-Length: 5"], b"hello", version=b"HTTP/1.0"), "close")
case("st_http10_keepalive", ok([b"Content-Length: 5", b"Connection: keep-alive"], b"hello", version=b"HTTP/1.0"))
case("st_http10_no_length", ok([], b"hello", version=b"HTTP/1.0"), "close")
case("st_http2", ok([b"Content-Length: 5"], b"hello", version=b"HTTP/2"), "close")
case("st_http12", ok([b"Content-Length: 5"], b"hello", version=b"HTTP/1.2"), "close")
case("st_http09", b"hello", "close")
case("st_lowercase", ok([b"Content-Length: 5"], b"hello", version=b"http/1.1"), "close")

# --- 1xx -------------------------------------------------------------------------------------
FINAL = ok([b"Content-Length: 5"], b"hello")
case("i100", b"HTTP/1.1 100 Continue\r\n\r\n" + FINAL)
case("i101_unasked", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" + SMUG)
case("i102", b"HTTP/1.1 102 Processing\r\n\r\n" + FINAL)
case("i103", b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" + FINAL)
case("i103_x50", b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" * 50 + FINAL)
case("i100_x2000", b"HTTP/1.1 100 Continue\r\n\r\n" * 2000 + FINAL)
case("i199", b"HTTP/1.1 199 Odd\r\n\r\n" + FINAL)
case("i1xx_with_cl_body", b"HTTP/1.1 103 Early Hints\r\nContent-Length: 5\r\n\r\nhello" + FINAL)
case("i1xx_chunked", b"HTTP/1.1 103 Early Hints\r\nTransfer-Encoding: chunked\r\n\r\n" + FINAL)
case("i103_then_close", b"HTTP/1.1 103 Early Hints\r\n\r\n", "close")

# --- no-body statuses, HEAD -------------------------------------------------------------------
case("s204_cl_body", ok([b"Content-Length: 47"], SMUG, status=b"204 No Content"))
case("s204_te_body", ok([b"Transfer-Encoding: chunked"], chunked(b"hello") + SMUG, status=b"204 No Content"))
case("s204_body_late", ok([b"Content-Length: 47"], b"", status=b"204 No Content"), ("late", SMUG))
case("s304_cl_body", ok([b"Content-Length: 47"], SMUG, status=b"304 Not Modified"))
case("s205_cl", ok([b"Content-Length: 5"], b"hello", status=b"205 Reset Content"))
case("head_cl_body", ok([b"Content-Length: 47"], SMUG), method="HEAD")
case("head_te_body", ok([b"Transfer-Encoding: chunked"], chunked(b"hello") + SMUG), method="HEAD")
case("head_body_late", ok([b"Content-Length: 47"]), ("late", SMUG), method="HEAD")
case("head_no_length", ok([]), method="HEAD")
case("head_bad_cl", ok([b"Content-Length: 5, 6"]), method="HEAD")

# --- persistence ---------------------------------------------------------------------------------
case("close_delimited_keepalive", ok([], b"hello" + SMUG), "hold")
case("close_delimited_ka_field", ok([b"Connection: keep-alive"], b"hello" + SMUG), "hold")
case("conn_close_then_more", ok([b"Connection: close", b"Content-Length: 5"], b"hello" + SMUG))
case("conn_close_list", ok([b"Connection: keep-alive, close", b"Content-Length: 5"], b"hello" + SMUG))
