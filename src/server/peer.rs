//! Only the server's own user may use MCP over loopback HTTP without a bearer token.
//!
//! Any local user can connect to a loopback port, and the tools can mint admin tokens and remove
//! keys. On Linux the kernel knows the uid owning every TCP socket: the client's end of an accepted
//! connection is the socket whose local address is our peer and whose remote address is us. It is
//! looked up by that exact address pair over netlink (`sock_diag`, what `ss` uses; microseconds),
//! falling back to a scan of `/proc/net/tcp{,6}` (which walks the whole socket table: ~20 ms on a
//! large machine). Connections from other uids get a 403 and are closed before any MCP byte is
//! read. Clients need no configuration (the Inspector, Claude Code and the OpenClaw adapter connect
//! as before), which a generated token file could not offer.

use std::net::{IpAddr, SocketAddr};

use axum::serve::Listener;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The uid owning the client end of the TCP connection `client` → `server`, if the kernel lists
/// it. Linux only; elsewhere `None`.
pub fn socket_owner(client: SocketAddr, server: SocketAddr) -> Option<u32> {
    let (client, server) = (canonical(client), canonical(server));
    #[cfg(target_os = "linux")]
    if let Some(uid) = diag::owner(client, server) {
        return Some(uid);
    }
    proc_owner(client, server)
}

/// [`socket_owner`] by scanning `/proc/net/tcp{,6}`.
fn proc_owner(client: SocketAddr, server: SocketAddr) -> Option<u32> {
    let files: &[&str] = match client.ip() {
        IpAddr::V4(_) => &["/proc/net/tcp", "/proc/net/tcp6"],
        IpAddr::V6(_) => &["/proc/net/tcp6"],
    };
    files.iter().find_map(|file| {
        let table = std::fs::read_to_string(file).ok()?;
        let v6 = file.ends_with('6');
        owner_in(&table, &encode(client, v6), &encode(server, v6))
    })
}

fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// An address as `/proc/net/tcp{,6}` prints it: the raw (network-order) address words printed as
/// native integers, then the port.
fn encode(addr: SocketAddr, v6: bool) -> String {
    let octets: Vec<u8> = match (addr.ip(), v6) {
        (IpAddr::V4(ip), false) => ip.octets().to_vec(),
        (IpAddr::V4(ip), true) => ip.to_ipv6_mapped().octets().to_vec(),
        (IpAddr::V6(ip), _) => ip.octets().to_vec(),
    };
    let words: String = octets
        .chunks(4)
        .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
        .collect();
    format!("{words}:{:04X}", addr.port())
}

/// The uid column of the row with `local` and `remote`.
fn owner_in(table: &str, local: &str, remote: &str) -> Option<u32> {
    table.lines().skip(1).find_map(|row| {
        let cols: Vec<&str> = row.split_whitespace().collect();
        (cols.len() > 7 && cols[1] == local && cols[2] == remote)
            .then(|| cols[7].parse().ok())
            .flatten()
    })
}

/// One `SOCK_DIAG_BY_FAMILY` request for one TCP socket by its address pair.
#[cfg(target_os = "linux")]
mod diag {
    use std::net::{IpAddr, SocketAddr};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    const NETLINK_SOCK_DIAG: libc::c_int = 4;
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    /// `nlmsghdr` (16 bytes) + `inet_diag_req_v2` (56 bytes).
    const REQUEST_LEN: usize = 72;
    /// Offset of `idiag_uid` in the answer: `nlmsghdr` (16) + family/state/timer/retrans (4) +
    /// `inet_diag_sockid` (48) + expires/rqueue/wqueue (12).
    const UID_AT: usize = 80;

    /// The uid owning the socket whose local end is `local` and remote end `remote`.
    pub fn owner(local: SocketAddr, remote: SocketAddr) -> Option<u32> {
        let family = match (local.ip(), remote.ip()) {
            (IpAddr::V4(_), IpAddr::V4(_)) => libc::AF_INET,
            (IpAddr::V6(_), IpAddr::V6(_)) => libc::AF_INET6,
            _ => return None,
        };
        let request = request(family, local, remote);
        // SAFETY: plain socket(2); the result is checked and owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                NETLINK_SOCK_DIAG,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` is a new descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let timeout = libc::timeval {
            tv_sec: 1,
            tv_usec: 0,
        };
        // SAFETY: the option value points at a live timeval of the size given.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        // SAFETY: an all-zero sockaddr_nl is valid (pid 0: the kernel).
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: the buffer and address point at live values of the lengths given.
        let sent = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                request.as_ptr().cast(),
                request.len(),
                0,
                (&raw const kernel).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent != request.len() as isize {
            return None;
        }
        let mut answer = [0u8; 512];
        // SAFETY: the buffer is live and writable for its whole length.
        let got =
            unsafe { libc::recv(fd.as_raw_fd(), answer.as_mut_ptr().cast(), answer.len(), 0) };
        let got = usize::try_from(got).ok()?;
        let kind = u16::from_ne_bytes([answer[4], answer[5]]);
        // An unknown pair answers NLMSG_ERROR (ENOENT).
        if got < UID_AT + 4 || kind != SOCK_DIAG_BY_FAMILY {
            return None;
        }
        Some(u32::from_ne_bytes([
            answer[UID_AT],
            answer[UID_AT + 1],
            answer[UID_AT + 2],
            answer[UID_AT + 3],
        ]))
    }

    fn request(family: libc::c_int, local: SocketAddr, remote: SocketAddr) -> [u8; REQUEST_LEN] {
        let mut r = [0u8; REQUEST_LEN];
        r[0..4].copy_from_slice(&(REQUEST_LEN as u32).to_ne_bytes());
        r[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        r[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
        r[8..12].copy_from_slice(&1u32.to_ne_bytes());
        // inet_diag_req_v2
        r[16] = family as u8;
        r[17] = libc::IPPROTO_TCP as u8;
        r[20..24].copy_from_slice(&u32::MAX.to_ne_bytes()); // every state
        // inet_diag_sockid: ports and addresses in network order, then interface and cookie.
        r[24..26].copy_from_slice(&local.port().to_be_bytes());
        r[26..28].copy_from_slice(&remote.port().to_be_bytes());
        let octets = |ip: IpAddr| -> Vec<u8> {
            match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            }
        };
        let (src, dst) = (octets(local.ip()), octets(remote.ip()));
        r[28..28 + src.len()].copy_from_slice(&src);
        r[44..44 + dst.len()].copy_from_slice(&dst);
        // No cookie to match (INET_DIAG_NOCOOKIE).
        r[64..72].copy_from_slice(&[0xff; 8]);
        r
    }
}

/// This process's uid.
pub fn own_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// A TCP listener that hands on only connections opened by `uid` (or root, who can read the
/// server's files anyway).
pub struct SameUser {
    inner: TcpListener,
    uid: u32,
    /// Off where the kernel cannot tell (not Linux), or when a bearer token guards the server.
    check: bool,
}

impl SameUser {
    /// Checks connections when `check` and the platform can.
    pub fn new(inner: TcpListener, check: bool) -> Self {
        let supported = cfg!(target_os = "linux");
        if check && !supported {
            tracing::warn!(
                "other local users can reach this MCP server: telling who opened a connection \
                 needs Linux; pass --auth-token to require a token"
            );
        }
        Self {
            inner,
            uid: own_uid(),
            check: check && supported,
        }
    }
}

impl Listener for SameUser {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let (stream, peer) = Listener::accept(&mut self.inner).await;
            if !self.check {
                return (stream, peer);
            }
            let owner = stream
                .local_addr()
                .ok()
                .and_then(|local| socket_owner(peer, local));
            match owner {
                Some(uid) if uid == self.uid || uid == 0 => return (stream, peer),
                other => {
                    tracing::warn!(
                        %peer,
                        uid = ?other,
                        "refused an MCP connection from another local user (or one whose owner \
                         cannot be told); --auth-token lets token holders in instead"
                    );
                    tokio::spawn(refuse(stream, other));
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Listener::local_addr(&self.inner)
    }
}

/// Answers 403 after reading the request head, then drains what the client still sends until it
/// closes: closing with unread input would reset the connection and lose the answer.
async fn refuse(mut stream: TcpStream, uid: Option<u32>) {
    use std::time::Duration;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let read_head = async {
        while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), read_head).await;
    let body = match uid {
        Some(uid) => format!(
            "this MCP server serves only its own user (uid {}); the connection came from uid {uid}. \
             Start the server with --auth-token to let token holders in.\n",
            own_uid()
        ),
        None => "cannot tell which user opened this connection, so it is refused; start the \
                 server with --auth-token to use a bearer token instead.\n"
            .to_string(),
    };
    let response = format!(
        "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let drain = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rows_are_matched_by_both_ends() {
        let client: SocketAddr = "127.0.0.1:51234".parse().unwrap();
        let server: SocketAddr = "127.0.0.1:8788".parse().unwrap();
        let (c, s) = (encode(client, false), encode(server, false));
        if cfg!(target_endian = "little") {
            assert_eq!(c, "0100007F:C822");
            assert_eq!(s, "0100007F:2254");
        }
        let table = format!(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             0: {s} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1\n\
             1: {s} {c} 01 00000000:00000000 00:00000000 00000000     0        0 2\n\
             2: {c} {s} 01 00000000:00000000 00:00000000 00000000 65534        0 3\n"
        );
        assert_eq!(owner_in(&table, &c, &s), Some(65534));
        assert_eq!(owner_in(&table, &s, &c), Some(0));
        assert_eq!(owner_in(&table, &c, &c), None);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_real_connection_is_owned_by_this_process_user() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let local = stream.local_addr().unwrap();
        assert_eq!(socket_owner(peer, local), Some(own_uid()));
        assert_eq!(diag::owner(peer, local), Some(own_uid()), "netlink");
        assert_eq!(proc_owner(peer, local), Some(own_uid()), "/proc fallback");
        // Our own end belongs to us too, and a pair that does not exist to nobody.
        assert_eq!(diag::owner(local, peer), Some(own_uid()));
        let nowhere: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(diag::owner(nowhere, local), None);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn ipv6_loopback_connections_are_looked_up_too() {
        let Ok(listener) = TcpListener::bind("[::1]:0").await else {
            return; // no IPv6 here
        };
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let local = stream.local_addr().unwrap();
        assert_eq!(socket_owner(peer, local), Some(own_uid()));
    }
}
