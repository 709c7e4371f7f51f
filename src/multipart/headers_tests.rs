//! The header side from literals: Content-Type boundaries and part header blocks.

use super::headers::parse_part_head;
use super::*;

#[test]
fn boundaries_from_content_types() {
    let seventy = "b".repeat(70);
    let seventy_one = "b".repeat(71);
    let table: Vec<(String, Result<&str, Error>)> = vec![
        ("multipart/form-data; boundary=AaB03x".into(), Ok("AaB03x")),
        ("multipart/form-data;boundary=AaB03x".into(), Ok("AaB03x")),
        ("MULTIPART/Form-Data; BOUNDARY=AaB03x".into(), Ok("AaB03x")),
        ("multipart/form-data; boundary=AaB03x;".into(), Ok("AaB03x")),
        (
            "multipart/form-data; charset=utf-8; boundary=\"simple boundary\"".into(),
            Ok("simple boundary"),
        ),
        (
            "multipart/form-data; boundary=------------------------d74496d66958873e".into(),
            Ok("------------------------d74496d66958873e"),
        ),
        (
            "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW".into(),
            Ok("----WebKitFormBoundary7MA4YWxkTrZu0gW"),
        ),
        (
            "multipart/form-data; boundary=\"'()+_,-./:=?\"".into(),
            Ok("'()+_,-./:=?"),
        ),
        (
            format!("multipart/form-data; boundary={seventy}"),
            Ok(&seventy),
        ),
        (
            format!("multipart/form-data; boundary={seventy_one}"),
            Err(Error::BadBoundary),
        ),
        (
            "multipart/form-data; boundary=\"\"".into(),
            Err(Error::BadBoundary),
        ),
        (
            "multipart/form-data; boundary=\"ends in a space \"".into(),
            Err(Error::BadBoundary),
        ),
        (
            "multipart/form-data; boundary=\"a\\\"b\"".into(),
            Err(Error::BadBoundary),
        ),
        (
            "multipart/form-data; boundary=\"caf\u{e9}\"".into(),
            Err(Error::BadBoundary),
        ),
        (
            "multipart/form-data; boundary=a*b".into(),
            Err(Error::BadBoundary),
        ),
        ("multipart/form-data".into(), Err(Error::MissingBoundary)),
        (
            "multipart/form-data; charset=utf-8".into(),
            Err(Error::MissingBoundary),
        ),
        (
            "multipart/form-data; boundary=".into(),
            Err(Error::BadContentType),
        ),
        (
            "multipart/form-data; boundary=a:b".into(),
            Err(Error::BadContentType),
        ),
        (
            "multipart/form-data; boundary=a b".into(),
            Err(Error::BadContentType),
        ),
        (
            "multipart/form-data; boundary = a".into(),
            Err(Error::BadContentType),
        ),
        (
            "multipart/form-data; boundary=\"unterminated".into(),
            Err(Error::BadContentType),
        ),
        (
            "multipart/form-data; boundary=a; boundary=b".into(),
            Err(Error::BadContentType),
        ),
        (
            "multipart/form-data; boundary=\"a\rb\"".into(),
            Err(Error::BadContentType),
        ),
        (
            "multipart/mixed; boundary=a".into(),
            Err(Error::NotMultipart),
        ),
        (
            "application/x-www-form-urlencoded".into(),
            Err(Error::NotMultipart),
        ),
        (
            "text/plain; boundary=\"unterminated".into(),
            Err(Error::NotMultipart),
        ),
        ("".into(), Err(Error::NotMultipart)),
    ];
    for (ct, want) in table {
        assert_eq!(boundary(&ct).as_deref(), want.as_deref(), "{ct:?}");
    }
}

#[test]
fn part_headers() {
    let file = |n: &str, f: &str, ct: Option<&str>| Part {
        name: n.into(),
        filename: Some(f.into()),
        content_type: ct.map(Into::into),
    };
    let field = |n: &str| Part {
        name: n.into(),
        filename: None,
        content_type: None,
    };
    let table: Vec<(&[u8], Result<Part, Error>)> = vec![
        (b"Content-Disposition: form-data; name=\"a\"\r\n", Ok(field("a"))),
        (b"content-disposition: FORM-DATA; NAME=a\r\n", Ok(field("a"))),
        (b"Content-Disposition:form-data ;name=a ; \r\n", Ok(field("a"))),
        (
            b"Content-Disposition: form-data; name=\"files\"; filename=\"file1.txt\"\r\nContent-Type: text/plain\r\n",
            Ok(file("files", "file1.txt", Some("text/plain"))),
        ),
        // quoted-pair: \" and \\ are escapes; other backslashes stay (old browsers' paths)
        (
            b"Content-Disposition: form-data; name=\"a\\\"b\"; filename=\"x\\\\y.txt\"\r\n",
            Ok(file("a\"b", "x\\y.txt", None)),
        ),
        (
            b"Content-Disposition: form-data; name=\"f\"; filename=\"C:\\dir\\a.txt\"\r\n",
            Ok(file("f", "C:\\dir\\a.txt", None)),
        ),
        // reported as sent: never a path
        (
            b"Content-Disposition: form-data; name=\"f\"; filename=\"../../etc/passwd\"\r\n",
            Ok(file("f", "../../etc/passwd", None)),
        ),
        // browsers percent-encode '"' (RFC 7578 §2, HTML): reported as sent
        (
            b"Content-Disposition: form-data; name=\"f\"; filename=\"%22q%22.txt\"\r\n",
            Ok(file("f", "%22q%22.txt", None)),
        ),
        (b"Content-Disposition: form-data; name=\"caf\xc3\xa9\"\r\n", Ok(field("caf\u{e9}"))),
        (b"Content-Disposition: form-data; name=\"a\tb\"\r\n", Ok(field("a\tb"))),
        // filename* must not be used in forms (RFC 7578 §4.2): ignored
        (b"Content-Disposition: form-data; name=a; filename*=UTF-8''x.txt\r\n", Ok(field("a"))),
        (
            b"X-Other: 1\r\nContent-Disposition: form-data; name=a\r\nContent-Transfer-Encoding: 8bit\r\n",
            Ok(field("a")),
        ),
        (b"", Err(Error::MissingDisposition)),
        (b"Content-Type: text/plain\r\n", Err(Error::MissingDisposition)),
        (b"Content-Disposition: attachment; name=a\r\n", Err(Error::NotFormData)),
        (b"Content-Disposition: \r\n", Err(Error::NotFormData)),
        (b"Content-Disposition: form-data\r\n", Err(Error::MissingName)),
        (b"Content-Disposition: form-data; filename=\"a.txt\"\r\n", Err(Error::MissingName)),
        (b"Content-Disposition: form-data; name=\"a\r\n", Err(Error::BadDisposition)),
        (b"Content-Disposition: form-data; name=a; NAME=b\r\n", Err(Error::BadDisposition)),
        (b"Content-Disposition: form-data; name = a\r\n", Err(Error::BadDisposition)),
        (b"Content-Disposition: form-data; name=a b\r\n", Err(Error::BadDisposition)),
        (
            b"Content-Disposition: form-data; name=a\r\ncontent-disposition: form-data; name=b\r\n",
            Err(Error::DuplicatePartHeader),
        ),
        (
            b"Content-Disposition: form-data; name=a\r\nContent-Type: a\r\ncontent-type: b\r\n",
            Err(Error::DuplicatePartHeader),
        ),
        (b"Content-Disposition: form-data;\r\n name=a\r\n", Err(Error::FoldedPartHeader)),
        (b"Content-Disposition form-data\r\n", Err(Error::BadPartHeader)),
        (b"Content-Disposition : form-data; name=a\r\n", Err(Error::BadPartHeader)),
        (b": form-data; name=a\r\n", Err(Error::BadPartHeader)),
        (b"Content-Disposition: form-data; name=\"a\x01\"\r\n", Err(Error::BadPartHeader)),
    ];
    for (block, want) in table {
        assert_eq!(
            parse_part_head(block),
            want,
            "{:?}",
            String::from_utf8_lossy(block)
        );
    }
}
