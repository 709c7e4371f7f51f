//! Accepting connections: binding with a deep backlog, socket options on every accepted
//! socket, and telling descriptor exhaustion (pause, retry) from other accept errors.
//!
//! It never blocks (the listener is non-blocking) and never decides about connections
//! beyond accepting them; the loop owns the max-connections gate and the pause.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Listen backlog. mio and std use 128, which drops SYNs under a connection burst (ab
/// without keep-alive opens ~20k connections a second); the kernel caps it at somaxconn.
pub(crate) const BACKLOG: i32 = 4096;

/// Binds `addr` (SO_REUSEADDR, as mio does) with a backlog of [`BACKLOG`].
pub(crate) fn bind(addr: SocketAddr) -> io::Result<mio::net::TcpListener> {
    let l = mio::net::TcpListener::bind(addr)?;
    set_backlog(&l, BACKLOG)?;
    Ok(l)
}

/// `n` listeners on `addr`, one per event loop, each its own socket with `SO_REUSEPORT`
/// (and `SO_REUSEADDR`), so the kernel spreads new connections across them by a hash of
/// the peer's address and port. Port 0 picks a free port for the first; the others bind
/// that one. Linux lets only sockets of the same user join such a group.
pub(crate) fn bind_group(addr: SocketAddr, n: usize) -> io::Result<Vec<mio::net::TcpListener>> {
    if n <= 1 {
        return Ok(vec![bind(addr)?]);
    }
    let first = bind_reuseport(addr)?;
    let addr = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..n {
        all.push(bind_reuseport(addr)?);
    }
    Ok(all)
}

/// One listening socket on `addr` with `SO_REUSEADDR` and `SO_REUSEPORT`, non-blocking.
#[allow(unsafe_code)]
fn bind_reuseport(addr: SocketAddr) -> io::Result<mio::net::TcpListener> {
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: socket(2) takes integers only; a non-negative result is a descriptor we own.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    for opt in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
        let one: libc::c_int = 1;
        // SAFETY: the option value is a live c_int and its exact size is passed.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: all-zero bytes are a valid sockaddr_storage (plain integers).
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above.
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    // SAFETY: `storage` holds a sockaddr of `len` bytes for `fd`'s family.
    let rc = unsafe {
        libc::bind(
            fd,
            (&storage as *const libc::sockaddr_storage).cast(),
            len as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let l = mio::net::TcpListener::from_std(std::net::TcpListener::from(sock));
    set_backlog(&l, BACKLOG)?;
    Ok(l)
}

/// Calling listen(2) again on a listening socket only changes its backlog (Linux, BSD).
#[allow(unsafe_code)]
fn set_backlog(l: &mio::net::TcpListener, backlog: i32) -> io::Result<()> {
    // SAFETY: `listen` takes a descriptor and an integer and touches no memory of ours;
    // the descriptor is valid for the duration of the call because `l` is borrowed.
    let rc = unsafe { libc::listen(l.as_raw_fd(), backlog) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `SO_ATTACH_FILTER` (linux/asm-generic/socket.h; the `libc` crate names it only for
/// Android).
const SO_ATTACH_FILTER: libc::c_int = 26;

/// Stops new handshakes on `l` before the drain takes its last connections and closes
/// it: a classic BPF filter on the listening socket that drops every SYN that opens a
/// connection (flags SYN without ACK) and lets the rest through. A handshake already
/// under way — its SYN-ACK sent, its client's ACK still on the wire — still completes:
/// its client counts itself connected from the SYN-ACK on and may have written a request
/// already (a proxy's POST it will not retry), so the drain keeps the listener open one
/// [`HANDSHAKE_GRACE`] longer and accepts it. A SYN dropped meanwhile is sent again by
/// its client (after about a second) and then refused by the closed port, before any
/// request: a proxy moves on to its next upstream. Best effort: a kernel that refuses
/// the filter leaves the race as it was (logged).
pub(crate) fn stop_handshakes(l: &mio::net::TcpListener) {
    if let Err(e) = attach_filter(l, &mut drop_syns()) {
        log::warn!(
            "drain: could not stop new handshakes on the listener ({e}): one completing as it closes is reset"
        );
    }
}

/// How long the drain keeps its listener open after [`stop_handshakes`]: long enough
/// for the ACK of a SYN-ACK the kernel sent just before to come back (a round trip to a
/// load balancer in the same network, with room to spare), short enough not to delay a
/// stop.
pub(crate) const HANDSHAKE_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// How many connections the kernel completed on the listening socket `l` that no
/// `accept` has taken yet: for a listener, `TCP_INFO`'s `tcpi_unacked` is the length of
/// its accept queue (Linux, `tcp_get_info`). 0 when the kernel does not say.
#[allow(unsafe_code)]
pub(crate) fn backlog(l: &mio::net::TcpListener) -> u32 {
    // SAFETY: `tcp_info` is plain integers, valid all zero.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the value points to a live `tcp_info` and `len` holds its exact size (the
    // kernel writes at most that much); the descriptor is valid because `l` is borrowed.
    let rc = unsafe {
        libc::getsockopt(
            l.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc == 0 { info.tcpi_unacked } else { 0 }
}

/// The filter: a socket filter on a TCP socket sees the packet from its TCP header on,
/// whose byte 13 holds the flags (RFC 9293 §3.1).
fn drop_syns() -> [libc::sock_filter; 5] {
    const SYN: u32 = 0x02;
    const ACK: u32 = 0x10;
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    [
        op(libc::BPF_LD | libc::BPF_B | libc::BPF_ABS, 0, 0, 13),
        op(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K, 0, 0, SYN | ACK),
        // A SYN without ACK opens a connection: drop it; anything else: keep it whole.
        op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 1, SYN),
        op(libc::BPF_RET | libc::BPF_K, 0, 0, 0),
        op(libc::BPF_RET | libc::BPF_K, 0, 0, u32::MAX),
    ]
}

/// `SO_DETACH_FILTER` (linux/asm-generic/socket.h).
const SO_DETACH_FILTER: libc::c_int = 27;

/// Takes [`stop_handshakes`]' filter off `l` again, for a listening socket that outlives
/// the server: one a supervisor passed (systemd socket activation keeps it open across
/// restarts, and connections wait in its backlog for the next instance) must not go on
/// dropping every new SYN once the server has let go of it. No filter: nothing to do.
#[allow(unsafe_code)]
pub(crate) fn resume_handshakes(l: &mio::net::TcpListener) {
    // Linux ignores the value but wants one of an int's size (else EINVAL).
    let unused: libc::c_int = 0;
    // SAFETY: the value points to a live int and its size is passed exactly; the
    // descriptor is valid because `l` is borrowed.
    let rc = unsafe {
        libc::setsockopt(
            l.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_DETACH_FILTER,
            (&unused as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    let e = io::Error::last_os_error();
    if rc != 0 && e.raw_os_error() != Some(libc::ENOENT) {
        log::warn!("drain: could not take the handshake filter off the listener ({e})");
    }
}

/// Attaches (or replaces) `l`'s socket filter.
#[allow(unsafe_code)]
fn attach_filter(l: &mio::net::TcpListener, prog: &mut [libc::sock_filter]) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: `fprog` points to a live program of exactly `len` instructions for the
    // duration of the call (the kernel copies it), and its size is passed exactly; the
    // descriptor is valid because `l` is borrowed.
    let rc = unsafe {
        libc::setsockopt(
            l.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_ATTACH_FILTER,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Refuses a socket that is not in the listening state (`SO_ACCEPTCONN`): a descriptor
/// passed to `Server::from_listener` bound but never `listen`ed would fail every accept
/// with `EINVAL`.
#[allow(unsafe_code)]
pub(crate) fn ensure_listening(l: &std::net::TcpListener) -> io::Result<()> {
    let mut on: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the option value is a live c_int and `len` holds its exact size; the
    // descriptor is valid for the call because `l` is borrowed.
    let rc = unsafe {
        libc::getsockopt(
            l.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut on as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if on == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the socket is not listening (listen(2) was not called on it)",
        ));
    }
    Ok(())
}

/// What one accept attempt gave.
pub(crate) enum Accepted {
    /// A new connection, already set up.
    Conn(mio::net::TcpStream, SocketAddr),
    /// Nothing more to accept now.
    Drained,
    /// Out of descriptors or kernel memory: stop accepting for a while (never spin).
    Exhausted(io::Error),
    /// The connection died before we got to it, or another transient error: go on.
    Skip(io::Error),
    /// The listening socket itself no longer accepts (shut down or closed under us, or
    /// not listening): every further accept fails the same way, so stop trying.
    Broken(io::Error),
}

/// Accepts one connection and sets `TCP_NODELAY` on it (responses are written whole, so
/// Nagle would only add a delayed-ACK stall to pipelined or streamed answers).
pub(crate) fn accept(l: &mio::net::TcpListener) -> Accepted {
    loop {
        return match l.accept() {
            Ok((s, peer)) => {
                if let Err(e) = s.set_nodelay(true) {
                    log::debug!("TCP_NODELAY failed on a socket from {peer}: {e}");
                }
                Accepted::Conn(s, peer)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Accepted::Drained,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_exhaustion(&e) => Accepted::Exhausted(e),
            Err(e) if is_broken_listener(&e) => Accepted::Broken(e),
            Err(e) => Accepted::Skip(e),
        };
    }
}

/// EINVAL (not listening: shut down under us), EBADF, ENOTSOCK: the listener's fault,
/// not one connection's (accept(2) reports a pending connection's network errors, which
/// are the caller's to skip, with other codes).
fn is_broken_listener(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::EBADF | libc::ENOTSOCK)
    )
}

/// EMFILE, ENFILE, ENOBUFS, ENOMEM: resource exhaustion, not a broken listener.
fn is_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream;
    use std::time::Duration;

    /// A handshake under way when new ones stop still completes: its client got the
    /// SYN-ACK (its `connect` returned) and wrote its request, and only its ACK had not
    /// reached the listener. A test filter that passes nothing but SYNs holds that ACK
    /// (and the request) back; `stop_handshakes` replaces it, and the client's next
    /// segment, carrying the ACK, completes the connection, request and all. Dropping
    /// every packet (the filter before this one) lost it: the listener's close then
    /// reset a client that had sent its request.
    #[test]
    fn a_handshake_under_way_when_new_ones_stop_still_completes() {
        use std::io::{Read, Write};
        let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_l.set_nonblocking(true).unwrap();
        let addr = std_l.local_addr().unwrap();
        let l = mio::net::TcpListener::from_std(std_l);
        // The drain's filter with its verdicts swapped: SYNs pass, everything else drops.
        let mut only_syns = super::drop_syns();
        only_syns.swap(3, 4);
        super::attach_filter(&l, &mut only_syns).unwrap();
        let mut client = TcpStream::connect(addr).expect("the SYN-ACK came: connected");
        client.set_nodelay(true).unwrap();
        client.write_all(b"GET / HTTP/1.1\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            l.accept()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
            "the test filter holds the handshake's ACK back"
        );
        super::stop_handshakes(&l);
        client.write_all(b"\r\n").unwrap(); // goes out at once, with its ACK
        let t0 = std::time::Instant::now();
        let mut accepted = loop {
            match l.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        t0.elapsed() < Duration::from_secs(5),
                        "the handshake under way never completed"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        // The first segment, held back by the test filter, is sent again by the client.
        let mut got = Vec::new();
        let t0 = std::time::Instant::now();
        while got.len() < 18 && t0.elapsed() < Duration::from_secs(5) {
            let mut buf = [0u8; 64];
            match accepted.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("read: {e}"),
            }
        }
        assert_eq!(got, b"GET / HTTP/1.1\r\n\r\n");
    }

    /// After `stop_handshakes` a connection already completed is still accepted, and a new
    /// one does not complete (its SYN is dropped, so it is neither served nor reset with
    /// a request on it); the drain empties the queue and then closes.
    #[test]
    fn stopped_handshakes_keep_the_queue_and_complete_no_new_connection() {
        let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_l.set_nonblocking(true).unwrap();
        let addr = std_l.local_addr().unwrap();
        let l = mio::net::TcpListener::from_std(std_l);
        let queued = TcpStream::connect(addr).unwrap();
        super::stop_handshakes(&l);
        let late = TcpStream::connect_timeout(&addr, Duration::from_millis(300));
        assert!(
            late.as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::TimedOut),
            "a connect after stop_handshakes: {late:?} (want a timeout: the SYN dropped)"
        );
        let (accepted, _) = l
            .accept()
            .expect("the connection queued before is accepted");
        assert_eq!(accepted.peer_addr().unwrap(), queued.local_addr().unwrap());
        assert!(
            l.accept()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
            "nothing else was completed"
        );
    }
}
