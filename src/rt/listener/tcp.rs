//! TCP listening sockets: one per worker, grouped with SO_REUSEPORT so the kernel spreads
//! connections across workers, and created so that a port held by anyone else is an error.
//!
//! `tokio_uring::net::TcpListener::bind` sets SO_REUSEPORT before binding, so it silently
//! joins a port another process (same user) already listens on. Here the first socket is
//! bound WITHOUT SO_REUSEPORT: the kernel then refuses the bind with EADDRINUSE if any socket
//! is listening on the address, whatever options that socket has. Only after that bind
//! succeeded is SO_REUSEPORT turned on for it, and the remaining workers' sockets (created
//! with SO_REUSEPORT) join its group. Linux checks SO_REUSEPORT of the already-bound socket
//! at the time of each later bind, which is what lets them join (verified on 6.18, see
//! tests/rt_listen.rs).
//!
//! There is no race in which a foreign listener is accepted: from the first bind on, the
//! address is ours. What remains is SO_REUSEPORT's own rule: once our group exists, another
//! process of the same effective user that also sets SO_REUSEPORT could join it (a second
//! ringgate cannot: it starts with the same exclusive bind, which fails).

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Socket, Type};

/// Bind `count` listening sockets on `addr`, all in one SO_REUSEPORT group, in non-blocking
/// mode. Port 0 is resolved by the first bind and reused for the others.
pub(super) fn bind_group(
    addr: SocketAddr,
    count: usize,
    backlog: i32,
) -> io::Result<Vec<TcpListener>> {
    let first = new_socket(addr)?;
    first.bind(&addr.into())?;
    first.set_reuse_port(true)?;
    first.listen(backlog)?;
    let bound = first
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("TCP socket has a non-IP local address"))?;

    let mut out = Vec::with_capacity(count);
    out.push(first);
    for _ in 1..count.max(1) {
        let s = new_socket(bound)?;
        s.set_reuse_port(true)?;
        s.bind(&bound.into())?;
        s.listen(backlog)?;
        out.push(s);
    }
    out.into_iter()
        .map(|s| {
            s.set_nonblocking(true)?;
            Ok(s.into())
        })
        .collect()
}

fn new_socket(addr: SocketAddr) -> io::Result<Socket> {
    let domain = Domain::for_address(addr);
    let s = Socket::new(domain, Type::STREAM.cloexec(), None)?;
    // SO_REUSEADDR lets a restart bind while old connections sit in TIME_WAIT; on Linux it
    // never lets two sockets listen on one address.
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // `[::]:9000` means IPv6 only, so it does not collide with `0.0.0.0:9000`.
        s.set_only_v6(true)?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    #[test]
    fn group_shares_one_port_and_excludes_others() {
        let group = bind_group("127.0.0.1:0".parse().unwrap(), 3, 64).unwrap();
        let port = group[0].local_addr().unwrap().port();
        assert_ne!(port, 0);
        for l in &group {
            assert_eq!(l.local_addr().unwrap().port(), port);
        }
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let err = bind_group(addr, 1, 64).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        // Connections are spread over the group.
        let conns: Vec<_> = (0..60).map(|_| TcpStream::connect(addr).unwrap()).collect();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut accepted = vec![0; group.len()];
        for (i, l) in group.iter().enumerate() {
            while l.accept().is_ok() {
                accepted[i] += 1;
            }
        }
        assert_eq!(accepted.iter().sum::<usize>(), conns.len());
        assert!(accepted.iter().all(|&n| n > 0), "{accepted:?}");
    }

    #[test]
    fn port_held_by_a_reuseport_listener_is_refused() {
        let other = new_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        other.set_reuse_port(true).unwrap();
        other
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        other.listen(8).unwrap();
        let addr = other.local_addr().unwrap().as_socket().unwrap();
        let err = bind_group(addr, 2, 64).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}
