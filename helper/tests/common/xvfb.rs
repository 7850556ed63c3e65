//! A private X display for a test: Xvfb on a display number it picks itself (`-displayfd`
//! prints the number once the server accepts connections).
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::sync::Mutex;

use super::process::Proc;

pub struct Xvfb {
    _server: Proc,
    pub display: String,
}

impl Xvfb {
    /// Starts Xvfb with one screen of `size` ("1280x800").
    pub fn start(size: &str) -> Xvfb {
        // One start at a time in this process: Xvfb servers choosing a display number at once
        // can both take a stale lock file's number (CI saw "cannot open display: :0").
        static STARTING: Mutex<()> = Mutex::new(());
        let _one = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        let mut c = Command::new("Xvfb");
        c.args(["-displayfd", "1", "-screen", "0"])
            .arg(format!("{size}x24"))
            .args(["-nolisten", "tcp", "-br"])
            .stderr(Stdio::null());
        let server = Proc::spawn(c);
        let number = server.next_line("Xvfb (package xvfb: scripts/system-packages.sh)");
        assert!(number.trim().parse::<u32>().is_ok(), "Xvfb said {number:?}");
        Xvfb {
            _server: server,
            display: format!(":{}", number.trim()),
        }
    }

    /// Whether the test must skip (said on stderr): Xvfb missing and not in CI. In CI a missing
    /// Xvfb fails.
    pub fn missing() -> bool {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        if Command::new("Xvfb").arg("-help").output().is_ok() {
            return false;
        }
        assert!(!ci, "Xvfb is missing: run scripts/system-packages.sh");
        eprintln!("SKIPPED: Xvfb is missing (scripts/system-packages.sh installs it)");
        true
    }
}

impl Drop for Xvfb {
    /// Asked to end (SIGTERM), Xvfb removes its lock file and socket, so no stale number is left
    /// for the next test binary's servers; it ends at once.
    fn drop(&mut self) {
        let pid = self._server.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self._server.child.wait();
    }
}
