//! `--sip`: phones in calls. Each session's CSR starts a voice call; sipp (Debian's sip-tester)
//! dials every session at `--rate` calls a second, one phone per session, each sending recorded
//! PCMA speech (from sipp's g711a.pcap) for 21 s before hanging up; as each phone joins, its
//! CSR passes it the microphone, so its audio is transcoded into the mix and the mix back to
//! it. Reports sipp's counts (calls made, failed), the set-up rate, the server's CPU and memory,
//! and RTP packets in and out.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::{Ws, cpu_ticks, rss_kib};

pub const SPEECH: &str = "/usr/share/sip-tester/g711a.pcap";

/// The RTP payloads of a pcap file of one RTP stream over UDP/IPv4/Ethernet, joined.
pub fn pcap_payloads(path: &Path) -> anyhow::Result<Vec<u8>> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let len = u32::from_le_bytes(data[at + 8..at + 12].try_into()?) as usize;
        let packet = data.get(at + 16..at + 16 + len).context("truncated pcap")?;
        // Ethernet (14), IPv4 without options (20), UDP (8), RTP (12).
        if let Some(payload) = packet.get(14 + 20 + 8 + 12..) {
            out.extend_from_slice(payload);
        }
        at += 16 + len;
    }
    Ok(out)
}

/// What the server's /metrics says of one counter (summed over labels containing `label`).
async fn metric(http: &reqwest::Client, base: &str, name: &str, label: &str) -> f64 {
    let Ok(r) = http.get(format!("{base}/metrics")).send().await else {
        return 0.0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.split(['{', ' ']).next() == Some(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The CSR's side: start the call, then pass the microphone to the phone when it joins.
async fn csr(mut ws: Ws, until: Instant) -> anyhow::Result<bool> {
    ws.send(Message::Text(
        json!({"type": "start_voice_call"}).to_string().into(),
    ))
    .await?;
    let mut passed = false;
    let mut phone = Value::Null;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(until.into(), ws.next()).await {
        let Message::Text(text) = frame else { continue };
        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        let event = &v["event"];
        if event["type"] == "participant_joined"
            && event["participant"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("(phone)"))
        {
            phone = event["participant"]["id"].clone();
        }
        // The microphone goes to call members only: pass it once the phone is in the call.
        if event["type"] == "voice_joined" && !phone.is_null() && event["participant"] == phone {
            ws.send(Message::Text(
                json!({"type": "pass_microphone", "to": phone})
                    .to_string()
                    .into(),
            ))
            .await?;
            passed = true;
        }
        if v["type"] == "error" {
            eprintln!("refused: {v}");
        }
    }
    Ok(passed)
}

#[allow(clippy::too_many_arguments)]
pub async fn run(
    http: &reqwest::Client,
    base: &str,
    pid: u32,
    sip_port: u16,
    sessions: Vec<(Ws, String)>,
    rate: f64,
    setup_time: Duration,
    dir: &Path,
) -> anyhow::Result<()> {
    let n = sessions.len();
    let numbers: Vec<String> = sessions.iter().map(|(_, n)| n.clone()).collect();
    // sipp's rtp_stream sends from a socket of each call's own (pcap play would send every
    // call's audio from one port, and Tandem tells phones apart by address): raw A-law, here
    // the speech recorded in sipp's g711a.pcap.
    let audio = dir.join("speech.alaw");
    std::fs::write(&audio, pcap_payloads(Path::new(SPEECH))?)?;
    let template =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("sip/call.xml"))?;
    let scenario = dir.join("call.xml");
    std::fs::write(
        &scenario,
        template.replace("@AUDIO@", &audio.display().to_string()),
    )?;
    // Long enough for the last call to be placed and to run its course.
    let until = Instant::now() + Duration::from_secs_f64(n as f64 / rate + 40.0);
    let csrs: Vec<_> = sessions
        .into_iter()
        .map(|(ws, _)| tokio::spawn(csr(ws, until)))
        .collect();
    let cpu_before = cpu_ticks(pid)?;
    let (in_before, out_before) = (
        metric(http, base, "tandem_sip_rtp_packets_total", "\"in\"").await,
        metric(http, base, "tandem_sip_rtp_packets_total", "\"out\"").await,
    );
    let (silence_before, rtcp_before) = (
        metric(http, base, "tandem_sip_rtp_silence_packets_total", "").await,
        metric(http, base, "tandem_sip_rtcp_packets_total", "\"out\"").await,
    );
    let started = Instant::now();
    // One sipp per phone: sipp 3.6 sends every call's RTP of one process from one port, and
    // Tandem knows a phone by its address, so each phone needs its own.
    let gap = Duration::from_secs_f64(1.0 / rate);
    let mut phones = Vec::new();
    for (i, number) in numbers.iter().enumerate() {
        tokio::time::sleep_until((started + gap.mul_f64(i as f64)).into()).await;
        let child = tokio::process::Command::new("sipp")
            .arg(format!("127.0.0.1:{sip_port}"))
            .arg("-sf")
            .arg(&scenario)
            .args(["-s", number, "-m", "1", "-l", "1"])
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .args(["-p", &(30_000 + i).to_string()])
            .args(["-cp", &(50_000 + i).to_string()])
            .args(["-mp", &(40_000 + 4 * i).to_string()])
            .args([
                "-timeout",
                "120s",
                "-timeout_error",
                "-nostdin",
                "-trace_err",
            ])
            .arg("-error_file")
            .arg(dir.join(format!("sipp-{i}-errors.log")))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting sipp (apt install sip-tester)")?;
        phones.push(tokio::spawn(async move {
            child
                .wait_with_output()
                .await
                .is_ok_and(|o| o.status.success())
        }));
    }
    let placed = started.elapsed();
    // Peak concurrency, sampled while the calls run.
    let mut peak_calls = 0.0f64;
    let waiting = async {
        let mut ok = 0;
        for p in phones {
            if p.await.unwrap_or(false) {
                ok += 1;
            }
        }
        ok
    };
    tokio::pin!(waiting);
    let ok = loop {
        tokio::select! {
            ok = &mut waiting => break ok,
            () = tokio::time::sleep(Duration::from_millis(500)) => {
                let c = metric(http, base, "tandem_sip_calls_active", "").await;
                peak_calls = peak_calls.max(c);
            }
        }
    };
    let wall = started.elapsed();
    let cpu_after = cpu_ticks(pid)?;
    let rss = rss_kib(pid)?;
    let (in_after, out_after) = (
        metric(http, base, "tandem_sip_rtp_packets_total", "\"in\"").await,
        metric(http, base, "tandem_sip_rtp_packets_total", "\"out\"").await,
    );
    let (silence_after, rtcp_after) = (
        metric(http, base, "tandem_sip_rtp_silence_packets_total", "").await,
        metric(http, base, "tandem_sip_rtcp_packets_total", "\"out\"").await,
    );
    if std::env::var("SIP_DEBUG").is_ok() {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        for l in text
            .lines()
            .filter(|l| l.contains("media_") && !l.starts_with('#'))
        {
            eprintln!("{l}");
        }
    }
    let mut passed = 0;
    for c in csrs {
        if c.await?.unwrap_or(false) {
            passed += 1;
        }
    }
    let cpu_pct = (cpu_after - cpu_before) as f64 / 100.0 / wall.as_secs_f64() * 100.0;
    println!("sessions (one phone each):  {n}");
    println!(
        "set-up time (sessions):     {:.2} s",
        setup_time.as_secs_f64()
    );
    println!("call rate asked:            {rate} calls/s");
    println!(
        "calls placed in:            {:.1} s ({:.1} calls/s)",
        placed.as_secs_f64(),
        n.saturating_sub(1) as f64 / placed.as_secs_f64().max(0.001)
    );
    println!("calls: made / successful / failed: {n} / {ok} / {}", n - ok);
    println!("peak concurrent SIP calls:  {peak_calls}");
    println!("phones given the microphone: {passed}");
    println!(
        "RTP packets in / out:       {} / {}",
        in_after - in_before,
        out_after - out_before
    );
    println!(
        "silence RTP / RTCP out:     {} / {}",
        silence_after - silence_before,
        rtcp_after - rtcp_before
    );
    println!("wall time:                  {:.1} s", wall.as_secs_f64());
    println!("server CPU:                 {cpu_pct:.0}% of one core");
    println!("server RSS:                 {} MiB", rss / 1024);
    if ok < n {
        // What the first failed phone saw.
        for i in 0..n {
            let log = std::fs::read_to_string(dir.join(format!("sipp-{i}-errors.log")))
                .unwrap_or_default();
            if log.lines().count() > 1 {
                eprintln!(
                    "phone {i}: {}",
                    log.lines().take(6).collect::<Vec<_>>().join(" | ")
                );
                break;
            }
        }
        bail!("{} calls failed", n - ok);
    }
    Ok(())
}
