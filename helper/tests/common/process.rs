//! Child processes of the helper's tests: killed when dropped, however the test ends, with their
//! stdout's lines on a channel so the test waits for them with a deadline (never a sleep).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A bound on every wait on this (slow, shared) machine: never a measurement.
pub const WAIT: Duration = Duration::from_secs(30);

/// Waits until `ok` holds, looking every 50 ms; panics naming `what` after [`WAIT`].
pub fn until(what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !ok() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lines a child prints, read on a thread of their own.
pub fn lines(out: ChildStdout) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

pub struct Proc {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub lines: Receiver<String>,
}

impl Proc {
    /// Spawns `command` with piped stdin and stdout.
    pub fn spawn(mut command: Command) -> Proc {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?} starts: {e}"));
        let lines = lines(child.stdout.take().expect("stdout"));
        let stdin = child.stdin.take();
        Proc {
            child,
            stdin,
            lines,
        }
    }

    /// The next line, whatever it is.
    pub fn next_line(&self, what: &str) -> String {
        self.lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("{what} said nothing: {e}"))
    }

    /// The next line that matches, skipping others.
    pub fn line(&self, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).expect("an expected line");
            if matches(&line) {
                return line;
            }
        }
    }

    /// The next JSON line that matches (text before the first `{`, such as the test
    /// harness's own words, is skipped).
    pub fn json(&self, matches: impl Fn(&Value) -> bool) -> Value {
        let parse = |l: &str| {
            let at = l.find('{')?;
            serde_json::from_str::<Value>(&l[at..]).ok()
        };
        let line = self.line(|l| parse(l).is_some_and(|v| matches(&v)));
        parse(&line).expect("json")
    }

    /// The next JSON line with `"event": name`.
    pub fn event(&self, name: &str) -> Value {
        self.json(|v| v["event"] == name)
    }

    pub fn type_line(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{text}").expect("write");
        stdin.flush().expect("flush");
    }

    /// Waits (with the deadline) for the process to end by itself.
    pub fn exited(&mut self, what: &str) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("our child") {
                return status;
            }
            assert!(Instant::now() < deadline, "{what} did not exit");
            std::thread::sleep(Duration::from_millis(50)); // polling, with the deadline above
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
