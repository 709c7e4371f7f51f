//! What an embedder starts a server with: `Server::from_listener` serving a socket the
//! caller bound, and `Server::bind`'s typed error (a config error names its field; a
//! busy port is an I/O error naming the address).

mod support;

use std::net::TcpListener;

use h1server::{BindError, Config, Request, Response, Server};
use support::*;

fn hello(req: &mut Request) -> Response {
    Response::text(format!("hello from {}\n", req.path()))
}

#[test]
fn from_listener_serves_a_socket_the_caller_bound() {
    // A blocking std listener, as socket activation or a test would hand over.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let bound = listener.local_addr().unwrap();
    let server = Server::from_listener(listener, test_config()).unwrap();
    assert_eq!(server.local_addr(), bound);
    let srv = TestServer::with_server(server, hello);
    assert_eq!(srv.handle().local_addr(), bound);

    let mut r = Reader::new(connect(bound));
    for path in ["/a", "/b"] {
        r.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let resp = r.read_response();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.text(), format!("hello from {path}\n"));
    }
    srv.stop().unwrap();
}

#[test]
fn from_listener_validates_the_config_and_ignores_its_addr() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let bad = Config {
        max_headers: 0,
        ..test_config()
    };
    match Server::from_listener(listener, bad) {
        Err(BindError::Config(e)) => assert_eq!(e.source, "max_headers"),
        other => panic!("expected a config error, got {:?}", other.err()),
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let bound = listener.local_addr().unwrap();
    let elsewhere = Config {
        addr: "127.0.0.1:1".parse().unwrap(),
        ..test_config()
    };
    let server = Server::from_listener(listener, elsewhere).unwrap();
    assert_eq!(server.local_addr(), bound);
}

#[test]
fn bind_names_the_bad_field_in_a_typed_config_error() {
    let cfg = Config {
        workers: 0,
        ..test_config()
    };
    let err = Server::bind(cfg).err().expect("workers = 0 is refused");
    let BindError::Config(ref e) = err else {
        panic!("expected a config error, got {err:?}");
    };
    assert_eq!((e.source.as_str(), e.value.as_str()), ("workers", "0"));
    assert_eq!(err.to_string(), e.to_string());
    let source = std::error::Error::source(&err).expect("the ConfigError is the source");
    assert!(source.downcast_ref::<h1server::ConfigError>().is_some());

    // `?` into io::Error keeps the kind and the typed error inside.
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
    let inner = io
        .get_ref()
        .and_then(|e| e.downcast_ref::<h1server::ConfigError>());
    assert_eq!(inner.map(|e| e.source.as_str()), Some("workers"));
}

#[test]
fn bind_on_a_busy_port_is_an_io_error_naming_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let cfg = Config {
        addr,
        ..test_config()
    };
    match Server::bind(cfg) {
        Err(BindError::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
            assert!(e.to_string().contains(&addr.to_string()), "{e}");
        }
        other => panic!("expected an I/O error, got {:?}", other.err()),
    }
}

#[test]
fn a_bind_error_goes_through_question_mark_into_box_dyn_error() {
    fn start() -> Result<Server, Box<dyn std::error::Error>> {
        let cfg = Config {
            max_batch: 0,
            ..test_config()
        };
        Ok(Server::bind(cfg)?)
    }
    let err = start().err().expect("max_batch = 0 is refused");
    match err.downcast_ref::<BindError>() {
        Some(BindError::Config(e)) => assert_eq!(e.source, "max_batch"),
        _ => panic!("expected a BindError::Config, got {err:?}"),
    }
}
