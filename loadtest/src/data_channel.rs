//! `--data-channel MB`: what a WebRTC data channel would give F2, measured beside the HTTP
//! path it was weighed against (docs/performance.md, F2). Two str0m peers, each on a thread of
//! its own with a real UDP socket on loopback, as the helper and a browser would be (with no
//! server between them, so this is the data channel's best case): one writes MB of 64 KiB
//! messages as fast as SCTP takes them (flow control by the channel's buffered amount), the
//! other reads them. Prints MB/s and the CPU of the whole process per MB.

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

const MESSAGE: usize = 64 * 1024;
/// Writes stop above this much buffered, and go on below it.
const HIGH_WATER: usize = 1 << 20;

/// One run: (MB/s, CPU ms per MB).
pub fn run(mb: usize) -> Result<(f64, f64)> {
    str0m::crypto::from_feature_flags().install_process_default();
    let total = mb * 1_000_000;
    let (offer_tx, offer_rx) = mpsc::channel::<SdpOffer>();
    let (answer_tx, answer_rx) = mpsc::channel::<SdpAnswer>();
    let receiver = std::thread::spawn(move || -> Result<Instant> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        let addr = socket.local_addr()?;
        let mut rtc = Rtc::builder().build(Instant::now());
        rtc.add_local_candidate(Candidate::host(addr, "udp")?);
        let offer = offer_rx.recv()?;
        let answer = rtc.sdp_api().accept_offer(offer)?;
        answer_tx.send(answer)?;
        let mut got = 0usize;
        drive(&mut rtc, &socket, addr, |_, event| {
            if let Some(Event::ChannelData(d)) = event {
                got += d.data.len();
            }
            got >= total
        })?;
        Ok(Instant::now())
    });
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let addr = socket.local_addr()?;
    let mut rtc = Rtc::builder().build(Instant::now());
    rtc.add_local_candidate(Candidate::host(addr, "udp")?);
    let mut change = rtc.sdp_api();
    let cid = change.add_channel("files".into());
    let (offer, pending) = change.apply().ok_or_else(|| anyhow!("no offer"))?;
    offer_tx.send(offer)?;
    let answer = answer_rx
        .recv_timeout(Duration::from_secs(10))
        .context("the answer")?;
    rtc.sdp_api().accept_answer(pending, answer)?;

    let payload = vec![7u8; MESSAGE];
    let mut sent = 0usize;
    let mut open = false;
    let mut started = None;
    let cpu_before = crate::cpu_ticks(std::process::id())?;
    drive(&mut rtc, &socket, addr, |rtc, event| {
        if matches!(event, Some(Event::ChannelOpen(id, _)) if *id == cid) {
            open = true;
            started = Some(Instant::now());
            if let Some(mut ch) = rtc.channel(cid) {
                ch.set_buffered_amount_low_threshold(HIGH_WATER / 2);
            }
        }
        if open {
            while sent < total {
                let Some(mut ch) = rtc.channel(cid) else {
                    break;
                };
                if ch.buffered_amount() > HIGH_WATER {
                    break;
                }
                let n = MESSAGE.min(total - sent);
                match ch.write(true, &payload[..n]) {
                    Ok(true) => sent += n,
                    _ => break,
                }
            }
        }
        false
    })
    .ok();
    // The writer's loop ends when the receiver's does (its socket goes quiet): see `drive`.
    // Ticks of 10 ms.
    let cpu = (crate::cpu_ticks(std::process::id())? - cpu_before) as f64 / 100.0;
    let done = receiver
        .join()
        .map_err(|_| anyhow!("the receiver panicked"))??;
    let secs = started
        .map(|s| done.saturating_duration_since(s).as_secs_f64())
        .unwrap_or(f64::NAN);
    Ok((mb as f64 / secs, cpu * 1000.0 / mb as f64))
}

/// Runs `rtc` on `socket` until `on_event` says done, or nothing arrives for 2 s. `on_event`
/// also runs with `None` after every input, so a writer can go on when room is made.
fn drive(
    rtc: &mut Rtc,
    socket: &UdpSocket,
    local: SocketAddr,
    mut on_event: impl FnMut(&mut Rtc, Option<&Event>) -> bool,
) -> Result<()> {
    let mut buf = vec![0u8; 2000];
    let mut quiet_since = Instant::now();
    loop {
        // Everything str0m has to say, then wait for the socket until its next deadline.
        let deadline = loop {
            match rtc.poll_output()? {
                Output::Timeout(t) => break t,
                Output::Transmit(t) => {
                    socket.send_to(&t.contents, t.destination)?;
                }
                Output::Event(e) => {
                    if on_event(rtc, Some(&e)) {
                        return Ok(());
                    }
                }
            }
        };
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_micros(100));
        socket.set_read_timeout(Some(wait))?;
        match socket.recv_from(&mut buf) {
            Ok((n, source)) => {
                quiet_since = Instant::now();
                let receive = Receive::new(Protocol::Udp, source, local, &buf[..n])?;
                rtc.handle_input(Input::Receive(Instant::now(), receive))?;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if quiet_since.elapsed() > Duration::from_secs(2) {
                    return Err(anyhow!("nothing arrived for 2 s"));
                }
                rtc.handle_input(Input::Timeout(Instant::now()))?;
            }
            Err(e) => return Err(e.into()),
        }
        if on_event(rtc, None) {
            return Ok(());
        }
    }
}
