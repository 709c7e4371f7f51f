//! TLS under the connection seam (feature `tls`): the certificate and key read at bind
//! time, and [`TlsStream`], a [`Transport`](crate::conn::Transport) that runs rustls's
//! state machine over the non-blocking socket.
//!
//! It never blocks and never parses HTTP. rustls is sans-I/O: bytes read from the socket
//! go in (`read_tls`, `process_new_packets`), plaintext comes out (`reader`), plaintext
//! written goes in (`writer`) and records come out (`write_tls`). The loop reads and a
//! worker holding the right to write writes, possibly at once, so the rustls connection
//! sits behind a mutex — the one place a connection is shared by lock, because a TLS
//! connection's two directions share one state (keys, alerts, key updates).
//!
//! Without the feature only [`Acceptor`] exists, always plain, and costs nothing.

use std::io;

use crate::config::{Config, ConfigError};
use crate::conn::Sock;

#[cfg(feature = "tls")]
pub(crate) use imp::TlsStream;

/// What the loop wraps each accepted socket in: plain TCP, or TLS with the server's
/// certificate. Cloned into every event loop (one `Arc` inside).
#[derive(Clone, Default)]
pub(crate) struct Acceptor {
    #[cfg(feature = "tls")]
    config: Option<std::sync::Arc<rustls::ServerConfig>>,
}

impl Acceptor {
    /// The acceptor `cfg` asks for: TLS when `tls_cert` and `tls_key` are set (their files
    /// are read and checked here, so a bad path fails the start, naming the variable).
    pub fn from_config(cfg: &Config) -> Result<Acceptor, ConfigError> {
        #[cfg(feature = "tls")]
        if let (Some(cert), Some(key)) = (&cfg.tls_cert, &cfg.tls_key) {
            let config = imp::server_config(cert, key)?;
            return Ok(Acceptor {
                config: Some(config),
            });
        }
        // `validate` refused tls_cert/tls_key in a build without the feature.
        let _ = cfg;
        Ok(Acceptor::default())
    }

    /// Whether connections speak TLS.
    pub fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.config.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// The transport for an accepted socket.
    pub fn wrap(&self, sock: mio::net::TcpStream) -> io::Result<Sock> {
        #[cfg(feature = "tls")]
        if let Some(config) = &self.config {
            return TlsStream::new(sock, config.clone()).map(|t| Sock::Tls(Box::new(t)));
        }
        Ok(Sock::Plain(sock))
    }
}

#[cfg(feature = "tls")]
mod imp {
    use std::io::{self, Read, Write};
    use std::net::Shutdown;
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, MutexGuard};

    use log::debug;
    use rustls::ServerConnection;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use crate::config::ConfigError;
    use crate::conn::Handshake;

    /// What a plaintext HTTP request to the TLS port gets, in plaintext (Go's words).
    const PLAIN_HTTP_ANSWER: &[u8] =
        b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

    /// Records held unsent (and plaintext waiting for the handshake) at most: `write`
    /// takes no more plaintext than fits, so a slow reader holds at most this much
    /// ciphertext per connection (rustls's default limit, stated here on purpose).
    const SEND_BUFFER_LIMIT: usize = 64 * 1024;

    /// The longest ClientHello taken: the length its handshake header announces (RFC 8446
    /// §4), checked as soon as that header is read, before rustls joins the message (it
    /// would hold up to 64 KiB of one for the handshake deadline). Real ones are under
    /// 2 KiB, post-quantum key shares included (X25519MLKEM768's adds 1.2 KB); 8 KiB
    /// leaves four times that.
    const MAX_CLIENT_HELLO: usize = 8 * 1024;

    /// All the client's bytes rustls may read during the handshake: a ClientHello at
    /// the bound, and room for the rest of an ordinary handshake (a second ClientHello
    /// after a HelloRetryRequest, §4.1.4; ChangeCipherSpec, Finished). It bounds what a
    /// connection stalled mid-handshake holds: rustls's input buffer, grown 4 KiB a read
    /// and by doubling, stays within 16 KiB — a plain connection's first read buffer.
    const HANDSHAKE_INPUT_LIMIT: usize = 12 * 1024;

    /// The rustls server configuration for a certificate chain and key in PEM files.
    pub(super) fn server_config(
        cert: &Path,
        key: &Path,
    ) -> Result<Arc<rustls::ServerConfig>, ConfigError> {
        let shown = |p: &Path| p.display().to_string();
        let cert_err = |why: String| ConfigError::new("H1_TLS_CERT", &shown(cert), &why);
        let key_err = |why: String| ConfigError::new("H1_TLS_KEY", &shown(key), &why);
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| cert_err(format!("cannot read the certificate: {}", pem_error(&e))))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| cert_err(format!("not a PEM certificate file: {}", pem_error(&e))))?;
        if chain.is_empty() {
            return Err(cert_err("no CERTIFICATE block in the file".into()));
        }
        let key_der = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| key_err(format!("cannot read the private key: {}", pem_error(&e))))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| cert_err(format!("TLS setup: {e}")))?
            .with_no_client_auth()
            .with_single_cert(chain, key_der)
            .map_err(|e| key_err(format!("does not fit the certificate in H1_TLS_CERT: {e}")))?;
        // ALPN (RFC 7301): the server speaks HTTP/1.1 and HTTP/1.0, and offers both ids
        // (the IANA registry's "http/1.1", "http/1.0"), preferring 1.1. A client offering
        // only "http/1.0" (`curl --http1.0`) must not get `no_application_protocol`: §3.2
        // asks for that alert only when none of its protocols is supported. nginx offers
        // the same (`NGX_HTTP_ALPN_PROTOS`).
        config.alpn_protocols = vec![b"http/1.1".to_vec(), b"http/1.0".to_vec()];
        Ok(Arc::new(config))
    }

    /// A PEM error in words (a missing file says so, with the OS's reason).
    fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
        match e {
            rustls::pki_types::pem::Error::Io(io) => io.to_string(),
            rustls::pki_types::pem::Error::NoItemsFound => "no PEM item found".into(),
            other => format!("{other:?}"),
        }
    }

    /// One TLS connection over a non-blocking TCP socket.
    pub(crate) struct TlsStream {
        sock: mio::net::TcpStream,
        /// Set once application bytes flow (the handshake is over, or a plaintext request
        /// was refused): read without the lock on every readable event.
        ready: AtomicBool,
        /// The peer's `close_notify` was read (RFC 8446 §6.1: it sends nothing more): the
        /// plaintext before it is all that comes, and the EOF is owed to the reader even
        /// though no socket event will announce it (`Transport::eof_pending`).
        peer_closed: AtomicBool,
        /// rustls holds part of a record (read off the socket, not yet decrypted): a
        /// request has begun arriving though no plaintext came out yet
        /// (`Transport::input_pending`). Kept by [`Tap`] as it reads.
        mid_record: AtomicBool,
        state: Mutex<State>,
    }

    struct State {
        tls: ServerConnection,
        /// The first byte was looked at (a TLS record, or a plaintext request).
        checked: bool,
        /// A plaintext HTTP request was refused: from here on the socket is read (and
        /// discarded by the lingering close) raw.
        refused: bool,
        /// Our `close_notify` was queued.
        notified: bool,
        /// The connection ends cut off: no `close_notify` may go (`mark_aborted`).
        aborted: bool,
        /// Where the client's record stream stands, as rustls has read it.
        records: Records,
        /// What rustls may still read before the handshake is over
        /// (`HANDSHAKE_INPUT_LIMIT`).
        handshake_input: usize,
    }

    impl TlsStream {
        pub fn new(
            sock: mio::net::TcpStream,
            config: Arc<rustls::ServerConfig>,
        ) -> io::Result<TlsStream> {
            let mut tls = ServerConnection::new(config).map_err(io::Error::other)?;
            tls.set_buffer_limit(Some(SEND_BUFFER_LIMIT));
            Ok(TlsStream {
                sock,
                ready: AtomicBool::new(false),
                peer_closed: AtomicBool::new(false),
                mid_record: AtomicBool::new(false),
                state: Mutex::new(State {
                    tls,
                    checked: false,
                    refused: false,
                    notified: false,
                    aborted: false,
                    records: Records::default(),
                    handshake_input: HANDSHAKE_INPUT_LIMIT,
                }),
            })
        }

        pub fn tcp_mut(&mut self) -> &mut mio::net::TcpStream {
            &mut self.sock
        }

        fn lock(&self) -> MutexGuard<'_, State> {
            // A panic under the lock leaves rustls's state as it was; use it.
            self.state.lock().unwrap_or_else(|e| e.into_inner())
        }

        pub fn is_ready(&self) -> bool {
            self.ready.load(Ordering::Acquire)
        }

        /// See [`Transport::eof_pending`](crate::conn::Transport::eof_pending).
        pub fn eof_pending(&self) -> bool {
            self.peer_closed.load(Ordering::Relaxed)
        }

        /// See [`Transport::input_pending`](crate::conn::Transport::input_pending).
        pub fn input_pending(&self) -> bool {
            self.mid_record.load(Ordering::Relaxed)
        }

        /// The socket as rustls reads it, followed by `records`, within `budget` bytes
        /// when one is given.
        fn tap<'a>(&'a self, records: &'a mut Records, budget: Option<&'a mut usize>) -> Tap<'a> {
            Tap {
                sock: &self.sock,
                records,
                mid_record: &self.mid_record,
                budget,
            }
        }

        /// See [`Transport::handshake`](crate::conn::Transport::handshake).
        pub fn handshake(&self) -> Handshake {
            let mut st = self.lock();
            if !st.checked {
                // RFC 8446 §5.1: a TLS connection starts with a handshake record (content
                // type 22). Anything else is not TLS; an ASCII letter is a plaintext
                // request (`GET /`), answered as Go and nginx answer it.
                let mut first = [0u8; 1];
                loop {
                    match self.sock.peek(&mut first) {
                        Ok(0) => return Handshake::Eof,
                        Ok(_) => break,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            return Handshake::Pending;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return Handshake::Failed,
                    }
                }
                st.checked = true;
                if first[0] != 22 {
                    if !first[0].is_ascii_uppercase() {
                        return Handshake::Failed;
                    }
                    st.refused = true;
                    // A fresh socket's buffer takes these 77 bytes.
                    let _ = (&self.sock).write(PLAIN_HTTP_ANSWER);
                    self.ready.store(true, Ordering::Release);
                    return Handshake::PlainHttp;
                }
            }
            let st = &mut *st;
            loop {
                if push(&mut st.tls, &self.sock).is_err() {
                    return Handshake::Failed;
                }
                if !st.tls.is_handshaking() {
                    self.ready.store(true, Ordering::Release);
                    return Handshake::Done;
                }
                if st.handshake_input == 0 {
                    debug!("TLS handshake failed: over {HANDSHAKE_INPUT_LIMIT} bytes of input");
                    return Handshake::Failed;
                }
                let budget = Some(&mut st.handshake_input);
                match st.tls.read_tls(&mut self.tap(&mut st.records, budget)) {
                    Ok(0) => return Handshake::Eof,
                    Ok(_) => {
                        if let Some(n) = st.records.first_message_len()
                            && n > MAX_CLIENT_HELLO
                        {
                            // Refused before rustls joins it. No alert: the client is
                            // still sending, so our close resets the connection anyway.
                            debug!("TLS handshake failed: a ClientHello of {n} bytes");
                            return Handshake::Failed;
                        }
                        if let Err(e) = st.tls.process_new_packets() {
                            debug!("TLS handshake failed: {e}");
                            let _ = push(&mut st.tls, &self.sock); // the alert, if it fits
                            return Handshake::Failed;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Handshake::Pending,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Handshake::Failed,
                }
            }
        }

        /// Plaintext, as much as fits in `buf`. A short count means the socket is drained
        /// (or at EOF), as the loop's edge-triggered reading expects: records are read and
        /// decrypted until `buf` is full or the socket would block.
        pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
            let mut st = self.lock();
            if st.refused {
                return (&self.sock).read(buf);
            }
            if buf.is_empty() {
                return Ok(0); // (rustls's reader says `Ok(0)` for it too: not an EOF)
            }
            let st = &mut *st;
            let mut n = 0;
            loop {
                match st.tls.reader().read(&mut buf[n..]) {
                    // The peer's close_notify: EOF after what was read. Remembered, so the
                    // caller reads again after a short count and gets the `Ok(0)`: the
                    // client may send close_notify with its last request and keep TCP
                    // open while it waits for the answer (RFC 8446 §6.1 allows the other
                    // direction to go on), so no FIN, and no new edge, will follow.
                    Ok(0) => {
                        self.peer_closed.store(true, Ordering::Relaxed);
                        return Ok(n);
                    }
                    Ok(k) => {
                        n += k;
                        if n == buf.len() {
                            return Ok(n);
                        }
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // TCP closed without close_notify: HTTP's own framing tells a cut
                    // message, so this is an EOF like any other (as browsers treat it).
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(n),
                    Err(e) => return if n > 0 { Ok(n) } else { Err(e) },
                }
                match st.tls.read_tls(&mut self.tap(&mut st.records, None)) {
                    Ok(0) => {} // the reader reports the EOF (after any plaintext left)
                    Ok(_) => {
                        if let Err(e) = st.tls.process_new_packets() {
                            debug!("TLS error: {e}");
                            let _ = push(&mut st.tls, &self.sock);
                            return if n > 0 {
                                Ok(n)
                            } else {
                                Err(io::Error::new(io::ErrorKind::InvalidData, e))
                            };
                        }
                        // Records rustls sends on its own (tickets, key updates, alerts).
                        if st.tls.wants_write() {
                            push(&mut st.tls, &self.sock)?;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return if n > 0 { Ok(n) } else { Err(e) };
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return if n > 0 { Ok(n) } else { Err(e) },
                }
            }
        }

        /// Encrypts what fits in the send buffer and pushes records to the socket.
        /// `WouldBlock` while earlier records are still unsent: plaintext is taken only
        /// when the socket took everything before it, so at most one buffer's worth of
        /// records waits per connection.
        pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
            let mut st = self.lock();
            if st.refused {
                return (&self.sock).write(buf);
            }
            let st = &mut *st;
            if !push(&mut st.tls, &self.sock)?.1 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = st.tls.writer().write(buf)?;
            push(&mut st.tls, &self.sock)?;
            if n == 0 && !buf.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        }

        pub fn flush_pending(&self) -> io::Result<(usize, bool)> {
            let mut st = self.lock();
            if st.refused {
                return Ok((0, true));
            }
            push(&mut st.tls, &self.sock)
        }

        /// See [`Transport::mark_aborted`](crate::conn::Transport::mark_aborted).
        pub fn mark_aborted(&self) {
            self.lock().aborted = true;
        }

        /// Shutting the write side sends `close_notify` first (RFC 8446 §6.1), if the
        /// socket takes it — unless the connection was marked aborted.
        pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
            if how != Shutdown::Read {
                let mut st = self.lock();
                notify(&mut st, &self.sock, self.is_ready());
            }
            self.sock.shutdown(how)
        }
    }

    impl Drop for TlsStream {
        fn drop(&mut self) {
            // Every close path ends here: tell the client it was not cut off — unless it
            // was (`mark_aborted`): then the FIN comes without close_notify, an
            // incomplete close (RFC 9112 §9.8), and the client can tell the truncation.
            let ready = self.is_ready();
            let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
            notify(st, &self.sock, ready);
        }
    }

    /// Queues and pushes `close_notify` once, for an established connection that ends
    /// in order (best effort: a full socket drops it, and HTTP's framing still tells a
    /// cut answer). RFC 8446 §6.1: close_notify says the data ended where the sender
    /// meant it to; a connection whose answer was cut off closes without it.
    fn notify(st: &mut State, sock: &mio::net::TcpStream, ready: bool) {
        if st.notified || st.aborted || st.refused || !ready {
            return;
        }
        st.notified = true;
        st.tls.send_close_notify();
        let _ = push(&mut st.tls, sock);
    }

    /// The client's record stream as rustls reads it: where each record ends (RFC 8446
    /// §5.1: a 5-byte header whose last two bytes are the length of the fragment that
    /// follows). rustls decrypts every complete record it has read
    /// (`process_new_packets`), so a stream that stops inside a record is exactly "rustls
    /// holds part of a record" — which rustls itself does not say.
    /// It also keeps the header of the first handshake message (the ClientHello, §4: a
    /// type byte and a 24-bit length), whichever records its bytes came in.
    #[derive(Default)]
    struct Records {
        /// Header bytes of the current record read so far: 0 at a record boundary, 5
        /// while its fragment comes.
        head: u8,
        /// The current record's content type.
        kind: u8,
        /// Fragment bytes of the current record still to come.
        left: usize,
        /// The first handshake message's header, `first_got` bytes of it so far.
        first: [u8; 4],
        first_got: u8,
    }

    impl Records {
        /// Follows `bytes`, the next ones rustls read. O(1) per record, not per byte.
        fn see(&mut self, mut bytes: &[u8]) {
            while let Some(&b) = bytes.first() {
                if self.head < 5 {
                    match self.head {
                        0 => self.kind = b,
                        3 => self.left = usize::from(b) << 8,
                        4 => self.left |= usize::from(b),
                        _ => {}
                    }
                    self.head += 1;
                    bytes = &bytes[1..];
                } else {
                    let k = self.left.min(bytes.len());
                    // Content type 22: handshake (§5.1).
                    if self.kind == 22 && self.first_got < 4 {
                        let got = usize::from(self.first_got);
                        let take = k.min(4 - got);
                        self.first[got..got + take].copy_from_slice(&bytes[..take]);
                        self.first_got += take as u8;
                    }
                    self.left -= k;
                    bytes = &bytes[k..];
                }
                if self.head == 5 && self.left == 0 {
                    self.head = 0; // the record is complete
                }
            }
        }

        /// Whether the bytes read so far end inside a record.
        fn mid_record(&self) -> bool {
            self.head > 0
        }

        /// The length the first handshake message announces, once its header is in.
        fn first_message_len(&self) -> Option<usize> {
            let [_, a, b, c] = self.first;
            (self.first_got == 4).then(|| usize::from_be_bytes([0, 0, 0, 0, 0, a, b, c]))
        }
    }

    /// What rustls's `read_tls` reads from: the socket, with the record stream followed,
    /// and no more than `budget` bytes (the handshake's) when there is one.
    struct Tap<'a> {
        sock: &'a mio::net::TcpStream,
        records: &'a mut Records,
        mid_record: &'a AtomicBool,
        budget: Option<&'a mut usize>,
    }

    impl Read for Tap<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let buf = match self.budget.as_deref() {
                // An empty read would look like EOF; the caller checks first.
                Some(0) => return Err(io::Error::other("handshake input limit")),
                Some(&left) => {
                    let k = buf.len().min(left);
                    &mut buf[..k]
                }
                None => buf,
            };
            let n = (&*self.sock).read(buf)?;
            if let Some(left) = self.budget.as_deref_mut() {
                *left -= n;
            }
            self.records.see(&buf[..n]);
            self.mid_record
                .store(self.records.mid_record(), Ordering::Relaxed);
            Ok(n)
        }
    }

    /// Writes queued records until the socket is full: `(bytes written, none left)`.
    fn push(tls: &mut ServerConnection, sock: &mio::net::TcpStream) -> io::Result<(usize, bool)> {
        let mut sent = 0;
        while tls.wants_write() {
            match tls.write_tls(&mut &*sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(k) => sent += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((sent, false)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok((sent, true))
    }

    #[cfg(test)]
    #[test]
    fn records_tell_a_stream_that_stops_inside_a_record() {
        // Two records (a 3-byte fragment, an empty one), then a third's header in part.
        let wire = [23, 3, 3, 0, 3, b'a', b'b', b'c', 21, 3, 3, 0, 0, 23, 3, 3];
        for at in 0..=wire.len() {
            let mut split = Records::default();
            split.see(&wire[..at]);
            split.see(&wire[at..]);
            assert!(split.mid_record(), "split at {at}");
        }
        let mut r = Records::default();
        let ends: Vec<usize> = (0..wire.len())
            .filter(|&i| {
                r.see(&wire[i..=i]);
                !r.mid_record()
            })
            .collect();
        assert_eq!(ends, [7, 12], "complete after the 8th and 13th bytes only");
        let mut big = Records::default();
        big.see(&[23, 3, 3, 0x40, 0x00]);
        big.see(&[0; 0x3fff]);
        assert!(big.mid_record());
        big.see(&[0]);
        assert!(!big.mid_record());
        assert_eq!(big.first_message_len(), None, "no handshake record");
        // A ClientHello header split over two records, after its record header.
        let mut hello = Records::default();
        hello.see(&[22, 3, 1, 0, 2, 1, 0]);
        assert_eq!(hello.first_message_len(), None);
        hello.see(&[22, 3, 1, 0x40, 0, 0xfd, 0xe8]);
        assert_eq!(hello.first_message_len(), Some(65_000));
        hello.see(&[1, 0, 0, 9]);
        assert_eq!(
            hello.first_message_len(),
            Some(65_000),
            "the first message's"
        );
    }
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    //! `TlsStream` against a rustls client over a real loopback socket: the handshake on
    //! the non-blocking side, records held while the socket is full, and every byte out.

    use std::io::{self, Read, Write};
    use std::net::Shutdown;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::imp::TlsStream;
    use crate::conn::Handshake;

    /// A self-signed certificate for `localhost` (ECDSA P-256, valid until 2126), made with
    /// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500
    /// -subj /CN=localhost -addext subjectAltName=DNS:localhost -addext
    /// basicConstraints=critical,CA:FALSE …`; a test key, protecting nothing. Shared with
    /// tests/tls_review.rs (tests/data/).
    const CERT: &str = include_str!("../tests/data/localhost-cert.pem");
    const KEY: &str = include_str!("../tests/data/localhost-key.pem");

    fn server_config() -> Arc<rustls::ServerConfig> {
        // A directory per call: the tests run in parallel in one process, and one that
        // removed a shared directory (or rewrote its files) under another made that one
        // read an empty certificate ("no CERTIFICATE block", seen in a clean-clone run).
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("h1-tls-unit-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, CERT).unwrap();
        std::fs::write(&key, KEY).unwrap();
        let config = super::imp::server_config(&cert, &key).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        config
    }

    fn client_config() -> Arc<rustls::ClientConfig> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    #[test]
    fn records_the_full_socket_did_not_take_are_held_and_all_arrive() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        // The client: handshakes, waits until the server's socket is full, then reads it all.
        let client = std::thread::spawn(move || {
            let sock = std::net::TcpStream::connect(addr).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let conn = rustls::ClientConnection::new(client_config(), name).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, sock);
            while tls.conn.is_handshaking() {
                tls.conn.complete_io(&mut tls.sock).unwrap();
            }
            let alpn = tls.conn.alpn_protocol().map(<[u8]>::to_vec);
            go_rx.recv_timeout(Duration::from_secs(10)).unwrap();
            let mut got = Vec::new();
            tls.read_to_end(&mut got).unwrap();
            (alpn, got)
        });
        let (sock, _) = listener.accept().unwrap();
        sock.set_nonblocking(true).unwrap();
        let srv = TlsStream::new(mio::net::TcpStream::from_std(sock), server_config()).unwrap();
        assert!(!srv.is_ready());
        let t0 = Instant::now();
        loop {
            match srv.handshake() {
                Handshake::Done => break,
                Handshake::Pending => std::thread::sleep(Duration::from_millis(1)),
                other => panic!("handshake: {other:?}"),
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "no handshake");
        }
        assert!(srv.is_ready());
        // 8 MiB the client does not read yet: the socket fills, records stay with us, and
        // `write` takes no more plaintext until they are out.
        let payload: Vec<u8> = (0..8 << 20).map(|i| (i % 251) as u8).collect();
        let mut at = 0;
        let mut held = false;
        while at < payload.len() && !held {
            match srv.write(&payload[at..]) {
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    held = !srv.flush_pending().unwrap().1;
                    assert!(held, "WouldBlock with nothing held");
                    let again = srv.write(&payload[at..]);
                    assert!(
                        matches!(&again, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
                        "plaintext taken while records wait: {again:?}"
                    );
                }
                Err(e) => panic!("write: {e}"),
            }
        }
        assert!(held, "the socket never filled");
        go_tx.send(()).unwrap();
        // The rest, as the loop would on writable events; then what is still held.
        let t0 = Instant::now();
        loop {
            if at < payload.len() {
                match srv.write(&payload[at..]) {
                    Ok(n) => at += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("write: {e}"),
                }
            } else if srv.flush_pending().unwrap().1 {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "stuck at {at}");
            std::thread::sleep(Duration::from_micros(200));
        }
        srv.shutdown(Shutdown::Write).unwrap(); // close_notify, then FIN
        let (alpn, got) = client.join().unwrap();
        assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
        assert_eq!(got.len(), payload.len());
        assert!(got == payload, "the bytes arrived changed");
    }

    #[test]
    fn a_plaintext_request_gets_400_in_plaintext_and_the_socket_reads_raw() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (sock, _) = listener.accept().unwrap();
        sock.set_nonblocking(true).unwrap();
        let srv = TlsStream::new(mio::net::TcpStream::from_std(sock), server_config()).unwrap();
        assert_eq!(srv.handshake(), Handshake::Pending);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let t0 = Instant::now();
        let step = loop {
            match srv.handshake() {
                Handshake::Pending if t0.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                other => break other,
            }
        };
        assert_eq!(step, Handshake::PlainHttp);
        // The request is there to be discarded, raw.
        let mut buf = [0u8; 64];
        assert_eq!(srv.read(&mut buf).unwrap(), 27);
        srv.shutdown(Shutdown::Write).unwrap();
        let mut got = String::new();
        client.read_to_string(&mut got).unwrap();
        assert_eq!(
            got,
            "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
        );
    }
}
