//! The multipart parser from byte literals: RFC examples, every split point of a body,
//! malformed bodies and each limit.

use super::*;

use super::fuzz::{Out, record};

/// Feeds `pieces` in order; the events, or the first error.
fn run(boundary: &str, limits: Limits, pieces: &[&[u8]]) -> Result<Vec<Out>, Error> {
    let mut p = Parser::new(boundary, limits)?;
    let mut out = Vec::new();
    for piece in pieces {
        p.feed(piece, &mut |ev| {
            record(&mut out, ev);
            Ok::<(), Error>(())
        })?;
    }
    p.finish()?;
    Ok(out)
}

/// A body and what it parses to.
type Case<'a> = (&'a [u8], Result<Vec<Out>, Error>);

fn whole(boundary: &str, limits: Limits, body: &[u8]) -> Result<Vec<Out>, Error> {
    run(boundary, limits, &[body])
}

/// The body cut at every point (and fed byte by byte) parses as the whole does.
fn same_at_every_split(boundary: &str, limits: Limits, body: &[u8]) -> Result<Vec<Out>, Error> {
    let expected = whole(boundary, limits, body);
    for i in 0..=body.len() {
        let got = run(boundary, limits, &[&body[..i], &body[i..]]);
        assert_eq!(
            got,
            expected,
            "split at {i} of {:?}",
            String::from_utf8_lossy(body)
        );
    }
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    assert_eq!(run(boundary, limits, &bytes), expected, "byte by byte");
    expected
}

fn part(name: &str, filename: Option<&str>, content_type: Option<&str>) -> Out {
    Out::Part(Part {
        name: name.into(),
        filename: filename.map(Into::into),
        content_type: content_type.map(Into::into),
    })
}

fn data(d: &[u8]) -> Out {
    Out::Data(d.to_vec())
}

/// RFC 7578 §4.2 and HTML 4.01 §17.13.4's example: a field and a file.
const HTML_EXAMPLE: &[u8] = b"--AaB03x\r\n\
Content-Disposition: form-data; name=\"submit-name\"\r\n\
\r\n\
Larry\r\n\
--AaB03x\r\n\
Content-Disposition: form-data; name=\"files\"; filename=\"file1.txt\"\r\n\
Content-Type: text/plain\r\n\
\r\n\
... contents of file1.txt ...\r\n\
--AaB03x--\r\n";

/// RFC 7578 §4.5's example (lower-case names, a charset, a transfer encoding to ignore),
/// closed.
const RFC7578_EXAMPLE: &[u8] = b"--AaB03x\r\n\
content-disposition: form-data; name=\"field1\"\r\n\
content-type: text/plain;charset=UTF-8\r\n\
content-transfer-encoding: quoted-printable\r\n\
\r\n\
Joe owes =E2=82=AC100.\r\n\
--AaB03x--";

/// RFC 2046 §5.1.1's example, with form-data dispositions: a quoted boundary with a space,
/// a preamble, padding, a part body ending in a line break, an epilogue.
const RFC2046_EXAMPLE: &[u8] = b"This is the preamble.  It is to be ignored, though it\r\n\
is a handy place for composition agents to include an\r\n\
explanatory note to non-MIME conformant readers.\r\n\
\r\n\
--simple boundary\r\n\
Content-Disposition: form-data; name=\"implicit\"\r\n\
\r\n\
This is implicitly typed plain US-ASCII text.\r\n\
It does NOT end with a linebreak.\r\n\
--simple boundary \t\r\n\
Content-Disposition: form-data; name=\"explicit\"\r\n\
Content-type: text/plain; charset=us-ascii\r\n\
\r\n\
This is explicitly typed plain US-ASCII text.\r\n\
It DOES end with a linebreak.\r\n\
\r\n\
--simple boundary--\r\n\
\r\n\
This is the epilogue.  It is also to be ignored.\r\n";

#[test]
fn rfc_examples_parse_the_same_at_every_split_point() {
    let l = Limits::default();
    assert_eq!(
        same_at_every_split("AaB03x", l, HTML_EXAMPLE),
        Ok(vec![
            part("submit-name", None, None),
            data(b"Larry"),
            Out::End,
            part("files", Some("file1.txt"), Some("text/plain")),
            data(b"... contents of file1.txt ..."),
            Out::End,
        ])
    );
    assert_eq!(
        same_at_every_split("AaB03x", l, RFC7578_EXAMPLE),
        Ok(vec![
            part("field1", None, Some("text/plain;charset=UTF-8")),
            data(b"Joe owes =E2=82=AC100."),
            Out::End,
        ])
    );
    assert_eq!(
        same_at_every_split("simple boundary", l, RFC2046_EXAMPLE),
        Ok(vec![
            part("implicit", None, None),
            data(b"This is implicitly typed plain US-ASCII text.\r\nIt does NOT end with a linebreak."),
            Out::End,
            part("explicit", None, Some("text/plain; charset=us-ascii")),
            data(b"This is explicitly typed plain US-ASCII text.\r\nIt DOES end with a linebreak.\r\n"),
            Out::End,
        ])
    );
    let form = parse_bytes("multipart/form-data; boundary=AaB03x", HTML_EXAMPLE, l).unwrap();
    assert_eq!(form.field("submit-name"), Some("Larry"));
    let f = form.file("files").unwrap();
    assert_eq!(
        (f.filename.as_str(), f.content_type.as_deref()),
        ("file1.txt", Some("text/plain"))
    );
    assert_eq!(f.data, b"... contents of file1.txt ...");
}

/// A body with one file holding `content`.
fn one_file(content: &[u8]) -> Vec<u8> {
    let mut b =
        b"--AaB03x\r\nContent-Disposition: form-data; name=f; filename=a.bin\r\n\r\n".to_vec();
    b.extend_from_slice(content);
    b.extend_from_slice(b"\r\n--AaB03x--\r\n");
    b
}

#[test]
fn bytes_that_almost_make_a_boundary_are_data_at_every_split_point() {
    let contents: &[&[u8]] = &[
        b"",
        b"\r",
        b"\n",
        b"\r\n",
        b"\r\r",
        b"\r\n\r\n",
        b"\r\n-",
        b"\r\n--",
        b"\r\n--A",
        b"\r\n--AaB03",
        b"\r\r\n--AaB03",
        b"\r\n--AaB03\r\n--AaB0",
        b"--AaB03x",     // no CRLF before it
        b"x--AaB03x--",  // not at a line start
        b"\n--AaB03x\n", // LF only is not a delimiter
        b"\r\n-\r\n--\r\n--A\r",
        b"\x00\xff binary \r\n\x00",
    ];
    for c in contents {
        let got = same_at_every_split("AaB03x", Limits::default(), &one_file(c));
        let mut want = vec![part("f", Some("a.bin"), None)];
        if !c.is_empty() {
            want.push(data(c));
        }
        want.push(Out::End);
        assert_eq!(got, Ok(want), "content {:?}", String::from_utf8_lossy(c));
    }
}

#[test]
fn preamble_padding_epilogue_and_empty_forms() {
    let table: Vec<Case> = vec![
        // the preamble may hold the boundary anywhere but at a line start
        (
            b"x--AaB03x\r\n--AaB03\r\n\r\n--AaB03x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--AaB03x--",
            Ok(vec![part("a", None, None), data(b"1"), Out::End]),
        ),
        // the body may open with a CRLF before the first boundary
        (
            b"\r\n--AaB03x\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n--AaB03x--",
            Ok(vec![part("a", None, None), Out::End]),
        ),
        // transport padding after delimiters, junk in the epilogue
        (
            b"--AaB03x \t \r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--AaB03x--  \r\n--AaB03x\r\njunk",
            Ok(vec![part("a", None, None), data(b"1"), Out::End]),
        ),
        (b"--AaB03x--", Ok(vec![])),
        (b"--AaB03x--\r\n", Ok(vec![])),
        // an empty file input: filename="" is a field (as in Go)
        (
            b"--AaB03x\r\nContent-Disposition: form-data; name=f; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n--AaB03x--",
            Ok(vec![
                part("f", Some(""), Some("application/octet-stream")),
                Out::End,
            ]),
        ),
    ];
    for (body, want) in table {
        assert_eq!(
            same_at_every_split("AaB03x", Limits::default(), body),
            want,
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn malformed_bodies_are_refused_with_what_is_wrong_at_every_split_point() {
    let cd = "Content-Disposition: form-data; name=a";
    let table: Vec<(String, Error)> = vec![
        (String::new(), Error::NoBoundaryLine),
        ("no boundary here\r\n".into(), Error::NoBoundaryLine),
        ("--AaB03".into(), Error::NoBoundaryLine),
        ("--AaB03x".into(), Error::Truncated),
        ("--AaB03x\r\n".into(), Error::Truncated),
        (format!("--AaB03x\r\n{cd}\r\n"), Error::Truncated),
        (format!("--AaB03x\r\n{cd}\r\n\r\nvalue"), Error::Truncated),
        (
            format!("--AaB03x\r\n{cd}\r\n\r\nvalue\r\n--AaB03x"),
            Error::Truncated,
        ),
        (
            format!("--AaB03x\r\n{cd}\r\n\r\nvalue\r\n--AaB03x-"),
            Error::Truncated,
        ),
        // the boundary inside a part (RFC 2046 §5.1.1 forbids it)
        (
            format!("--AaB03x\r\n{cd}\r\n\r\nv\r\n--AaB03xy\r\n"),
            Error::TextAfterBoundary,
        ),
        ("--AaB03xy\r\n".into(), Error::TextAfterBoundary),
        ("--AaB03x-x".into(), Error::TextAfterBoundary),
        ("--AaB03x \tx".into(), Error::TextAfterBoundary),
        ("--AaB03x\rx".into(), Error::TextAfterBoundary),
        // LF-only line ends
        (
            format!("--AaB03x\n{cd}\n\nv\n--AaB03x--"),
            Error::TextAfterBoundary,
        ),
        (
            format!("--AaB03x\r\n{cd}\n\r\nv\r\n--AaB03x--"),
            Error::BadPartHeader,
        ),
        (
            format!("--AaB03x\r\n{cd}\r\n\nv\r\n--AaB03x--"),
            Error::BadPartHeader,
        ),
        (
            format!("--AaB03x\r\n{cd}\rX\r\n\r\nv\r\n--AaB03x--"),
            Error::BadPartHeader,
        ),
        (
            "--AaB03x\r\n\r\nv\r\n--AaB03x--".into(),
            Error::MissingDisposition,
        ),
        (
            "--AaB03x\r\nContent-Disposition: form-data\r\n\r\n\r\n--AaB03x--".into(),
            Error::MissingName,
        ),
        (
            format!("--AaB03x\r\n{cd}\r\n x\r\n\r\n\r\n--AaB03x--"),
            Error::FoldedPartHeader,
        ),
    ];
    for (body, want) in table {
        assert_eq!(
            same_at_every_split("AaB03x", Limits::default(), body.as_bytes()),
            Err(want),
            "{body:?}"
        );
    }
}

#[test]
fn a_parser_error_is_repeated_by_every_later_call() {
    let mut p = Parser::new("b", Limits::default()).unwrap();
    let mut on = |_: Event<'_>| Ok::<(), Error>(());
    assert_eq!(p.feed(b"--by", &mut on), Err(Error::TextAfterBoundary));
    assert_eq!(p.feed(b"\r\n", &mut on), Err(Error::TextAfterBoundary));
    assert_eq!(p.finish(), Err(Error::TextAfterBoundary));
    assert!(!p.is_done());
}

#[test]
fn bad_boundaries_are_refused_by_the_parser() {
    for b in ["", "a\r\nb", "a\nb", &"x".repeat(71)] {
        assert_eq!(
            Parser::new(b, Limits::default()).unwrap_err(),
            Error::BadBoundary,
            "{b:?}"
        );
    }
}

/// Two fields (`a`="12345", `b`="678") and a 10-byte file: 3 parts.
fn limits_body() -> Vec<u8> {
    b"--B\r\nContent-Disposition: form-data; name=a\r\n\r\n12345\r\n\
--B\r\nContent-Disposition: form-data; name=b\r\n\r\n678\r\n\
--B\r\nContent-Disposition: form-data; name=f; filename=f.bin\r\n\r\n0123456789\r\n\
--B--\r\n"
        .to_vec()
}

#[test]
fn each_limit_holds_at_its_value_and_refuses_one_past_it_naming_itself() {
    let body = limits_body();
    let head = "Content-Disposition: form-data; name=f; filename=f.bin\r\n\r\n".len();
    let d = Limits::default();
    let table: Vec<(Limits, Limits, Limit)> = vec![
        (
            Limits { max_parts: 3, ..d },
            Limits { max_parts: 2, ..d },
            Limit::Parts,
        ),
        (
            Limits {
                max_part_header_bytes: head,
                ..d
            },
            Limits {
                max_part_header_bytes: head - 1,
                ..d
            },
            Limit::PartHeaderBytes,
        ),
        (
            Limits {
                max_field_bytes: 5,
                ..d
            },
            Limits {
                max_field_bytes: 4,
                ..d
            },
            Limit::FieldBytes,
        ),
        (
            Limits {
                max_fields_bytes: 8,
                ..d
            },
            Limits {
                max_fields_bytes: 7,
                ..d
            },
            Limit::FieldsBytes,
        ),
        // the file is not held to the field limits, nor the fields to the file's
        (
            Limits {
                max_file_bytes: 10,
                max_field_bytes: 5,
                max_fields_bytes: 8,
                ..d
            },
            Limits {
                max_file_bytes: 9,
                ..d
            },
            Limit::FileBytes,
        ),
        (
            Limits {
                max_total_bytes: body.len() as u64,
                ..d
            },
            Limits {
                max_total_bytes: body.len() as u64 - 1,
                ..d
            },
            Limit::TotalBytes,
        ),
    ];
    for (at, past, limit) in table {
        let ok = same_at_every_split("B", at, &body);
        assert!(ok.is_ok(), "{limit:?} at its value: {ok:?}");
        let err = same_at_every_split("B", past, &body).unwrap_err();
        let max = match limit {
            Limit::Parts => past.max_parts,
            Limit::PartHeaderBytes => past.max_part_header_bytes as u64,
            Limit::FieldBytes => past.max_field_bytes,
            Limit::FieldsBytes => past.max_fields_bytes,
            Limit::FileBytes => past.max_file_bytes,
            Limit::TotalBytes => past.max_total_bytes,
        };
        assert_eq!(err, Error::TooLarge { limit, max });
        assert_eq!(err.status(), 413);
        let text = err.to_string();
        assert!(
            text.contains(limit.field()) && text.contains(&format!("({max})")),
            "{text}"
        );
    }
}

/// Feeds `pieces` until the end or the parser's first error: the events meanwhile (data
/// merged) and that error.
fn run_to_error(boundary: &str, limits: Limits, pieces: &[&[u8]]) -> (Vec<Out>, Result<(), Error>) {
    let mut p = Parser::new(boundary, limits).unwrap();
    let mut out = Vec::new();
    for piece in pieces {
        let r = p.feed(piece, &mut |ev| {
            record(&mut out, ev);
            Ok::<(), Error>(())
        });
        if let Err(e) = r {
            return (out, Err(e));
        }
    }
    (out, p.finish())
}

// Found writing the `multipart` fuzz harness (its seeds failed): a piece bringing bytes
// past two limits was refused naming the limit the piece's last byte passed, so whole and
// byte by byte disagreed.
#[test]
fn the_limit_the_earliest_byte_passes_is_named_however_the_body_is_cut() {
    // `b`'s 11th byte passes the fields' 30 bytes; its 21st would pass its own 20.
    let body = format!(
        "--B\r\nContent-Disposition: form-data; name=a\r\n\r\n{}\r\n\
         --B\r\nContent-Disposition: form-data; name=b\r\n\r\n{}\r\n--B--\r\n",
        "x".repeat(20),
        "y".repeat(21)
    );
    let limits = Limits {
        max_field_bytes: 20,
        max_fields_bytes: 30,
        ..Limits::default()
    };
    let want = Error::TooLarge {
        limit: Limit::FieldsBytes,
        max: 30,
    };
    assert_eq!(same_at_every_split("B", limits, body.as_bytes()), Err(want));
    // At one byte both pass: the field's own limit is named.
    let limits = Limits {
        max_field_bytes: 10,
        max_fields_bytes: 30,
        ..Limits::default()
    };
    let want = Error::TooLarge {
        limit: Limit::FieldBytes,
        max: 10,
    };
    assert_eq!(same_at_every_split("B", limits, body.as_bytes()), Err(want));
}

// Found writing the `multipart` fuzz harness (its seeds failed): a piece that took the
// body past `max_total_bytes` was refused before any of its bytes were read, so whole and
// byte by byte disagreed on what the body held before the limit and on the error.
#[test]
fn the_total_limit_refuses_the_byte_past_it_however_the_body_is_cut() {
    let form = b"--B\r\nContent-Disposition: form-data; name=a\r\n\r\nhello\r\n--B--\r\n";
    let limits = Limits {
        max_total_bytes: form.len() as u64 + 10,
        ..Limits::default()
    };
    let too_large = Err(Error::TooLarge {
        limit: Limit::TotalBytes,
        max: limits.max_total_bytes,
    });
    // A whole form, then an epilogue past the limit: the form is read, then refused.
    let body = [&form[..], &[b'e'; 20]].concat();
    let whole = run_to_error("B", limits, &[&body]);
    assert_eq!(
        whole,
        (
            vec![part("a", None, None), data(b"hello"), Out::End],
            too_large
        )
    );
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    assert_eq!(run_to_error("B", limits, &bytes), whole, "byte by byte");
    // A malformed part before the limit is the answer, in one piece or many.
    let body = [&b"--B\r\nno colon\r\n\r\n"[..], &[b'z'; 100]].concat();
    let limits = Limits {
        max_total_bytes: 50,
        ..Limits::default()
    };
    assert_eq!(
        same_at_every_split("B", limits, &body),
        Err(Error::BadPartHeader)
    );
}

#[test]
fn errors_map_to_statuses_and_name_the_problem() {
    let table = [
        (Error::NotMultipart, 415, "multipart/form-data"),
        (Error::MissingBoundary, 400, "boundary"),
        (Error::BadBoundary, 400, "1-70"),
        (Error::Truncated, 400, "closing boundary"),
        (Error::NotBuffered, 413, "max_body_bytes"),
        (
            Error::TooLarge {
                limit: Limit::FileBytes,
                max: 9,
            },
            413,
            "a file is larger than max_file_bytes (9)",
        ),
    ];
    for (e, status, words) in table {
        let r = Response::from(e);
        assert_eq!(r.status(), status, "{e:?}");
        let body = String::from_utf8_lossy(r.body_bytes()).into_owned();
        assert!(
            body.contains(words) && body.ends_with('\n'),
            "{e:?}: {body}"
        );
    }
}

#[test]
fn parse_bytes_keeps_fields_and_files_in_order_and_refuses_non_utf8_fields() {
    let ct = "multipart/form-data; boundary=B";
    let form = parse_bytes(ct, &limits_body(), Limits::default()).unwrap();
    let names: Vec<_> = form
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.value.as_str()))
        .collect();
    assert_eq!(names, [("a", "12345"), ("b", "678")]);
    assert_eq!(form.files.len(), 1);
    assert_eq!(form.files[0].data, b"0123456789");
    let bad = b"--B\r\nContent-Disposition: form-data; name=a\r\n\r\n\xff\r\n--B--";
    assert_eq!(
        parse_bytes(ct, bad, Limits::default()),
        Err(Error::FieldNotUtf8)
    );
    assert_eq!(
        parse_bytes("text/plain", bad, Limits::default()),
        Err(Error::NotMultipart)
    );
}

#[test]
fn every_pair_of_split_points_parses_the_same() {
    let body = HTML_EXAMPLE;
    let expected = whole("AaB03x", Limits::default(), body);
    for i in 0..=body.len() {
        for j in i..=body.len() {
            let got = run(
                "AaB03x",
                Limits::default(),
                &[&body[..i], &body[i..j], &body[j..]],
            );
            assert_eq!(got, expected, "split at {i} and {j}");
        }
    }
}

#[test]
fn a_part_header_being_read_holds_no_more_than_its_limit() {
    // 4 999 bytes of an unfinished header block under a 5 000-byte limit: the buffer
    // used to double to 8 192 (the memory budget was charged that much, `held_bytes`).
    let limits = Limits {
        max_part_header_bytes: 5000,
        ..Limits::default()
    };
    let mut body = b"--B\r\nContent-Disposition: form-data; name=a\r\nX-Pad: ".to_vec();
    body.resize(5 + 4999, b'p');
    for pieces in [vec![&body[..]], body.chunks(1).collect::<Vec<_>>()] {
        let mut p = Parser::new("B", limits).unwrap();
        for piece in pieces {
            p.feed::<Error>(piece, &mut |_| Ok(())).unwrap();
        }
        assert!(
            p.held_bytes() <= 5001,
            "held {} bytes for a 4 999-byte header block",
            p.held_bytes()
        );
    }
}

#[test]
fn an_unlimited_part_header_size_is_taken_as_such() {
    // `usize::MAX` as "no limit": the buffer's cap (the limit + 1) must not overflow.
    let limits = Limits {
        max_part_header_bytes: usize::MAX,
        ..Limits::default()
    };
    let form = b"--B\r\nContent-Disposition: form-data; name=a\r\n\r\nhello\r\n--B--\r\n";
    assert_eq!(
        same_at_every_split("B", limits, form),
        Ok(vec![part("a", None, None), data(b"hello"), Out::End])
    );
}
