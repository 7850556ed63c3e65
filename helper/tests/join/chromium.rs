//! The helper end to end with Chromium (issue 16, "Must show": the CI test under Xvfb): the real
//! `tandem-helper` binary on an Xvfb display with the test window, a real server, and two Debian
//! Chromium pages driven by tests/e2e/helper_desktop.mjs (Carol's console, Dave's page). The
//! script asks this test, one JSON line at a time, for what only it can do: run the helper with
//! the code read off Dave's page, answer the helper's question, press Stop in the helper, and say
//! what the test window received.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{CAROL_PASSWORD, Proc, corner_window, start_server, xvfb};

/// A bound on the whole browser scenario (never a measurement).
const SCENARIO: Duration = Duration::from_secs(150);

/// The customer at the helper. Today `join` asks on its terminal (stdin: y, a, n, s); when it asks
/// in its GTK window, `question` becomes an AT-SPI read of the question's label, `answer` and
/// `stop` clicks on "Allow", "Deny" and "Stop", and `shown` a read of what the window says the
/// CSR may do (see helper/tests/window.rs); nothing else in these tests changes.
pub(super) struct Customer {
    pub(super) helper: Proc,
}

impl Customer {
    /// The next question the helper asks, as shown.
    pub(super) fn question(&self) -> String {
        self.helper.line(|l| l.starts_with("question:"))
    }

    /// Answers the question shown.
    pub(super) fn answer(&mut self, allow: bool) {
        self.helper.type_line(if allow { "y" } else { "n" });
    }

    /// Presses Stop in the helper; returns once the helper says the screen is no longer shown.
    pub(super) fn stop(&mut self) {
        self.helper.type_line("s");
        self.shown(false);
    }

    /// Waits until the helper tells the customer their screen is (or is no longer) shown.
    pub(super) fn shown(&self, shown: bool) {
        let words = if shown {
            "your screen is being shown"
        } else {
            "your screen is no longer shown"
        };
        self.helper.line(|l| l == words);
    }

    /// Waits for the next question, which must contain `expect`, and allows it; a question about
    /// the screen returns once the screen is shown.
    fn allow(&mut self, expect: &str) -> String {
        let question = self.question();
        assert!(
            question.contains(expect),
            "asked {question:?}, not {expect:?}"
        );
        self.answer(true);
        if question.contains("see your screen") {
            self.shown(true);
        }
        question
    }
}

/// What the browser script asks of this test, and its answer.
struct Desk {
    base: String,
    display: String,
    window: Proc,
    customer: Option<Customer>,
}

impl Desk {
    fn handle(&mut self, ask: &Value) -> Result<Value, String> {
        match ask["ask"].as_str().unwrap_or_default() {
            "join" => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_tandem-helper"));
                c.args([
                    "join",
                    &self.base,
                    ask["code"].as_str().unwrap_or_default(),
                    "--terminal",
                    "--display",
                    &self.display,
                ]);
                let helper = Proc::spawn(c);
                let joined = helper.line(|l| l.starts_with("joined the session as"));
                if !joined.contains("\"Dave's computer\"") {
                    return Err(joined);
                }
                self.customer = Some(Customer { helper });
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
                self.customer()?.shown(false);
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
            other => Err(format!("unknown ask {other:?}")),
        }
    }

    fn customer(&mut self) -> Result<&mut Customer, String> {
        self.customer
            .as_mut()
            .ok_or_else(|| "the helper is not running".to_owned())
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
    let (_x, display) = xvfb();
    let window = corner_window(&display);
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let base = format!("http://{}", server.addr);

    let mut node = Command::new("node");
    node.args(["helper_desktop.mjs", &base, "carol", CAROL_PASSWORD])
        .current_dir(e2e);
    let mut desk = Desk {
        base,
        display,
        window,
        customer: None,
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
