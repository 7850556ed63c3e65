//! The worker's UDP socket, read and written many datagrams per syscall (issue 19, item 4).
//!
//! Reads take up to [`quinn_udp::BATCH_SIZE`] datagrams in one `recvmmsg`, and a buffer the
//! kernel coalesced (UDP GRO) is split back into its datagrams. Writes are queued for the
//! whole loop pass and flushed at its end, in order:
//! - a run of datagrams to one address, all of one size but the last (the packets of a video
//!   frame), goes out in one `sendmsg` with UDP GSO (quinn-udp, which falls back to one
//!   datagram per call where the kernel or the network card refuses GSO; the run it refused
//!   is sent again one by one, not lost);
//! - the others (voice, RTCP, a mix to each phone of a room) go out up to [`SEND_BATCH`] in one
//!   `sendmmsg`, each from its own buffer, uncopied. (quinn-udp has no `sendmmsg`, and nix's
//!   allocates on every call and cannot be held across an await: hence the one small `unsafe`
//!   call below.)

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;

use std::os::fd::{AsRawFd, RawFd};

use quinn_udp::{BATCH_SIZE, RecvMeta, UdpSocketState};
use socket2::SockAddr;
use tandem_media::transmit::Transmit;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Largest datagram read alone; a GRO buffer holds up to the kernel's number of them.
const DATAGRAM: usize = 2048;

/// Most datagrams one `sendmmsg` sends.
const SEND_BATCH: usize = 64;

/// Largest datagram that goes into a GSO run (larger ones go alone): the kernel caps a GSO
/// send at 64 KiB in all.
const GSO_DATAGRAM: usize = 1500;

pub struct MediaSocket {
    socket: UdpSocket,
    state: UdpSocketState,
    /// Room for [`BATCH_SIZE`] reads, each `slot` bytes.
    incoming: Box<[u8]>,
    slot: usize,
    meta: [RecvMeta; BATCH_SIZE],
    /// What this pass has to send, in order.
    outgoing: Vec<Transmit>,
    /// A GSO run's datagrams laid end to end.
    run: Vec<u8>,
}

/// What one read did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub datagrams: usize,
    /// The read was full, so more may be waiting. When it was not, the socket was empty a
    /// moment ago: reading again now would most likely cost a syscall for nothing, so the loop
    /// waits for readiness instead (tokio still counts it readable, and the read that then
    /// finds nothing is the one that clears it, after the pass has done its work).
    pub more: bool,
    /// Syscalls made: 0 when tokio already knew the socket had nothing.
    pub calls: u64,
}

/// What one flush did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    pub datagrams: u64,
    pub syscalls: u64,
}

impl MediaSocket {
    pub fn new(socket: UdpSocket) -> io::Result<Self> {
        let state = UdpSocketState::new((&socket).into())?;
        let slot = DATAGRAM * state.gro_segments().max(1);
        Ok(Self {
            socket,
            state,
            incoming: vec![0u8; slot * BATCH_SIZE].into_boxed_slice(),
            slot,
            meta: [RecvMeta::default(); BATCH_SIZE],
            outgoing: Vec::new(),
            run: Vec::new(),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Waits until a read may find something.
    pub async fn readable(&self) -> io::Result<()> {
        self.socket.readable().await
    }

    /// Reads what is waiting, one syscall's worth, and hands each datagram to `each`.
    pub fn try_receive(&mut self, mut each: impl FnMut(SocketAddr, &[u8])) -> Received {
        let Self {
            socket,
            state,
            incoming,
            slot,
            meta,
            ..
        } = self;
        let socket = &*socket;
        let mut chunks = incoming.chunks_mut(*slot);
        let mut slices: [IoSliceMut<'_>; BATCH_SIZE] = std::array::from_fn(|_| {
            IoSliceMut::new(chunks.next().expect("BATCH_SIZE slots were allocated"))
        });
        let mut calls = 0;
        let read = socket.try_io(Interest::READABLE, || {
            calls += 1;
            state.recv(socket.into(), &mut slices, meta)
        });
        let buffers = match read {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Received {
                    calls,
                    ..Received::default()
                };
            }
            Err(e) => {
                tracing::debug!(error = %e, "media socket read failed");
                return Received {
                    calls,
                    ..Received::default()
                };
            }
        };
        let mut handed = 0;
        for (m, buf) in meta.iter().zip(slices.iter()).take(buffers) {
            let stride = if m.stride == 0 { m.len } else { m.stride };
            for datagram in buf[..m.len.min(buf.len())].chunks(stride.max(1)) {
                each(m.addr, datagram);
                handed += 1;
            }
        }
        Received {
            datagrams: handed,
            more: buffers == BATCH_SIZE,
            calls,
        }
    }

    /// Queues a datagram for the end of the pass.
    pub fn queue(&mut self, transmit: Transmit) {
        self.outgoing.push(transmit);
    }

    /// Sends everything queued, in order; a datagram the kernel refuses is logged and dropped
    /// (UDP: the peers' own retransmission and loss reports deal with it). Waits while the
    /// socket's send buffer is full.
    pub async fn flush(&mut self) -> Flushed {
        let mut flushed = Flushed::default();
        let outgoing = std::mem::take(&mut self.outgoing);
        let max_run = self.state.max_gso_segments().max(1);
        let mut i = 0;
        while i < outgoing.len() {
            let n = gso_run(&outgoing[i..], max_run);
            if n > 1 {
                self.run.clear();
                for t in &outgoing[i..i + n] {
                    self.run.extend_from_slice(&t.contents);
                }
                let transmit = quinn_udp::Transmit {
                    destination: outgoing[i].destination,
                    ecn: None,
                    contents: &self.run,
                    segment_size: Some(outgoing[i].contents.len()),
                    src_ip: None,
                };
                let (calls, sent) = send_run(&self.socket, &self.state, &transmit).await;
                flushed.syscalls += calls;
                if !sent {
                    // Refused as a run (the kernel or the network card cannot segment it:
                    // quinn-udp then stops GSO for the socket): the same datagrams one by one.
                    flushed.syscalls += send_many(&self.socket, &outgoing[i..i + n]).await;
                }
                i += n;
            } else {
                // The datagrams up to the next run, or a batch of them.
                let mut end = i + 1;
                while end < outgoing.len()
                    && end - i < SEND_BATCH
                    && gso_run(&outgoing[end..], max_run) == 1
                {
                    end += 1;
                }
                flushed.syscalls += send_many(&self.socket, &outgoing[i..end]).await;
                i = end;
            }
        }
        flushed.datagrams = outgoing.len() as u64;
        // Keep the queue's room for the next pass.
        self.outgoing = outgoing;
        self.outgoing.clear();
        flushed
    }
}

/// Sends `batch` with as few `sendmmsg` calls as the kernel allows, waiting for room in the
/// send buffer; a datagram refused for any other reason is logged and skipped. How many calls
/// it made.
async fn send_many(socket: &UdpSocket, batch: &[Transmit]) -> u64 {
    let mut calls = 0;
    let mut sent = 0;
    while sent < batch.len() {
        let rest = &batch[sent..];
        match with_room(socket, &mut calls, || send_mmsg(socket.as_raw_fd(), rest)).await {
            Ok(n) => sent += n.max(1),
            Err(e) => {
                // The first datagram was refused (a later one would end the batch short).
                tracing::debug!(error = %e, destination = %rest[0].destination, "media send failed");
                sent += 1;
            }
        }
    }
    calls
}

/// Makes one send syscall with `attempt` until the socket's send buffer has room for it;
/// counts the syscalls made in `calls` (tokio may answer WouldBlock without one, when it does
/// not yet know the socket is writable).
async fn with_room<T>(
    socket: &UdpSocket,
    calls: &mut u64,
    mut attempt: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    loop {
        let result = socket.try_io(Interest::WRITABLE, || {
            *calls += 1;
            attempt()
        });
        match result {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket.writable().await?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// One `sendmmsg` of the first [`SEND_BATCH`] of `batch`: how many the kernel took.
fn send_mmsg(fd: RawFd, batch: &[Transmit]) -> io::Result<usize> {
    let n = batch.len().min(SEND_BATCH);
    let addresses: [Option<SockAddr>; SEND_BATCH] =
        std::array::from_fn(|i| batch.get(i).map(|t| SockAddr::from(t.destination)));
    let mut iovecs: [libc::iovec; SEND_BATCH] = std::array::from_fn(|i| libc::iovec {
        iov_base: batch.get(i).map_or(std::ptr::null_mut(), |t| {
            t.contents.as_ptr().cast_mut().cast()
        }),
        iov_len: batch.get(i).map_or(0, |t| t.contents.len()),
    });
    // SAFETY: mmsghdr is plain data; all-zero is an empty header (no name, no control).
    let mut headers: [libc::mmsghdr; SEND_BATCH] = unsafe { std::mem::zeroed() };
    for ((header, iovec), address) in headers
        .iter_mut()
        .zip(iovecs.iter_mut())
        .zip(&addresses)
        .take(n)
    {
        let address = address.as_ref().expect("one address per datagram");
        header.msg_hdr.msg_name = address.as_ptr().cast_mut().cast();
        header.msg_hdr.msg_namelen = address.len();
        header.msg_hdr.msg_iov = iovec;
        header.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: the first `n` headers point at addresses, iovecs and datagrams that outlive the
    // call; the kernel only reads them (and writes each header's msg_len).
    let sent = unsafe { libc::sendmmsg(fd, headers.as_mut_ptr(), n as libc::c_uint, 0) };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

/// Sends one GSO run, waiting for room in the send buffer: how many calls it made, and whether
/// the run went out (an error is logged).
async fn send_run(
    socket: &UdpSocket,
    state: &UdpSocketState,
    transmit: &quinn_udp::Transmit<'_>,
) -> (u64, bool) {
    let mut calls = 0;
    let result = with_room(socket, &mut calls, || {
        state.try_send(socket.into(), transmit)
    })
    .await;
    if let Err(e) = &result {
        tracing::debug!(error = %e, destination = %transmit.destination, "media GSO send failed");
    }
    (calls, result.is_ok())
}

/// How many datagrams from the start of `queue` go out as one GSO send: same destination, all
/// the first's size but the last, which may be shorter; at most `max` of them and 64 KiB.
fn gso_run(queue: &[Transmit], max: usize) -> usize {
    let first = &queue[0];
    let size = first.contents.len();
    if max < 2 || size == 0 || size > GSO_DATAGRAM {
        return 1;
    }
    let mut n = 1;
    let mut total = size;
    for t in &queue[1..] {
        let len = t.contents.len();
        if n == max
            || t.destination != first.destination
            || len == 0
            || len > size
            || total + len > u16::MAX as usize - 8 - 40
        {
            break;
        }
        n += 1;
        total += len;
        if len < size {
            break;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(port: u16, len: usize) -> Transmit {
        Transmit {
            source: "127.0.0.1:1".parse().unwrap(),
            destination: SocketAddr::from(([127, 0, 0, 1], port)),
            contents: vec![port as u8; len],
        }
    }

    #[test]
    fn a_run_is_one_destination_one_size_and_may_end_shorter() {
        let frame = [to(5, 1100), to(5, 1100), to(5, 700), to(5, 1100)];
        assert_eq!(gso_run(&frame, 64), 3, "the shorter one ends the run");
        let mixed = [to(5, 1100), to(6, 1100), to(5, 1100)];
        assert_eq!(gso_run(&mixed, 64), 1, "another destination ends it");
        let growing = [to(5, 700), to(5, 1100)];
        assert_eq!(gso_run(&growing, 64), 1, "a larger one cannot follow");
        assert_eq!(gso_run(&frame, 1), 1, "no GSO, no run");
        assert_eq!(gso_run(&frame, 2), 2, "at most what the kernel takes");
        let big = [to(5, 1600), to(5, 1600)];
        assert_eq!(gso_run(&big, 64), 1);
        let many: Vec<_> = (0..100).map(|_| to(5, 1400)).collect();
        assert!(gso_run(&many, 64) * 1400 < 65_000);
    }

    fn datagram(destination: SocketAddr, fill: u8, len: usize) -> Transmit {
        Transmit {
            source: "127.0.0.1:1".parse().unwrap(),
            destination,
            contents: vec![fill; len],
        }
    }

    async fn bound() -> MediaSocket {
        MediaSocket::new(UdpSocket::bind("127.0.0.1:0").await.unwrap()).unwrap()
    }

    /// Reads until `want` datagrams came, or a second passed.
    async fn read_all(socket: &mut MediaSocket, want: usize) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        while got.len() < want {
            tokio::select! {
                _ = socket.readable() => {}
                _ = tokio::time::sleep_until(deadline) => break,
            }
            socket.try_receive(|from, data| got.push((from, data.to_vec())));
        }
        got
    }

    #[tokio::test]
    async fn a_frame_goes_out_in_one_call_and_arrives_as_its_datagrams_in_order() {
        let mut server = bound().await;
        let plain = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = plain.local_addr().unwrap();
        for (i, len) in [1100, 1100, 1100, 640].into_iter().enumerate() {
            server.queue(datagram(to, i as u8, len));
        }
        server.queue(datagram(other.local_addr().unwrap(), 9, 80));
        let flushed = server.flush().await;
        assert_eq!(flushed.datagrams, 5);
        if server.state.max_gso_segments() > 1 {
            assert_eq!(
                flushed.syscalls, 2,
                "the frame in one GSO send, the voice alone"
            );
        } else {
            assert_eq!(flushed.syscalls, 5);
        }
        let mut buf = [0u8; 2048];
        for (i, len) in [1100, 1100, 1100, 640].into_iter().enumerate() {
            let n = plain.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &vec![i as u8; len][..], "datagram {i}");
        }
        let n = other.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], &[9u8; 80][..]);
    }

    /// SO_NO_CHECK (no UDP checksums) makes Linux refuse every GSO send with EINVAL, as a
    /// network card without checksum offload does with EIO: the refused frame still arrives,
    /// whole and in order, and GSO is off for what follows.
    #[tokio::test]
    async fn a_frame_the_kernel_refuses_to_segment_is_sent_one_by_one() {
        let mut server = bound().await;
        if server.state.max_gso_segments() < 2 {
            return; // no GSO here: nothing to refuse
        }
        let off: libc::c_int = 1;
        // SAFETY: a valid socket and a c_int option of the right size.
        let set = unsafe {
            libc::setsockopt(
                server.socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_NO_CHECK,
                (&raw const off).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(set, 0, "{}", io::Error::last_os_error());
        let plain = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = plain.local_addr().unwrap();
        for round in 0..2u8 {
            for (i, len) in [1100, 1100, 1100, 640].into_iter().enumerate() {
                server.queue(datagram(to, 10 * round + i as u8, len));
            }
            let flushed = server.flush().await;
            assert_eq!(flushed.datagrams, 4);
            let mut buf = [0u8; 2048];
            for (i, len) in [1100, 1100, 1100, 640].into_iter().enumerate() {
                let n =
                    tokio::time::timeout(std::time::Duration::from_secs(1), plain.recv(&mut buf))
                        .await
                        .unwrap_or_else(|_| panic!("round {round}: datagram {i} never came"))
                        .unwrap();
                assert_eq!(&buf[..n], &vec![10 * round + i as u8; len][..]);
            }
        }
        assert_eq!(
            server.state.max_gso_segments(),
            1,
            "GSO is off after the refusal"
        );
    }

    #[tokio::test]
    async fn a_room_s_mix_to_each_phone_goes_out_in_one_call() {
        let mut server = bound().await;
        let mut phones = Vec::new();
        for _ in 0..SEND_BATCH + 6 {
            phones.push(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        }
        for (i, phone) in phones.iter().enumerate() {
            server.queue(datagram(phone.local_addr().unwrap(), i as u8, 172));
        }
        let flushed = server.flush().await;
        assert_eq!(
            flushed,
            Flushed {
                datagrams: phones.len() as u64,
                syscalls: 2
            },
            "a batch of {SEND_BATCH}, then the rest"
        );
        let mut buf = [0u8; 2048];
        for (i, phone) in phones.iter().enumerate() {
            let n = phone.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &[i as u8; 172][..], "phone {i}");
        }
    }

    #[tokio::test]
    async fn a_datagram_the_kernel_refuses_is_skipped_and_the_rest_go_out() {
        let mut server = bound().await;
        let phone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = phone.local_addr().unwrap();
        server.queue(datagram(to, 1, 100));
        // Port 0 is no destination: sendmmsg ends its batch there, and that one fails alone.
        server.queue(datagram(SocketAddr::from(([127, 0, 0, 1], 0)), 2, 100));
        server.queue(datagram(to, 3, 100));
        let flushed = server.flush().await;
        assert_eq!(flushed.datagrams, 3);
        let mut buf = [0u8; 2048];
        for fill in [1u8, 3] {
            let n = phone.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &[fill; 100][..]);
        }
    }

    #[tokio::test]
    async fn reads_come_in_batches_and_a_coalesced_buffer_is_split_back() {
        let mut server = bound().await;
        let to = server.socket.local_addr().unwrap();
        // A plain peer: 40 datagrams, more than one read's worth.
        let plain = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for i in 0..40u8 {
            plain.send_to(&[i; 100], to).await.unwrap();
        }
        // Loopback delivers within send_to: all 40 wait, and a read takes a batch of them.
        server.readable().await.unwrap();
        let mut got = Vec::new();
        let first = server.try_receive(|from, data| got.push((from, data.to_vec())));
        assert_eq!(
            first,
            Received {
                datagrams: BATCH_SIZE,
                more: true,
                calls: 1
            }
        );
        let second = server.try_receive(|from, data| got.push((from, data.to_vec())));
        assert_eq!(
            second,
            Received {
                datagrams: 40 - BATCH_SIZE,
                more: false,
                calls: 1
            }
        );
        for (i, (from, data)) in got.iter().enumerate() {
            assert_eq!(*from, plain.local_addr().unwrap());
            assert_eq!(data, &vec![i as u8; 100]);
        }
        // A peer sending with GSO: on loopback the kernel hands a GRO reader one buffer.
        let mut sender = bound().await;
        for (i, len) in [1000, 1000, 1000, 300].into_iter().enumerate() {
            sender.queue(datagram(to, i as u8, len));
        }
        sender.flush().await;
        let got = read_all(&mut server, 4).await;
        let lens: Vec<_> = got.iter().map(|(_, d)| d.len()).collect();
        assert_eq!(lens, [1000, 1000, 1000, 300]);
        for (i, (from, data)) in got.iter().enumerate() {
            assert_eq!(*from, sender.socket.local_addr().unwrap());
            assert!(data.iter().all(|b| *b == i as u8), "datagram {i}");
        }
    }

    /// The largest datagram UDP carries, between two small ones: each arrives whole and alone
    /// (a read slot holds a GRO buffer's worth), not cut into pieces that would each be taken
    /// for a datagram, and the small ones after it are read as before.
    #[tokio::test]
    async fn a_64_kib_datagram_is_read_whole_between_small_ones() {
        let mut server = bound().await;
        let to = server.socket.local_addr().unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        const LARGEST: usize = 65_507;
        peer.send_to(&[1; 100], to).await.unwrap();
        peer.send_to(&[2; LARGEST], to).await.unwrap();
        peer.send_to(&[3; 100], to).await.unwrap();
        let got = read_all(&mut server, 3).await;
        let lens: Vec<_> = got.iter().map(|(_, d)| d.len()).collect();
        // Without GRO a slot is 2048 bytes and the kernel truncates the large one to it.
        let large = if server.slot >= LARGEST {
            LARGEST
        } else {
            server.slot
        };
        assert_eq!(lens, [100, large, 100]);
        for (i, (_, data)) in got.iter().enumerate() {
            assert!(data.iter().all(|b| *b == i as u8 + 1), "datagram {i}");
        }
    }
}
