//! What the flood tests share: many connections from the loopback addresses other than
//! 127.0.0.1 (the whole 127.0.0.0/8 is loopback, so each is an address of its own to the
//! server's per-address limits), and the open files to hold thousands of them.

use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `to` from `from`, one of the loopback addresses.
pub async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    socket.connect(to).await.unwrap()
}

/// Raises this process's open-file soft limit to its hard limit (the server under test runs in
/// it, and a connection on loopback is a descriptor at each end) and checks that `needed` fit.
pub fn open_files_for(needed: u64) {
    let (limit, _) = tandem::open_files::raise();
    assert!(
        limit.soft.is_none_or(|n| n >= needed),
        "this test needs {needed} open files (raise the hard limit: ulimit -Hn); it has {limit}"
    );
}
