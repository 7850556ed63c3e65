//! Load generator: opens N support sessions (a CSR and a customer each) against a real `tandem`
//! server process and reports the server's CPU and memory with what the load measured.
//!
//! - signalling (default): every customer chats at a fixed rate; delivery latency, throughput,
//!   errors.
//! - `--media`: every session runs a voice call with both speaking and a screen share from the
//!   customer to the CSR, each participant a str0m WebRTC client on its own UDP socket; packets
//!   and frames forwarded per second, frames lost, sender-to-receiver latency of video frames,
//!   the server's call tick (its mixer and connections) p50/p99 and RTCP round-trip time.
//! - `--sip`: a phone (sipp) in every session's voice call, holding the microphone, sending
//!   recorded speech; calls placed at `--rate` a second (see sip.rs).
//! - `--files MB`: basic file transfer (F1) through the server, MB/s and CPU per MiB each way
//!   (see files.rs).
//! - `--phones-per-session P`: voice rooms of P phones each, `--talkers` of them holding a
//!   microphone, the phones this program's own; `--janus` runs the same rooms in Janus's
//!   AudioBridge after Tandem's, for the side-by-side figure (see voice_room.rs, janus.rs);
//!   `--media --janus` runs the media sessions in Janus's VideoRoom after Tandem's, in a network
//!   namespace of its own (see videoroom.rs, netns.rs).
//! - `--media --flood RATE`: the same, with datagrams nobody can take from new addresses at
//!   RATE a second aimed at the media socket (see flood.rs).
//! - `--data-channel MB`: a WebRTC data channel between two str0m peers on loopback, no server,
//!   MB/s and CPU per MB (see data_channel.rs): what F2 was weighed against.

mod data_channel;
mod files;
mod flood;
mod janus;
mod machine;
mod media;
mod netns;
mod sip;
mod videoroom;
mod voice_room;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
#[command(about = "Tandem signalling load test")]
struct Args {
    /// The tandem binary to start (release build recommended).
    #[arg(long, default_value = "target/release/tandem")]
    server: PathBuf,
    /// Concurrent sessions, each with one CSR and one customer.
    #[arg(long, default_value_t = 100)]
    sessions: usize,
    /// How long to chat, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Chat messages per second each customer sends.
    #[arg(long, default_value_t = 2.0)]
    rate: f64,
    /// Media load instead of chat: voice both ways and a screen share per session.
    #[arg(long)]
    media: bool,
    /// Phones instead of chat: sipp calls every session at `--rate` calls a second.
    #[arg(long)]
    sip: bool,
    /// File transfer instead: publish and download a file of this many MiB, `--runs` times.
    #[arg(long)]
    files: Option<usize>,
    /// Voice rooms instead: this many phones in every session's voice call (plain RTP, A-law).
    #[arg(long)]
    phones_per_session: Option<usize>,
    /// With `--phones-per-session`: how many of a room's phones hold a microphone (at most 2).
    #[arg(long, default_value_t = 2)]
    talkers: usize,
    /// With `--phones-per-session`: the same rooms in Janus's AudioBridge too, after Tandem's;
    /// with `--media`, the same sessions in Janus's VideoRoom (as root: see netns.rs).
    #[arg(long)]
    janus: bool,
    /// Runs of `--files`, `--data-channel` and `--phones-per-session` (5 unless given), and
    /// of `--media` (1 unless given): for the last two, measured windows of `--seconds`, one
    /// after the other on the same load, each printed, then their spread.
    #[arg(long)]
    runs: Option<usize>,
    /// A data channel instead: send this many MB between two str0m peers, `--runs` times.
    #[arg(long)]
    data_channel: Option<usize>,
    /// Pins the load generator to core 0 and the server to core 1 (taskset), so neither's
    /// figures include the other's work.
    #[arg(long)]
    pin: bool,
    /// With `--media`: datagrams nobody can take, from addresses the server never routed, at
    /// this many a second to its media socket while the sessions are measured (see flood.rs).
    #[arg(long)]
    flood: Option<u64>,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Stats {
    latencies_us: Mutex<Vec<u64>>,
    sent: AtomicU64,
    received: AtomicU64,
    errors: AtomicU64,
}

fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').context("stat format")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?) // utime + stime
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("VmRSS")?.parse()?)
}

async fn post(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<Value> {
    let mut req = http.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await?;
    let status = res.status();
    let v: Value = res.json().await?;
    if !status.is_success() {
        bail!("{status}: {v}");
    }
    Ok(v)
}

async fn connect(base: &str, token: &str) -> anyhow::Result<Ws> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "{}/ws?token={token}",
        base.replace("http://", "ws://")
    ))
    .await?;
    // The welcome.
    ws.next().await.context("no welcome")??;
    Ok(ws)
}

/// `n` sessions, each with its CSR's WebSocket and the number a phone dials.
async fn numbered_sessions(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    n: usize,
    topic: &str,
) -> anyhow::Result<Vec<(Ws, String)>> {
    let mut sessions = Vec::new();
    for i in 0..n {
        let s = post(
            http,
            format!("{base}/api/sessions"),
            Some(token),
            json!({"topic": format!("{topic} {i}")}),
        )
        .await?;
        let ws = connect(base, s["token"].as_str().context("token")?).await?;
        let number = s["session"]["number"]
            .as_str()
            .context("number")?
            .to_string();
        sessions.push((ws, number));
    }
    Ok(sessions)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.media && args.janus {
        // Before the runtime's threads: the namespace is the calling thread's.
        netns::enter()?;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.pin {
        machine::pin_self(0)?;
    }
    if let Some(mb) = args.data_channel {
        for run in 1..=args.runs.unwrap_or(5) {
            let (rate, cpu) = tokio::task::spawn_blocking(move || data_channel::run(mb)).await??;
            println!(
                "data channel run {run}: {mb} MB at {rate:.1} MB/s, {cpu:.1} ms CPU per MB (both peers)"
            );
        }
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("load.db");
    let key = dir.path().join("secret.key");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let sip_port = {
        let l = std::net::UdpSocket::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    // Known only to aim `--flood` at (the server picks its own otherwise).
    let media_port = {
        let l = std::net::UdpSocket::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let mut env = vec![
        ("TANDEM_STORAGE_DATABASE", db.display().to_string()),
        ("TANDEM_AUTH_SECRET_FILE", key.display().to_string()),
        (
            "TANDEM_FILES_DIR",
            key.with_file_name("files").display().to_string(),
        ),
        ("TANDEM_SERVER_LISTEN", format!("127.0.0.1:{port}")),
        ("TANDEM_SIP_LISTEN", format!("127.0.0.1:{sip_port}")),
        ("TANDEM_SIP_MAX_CALLS", "100000".into()),
        // Every phone is on 127.0.0.1: no per-address message rate.
        ("TANDEM_SIP_REQUESTS_PER_SECOND", "0".into()),
        // The load is the point here; keep the per-participant limiter out of the way.
        ("TANDEM_SESSIONS_COMMANDS_PER_SECOND", "1000".into()),
        // Every participant is on 127.0.0.1: no per-address share of the connections (1024 by
        // default, which 1000 sessions' 2000 WebSockets pass: 429 too_many_connections).
        ("TANDEM_SERVER_MAX_CONNECTIONS_PER_ADDRESS", "0".into()),
        ("RUST_LOG", "warn".into()),
    ];
    if args.flood.is_some() {
        env.push(("TANDEM_MEDIA_LISTEN", format!("127.0.0.1:{media_port}")));
    }
    let mut add = tokio::process::Command::new(&args.server)
        .args([
            "user",
            "add",
            "--username",
            "load",
            "--role",
            "agent",
            "--email",
            "load@localhost",
        ])
        .envs(env.clone())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", args.server.display()))?;
    use tokio::io::AsyncWriteExt;
    add.stdin
        .take()
        .unwrap()
        .write_all(b"load test password\n")
        .await?;
    if !add.wait().await?.success() {
        bail!("could not create the load account");
    }
    // `--pin`: the server on core 1, by taskset (which then runs it in place).
    let mut server = if args.pin {
        let mut c = tokio::process::Command::new("taskset");
        c.args(["-c", "1"]).arg(&args.server);
        c
    } else {
        tokio::process::Command::new(&args.server)
    };
    let mut server = server
        .arg("serve")
        .envs(env)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = server.id().context("server pid")?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    let login = loop {
        match post(
            &http,
            format!("{base}/api/login"),
            None,
            json!({"username": "load", "password": "load test password"}),
        )
        .await
        {
            Ok(v) => break v,
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => return Err(e.context("server did not come up")),
        }
    };
    let token = login["token"].as_str().context("token")?.to_string();

    if let Some(mib) = args.files {
        let result = files::run(&http, &base, &token, pid, mib, args.runs.unwrap_or(5)).await;
        server.kill().await?;
        return result;
    }

    if let Some(phones) = args.phones_per_session {
        // The CSR gives each talker one of the call's two microphones (SPEC V3).
        if !(1..=phones.min(2)).contains(&args.talkers) {
            bail!("--talkers must be 1 or 2, and at most --phones-per-session");
        }
        let sessions = numbered_sessions(&http, &base, &token, args.sessions, "room").await?;
        let plan = voice_room::Plan {
            rooms: args.sessions,
            phones,
            talkers: args.talkers,
            seconds: args.seconds,
            runs: args.runs.unwrap_or(5),
            speech: Arc::new(sip::pcap_payloads(std::path::Path::new(sip::SPEECH))?),
        };
        println!(
            "voice rooms: {} rooms of {phones} phones (G.711 A-law, plain RTP), {} talking in each; {} runs of {} s{}",
            plan.rooms,
            plan.talkers,
            plan.runs,
            plan.seconds,
            if args.pin {
                "; generator on core 0, server on core 1"
            } else {
                ""
            }
        );
        let sip = format!("127.0.0.1:{sip_port}").parse()?;
        let tandem = voice_room::in_tandem(&plan, pid, sip, sessions).await;
        server.kill().await?;
        let tandem = tandem?;
        if args.janus {
            let janus = voice_room::in_janus(&plan, &dir.path().join("janus"), args.pin).await?;
            voice_room::compare(tandem, janus);
        }
        return Ok(());
    }

    if args.sip {
        let setup = Instant::now();
        let sessions = numbered_sessions(&http, &base, &token, args.sessions, "phones").await?;
        let result = sip::run(
            &http,
            &base,
            pid,
            sip_port,
            sessions,
            args.rate,
            setup.elapsed(),
            dir.path(),
        )
        .await;
        server.kill().await?;
        return result;
    }

    // Set up every session before the measurement starts.
    let setup = Instant::now();
    let mut pairs = Vec::new();
    for i in 0..args.sessions {
        let s = post(
            &http,
            format!("{base}/api/sessions"),
            Some(&token),
            json!({"topic": format!("load {i}")}),
        )
        .await?;
        let c = post(
            &http,
            format!("{base}/api/join"),
            None,
            json!({"number": s["session"]["number"], "name": format!("customer {i}")}),
        )
        .await?;
        let mut csr = connect(&base, s["token"].as_str().unwrap()).await?;
        let mut cust = connect(&base, c["token"].as_str().unwrap()).await?;
        if args.media {
            media::prepare(&mut csr, &mut cust, &c["participant"]["id"]).await?;
        }
        pairs.push((csr, cust));
    }
    let setup_time = setup.elapsed();
    if args.media {
        let result = media_load(&args, &base, pid, media_port, pairs, setup_time).await;
        server.kill().await?;
        let tandem = result?;
        if args.janus {
            let janus = videoroom::in_janus(
                args.sessions,
                args.seconds,
                args.runs.unwrap_or(1).max(1),
                &dir.path().join("janus"),
                args.pin,
            )
            .await?;
            videoroom::compare(&tandem, &janus);
        }
        return Ok(());
    }

    let stats = Arc::new(Stats {
        latencies_us: Mutex::new(Vec::new()),
        sent: AtomicU64::new(0),
        received: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let epoch = Instant::now();
    let cpu_before = cpu_ticks(pid)?;
    let duration = Duration::from_secs(args.seconds);
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let mut tasks = Vec::new();
    let n = pairs.len();
    for (i, (mut csr, mut cust)) in pairs.into_iter().enumerate() {
        let stats = stats.clone();
        // Spread the customers' send times evenly over one interval, as real people are.
        let phase = interval.mul_f64(i as f64 / n as f64);
        tasks.push(tokio::spawn(async move {
            // The customer sends "t=<micros since epoch>"; the CSR measures when it arrives.
            let sender = {
                let stats = stats.clone();
                async move {
                    let mut tick = tokio::time::interval_at((epoch + phase).into(), interval);
                    let end = epoch + duration;
                    while Instant::now() < end {
                        tick.tick().await;
                        let t = epoch.elapsed().as_micros();
                        let msg = json!({"type": "chat", "text": format!("t={t}")}).to_string();
                        if cust.send(Message::Text(msg.into())).await.is_err() {
                            stats.errors.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        stats.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    cust
                }
            };
            let receiver = {
                let stats = stats.clone();
                async move {
                    let end = epoch + duration + Duration::from_secs(2);
                    while let Ok(Some(Ok(frame))) =
                        tokio::time::timeout_at(end.into(), csr.next()).await
                    {
                        let Message::Text(text) = frame else { continue };
                        let v: Value = match serde_json::from_str(text.as_str()) {
                            Ok(v) => v,
                            Err(_) => continue,
                        };
                        if v["type"] == "error" {
                            stats.errors.fetch_add(1, Ordering::Relaxed);
                        }
                        if let Some(t) = v["event"]["text"]
                            .as_str()
                            .and_then(|t| t.strip_prefix("t="))
                            && let Ok(t) = t.parse::<u128>()
                        {
                            let now = epoch.elapsed().as_micros();
                            stats.received.fetch_add(1, Ordering::Relaxed);
                            stats.latencies_us.lock().await.push((now - t) as u64);
                        }
                    }
                    csr
                }
            };
            let (_cust, _csr) = tokio::join!(sender, receiver);
        }));
    }
    for t in tasks {
        t.await?;
    }
    let wall = epoch.elapsed();
    let cpu_after = cpu_ticks(pid)?;
    let rss = rss_kib(pid)?;
    let ticks_per_sec = 100.0; // USER_HZ on Linux
    let cpu_pct = (cpu_after - cpu_before) as f64 / ticks_per_sec / wall.as_secs_f64() * 100.0;

    let mut lat = stats.latencies_us.lock().await.clone();
    lat.sort_unstable();
    let pct = |p: f64| {
        if lat.is_empty() {
            0.0
        } else {
            lat[((lat.len() - 1) as f64 * p) as usize] as f64 / 1000.0
        }
    };
    let sent = stats.sent.load(Ordering::Relaxed);
    let received = stats.received.load(Ordering::Relaxed);
    println!("sessions:              {}", args.sessions);
    println!("participants:          {}", args.sessions * 2);
    println!("set-up time:           {:.2} s", setup_time.as_secs_f64());
    println!(
        "chat sent / delivered: {sent} / {received} ({} lost)",
        sent.saturating_sub(received)
    );
    println!(
        "delivered per second:  {:.0}",
        received as f64 / duration.as_secs_f64()
    );
    println!(
        "latency p50/p99/max:   {:.2} / {:.2} / {:.2} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "errors:                {}",
        stats.errors.load(Ordering::Relaxed)
    );
    println!("server CPU:            {cpu_pct:.1} % of one core");
    println!("server RSS:            {:.1} MiB", rss as f64 / 1024.0);
    server.kill().await?;
    if received < sent {
        bail!("{} messages were not delivered", sent - received);
    }
    Ok(())
}

/// `--media --runs K`: the server's CPU and datagrams (its own count) in each of K windows of
/// `seconds` from now, printed with their spread, while the load runs on.
async fn media_windows(base: &str, pid: u32, seconds: u64, windows: usize) -> anyhow::Result<()> {
    use media::metric;
    let datagrams = || async {
        let text = metrics(base).await?;
        anyhow::Ok(
            metric(&text, "tandem_media_datagrams_total{direction=\"in\"}").unwrap_or(0.0)
                + metric(&text, "tandem_media_datagrams_total{direction=\"out\"}").unwrap_or(0.0),
        )
    };
    machine::datagram_windows("server", pid, seconds, windows, datagrams).await
}

async fn metrics(base: &str) -> anyhow::Result<String> {
    Ok(reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?)
}

async fn media_load(
    args: &Args,
    base: &str,
    pid: u32,
    media_port: u16,
    pairs: Vec<(Ws, Ws)>,
    setup_time: Duration,
) -> anyhow::Result<videoroom::Figures> {
    use media::{Seen, metric, participant, screen};
    use tokio::sync::Mutex;

    // Connecting (ICE, DTLS, the server's offer for the share) is not measured.
    const WARM_UP: Duration = Duration::from_secs(3);
    let start = Instant::now();
    let windows = args.runs.unwrap_or(1).max(1);
    // With several windows, the last is sampled a second before the participants stop.
    let margin = if windows > 1 {
        Duration::from_secs(1)
    } else {
        Duration::ZERO
    };
    let end = start + WARM_UP + Duration::from_secs(args.seconds) * windows as u32 + margin;
    let mut tasks = Vec::new();
    let mut seen = Vec::new();
    for (csr, cust) in pairs {
        let (a, b) = (
            Arc::new(Mutex::new(Seen::default())),
            Arc::new(Mutex::new(Seen::default())),
        );
        seen.push((a.clone(), b.clone()));
        tasks.push(tokio::spawn(participant(csr, 440.0, None, end, a)));
        tasks.push(tokio::spawn(participant(
            cust,
            1000.0,
            Some(screen()),
            end,
            b,
        )));
    }
    tokio::time::sleep_until((start + WARM_UP).into()).await;
    let before = metrics(base).await?;
    let cpu_before = cpu_ticks(pid)?;
    let own_before = cpu_ticks(std::process::id())?;
    let drops_before = media::udp_drops(pid)?;
    let counted_before = media::counted();
    let machine_before = machine::sample()?;
    let measured = Instant::now();
    let flood = args.flood.map(|rate| {
        let target = std::net::SocketAddr::from(([127, 0, 0, 1], media_port));
        tokio::spawn(flood::run(target, rate, end))
    });
    if windows > 1 {
        media_windows(base, pid, args.seconds, windows).await?;
    }
    let mut failed = 0;
    for t in tasks {
        match t.await? {
            Ok(_) => {}
            Err(e) => {
                failed += 1;
                eprintln!("participant failed: {e:#}");
            }
        }
    }
    let wall = measured.elapsed().as_secs_f64();
    let flooded = match flood {
        Some(f) => Some(f.await??),
        None => None,
    };
    let counted_after = media::counted();
    let counted = (counted_after.0 - counted_before.0) as f64 / wall;
    let rtcp = (counted_after.1 - counted_before.1) as f64 / wall;
    let machine_after = machine::sample()?;
    let cpu_pct = (cpu_ticks(pid)? - cpu_before) as f64 / 100.0 / wall * 100.0;
    let own_pct = (cpu_ticks(std::process::id())? - own_before) as f64 / 100.0 / wall * 100.0;
    let rss = rss_kib(pid)?;
    let drops_after = media::udp_drops(pid)?;
    let after = metrics(base).await?;
    let rate = |name: &str| {
        (metric(&after, name).unwrap_or(0.0) - metric(&before, name).unwrap_or(0.0)) / wall
    };

    let (mut connected, mut csr_audio, mut cust_audio, mut frames, mut lost) = (0, 0, 0, 0, 0);
    let mut lat = Vec::new();
    for (csr, cust) in &seen {
        let (csr, cust) = (csr.lock().await, cust.lock().await);
        connected += usize::from(csr.connected) + usize::from(cust.connected);
        csr_audio += csr.audio_packets;
        cust_audio += cust.audio_packets;
        frames += csr.video_frames;
        lost += csr.video_lost;
        lat.extend_from_slice(&csr.latencies);
    }
    lat.sort_unstable();
    let pct = |p: f64| media::latency_ms(&lat, p);
    let q = |name: &str, q: &str| {
        let q: f64 = q.parse().unwrap_or(0.5);
        media::histogram_quantile(&before, &after, name, q).unwrap_or(f64::NAN) * 1000.0
    };
    let n = seen.len();
    println!(
        "sessions:                 {n} (a CSR and a customer each, both speaking, the customer sharing)"
    );
    println!(
        "set-up time:              {:.2} s",
        setup_time.as_secs_f64()
    );
    println!("connected:                {connected} / {}", 2 * n);
    if let Some(sent) = flooded {
        println!(
            "flood:                    {:.0} datagrams/s nobody can take (garbage, RTP, STUN in turn) from {} new addresses",
            sent as f64 / wall,
            flood::SOURCES
        );
    }
    println!("participants failed:      {failed}");
    println!(
        "audio packets in/s:       {:.0}",
        rate("tandem_media_audio_packets_total{direction=\"in\"}")
    );
    println!(
        "audio packets out/s:      {:.0}",
        rate("tandem_media_audio_packets_total{direction=\"out\"}")
    );
    println!(
        "video frames forwarded/s: {:.0}",
        rate("tandem_media_forwarded_frames_total")
    );
    // Every datagram of every connection (RTP, RTCP, STUN, DTLS): what the server handles.
    let datagrams = rate("tandem_media_datagrams_total{direction=\"in\"}")
        + rate("tandem_media_datagrams_total{direction=\"out\"}");
    println!(
        "server datagrams/s:       {datagrams:.0} in and out, {:.0} per core-second of server CPU",
        datagrams / (cpu_pct / 100.0).max(1e-9)
    );
    println!(
        "counted by the clients:   {counted:.0} datagrams/s sent and received, {rtcp:.0} of them RTCP"
    );
    println!(
        "video forwarded:          {:.2} Mbit/s",
        rate("tandem_media_forwarded_bytes_total") * 8.0 / 1e6
    );
    println!("audio received (CSR/customer, whole run): {csr_audio} / {cust_audio} packets");
    println!("screen frames received:   {frames} ({lost} lost)");
    println!(
        "frame latency p50/p99/max: {:.2} / {:.2} / {:.2} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "call tick p50/p99:        {:.3} / {:.3} ms",
        q("tandem_media_call_tick_seconds", "0.5"),
        q("tandem_media_call_tick_seconds", "0.99")
    );
    println!(
        "RTCP RTT p50/p99:         {:.2} / {:.2} ms",
        q("tandem_media_rtt_seconds", "0.5"),
        q("tandem_media_rtt_seconds", "0.99")
    );
    println!("server CPU:               {cpu_pct:.1} % of one core");
    println!("server RSS:               {:.1} MiB", rss as f64 / 1024.0);
    println!(
        "load generator CPU:       {own_pct:.1} % of one core ({})",
        if args.pin {
            "pinned to core 0, the server to core 1"
        } else {
            "same machine, not pinned"
        }
    );
    println!(
        "machine:                  {}",
        machine::describe(&machine_before, &machine_after)
    );
    println!(
        "UDP receive drops:        server sockets {}, other sockets {}",
        drops_after.0 - drops_before.0,
        drops_after.1.saturating_sub(drops_before.1)
    );
    if failed > 0 || connected < 2 * n {
        bail!(
            "{failed} participants failed, {connected} of {} connected",
            2 * n
        );
    }
    Ok(videoroom::Figures {
        cpu_pct,
        sessions: n,
    })
}
