//! SPEC M1 end to end, under Xvfb with the real server in this process and the real
//! `tandem-helper` answering on its terminal: the helper says it can read system information;
//! after the customer's no nothing is read; after their yes the CSR gets this machine's real
//! hostname, OS, memory and the display's size; Refresh reads it again; stopping ends it.

use super::*;

fn os_release_name() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_default()
}

fn mem_total_bytes() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_csr_reads_this_computers_information_only_after_the_customers_yes() {
    let (_x, display) = xvfb();
    // What would leave the computer, shown on the customer's own terminal first.
    let printed = Command::new(env!("CARGO_BIN_EXE_tandem-helper"))
        .args(["system-info", "--display", &display])
        .output()
        .unwrap();
    assert!(printed.status.success(), "{printed:?}");
    let local: Value = serde_json::from_slice(&printed.stdout).unwrap();
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(local["system"]["hostname"], hostname.trim());
    assert_eq!(local["displays"][0]["width"], 1280);
    let mut s = session().await;
    let mut helper = join_helper(&s, &display);
    let attached = s.csr.event("computer_attached", "").await;
    assert_eq!(
        attached["abilities"],
        json!(["file_transfer", "system_info", "run_script", "reboot"]),
        "{attached}"
    );

    // A no: nothing starts, nothing is read.
    s.csr
        .send(json!({"type": "request_activity", "activity": "system_info"}))
        .await;
    let q = helper.line(|l| l.starts_with("question:"));
    assert!(
        q.contains("Carol asks to read information about this computer"),
        "{q}"
    );
    helper.type_line("n");
    let answered = s.csr.event("consent_answered", "").await;
    assert_eq!(answered["granted"], false);

    // A yes: the helper reads and sends, and the CSR sees this machine as it is.
    let started = Instant::now();
    allowed(
        &mut s.csr,
        &mut helper,
        "system_info",
        "Carol asks to read information about this computer",
    )
    .await;
    let provided = s.csr.event("system_info_provided", "").await;
    let took = started.elapsed();
    let info = &provided["info"];
    assert_eq!(info["system"]["hostname"], hostname.trim(), "{info}");
    let os = info["system"]["os"].as_str().unwrap_or_default();
    assert!(os.contains(&os_release_name()), "{os}");
    assert_eq!(info["memory"]["total_bytes"], mem_total_bytes());
    let displays = info["displays"].as_array().unwrap();
    assert!(
        displays
            .iter()
            .any(|d| d["width"] == 1280 && d["height"] == 800),
        "{displays:?}"
    );
    assert!(!info["processes"].as_array().unwrap().is_empty());
    assert!(!info["environment"].as_array().unwrap().is_empty());
    println!(
        "system information: asked to received {} ms, read in {} ms, {} bytes",
        took.as_millis(),
        info["system"]["read_in_ms"],
        provided.to_string().len()
    );
    helper.line(|l| l.contains("information was sent to the support representative"));

    // Refresh reads it again.
    s.csr.send(json!({"type": "refresh_system_info"})).await;
    let again = s.csr.event("system_info_provided", "").await;
    assert!(again["info"]["system"]["read_at"].as_u64() > info["system"]["read_at"].as_u64());

    // Stopped: a refresh is refused.
    s.csr
        .send(json!({"type": "stop_activity", "activity": "system_info"}))
        .await;
    s.csr.event("activity_stopped", "system_info").await;
    s.csr
        .send(json!({"type": "refresh_system_info", "ref": 77}))
        .await;
    let refused = s.csr.until(|v| v["ref"] == 77).await;
    assert_eq!(refused["code"], "activity_not_running", "{refused}");
}
