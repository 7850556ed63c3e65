//! SPEC M5 end to end, under Xvfb with the real server in this process and the real
//! `tandem-helper` on its terminal: after the customer's yes the helper takes a rejoin ticket,
//! adds its one-shot autostart entry and asks the system to restart (a stand-in command here);
//! the session says the computer is restarting; starting the helper from its autostart entry
//! stands in for the restart: it rejoins within 30 s, the entry and the ticket are gone, the
//! ticket does not work twice, and the CSR sees the screen again. The customer's page closed
//! with the computer: the customer stays in the session past the reconnect grace (1 s here),
//! and the helper opens their page again as them.

use std::os::unix::fs::PermissionsExt;

use super::*;

/// A desktop entry's Exec value, split into its quoted arguments.
fn exec_args(entry: &str) -> Vec<String> {
    let line = entry
        .lines()
        .find_map(|l| l.strip_prefix("Exec="))
        .expect("an Exec line");
    line.split("\" \"")
        .map(|a| a.trim_matches('"').to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_computer_restarts_with_the_customers_yes_and_its_helper_rejoins_by_itself() {
    let (_x, display) = xvfb();
    let (_window, _) = test_window(&display);
    let mut s = session_with(&[("TANDEM_SESSIONS_RECONNECT_GRACE_SECS", "1")]).await;
    let home = tempfile::tempdir().unwrap();
    // Stands in for the desktop's browser: writes down the page it is asked to open.
    let opener = home.path().join("open.sh");
    std::fs::write(
        &opener,
        "#!/bin/sh\necho \"$1\" > \"$(dirname \"$0\")/opened\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).unwrap();
    let env = [
        ("XDG_CONFIG_HOME", home.path().join("config")),
        ("XDG_STATE_HOME", home.path().join("state")),
    ];
    let config = home.path().join("config");
    let state = home.path().join("state");
    let mut helper = join_helper_with(
        &s,
        &display,
        &[
            ("XDG_CONFIG_HOME", config.as_os_str()),
            ("XDG_STATE_HOME", state.as_os_str()),
            ("TANDEM_HELPER_REBOOT_COMMAND", "true".as_ref()),
            ("TANDEM_HELPER_OPEN_COMMAND", opener.as_os_str()),
        ],
    );
    let attached = s.csr.event("computer_attached", "").await;
    assert!(
        attached["abilities"]
            .as_array()
            .unwrap()
            .contains(&json!("reboot")),
        "{attached}"
    );

    allowed(
        &mut s.csr,
        &mut helper,
        "reboot",
        "Carol asks to restart this computer",
    )
    .await;
    let restarting = s.csr.event("computer_restarting", "").await;
    assert_eq!(restarting["customer"], attached["customer"]);
    // Dave's page was on that computer: it closes with it.
    let page_closed = Instant::now();
    s.dave.0.close(None).await.ok();
    helper.line(|l| l.starts_with("left:") && l.contains("restarting"));
    assert!(helper.exited("the helper before the restart").success());

    let entry_path = home
        .path()
        .join("config/autostart/tandem-helper-rejoin.desktop");
    let ticket_path = home.path().join("state/tandem-helper/rejoin.json");
    let entry = std::fs::read_to_string(&entry_path).expect("the autostart entry");
    let args = exec_args(&entry);
    assert_eq!(
        args[1..],
        ["rejoin", "--terminal", "--display", display.as_str()],
        "{entry}"
    );
    let mode = std::fs::metadata(&ticket_path)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the ticket is this user's only");
    let saved: Value = serde_json::from_slice(&std::fs::read(&ticket_path).unwrap()).unwrap();

    // The restart: the helper starts from its autostart entry and rejoins by itself.
    let started = Instant::now();
    let mut back_cmd = Command::new(&args[0]);
    back_cmd
        .args(&args[1..])
        .envs(env)
        .env("TANDEM_HELPER_OPEN_COMMAND", &opener);
    // A restart takes longer than the reconnect grace: Dave is away past it when it is back.
    let grace = Duration::from_millis(1500);
    if let Some(left) = grace.checked_sub(page_closed.elapsed()) {
        tokio::time::sleep(left).await; // bounded: the grace the test set, plus a margin
    }
    let mut back = Proc::spawn(back_cmd);
    back.line(|l| l.starts_with("joined the session as \"Dave's computer\""));
    let again = s.csr.event("computer_attached", "").await;
    assert_eq!(again["customer"], attached["customer"]);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(!entry_path.exists(), "the autostart entry removed itself");
    assert!(!ticket_path.exists(), "the ticket is spent");
    let http = reqwest::Client::new();
    let reused = http
        .post(format!("{}/api/helper/rejoin", s.base))
        .json(&json!({"ticket": saved["ticket"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status().as_u16(), 410);
    let view: Value = http
        .get(format!("{}/api/sessions/{}", s.base, s.session_id))
        .bearer_auth(&s.carol)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["restarting"], json!([]), "{view}");
    let dave = attached["customer"].clone();
    assert!(
        view["participants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == dave),
        "Dave is still in the session: {view}"
    );
    // The helper opened Dave's page again, as Dave.
    let opened = home.path().join("opened");
    eventually("the customer's page is opened again", || opened.exists()).await;
    let url = std::fs::read_to_string(&opened).unwrap();
    let token = url
        .trim()
        .strip_prefix(&format!("{}/join#resume=", s.base))
        .unwrap_or_else(|| panic!("{url}"));
    let mut page = Ws::connect(&s.base, token).await;
    page.send(json!({"type": "chat", "text": "back", "ref": 5}))
        .await;
    let said = s.csr.event("chat", "").await;
    assert_eq!(said["from"], dave, "the page is Dave's again");

    // Viewing resumes, asked again in the restarted helper.
    let peer = Peer::connect(&mut s.csr).await;
    allowed(
        &mut s.csr,
        &mut back,
        "view_desktop",
        "Carol asks to see your screen",
    )
    .await;
    peer.answer_offer(&mut s.csr).await;
    eventually("Carol sees the screen again", || {
        peer.last_picture().is_some()
    })
    .await;
}
