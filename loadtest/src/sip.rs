//! `--sip`: phones in calls. Each session's CSR starts a voice call; sipp (Debian's sip-tester)
//! dials every session at `--rate` calls a second, one phone per session, each sending recorded
//! PCMA speech (sipp's g711a.pcap) for about 21 s before hanging up; as each phone joins, its
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
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(until.into(), ws.next()).await {
        let Message::Text(text) = frame else { continue };
        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        if v["event"]["type"] == "participant_joined"
            && v["event"]["participant"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("(phone)"))
        {
            let to = v["event"]["participant"]["id"].clone();
            ws.send(Message::Text(
                json!({"type": "pass_microphone", "to": to})
                    .to_string()
                    .into(),
            ))
            .await?;
            passed = true;
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
    let csv = dir.join("numbers.csv");
    let mut text = String::from("SEQUENTIAL\n");
    for (_, number) in &sessions {
        text.push_str(number);
        text.push('\n');
    }
    std::fs::write(&csv, text)?;
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("sip/call.xml");
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
    let started = Instant::now();
    let sipp = tokio::process::Command::new("sipp")
        .arg(format!("127.0.0.1:{sip_port}"))
        .arg("-sf")
        .arg(&scenario)
        .arg("-inf")
        .arg(&csv)
        .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", "20000"])
        .args(["-r", &format!("{rate}"), "-rp", "1000"])
        .args(["-l", &n.to_string(), "-m", &n.to_string()])
        .args(["-timeout", &format!("{}s", (n as f64 / rate) as u64 + 90)])
        .args(["-nostdin", "-trace_stat", "-stf"])
        .arg(dir.join("sipp-stats.csv"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting sipp (apt install sip-tester)")?;
    // Peak concurrency, sampled while the calls run.
    let mut peak_calls = 0.0f64;
    let sampler = async {
        loop {
            let c = metric(http, base, "tandem_sip_calls_active", "").await;
            peak_calls = peak_calls.max(c);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let out = tokio::select! {
        out = sipp.wait_with_output() => out?,
        _ = sampler => unreachable!("the sampler never ends"),
    };
    let wall = started.elapsed();
    let cpu_after = cpu_ticks(pid)?;
    let rss = rss_kib(pid)?;
    let (in_after, out_after) = (
        metric(http, base, "tandem_sip_rtp_packets_total", "\"in\"").await,
        metric(http, base, "tandem_sip_rtp_packets_total", "\"out\"").await,
    );
    let stats = std::fs::read_to_string(dir.join("sipp-stats.csv")).unwrap_or_default();
    let (header, last) = {
        let lines: Vec<&str> = stats.lines().filter(|l| !l.trim().is_empty()).collect();
        (
            lines.first().copied().unwrap_or_default().to_string(),
            lines.last().copied().unwrap_or_default().to_string(),
        )
    };
    let field = |name: &str| -> String {
        header
            .split(';')
            .position(|h| h == name)
            .and_then(|i| last.split(';').nth(i))
            .unwrap_or("?")
            .to_string()
    };
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
        "calls: created / successful / failed: {} / {} / {}",
        field("TotalCallCreated"),
        field("SuccessfulCall(C)"),
        field("FailedCall(C)")
    );
    println!("peak concurrent SIP calls:  {peak_calls}");
    println!("phones given the microphone: {passed}");
    println!(
        "RTP packets in / out:       {} / {}",
        in_after - in_before,
        out_after - out_before
    );
    println!("wall time:                  {:.1} s", wall.as_secs_f64());
    println!("server CPU:                 {cpu_pct:.0}% of one core");
    println!("server RSS:                 {} MiB", rss / 1024);
    if !out.status.success() {
        bail!(
            "sipp reported failed calls: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
