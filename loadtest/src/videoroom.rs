//! `--media --janus`: the media sessions of [`crate::media`] in Janus's VideoRoom, after
//! Tandem's, for the forwarding path side by side (issue 19, item 7). A room per session, the
//! CSR and the customer each a publisher (the CSR its voice, the customer its voice and the
//! same screen share), each subscribed to the other's feed. The clients are the same str0m
//! clients as Tandem's, with the same offer (Opus, VP8, the three data channels); what differs
//! is Janus's shape: a peer connection to publish and another to subscribe, so four per
//! session where Tandem has two.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tandem_media::client::{Client, VideoConfig};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::janus::{Api, Plugin};
use crate::media::{counted, drive, latency_ms, load_config, screen};

/// What a measured run of one server gave.
pub struct Figures {
    /// The server's CPU over the measured time, % of one core.
    pub cpu_pct: f64,
    pub sessions: usize,
}

/// Prints the comparison line of the two servers.
pub fn compare(tandem: &Figures, janus: &Figures) {
    let per = |f: &Figures| f.cpu_pct / f.sessions.max(1) as f64;
    println!(
        "per media session: Tandem {:.3} % of a core, Janus VideoRoom {:.3} %: Tandem costs {:.2} times Janus's",
        per(tandem),
        per(janus),
        per(tandem) / per(janus).max(1e-9)
    );
}

/// One publisher or subscriber: its client, run on its own task until the end.
type Peer = JoinHandle<anyhow::Result<Client>>;

/// The sessions in Janus: `sessions` rooms measured over `windows` windows of `seconds`.
pub async fn in_janus(
    sessions: usize,
    seconds: u64,
    windows: usize,
    dir: &Path,
    pin: bool,
) -> anyhow::Result<Figures> {
    const WARM_UP: Duration = Duration::from_secs(3);
    let (mut janus, pid, mut api) = crate::janus::launch(dir, pin, Plugin::VideoRoom).await?;
    let setup = Instant::now();
    // The clients run from set-up on (ICE must answer Janus's checks) until stopped after the
    // measured windows, which start when the last room is up and warm.
    let (stop, end) = watch::channel(setup + Duration::from_secs(3600));
    let mut rooms = Vec::new();
    for r in 0..sessions {
        rooms.push(room(&mut api, 2000 + r as u64, &end).await?);
    }
    println!(
        "Janus VideoRoom: {sessions} rooms set up in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    tokio::time::sleep(WARM_UP).await;
    let cpu_before = crate::cpu_ticks(pid)?;
    let measured = Instant::now();
    let counted_before = counted();
    let count = || async { anyhow::Ok(counted().0 as f64) };
    crate::machine::datagram_windows(
        "Janus (datagrams counted by the clients)",
        pid,
        seconds,
        windows,
        count,
    )
    .await?;
    let wall = measured.elapsed().as_secs_f64();
    let cpu_pct = (crate::cpu_ticks(pid)? - cpu_before) as f64 / 100.0 / wall * 100.0;
    let counted_after = counted();
    println!(
        "Janus, counted by the clients: {:.0} datagrams/s sent and received, {:.0} of them RTCP",
        (counted_after.0 - counted_before.0) as f64 / wall,
        (counted_after.1 - counted_before.1) as f64 / wall
    );
    // What the clients got, read when they stop, before Janus does.
    stop.send_replace(Instant::now());
    let (mut connected, mut csr_audio, mut cust_audio, mut frames, mut lost) = (0, 0, 0, 0, 0);
    let mut latencies = Vec::new();
    let mut failed = 0;
    for peers in rooms {
        let mut clients = Vec::new();
        for p in peers {
            match p.await? {
                Ok(c) => clients.push(Some(c)),
                Err(e) => {
                    failed += 1;
                    eprintln!("a Janus peer failed: {e:#}");
                    clients.push(None);
                }
            }
        }
        connected += clients.iter().flatten().filter(|c| c.connected).count();
        if let [_, _, Some(csr_sub), Some(cust_sub)] = &clients[..] {
            csr_audio += csr_sub.audio_packets_in;
            cust_audio += cust_sub.audio_packets_in;
            for v in csr_sub.video_in.values() {
                frames += v.frames;
                lost += v.lost;
                latencies.extend_from_slice(&v.latencies);
            }
        }
    }
    janus.kill().await?;
    latencies.sort_unstable();
    let pct = |p: f64| latency_ms(&latencies, p);
    println!("Janus peer connections up: {connected} / {}", 4 * sessions);
    println!("Janus audio received (CSR/customer, whole run): {csr_audio} / {cust_audio} packets");
    println!("Janus screen frames received: {frames} ({lost} lost)");
    println!(
        "Janus frame latency p50/p99/max: {:.2} / {:.2} / {:.2} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!("Janus CPU: {cpu_pct:.1} % of one core (the measured windows)");
    if failed > 0 || connected < 4 * sessions {
        bail!(
            "{failed} Janus peers failed, {connected} of {} connected",
            4 * sessions
        );
    }
    Ok(Figures { cpu_pct, sessions })
}

/// A room: the CSR's and the customer's publishers, then each one's subscriber to the other.
async fn room(
    api: &mut Api,
    room: u64,
    end: &watch::Receiver<Instant>,
) -> anyhow::Result<[Peer; 4]> {
    let session = api.session().await?;
    let handles = [
        api.attach(session, Plugin::VideoRoom).await?,
        api.attach(session, Plugin::VideoRoom).await?,
        api.attach(session, Plugin::VideoRoom).await?,
        api.attach(session, Plugin::VideoRoom).await?,
    ];
    let created = api
        .message(
            session,
            handles[0],
            json!({"request": "create", "room": room, "publishers": 2,
                   "audiocodec": "opus", "videocodec": "vp8", "bitrate": 0}),
        )
        .await?;
    if created["plugindata"]["data"]["videoroom"] != "created" {
        bail!("room {room} not created: {created}");
    }
    let (csr_feed, csr_pub) = publish(api, session, handles[0], room, 440.0, None, end).await?;
    let (cust_feed, cust_pub) =
        publish(api, session, handles[1], room, 1000.0, Some(screen()), end).await?;
    // A feed can be subscribed to once its publisher's connection is up.
    for h in &handles[..2] {
        api.event(session, |e| {
            Ok((e["janus"] == "webrtcup" && e["sender"].as_u64() == Some(*h)).then_some(()))
        })
        .await?;
    }
    let csr_sub = subscribe(api, session, handles[2], room, cust_feed, end).await?;
    let cust_sub = subscribe(api, session, handles[3], room, csr_feed, end).await?;
    api.forget(session);
    Ok([csr_pub, cust_pub, csr_sub, cust_sub])
}

async fn bind() -> anyhow::Result<(UdpSocket, SocketAddr)> {
    let socket = UdpSocket::bind((crate::netns::ADDRESS, 0)).await?;
    let addr = socket.local_addr()?;
    Ok((socket, addr))
}

/// Joins `room` as a publisher speaking `tone` and sending `video`: its feed id, and its client
/// running.
async fn publish(
    api: &mut Api,
    session: u64,
    handle: u64,
    room: u64,
    tone: f64,
    video: Option<VideoConfig>,
    end: &watch::Receiver<Instant>,
) -> anyhow::Result<(u64, Peer)> {
    let (socket, addr) = bind().await?;
    let (mut client, offer, _) = Client::new(
        Instant::now(),
        addr,
        load_config(Some(tone)),
        video.into_iter().collect(),
    )?;
    api.message_sdp(
        session,
        handle,
        json!({"request": "joinandconfigure", "room": room, "ptype": "publisher",
               "audio": true, "video": true, "data": true}),
        "offer",
        &offer,
    )
    .await?;
    api.candidates_done(session, handle).await?;
    let (feed, answer) = api
        .event(session, |e| answered(e, handle, "joined", "answer"))
        .await?;
    client.accept_answer(Instant::now(), &answer, 0)?;
    Ok((feed, tokio::spawn(drive(client, socket, None, end.clone()))))
}

/// Subscribes to `feed` in `room`: the subscriber's client running.
async fn subscribe(
    api: &mut Api,
    session: u64,
    handle: u64,
    room: u64,
    feed: u64,
    end: &watch::Receiver<Instant>,
) -> anyhow::Result<Peer> {
    let (socket, addr) = bind().await?;
    let mut client = Client::answerer(Instant::now(), addr, load_config(None))?;
    api.message(
        session,
        handle,
        json!({"request": "join", "room": room, "ptype": "subscriber",
               "streams": [{"feed": feed}]}),
    )
    .await?;
    let (_, offer) = api
        .event(session, |e| answered(e, handle, "attached", "offer"))
        .await?;
    let answer = client
        .accept_offer(Instant::now(), 1, &offer)?
        .context("the subscriber could not answer")?;
    api.message_sdp(
        session,
        handle,
        json!({"request": "start"}),
        "answer",
        &answer,
    )
    .await?;
    api.candidates_done(session, handle).await?;
    Ok(tokio::spawn(drive(client, socket, None, end.clone())))
}

/// From event `e`: when it is `handle`'s `what` (`joined`, `attached`) with an SDP of `kind`,
/// the feed id it names (a publisher's own) and the SDP.
fn answered(
    e: &Value,
    handle: u64,
    what: &str,
    kind: &str,
) -> anyhow::Result<Option<(u64, String)>> {
    if e["sender"].as_u64() != Some(handle) {
        return Ok(None);
    }
    let data = &e["plugindata"]["data"];
    if data["error"].is_string() {
        bail!("janus refused: {data}");
    }
    if data["videoroom"] != what || e["jsep"]["type"] != kind {
        return Ok(None);
    }
    let sdp = e["jsep"]["sdp"].as_str().context("no sdp")?.to_string();
    Ok(Some((data["id"].as_u64().unwrap_or(0), sdp)))
}
