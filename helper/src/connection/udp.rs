//! The media socket, watched for reading only.
//!
//! tokio's `UdpSocket` is watched for writing too, so every datagram sent came back as a
//! "writable" event and another turn of the join loop; a still screen sends one (str0m's
//! padding) every few milliseconds. Sends go straight to the socket: one that would block is
//! dropped, as a full network queue drops it (RTCP's NACK asks for it again).

use std::io;
use std::net::{SocketAddr, UdpSocket};

#[cfg(unix)]
pub struct Udp(tokio::io::unix::AsyncFd<UdpSocket>);

#[cfg(not(unix))]
pub struct Udp(tokio::net::UdpSocket);

impl Udp {
    /// Needs a tokio runtime with IO enabled.
    pub fn bind(addr: SocketAddr) -> io::Result<Udp> {
        let socket = UdpSocket::bind(addr)?;
        socket.set_nonblocking(true)?;
        // SAFETY: the socket is owned here and stays open, as the same file, until the AsyncFd
        // is dropped (nothing takes it out or swaps it).
        #[cfg(unix)]
        #[allow(unsafe_code)]
        let udp = Udp(unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(socket, tokio::io::Interest::READABLE)
        }
        .map_err(io::Error::from)?);
        #[cfg(not(unix))]
        let udp = Udp(tokio::net::UdpSocket::from_std(socket)?);
        Ok(udp)
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        #[cfg(unix)]
        return self.0.get_ref().local_addr();
        #[cfg(not(unix))]
        return self.0.local_addr();
    }

    #[cfg(unix)]
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        loop {
            let mut ready = self.0.readable().await?;
            if let Ok(got) = ready.try_io(|s| s.get_ref().recv_from(buf)) {
                return got;
            }
        }
    }

    #[cfg(not(unix))]
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.0.recv_from(buf).await
    }

    /// Sends now or not at all.
    pub fn send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<usize> {
        #[cfg(unix)]
        return self.0.get_ref().send_to(data, to);
        #[cfg(not(unix))]
        return self.0.try_send_to(data, to);
    }
}
