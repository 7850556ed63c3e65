//! `--files MB`: SPEC F1 throughput on loopback. One session; the customer allows file
//! transfer; the CSR publishes a file of MB mebibytes (`POST /api/sessions/{id}/files`) and the
//! customer downloads it, `--runs` times. Per run: MB/s each way and the server's CPU time per
//! MiB (the upload includes its SHA-256 and the write to disk with fsync).

use std::time::Instant;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::{Ws, connect, cpu_ticks, post};

async fn until(ws: &mut Ws, kind: &str) -> anyhow::Result<Value> {
    while let Some(m) = ws.next().await {
        if let Message::Text(t) = m? {
            let v: Value = serde_json::from_str(&t)?;
            if v["type"] == "event" && v["event"]["type"] == kind {
                return Ok(v["event"].clone());
            }
        }
    }
    bail!("the connection closed before {kind}")
}

pub async fn run(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    pid: u32,
    mib: usize,
    runs: usize,
) -> anyhow::Result<()> {
    let s = post(
        http,
        format!("{base}/api/sessions"),
        Some(token),
        json!({"topic": "files"}),
    )
    .await?;
    let session = s["session"]["id"].as_str().context("id")?.to_owned();
    let c = post(
        http,
        format!("{base}/api/join"),
        None,
        json!({"number": s["session"]["number"], "name": "customer"}),
    )
    .await?;
    let csr_token = s["token"].as_str().context("token")?;
    let cust_token = c["token"].as_str().context("token")?;
    let mut csr = connect(base, csr_token).await?;
    let mut cust = connect(base, cust_token).await?;
    csr.send(Message::Text(
        json!({"type": "request_activity", "activity": "file_transfer"})
            .to_string()
            .into(),
    ))
    .await?;
    let asked = until(&mut cust, "consent_requested").await?;
    cust.send(Message::Text(
        json!({"type": "consent_reply", "request": asked["request"], "grant": true})
            .to_string()
            .into(),
    ))
    .await?;
    until(&mut csr, "activity_started").await?;

    let bytes = mib * 1024 * 1024;
    let data: Vec<u8> = (0..bytes)
        .map(|i| (i as u8).wrapping_mul(31) ^ (i >> 11) as u8)
        .collect();
    println!("run,upload_mb_s,upload_cpu_ms_per_mib,download_mb_s,download_cpu_ms_per_mib");
    for run in 0..runs {
        let cpu = cpu_ticks(pid)?;
        let t = Instant::now();
        let res = http
            .post(format!(
                "{base}/api/sessions/{session}/files?name=run{run}.bin"
            ))
            .bearer_auth(csr_token)
            .header("content-type", "application/octet-stream")
            .body(data.clone())
            .send()
            .await?;
        if !res.status().is_success() {
            bail!("upload: {} {}", res.status(), res.text().await?);
        }
        let up = t.elapsed().as_secs_f64();
        let up_cpu = (cpu_ticks(pid)? - cpu) as f64 * 10.0;
        let file: Value = res.json().await?;
        let id = file["id"].as_str().context("file id")?;

        let cpu = cpu_ticks(pid)?;
        let t = Instant::now();
        let mut got = 0usize;
        let mut body = http
            .get(format!("{base}/api/sessions/{session}/files/{id}"))
            .bearer_auth(cust_token)
            .send()
            .await?;
        while let Some(chunk) = body.chunk().await? {
            got += chunk.len();
        }
        let down = t.elapsed().as_secs_f64();
        let down_cpu = (cpu_ticks(pid)? - cpu) as f64 * 10.0;
        if got != bytes {
            bail!("downloaded {got} bytes of {bytes}");
        }
        let mb = bytes as f64 / 1e6;
        println!(
            "{run},{:.0},{:.2},{:.0},{:.2}",
            mb / up,
            up_cpu / mib as f64,
            mb / down,
            down_cpu / mib as f64
        );
        csr.send(Message::Text(
            json!({"type": "withdraw_file", "file": id})
                .to_string()
                .into(),
        ))
        .await?;
    }
    Ok(())
}
