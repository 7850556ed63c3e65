//! The helper end to end with Chromium (issue 16, "Must show": the CI test under Xvfb): the real
//! `tandem-helper` binary in its window on a private desktop (Xvfb, a session bus, AT-SPI) with
//! the test window, a real server, and two Debian Chromium pages driven by
//! tests/e2e/helper_desktop.mjs (Carol's console, Dave's page). The script asks this test, one
//! JSON line at a time, for what only it can do: start the helper and type the code read off
//! Dave's page into its window, answer the helper's questions with its buttons, press Stop there,
//! and say what the test window received. The customer's side is done as a person would, through
//! the window's accessible names (tests/common/atspi.rs).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::Digest as _;

use super::{CAROL_PASSWORD, Desktop, MAIN, Proc, focus, start_server, test_window};

/// A bound on the whole browser scenario (never a measurement).
const SCENARIO: Duration = Duration::from_secs(150);

/// What the window says while nobody may see or control the computer.
const NOBODY: &str = "Nobody can see or control this computer.";

/// Dave at his computer: the helper's window on his desktop, and the window he works in.
struct Customer {
    /// Held for its life: the helper ends with the test.
    _helper: Proc,
    desk: Desktop,
    /// The test window: Dave gives it the keyboard again after a helper window took it.
    window: u32,
}

impl Customer {
    /// Waits for the helper's question, which must contain `expect`, and presses Allow; returns
    /// the question as shown. After allowing control, the indicator must say who controls.
    fn allow(&mut self, expect: &str) -> String {
        let question = self
            .desk
            .find(json!({"role": "label", "contains": expect, "window": MAIN}));
        self.desk.click("Allow", MAIN);
        self.desk
            .gone(json!({"role": "label", "name": question, "window": MAIN}));
        if question.contains("control your computer") {
            let indicator = "Carol is controlling this computer";
            self.desk.find(json!({"role": "frame", "name": indicator}));
            self.desk
                .find(json!({"role": "push button", "name": "Stop", "window": indicator}));
            // Without a window manager, the indicator took the keyboard when it showed; Dave
            // clicks back into his window.
            focus(self.desk.display(), self.window);
        }
        question
    }

    /// Presses Stop in the helper's window; returns once the window says nobody may see or
    /// control the computer any more.
    fn stop(&mut self) {
        self.desk.click("Stop", MAIN);
        self.stopped();
    }

    /// Waits until the window says nobody may see or control the computer.
    fn stopped(&mut self) {
        self.desk
            .find(json!({"role": "label", "name": NOBODY, "window": MAIN}));
    }
}

/// What the browser script asks of this test, and its answer.
struct Desk {
    base: String,
    /// Dave's desktop until his helper starts on it; then his customer side holds it.
    desk: Option<Desktop>,
    window: Proc,
    window_id: u32,
    customer: Option<Customer>,
    /// F2: the folder Dave's helper serves.
    home: tempfile::TempDir,
    /// M4: the user Carol signs in as, and the sign-in service.
    other: super::logon::TestUser,
    service: super::logon::Service,
}

impl Desk {
    fn handle(&mut self, ask: &Value) -> Result<Value, String> {
        match ask["ask"].as_str().unwrap_or_default() {
            "join" => {
                let mut desk = self.desk.take().ok_or("the helper already started")?;
                // Dave starts the helper he downloaded and types the code his page shows.
                let mut c = desk.command(env!("CARGO_BIN_EXE_tandem-helper"));
                c.args(["join", &self.base, "--display", desk.display()])
                    .env("TANDEM_HELPER_FILES_ROOT", self.home.path())
                    .env("TANDEM_HELPER_LOGON_SOCKET", &self.service.socket);
                let helper = Proc::spawn(c);
                let entry = json!({"role": "text", "name": "Pairing code", "window": MAIN});
                desk.type_into(&entry, ask["code"].as_str().unwrap_or_default());
                desk.click("Join", MAIN);
                desk.find(
                    json!({"role": "label", "contains": "as Dave's computer.", "window": MAIN}),
                );
                self.customer = Some(Customer {
                    _helper: helper,
                    desk,
                    window: self.window_id,
                });
                Ok(json!({}))
            }
            "answer" => {
                let question = self
                    .customer()?
                    .allow(ask["expect"].as_str().unwrap_or_default());
                Ok(json!({ "question": question }))
            }
            "stop_in_helper" => {
                self.customer()?.stop();
                Ok(json!({}))
            }
            "stopped" => {
                self.customer()?.stopped();
                Ok(json!({}))
            }
            "expect_click" => {
                let press = self.window.event("button_press");
                let at = (press["x"].as_i64(), press["y"].as_i64());
                let want = (ask["x"].as_i64(), ask["y"].as_i64());
                let (Some(x), Some(y), Some(wx), Some(wy)) = (at.0, at.1, want.0, want.1) else {
                    return Err(format!("{press} for {ask}"));
                };
                // The window's event comes back through the X server: this is the point the
                // helper injected, after the console's and the helper's scaling.
                if press["button"] != 1 || (x - wx).abs() > 2 || (y - wy).abs() > 2 {
                    return Err(format!(
                        "the test window got {press}, not a click at ({wx}, {wy})"
                    ));
                }
                Ok(json!({ "at": [x, y] }))
            }
            "expect_text" => {
                for want in ask["text"].as_str().unwrap_or_default().chars() {
                    let key = self.window.event("key_press");
                    if key["text"].as_str() != Some(want.encode_utf8(&mut [0; 4])) {
                        return Err(format!("the test window got {key}, not {want:?}"));
                    }
                }
                Ok(json!({}))
            }
            // F2: what Dave's folder holds now, each file with its SHA-256.
            // M4: the notice covers Dave's screen, saying who is signed in as whom.
            "notice" => {
                let user = ask["user"].as_str().unwrap_or_default();
                let text = self.customer()?.desk.find(json!({
                    "role": "label", "contains": format!("signed in as {user}"),
                    "window": tandem_helper::status::NOTICE_TITLE,
                }));
                Ok(json!({ "text": text }))
            }
            "notice_gone" => {
                self.customer()?.desk.gone(json!({
                    "role": "label", "contains": "signed in as",
                    "window": tandem_helper::status::NOTICE_TITLE,
                }));
                Ok(json!({}))
            }
            // M4: Carol's click reached the other user's window (it logs as that user).
            "expect_other_click" => {
                let log = self.other.home.join("events.log");
                let deadline = Instant::now() + super::process::WAIT;
                loop {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    if text.contains("\"button_press\"") {
                        return Ok(json!({}));
                    }
                    if Instant::now() > deadline {
                        return Err(format!("the other user's window got no click: {text}"));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            "home_tree" => {
                let mut files = serde_json::Map::new();
                let mut folders = Vec::new();
                let mut todo = vec![self.home.path().to_owned()];
                while let Some(dir) = todo.pop() {
                    for e in std::fs::read_dir(&dir)
                        .map_err(|e| e.to_string())?
                        .flatten()
                    {
                        let rel = e
                            .path()
                            .strip_prefix(self.home.path())
                            .map_err(|e| e.to_string())?
                            .to_string_lossy()
                            .into_owned();
                        if e.path().is_dir() {
                            folders.push(rel);
                            todo.push(e.path());
                        } else {
                            let bytes = std::fs::read(e.path()).map_err(|e| e.to_string())?;
                            let sha = tandem_helper::file_ops::hex(&sha2::Sha256::digest(&bytes));
                            files.insert(rel, json!(sha));
                        }
                    }
                }
                Ok(json!({ "files": files, "folders": folders }))
            }
            other => Err(format!("unknown ask {other:?}")),
        }
    }

    fn customer(&mut self) -> Result<&mut Customer, String> {
        self.customer
            .as_mut()
            .ok_or_else(|| "the helper is not running".to_owned())
    }
}

/// M3: Carol's library, for the script run at the end of the browser script.
async fn library(store: &tandem::store::Store) {
    let carol = store.user_by_username("carol").await.unwrap().unwrap();
    let category = store.create_script_category("Printing").await.unwrap();
    for (name, text) in [
        ("Say hello", "echo hello from the script\n"),
        ("Show folder", "#!/bin/sh\necho \"ran in $PWD\"\n"),
    ] {
        let w = tandem::store::ScriptWrite {
            name: name.into(),
            category: category.id,
            description: String::new(),
            published: true,
            file: Some(tandem::store::ScriptFile {
                name: "run.sh".into(),
                bytes: text.as_bytes().to_vec(),
            }),
            input: None,
        };
        store.create_script(carol.id, w, 0).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium_the_csr_sees_and_controls_the_test_window_until_either_side_stops() {
    let e2e = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/e2e");
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is needed (./test.sh installs it)"
    );
    assert!(
        std::path::Path::new(e2e)
            .join("node_modules/playwright-core")
            .exists(),
        "run `npm ci` in tests/e2e (./test.sh does)"
    );
    let Some(dave_desk) = Desktop::start("1280x800") else {
        return;
    };
    let (window, window_id) = test_window(dave_desk.display());
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), &[]).await;
    let base = format!("http://{}", server.addr);
    library(&server.store).await;

    let other = super::logon::TestUser::create(4);
    let service = tokio::task::block_in_place(|| super::logon::Service::start(&other));
    let mut node = Command::new("node");
    node.args(["helper_desktop.mjs", &base, "carol", CAROL_PASSWORD])
        .args([&other.name, &other.password])
        .current_dir(e2e);
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("Fotos/深")).unwrap();
    std::fs::write(home.path().join("Fotos/Straße.txt"), "ä".repeat(1000)).unwrap();
    std::fs::write(home.path().join("Fotos/leer.txt"), b"").unwrap();
    let noise: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(home.path().join("Fotos/深/b.bin"), noise).unwrap();
    let mut desk = Desk {
        base,
        desk: Some(dave_desk),
        window,
        window_id,
        customer: None,
        home,
        other,
        service,
    };
    // The script's steps block on the helper's and the window's output: off the server's threads.
    let report = tokio::task::spawn_blocking(move || {
        let mut node = Proc::spawn(node);
        let deadline = Instant::now() + SCENARIO;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match node.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => panic!("the browser script took too long"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the browser script ended without a report")
                }
            };
            println!("{line}");
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if v.get("ask").is_some() {
                // A failed check goes back to the script, which reports it and closes Chromium.
                let answer = catch_unwind(AssertUnwindSafe(|| desk.handle(&v)))
                    .unwrap_or_else(|_| Err(format!("the test failed while doing {v}")));
                let reply = match answer {
                    Ok(mut ok) => {
                        ok["ok"] = json!(true);
                        ok
                    }
                    Err(error) => json!({ "ok": false, "error": error }),
                };
                node.type_line(&reply.to_string());
            } else if v.get("failures").is_some() {
                return v;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(report["failures"], json!([]), "{report}");
}
