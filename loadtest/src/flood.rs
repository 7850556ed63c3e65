//! `--media --flood RATE`: while the media sessions run, datagrams from addresses the server
//! has never routed, at RATE a second, to its media socket: a third garbage, a third RTP (as
//! if from a phone nobody called), a third STUN checks for ICE credentials nobody has. Nobody
//! can take any of them: what such a flood costs the server is what it costs to find that out
//! (the server's CPU beside a run without it; the worker's index, `owners.rs` in the actors
//! crate, keeps it from asking every call).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

/// Source addresses the flood is sent from (127.0.0.1, each its own port).
pub const SOURCES: usize = 64;
/// How often a batch is sent.
const STEP: Duration = Duration::from_millis(1);

/// The `i`th datagram of the flood.
fn datagram(i: u64) -> Vec<u8> {
    let tag = i.to_be_bytes();
    match i % 3 {
        0 => [b"\x00\x01\x00\x00garbage".as_slice(), &tag].concat(),
        1 => {
            // RTP version 2, PCMA, 20 ms of it.
            let mut p = vec![0x80, 8];
            p.extend_from_slice(&(i as u16).to_be_bytes());
            p.extend_from_slice(&((i as u32).wrapping_mul(160)).to_be_bytes());
            p.extend_from_slice(&0x5eed_u32.to_be_bytes());
            p.resize(12 + 160, 0xd5);
            p
        }
        _ => {
            // A STUN Binding request whose USERNAME names nobody (RFC 8489: type, length,
            // magic cookie, transaction id, then the attribute).
            let user = format!("{:08x}:{:08x}", i, i.rotate_left(32));
            let mut attr = vec![0x00, 0x06];
            attr.extend_from_slice(&(user.len() as u16).to_be_bytes());
            attr.extend_from_slice(user.as_bytes());
            attr.resize(attr.len().next_multiple_of(4), 0);
            let mut p = vec![0x00, 0x01];
            p.extend_from_slice(&(attr.len() as u16).to_be_bytes());
            p.extend_from_slice(&0x2112_a442_u32.to_be_bytes());
            p.extend_from_slice(&[0; 4]);
            p.extend_from_slice(&tag);
            p.extend_from_slice(&attr);
            p
        }
    }
}

/// Sends the flood to `target` at `rate` a second until `until`; answers how many it sent.
pub async fn run(target: SocketAddr, rate: u64, until: Instant) -> anyhow::Result<u64> {
    let mut sockets = Vec::with_capacity(SOURCES);
    for _ in 0..SOURCES {
        sockets.push(UdpSocket::bind("127.0.0.1:0").await?);
    }
    let start = Instant::now();
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(STEP);
    while Instant::now() < until {
        tick.tick().await;
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            // A full socket buffer drops the datagram, as the network would.
            let _ = sockets[sent as usize % SOURCES].try_send_to(&datagram(sent), target);
            sent += 1;
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::datagram;

    #[test]
    fn the_flood_is_garbage_rtp_and_stun_in_turn() {
        assert!(datagram(0).starts_with(b"\x00\x01\x00\x00garbage"));
        let rtp = datagram(1);
        assert_eq!((rtp[0], rtp[1], rtp.len()), (0x80, 8, 172));
        let stun = datagram(2);
        // Type, then the length of what follows the 20-byte header.
        assert_eq!(&stun[..2], &[0, 1]);
        assert_eq!(
            usize::from(u16::from_be_bytes([stun[2], stun[3]])),
            stun.len() - 20
        );
        assert_eq!(&stun[4..8], &0x2112_a442_u32.to_be_bytes());
    }
}
