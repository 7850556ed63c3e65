//! A private X display for a test: Xvfb on a display number it picks itself (`-displayfd`
//! prints the number once the server accepts connections).
#![allow(dead_code)]

use std::process::{Command, Stdio};

use super::process::Proc;

pub struct Xvfb {
    _server: Proc,
    pub display: String,
}

impl Xvfb {
    /// Starts Xvfb with one screen of `size` ("1280x800").
    pub fn start(size: &str) -> Xvfb {
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
