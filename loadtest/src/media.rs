//! The media load: every session gets a voice call in which the CSR and the customer both hold
//! a microphone, and the customer shares a screen-sized video stream the CSR receives. Each
//! participant is a str0m client (ICE, DTLS, SRTP, as a browser) on its own UDP socket, with its
//! WebSocket for offers and answers both ways.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tandem_media::client::{Client, ClientConfig, Synthetic, VideoConfig};
use tandem_media::policy::TrackPurpose;
use tokio::net::UdpSocket;
use tokio::sync::{Mutex, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::Ws;

/// What one participant saw.
#[derive(Default)]
pub struct Seen {
    pub connected: bool,
    pub audio_packets: u64,
    pub video_frames: u64,
    pub video_lost: u64,
    pub latencies: Vec<Duration>,
}

/// Sends a command and waits for the frame that answers it (other frames are skipped).
pub async fn request(ws: &mut Ws, cmd: Value) -> anyhow::Result<Value> {
    let mut cmd = cmd;
    cmd["ref"] = json!(1);
    ws.send(Message::Text(cmd.to_string().into())).await?;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .context("no answer in 10 s")?
            .context("socket closed")??;
        let Message::Text(text) = frame else { continue };
        let v: Value = serde_json::from_str(text.as_str())?;
        if v["ref"] == 1 {
            if v["type"] == "error" {
                bail!("{cmd} refused: {v}");
            }
            return Ok(v);
        }
    }
}

/// Waits for an event of this type and returns it.
pub async fn event(ws: &mut Ws, kind: &str) -> anyhow::Result<Value> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .with_context(|| format!("no {kind} in 10 s"))?
            .context("socket closed")??;
        let Message::Text(text) = frame else { continue };
        let v: Value = serde_json::from_str(text.as_str())?;
        if v["type"] == "event" && v["event"]["type"] == kind {
            return Ok(v["event"].clone());
        }
    }
}

/// Sets the session up as described above: call, microphones, consent to view the desktop.
pub async fn prepare(csr: &mut Ws, customer: &mut Ws, customer_id: &Value) -> anyhow::Result<()> {
    request(csr, json!({"type": "start_voice_call"})).await?;
    request(customer, json!({"type": "join_voice"})).await?;
    request(csr, json!({"type": "pass_microphone", "to": customer_id})).await?;
    request(
        csr,
        json!({"type": "request_activity", "activity": "view_desktop"}),
    )
    .await?;
    let asked = event(customer, "consent_requested").await?;
    request(
        customer,
        json!({"type": "consent_reply", "request": asked["request"], "grant": true}),
    )
    .await?;
    Ok(())
}

/// Datagrams every participant of this process sent and received: what the server it talks to
/// handled, counted on this side (the same count for Tandem and for Janus).
pub static DATAGRAMS: AtomicU64 = AtomicU64::new(0);
/// Of those, the RTCP packets (reports, feedback): where the two servers differ most.
pub static RTCP: AtomicU64 = AtomicU64::new(0);

/// Counts a datagram sent or received, and whether it is RTCP (RFC 5761: an RTP version byte,
/// then a packet type of 192-223).
fn count(datagram: &[u8]) {
    DATAGRAMS.fetch_add(1, Ordering::Relaxed);
    if let [128..=191, 192..=223, ..] = datagram {
        RTCP.fetch_add(1, Ordering::Relaxed);
    }
}

/// Both counts now.
pub fn counted() -> (u64, u64) {
    (
        DATAGRAMS.load(Ordering::Relaxed),
        RTCP.load(Ordering::Relaxed),
    )
}

/// Runs one participant's media until `end`: negotiates over `ws`, answers the server's offers,
/// speaks, sends `video`, and counts what arrives.
pub async fn participant(
    mut ws: Ws,
    tone: f64,
    video: Option<VideoConfig>,
    end: Instant,
    seen: Arc<Mutex<Seen>>,
) -> anyhow::Result<Ws> {
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = socket.local_addr()?;
    let (mut client, offer, purposes) = Client::new(
        Instant::now(),
        addr,
        load_config(Some(tone)),
        video.into_iter().collect(),
    )?;
    let answer = request(
        &mut ws,
        json!({"type": "media_offer", "sdp": offer, "video": purposes}),
    )
    .await?;
    client.accept_answer(
        Instant::now(),
        answer["sdp"].as_str().context("answer sdp")?,
        answer["void_offers"].as_u64().unwrap_or(0),
    )?;
    let client = drive(client, socket, Some(&mut ws), watch::channel(end).1).await?;
    let mut s = seen.lock().await;
    s.connected = client.connected;
    s.audio_packets = client.audio_packets_in;
    for v in client.received(TrackPurpose::Screen) {
        s.video_frames += v.frames;
        s.video_lost += v.lost;
        s.latencies.extend_from_slice(&v.latencies);
    }
    Ok(ws)
}

/// What a load generator's client is: it speaks `tone`, counts what it hears without decoding.
pub fn load_config(tone: Option<f64>) -> ClientConfig {
    ClientConfig {
        tone,
        decode_audio: false,
        keep_audio: 0,
        ..ClientConfig::default()
    }
}

/// Moves `client`'s datagrams over `socket` until `end` (which may be moved), and, with `ws`,
/// answers the offers that come on it; returns the client to be read.
pub async fn drive(
    mut client: Client,
    socket: UdpSocket,
    mut ws: Option<&mut Ws>,
    end: watch::Receiver<Instant>,
) -> anyhow::Result<Client> {
    let mut buf = vec![0u8; 2048];
    loop {
        let end = *end.borrow();
        if Instant::now() >= end {
            break;
        }
        let now = Instant::now();
        if client.poll_timeout() <= now {
            client.handle_timeout(now)?;
        }
        while let Some(t) = client.poll_transmit() {
            let _ = socket.send_to(&t.contents, t.destination).await;
            count(&t.contents);
        }
        let wake = client.poll_timeout().min(end).max(Instant::now());
        let frame = async {
            match ws.as_mut() {
                Some(ws) => ws.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let (n, source) = r?;
                count(&buf[..n]);
                client.handle_receive(Instant::now(), source, &buf[..n])?;
            }
            frame = frame => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    // The server's pings (every `ws_ping_secs`): tungstenite answers them.
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => bail!("the WebSocket closed"),
                };
                let v: Value = serde_json::from_str(text.as_str())?;
                if v["type"] == "media_offer" {
                    let number = v["offer"].as_u64().unwrap_or(0);
                    if let Some(sdp) = client.accept_offer(Instant::now(), number, v["sdp"].as_str().unwrap_or(""))?
                        && let Some(ws) = ws.as_mut()
                    {
                        let answer = json!({"type": "media_answer", "offer": number, "sdp": sdp});
                        ws.send(Message::Text(answer.to_string().into())).await?;
                    }
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
    }
    Ok(client)
}

/// The `p` quantile of sorted frame latencies, in milliseconds (0 when there are none).
pub fn latency_ms(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len().max(1) - 1) as f64 * p) as usize)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// A screen share of about 500 kbit/s: 4 KB frames at 15 frames a second.
pub fn screen() -> VideoConfig {
    VideoConfig::synthetic(
        TrackPurpose::Screen,
        Synthetic {
            frame_bytes: 4000,
            fps: 15,
            keyframe_every: 150,
        },
    )
}

/// A value from the server's /metrics text: the sample with exactly this name and labels.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The `q` quantile of histogram `name` over what it recorded between two scrapes, interpolated
/// within its bucket as Prometheus' `histogram_quantile` does; None when nothing was recorded.
pub fn histogram_quantile(before: &str, after: &str, name: &str, q: f64) -> Option<f64> {
    let buckets = |text: &str| -> Vec<(f64, f64)> {
        let prefix = format!("{name}_bucket{{le=\"");
        text.lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(&prefix)?;
                let (le, count) = rest.split_once("\"} ")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((le, count.trim().parse().ok()?))
            })
            .collect()
    };
    let (b, a) = (buckets(before), buckets(after));
    let window: Vec<(f64, f64)> = a
        .iter()
        .map(|(le, n)| {
            let was = b.iter().find(|(l, _)| l == le).map_or(0.0, |(_, c)| *c);
            (*le, n - was)
        })
        .collect();
    let total = window.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut below = (0.0, 0.0);
    for &(le, count) in &window {
        if count >= rank {
            if le.is_infinite() {
                return Some(below.0);
            }
            let within = count - below.1;
            let share = if within > 0.0 {
                (rank - below.1) / within
            } else {
                1.0
            };
            return Some(below.0 + (le - below.0) * share);
        }
        below = (le, count);
    }
    None
}

/// UDP datagrams the kernel dropped because a socket's receive buffer was full, summed over the
/// sockets `pid` owns and over all others: who lost what, the server or the load generator.
pub fn udp_drops(pid: u32) -> anyhow::Result<(u64, u64)> {
    let mut owned = std::collections::HashSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        if let Ok(link) = std::fs::read_link(fd?.path())
            && let Some(inode) = link
                .to_str()
                .and_then(|l| l.strip_prefix("socket:["))
                .and_then(|l| l.strip_suffix(']'))
        {
            owned.insert(inode.to_string());
        }
    }
    let (mut theirs, mut others) = (0, 0);
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(inode), Some(drops)) = (f.get(9), f.last()) else {
                continue;
            };
            let drops: u64 = drops.parse().unwrap_or(0);
            if owned.contains(*inode) {
                theirs += drops;
            } else {
                others += drops;
            }
        }
    }
    Ok((theirs, others))
}

#[cfg(test)]
mod tests {
    use super::histogram_quantile;

    #[test]
    fn a_quantile_is_read_from_the_buckets_recorded_between_two_scrapes() {
        let before =
            "t_bucket{le=\"0.001\"} 10\nt_bucket{le=\"0.01\"} 10\nt_bucket{le=\"+Inf\"} 10\n";
        let after =
            "t_bucket{le=\"0.001\"} 60\nt_bucket{le=\"0.01\"} 110\nt_bucket{le=\"+Inf\"} 110\n";
        // 100 new: 50 under 1 ms, 50 between 1 and 10 ms.
        let p50 = histogram_quantile(before, after, "t", 0.5).unwrap();
        assert!((p50 - 0.001).abs() < 1e-9, "{p50}");
        let p99 = histogram_quantile(before, after, "t", 0.99).unwrap();
        assert!((p99 - (0.001 + 0.009 * 0.98)).abs() < 1e-9, "{p99}");
        assert_eq!(histogram_quantile(after, after, "t", 0.5), None);
    }
}
