//! `--phones-per-session P`: voice rooms of phones (issue 19). Every session's voice call has
//! P phones on plain RTP with G.711 A-law, every phone sending recorded speech (sipp's
//! g711a.pcap) every 20 ms, `--talkers` of them holding a microphone; the others listen. The
//! phones are this program's own: a UDP socket each for SIP and for RTP, the INVITE and ACK
//! written here, and RTP sent and counted here, so that `--janus` can run the very same phones
//! in Janus's AudioBridge ([`crate::janus`]), one room per session, in the same run.
//!
//! Measured over `--seconds`, `--runs` times in a row on the same rooms: the server's CPU (per
//! phone too), RTP packets the phones sent and got back (each phone should get 50 a second),
//! and the machine's load and steal.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;

use crate::{Ws, machine, rss_kib};

/// Bytes of A-law in 20 ms.
const FRAME: usize = 160;
const TICK: Duration = Duration::from_millis(20);
/// Packets a phone should get a second: one per 20 ms.
const PER_SECOND: f64 = 50.0;

/// One phone: its RTP socket, where its RTP goes, and what it got back.
pub struct Phone {
    pub rtp: Arc<UdpSocket>,
    pub peer: SocketAddr,
    pub received: Arc<AtomicU64>,
}

impl Phone {
    pub async fn bind() -> anyhow::Result<(Arc<UdpSocket>, SocketAddr)> {
        let rtp = UdpSocket::bind("127.0.0.1:0").await?;
        let local = rtp.local_addr()?;
        Ok((Arc::new(rtp), local))
    }

    pub fn new(rtp: Arc<UdpSocket>, peer: SocketAddr) -> Self {
        let received = Arc::new(AtomicU64::new(0));
        let (socket, count) = (rtp.clone(), received.clone());
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((n, _)) = socket.recv_from(&mut buf).await {
                // RTCP (multiplexed or not) is not the voice.
                if n > 12 && !(200..=204).contains(&buf[1]) {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Self {
            rtp,
            peer,
            received,
        }
    }
}

/// Sends every phone's speech every 20 ms until the tasks are aborted, the rooms spread over
/// the 20 ms so that they do not all send at once; `sent` counts the packets.
pub fn speak(
    phones: Vec<Arc<Vec<Phone>>>,
    speech: Arc<Vec<u8>>,
    sent: Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let rooms = phones.len().max(1);
    phones
        .into_iter()
        .enumerate()
        .map(|(r, room)| {
            let (speech, sent) = (speech.clone(), sent.clone());
            tokio::spawn(async move {
                let start = tokio::time::Instant::now() + TICK.mul_f64(r as f64 / rooms as f64);
                let mut tick = tokio::time::interval_at(start, TICK);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                let frames = speech.len() / FRAME;
                let ssrc_base = rand_u32();
                for n in 0u32.. {
                    tick.tick().await;
                    let at = (n as usize % frames) * FRAME;
                    for (k, phone) in room.iter().enumerate() {
                        let mut packet = Vec::with_capacity(12 + FRAME);
                        packet.extend_from_slice(&[0x80, 8]);
                        packet.extend_from_slice(&(n as u16).to_be_bytes());
                        packet.extend_from_slice(&(n.wrapping_mul(FRAME as u32)).to_be_bytes());
                        packet.extend_from_slice(&ssrc_base.wrapping_add(k as u32).to_be_bytes());
                        packet.extend_from_slice(&speech[at..at + FRAME]);
                        if phone.rtp.send_to(&packet, phone.peer).await.is_ok() {
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect()
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    t.subsec_nanos() ^ (t.as_secs() as u32).rotate_left(16)
}

/// One measured window.
pub struct Window {
    pub cpu_pct: f64,
    pub sent: u64,
    pub received: u64,
    /// Phones that got less than half of what was due them in the window.
    pub short: usize,
    pub machine: String,
}

/// Measures `runs` windows of `seconds` each on phones that are already talking.
pub async fn measure(
    pid: u32,
    rooms: &[Arc<Vec<Phone>>],
    sent: &AtomicU64,
    seconds: u64,
    runs: usize,
) -> anyhow::Result<Vec<Window>> {
    let each = || async {
        let got: Vec<u64> = rooms
            .iter()
            .flat_map(|r| r.iter())
            .map(|p| p.received.load(Ordering::Relaxed))
            .collect();
        anyhow::Ok((sent.load(Ordering::Relaxed), got))
    };
    let windows = machine::windows(pid, seconds, runs, each)
        .await?
        .into_iter()
        .map(|w| {
            let (sent0, got0) = w.before;
            let (sent1, got1) = w.after;
            let got: Vec<u64> = got1.iter().zip(&got0).map(|(a, b)| a - b).collect();
            let half_due = (PER_SECOND * w.wall / 2.0) as u64;
            Window {
                cpu_pct: w.cpu_pct,
                sent: sent1 - sent0,
                received: got.iter().sum(),
                short: got.iter().filter(|n| **n < half_due).count(),
                machine: w.machine,
            }
        })
        .collect();
    Ok(windows)
}

/// Prints the windows of one server, with the spread over runs.
pub fn report(
    name: &str,
    pid: u32,
    windows: &[Window],
    phones: usize,
    seconds: u64,
) -> anyhow::Result<f64> {
    let expected = phones as f64 * PER_SECOND * seconds as f64;
    println!("{name}:");
    for (i, w) in windows.iter().enumerate() {
        let per_second = (w.sent + w.received) as f64 / seconds as f64;
        println!(
            "  run {}: server CPU {:.1} % of one core ({:.3} % per phone; {per_second:.0} datagrams/s, {:.0} per core-second); RTP sent {} ({:.0} %), got back {} ({:.1} % of the {expected:.0} due; {} phones got less than half theirs); {}",
            i + 1,
            w.cpu_pct,
            w.cpu_pct / phones as f64,
            per_second / (w.cpu_pct / 100.0).max(1e-9),
            w.sent,
            w.sent as f64 / expected * 100.0,
            w.received,
            w.received as f64 / expected * 100.0,
            w.short,
            w.machine,
        );
    }
    let (min, median, max) = machine::spread(windows.iter().map(|w| w.cpu_pct).collect());
    println!(
        "  server CPU over {} runs: min {min:.1} %, median {median:.1} %, max {max:.1} %; per phone: median {:.3} % of a core; RSS {} MiB",
        windows.len(),
        median / phones as f64,
        rss_kib(pid)? / 1024,
    );
    Ok(median / phones as f64)
}

/// A phone's call into Tandem: INVITE with an SDP offering PCMA at `rtp`, the 200's SDP read
/// for where Tandem wants the RTP, ACK. Returns that address.
pub async fn dial(
    server: SocketAddr,
    number: &str,
    rtp: SocketAddr,
    id: usize,
) -> anyhow::Result<SocketAddr> {
    let sip = UdpSocket::bind("127.0.0.1:0").await?;
    let local = sip.local_addr()?;
    let call_id = format!("load-{id}-{}@127.0.0.1", rand_u32());
    let tag = format!("t{id}x{}", rand_u32());
    let sdp = format!(
        "v=0\r\no=load {id} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n",
        rtp.port()
    );
    let from = format!("\"Load {id}\" <sip:load{id}@127.0.0.1>;tag={tag}");
    let invite = format!(
        "INVITE sip:{number}@{server} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{}i{id}\r\nFrom: {from}\r\nTo: <sip:{number}@{server}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:load{id}@{local}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        rand_u32(),
        sdp.len()
    );
    let mut buf = vec![0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = 'call: loop {
        sip.send_to(invite.as_bytes(), server).await?;
        // Retransmitted every 500 ms until a response comes (RFC 3261 17.1.1.2, loosely).
        let wait = tokio::time::sleep(Duration::from_millis(500));
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                r = sip.recv_from(&mut buf) => {
                    let (n, _) = r?;
                    let text = String::from_utf8_lossy(&buf[..n]).to_string();
                    let code: u16 = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
                    if code >= 300 {
                        bail!("phone {id}: INVITE refused: {}", text.lines().next().unwrap_or(""));
                    }
                    if code == 200 {
                        break 'call text;
                    }
                    // A provisional response: no more retransmissions, wait for the answer.
                    wait.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(30));
                }
            }
        }
        if Instant::now() > deadline {
            bail!("phone {id}: no answer to the INVITE");
        }
    };
    let header = |name: &str| -> Option<String> {
        answer.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let to = header("To").context("no To in the 200")?;
    let contact = header("Contact")
        .and_then(|c| {
            let start = c.find('<')? + 1;
            let end = c.find('>')?;
            Some(c[start..end].to_string())
        })
        .unwrap_or_else(|| format!("sip:{number}@{server}"));
    let port: u16 = answer
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .context("no m=audio in the answer")?;
    let host = answer
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .context("no c= in the answer")?
        .trim()
        .to_string();
    let ack = format!(
        "ACK {contact} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{}a{id}\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        rand_u32()
    );
    sip.send_to(ack.as_bytes(), server).await?;
    // The socket stays open for the call's life, so Tandem's in-dialog requests reach a port.
    tokio::spawn(async move {
        let mut buf = vec![0u8; 8192];
        while sip.recv_from(&mut buf).await.is_ok() {}
    });
    Ok(format!("{host}:{port}").parse()?)
}

/// The CSR's side of one room: start the call, take back the CSR's own microphone, and give
/// one to each of the first `talkers` phones in the call. Ends when `until` passes.
pub async fn csr(
    mut ws: Ws,
    talkers: usize,
    ready: tokio::sync::mpsc::Sender<()>,
    until: Instant,
) -> anyhow::Result<()> {
    ws.send(Message::Text(
        json!({"type": "start_voice_call"}).to_string().into(),
    ))
    .await?;
    let mut me = Value::Null;
    let mut given = 0;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(until.into(), ws.next()).await {
        let Message::Text(text) = frame else { continue };
        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        if v["type"] == "error" {
            eprintln!("refused: {v}");
        }
        let event = &v["event"];
        if event["type"] != "voice_joined" {
            continue;
        }
        let who = event["participant"].clone();
        if me.is_null() {
            // The CSR joins first, holding a microphone: theirs goes back, for a phone.
            me = who.clone();
            ws.send(Message::Text(
                json!({"type": "take_microphone", "from": me})
                    .to_string()
                    .into(),
            ))
            .await?;
            continue;
        }
        if given < talkers {
            given += 1;
            ws.send(Message::Text(
                json!({"type": "pass_microphone", "to": who})
                    .to_string()
                    .into(),
            ))
            .await?;
            if given == talkers {
                let _ = ready.send(()).await;
            }
        }
    }
    Ok(())
}

/// Prints the comparison line of the two servers.
pub fn compare(tandem: f64, janus: f64) {
    println!(
        "per phone: Tandem {tandem:.3} % of a core, Janus AudioBridge {janus:.3} %: Tandem costs {:.2} times Janus's",
        tandem / janus.max(1e-9)
    );
}

/// What both servers' runs share.
pub struct Plan {
    pub rooms: usize,
    pub phones: usize,
    pub talkers: usize,
    pub seconds: u64,
    pub runs: usize,
    pub speech: Arc<Vec<u8>>,
}

/// Time for every phone's audio to flow (jitter buffers filled, microphones given) before the
/// first window.
const WARM_UP: Duration = Duration::from_secs(3);

/// The rooms in Tandem: a session per room, its CSR starting the call, P phones dialling its
/// number. Returns the CPU per phone (median of the runs).
pub async fn in_tandem(
    plan: &Plan,
    pid: u32,
    sip: SocketAddr,
    sessions: Vec<(Ws, String)>,
) -> anyhow::Result<f64> {
    let setup = Instant::now();
    let until =
        setup + Duration::from_secs(600) + Duration::from_secs(plan.seconds * plan.runs as u64);
    let (ready_tx, mut ready) = tokio::sync::mpsc::channel(sessions.len().max(1));
    let mut rooms = Vec::new();
    for (r, (ws, number)) in sessions.into_iter().enumerate() {
        tokio::spawn(csr(ws, plan.talkers, ready_tx.clone(), until));
        let mut phones = Vec::new();
        for k in 0..plan.phones {
            let (rtp, local) = Phone::bind().await?;
            let peer = dial(sip, &number, local, r * plan.phones + k).await?;
            phones.push(Phone::new(rtp, peer));
        }
        rooms.push(Arc::new(phones));
    }
    let sent = Arc::new(AtomicU64::new(0));
    // Tandem sends nothing to a phone before it has heard it (consent), so the phones talk
    // before the microphones can be given.
    let speakers = speak(rooms.clone(), plan.speech.clone(), sent.clone());
    for _ in 0..rooms.len() {
        tokio::time::timeout(Duration::from_secs(30), ready.recv())
            .await
            .context("the CSRs did not give every microphone")?;
    }
    println!(
        "Tandem: {} rooms of {} phones set up in {:.1} s",
        rooms.len(),
        plan.phones,
        setup.elapsed().as_secs_f64()
    );
    tokio::time::sleep(WARM_UP).await;
    let windows = measure(pid, &rooms, &sent, plan.seconds, plan.runs).await?;
    for s in speakers {
        s.abort();
    }
    report(
        "Tandem",
        pid,
        &windows,
        rooms.len() * plan.phones,
        plan.seconds,
    )
}

/// The same rooms in Janus's AudioBridge. Returns the CPU per phone (median of the runs).
pub async fn in_janus(plan: &Plan, dir: &Path, pin: bool) -> anyhow::Result<f64> {
    let (mut janus, pid, mut api) =
        crate::janus::launch(dir, pin, crate::janus::Plugin::AudioBridge).await?;
    let setup = Instant::now();
    let mut rooms = Vec::new();
    for r in 0..plan.rooms {
        let mut sockets = Vec::new();
        for _ in 0..plan.phones {
            sockets.push(Phone::bind().await?);
        }
        let locals: Vec<SocketAddr> = sockets.iter().map(|(_, a)| *a).collect();
        let peers = api.room(1000 + r as u64, &locals, plan.talkers).await?;
        rooms.push(Arc::new(
            sockets
                .into_iter()
                .zip(peers)
                .map(|((rtp, _), peer)| Phone::new(rtp, peer))
                .collect::<Vec<_>>(),
        ));
    }
    println!(
        "Janus: {} rooms of {} phones set up in {:.1} s",
        rooms.len(),
        plan.phones,
        setup.elapsed().as_secs_f64()
    );
    let sent = Arc::new(AtomicU64::new(0));
    let speakers = speak(rooms.clone(), plan.speech.clone(), sent.clone());
    tokio::time::sleep(WARM_UP).await;
    let windows = measure(pid, &rooms, &sent, plan.seconds, plan.runs).await?;
    for s in speakers {
        s.abort();
    }
    let per_phone = report(
        "Janus AudioBridge",
        pid,
        &windows,
        rooms.len() * plan.phones,
        plan.seconds,
    )?;
    janus.kill().await?;
    Ok(per_phone)
}
