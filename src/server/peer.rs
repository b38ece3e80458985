//! Only the server's own user may use MCP over loopback HTTP without a bearer token.
//!
//! Any local user can connect to a loopback port, and the tools can mint admin tokens and remove
//! keys. On Linux the kernel lists every TCP socket with the uid that owns it in `/proc/net/tcp`
//! (and `tcp6`); the client's end of an accepted connection is the entry whose local address is
//! our peer and whose remote address is us. Connections from other uids get a 403 and are closed
//! before any MCP byte is read. Clients need no configuration (the Inspector, Claude Code and the
//! OpenClaw adapter connect as before), which a generated token file could not offer.

use std::net::{IpAddr, SocketAddr};

use axum::serve::Listener;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The uid owning the client end of the TCP connection `client` → `server`, if the kernel lists
/// it. Linux only; elsewhere `None`.
pub fn socket_owner(client: SocketAddr, server: SocketAddr) -> Option<u32> {
    let (client, server) = (canonical(client), canonical(server));
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

/// Answers 403 after reading (a bounded part of) the request, so the client sees the reason
/// rather than a reset.
async fn refuse(mut stream: TcpStream, uid: Option<u32>) {
    let mut buf = [0u8; 8192];
    let _ =
        tokio::time::timeout(std::time::Duration::from_millis(500), stream.read(&mut buf)).await;
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
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
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
    }
}
