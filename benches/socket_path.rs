//! The media worker's socket path (issue 19, item 4): what sending and reading a loop pass's
//! datagrams costs on loopback, one syscall per datagram (as before) against the worker's
//! batched socket (`recvmmsg`; `sendmmsg`; UDP GSO for a frame's packets to one receiver).
//! On loopback a send also pays for delivering the datagram to the receiving socket. The batched
//! side also copies each datagram into the queue (the worker moves it), so it is not flattered.
//!
//! `cargo bench --bench socket_path`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tandem_actors::media_worker::socket::MediaSocket;
use tandem_media::transmit::Transmit;
use tokio::net::UdpSocket;
use tokio::runtime::Runtime;

/// Phones in a room of the Janus comparison, times a few rooms ticking together.
const VOICE: usize = 64;
/// A 4 KB screen frame: four packets to one receiver.
const FRAME: [usize; 4] = [1100, 1100, 1100, 700];

fn datagram(destination: SocketAddr, len: usize) -> Transmit {
    Transmit {
        source: "127.0.0.1:1".parse().unwrap(),
        destination,
        contents: vec![0x80; len],
    }
}

/// Reads everything waiting on `socket` (not timed).
fn drain(socket: &std::net::UdpSocket) {
    let mut buf = [0u8; 2048];
    while socket.recv(&mut buf).is_ok() {}
}

/// Times `iters` sends of a pass, emptying the receivers after each (not timed).
fn timed_sends(iters: u64, sinks: &[std::net::UdpSocket], mut send: impl FnMut()) -> Duration {
    let mut spent = Duration::ZERO;
    for _ in 0..iters {
        let started = Instant::now();
        send();
        spent += started.elapsed();
        sinks.iter().for_each(drain);
    }
    spent
}

fn receivers(n: usize) -> Vec<std::net::UdpSocket> {
    (0..n)
        .map(|_| {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let phones = receivers(VOICE);
    let voice: Vec<Transmit> = phones
        .iter()
        .map(|p| datagram(p.local_addr().unwrap(), 172))
        .collect();
    let csr = receivers(1).remove(0);
    let frame: Vec<Transmit> = FRAME
        .iter()
        .map(|len| datagram(csr.local_addr().unwrap(), *len))
        .collect();

    let plain = rt.block_on(UdpSocket::bind("127.0.0.1:0")).unwrap();
    let mut batched = rt.block_on(async {
        MediaSocket::new(UdpSocket::bind("127.0.0.1:0").await.unwrap()).unwrap()
    });

    let mut g = c.benchmark_group("socket path");
    for (name, pass, sinks) in [
        ("64 voice datagrams to 64 phones", &voice, &phones[..]),
        (
            "a 4 KB frame to one receiver",
            &frame,
            std::slice::from_ref(&csr),
        ),
    ] {
        g.bench_function(format!("send {name}: send_to each"), |b| {
            b.iter_custom(|iters| {
                timed_sends(iters, sinks, || {
                    rt.block_on(async {
                        for t in pass {
                            plain.send_to(&t.contents, t.destination).await.unwrap();
                        }
                    })
                })
            })
        });
        g.bench_function(format!("send {name}: batched"), |b| {
            b.iter_custom(|iters| {
                timed_sends(iters, sinks, || {
                    rt.block_on(async {
                        for t in pass {
                            batched.queue(t.clone());
                        }
                        batched.flush().await;
                    })
                })
            })
        });
    }

    // Reading: 64 datagrams wait (sent before the clock starts), then are read.
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let fill = |to: SocketAddr| {
        for _ in 0..VOICE {
            sender.send_to(&[0x80; 172], to).unwrap();
        }
    };
    let plain_to = plain.local_addr().unwrap();
    g.bench_function("read 64 waiting datagrams: recv_from each", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            let mut buf = [0u8; 2048];
            for _ in 0..iters {
                fill(plain_to);
                let started = Instant::now();
                for _ in 0..VOICE {
                    plain.try_recv_from(&mut buf).unwrap();
                }
                spent += started.elapsed();
            }
            spent
        })
    });
    let batched_to = batched.local_addr().unwrap();
    g.bench_function("read 64 waiting datagrams: batched", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                fill(batched_to);
                let started = Instant::now();
                let mut read = 0;
                while read < VOICE {
                    let r = rt.block_on(async {
                        batched.readable().await.unwrap();
                        batched.try_receive(|_, d| {
                            std::hint::black_box(d);
                        })
                    });
                    read += r.datagrams;
                }
                spent += started.elapsed();
            }
            spent
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
