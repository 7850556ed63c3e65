//! baresip (Debian's `baresip-core`) as a real softphone for the tests: run headless on
//! loopback, a sine for a microphone (`ausine`) and a bridge to nowhere for a speaker
//! (`aubridge`), driven through its `ctrl_tcp` command interface (netstring JSON, as baresip's
//! own tools use it) and waited on by its events, never by sleeps.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Child;

use super::PATIENCE;

/// baresip quits on its own after this long, should a test leave it running.
const LIFETIME_SECS: u64 = 90;

/// A running baresip with no account yet (a test adds one with [`Baresip::add_account`]).
pub struct Baresip {
    _child: Child,
    ctrl: TcpStream,
    read: Vec<u8>,
    /// Events read while waiting for something else, oldest first.
    events: VecDeque<Value>,
    /// Every event seen, for failure messages.
    seen: Vec<String>,
    output: PathBuf,
    _dir: tempfile::TempDir,
}

impl Baresip {
    /// Starts baresip speaking a `tone` Hz sine, its SIP and RTP on 127.0.0.1 only.
    pub async fn start(tone: u32) -> Baresip {
        let dir = tempfile::tempdir().unwrap();
        let ctrl_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // `net_interface` by address: baresip 1.0 finds no address for the name `lo`.
        let config = format!(
            "poll_method epoll\n\
             net_interface 127.0.0.1\n\
             sip_listen 127.0.0.1:0\n\
             audio_source ausine,{tone}\n\
             audio_player aubridge,nowhere\n\
             audio_alert aubridge,nowhere\n\
             ausrc_srate 48000\n\
             ausrc_channels 2\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module ausine.so\n\
             module aubridge.so\n\
             module_app account.so\n\
             module_app menu.so\n\
             module_app ctrl_tcp.so\n\
             ctrl_tcp_listen 127.0.0.1:{ctrl_port}\n"
        );
        std::fs::write(dir.path().join("config"), config).unwrap();
        std::fs::write(dir.path().join("accounts"), "").unwrap();
        let output = dir.path().join("output.log");
        let log = std::fs::File::create(&output).unwrap();
        let child = tokio::process::Command::new("baresip")
            .arg("-f")
            .arg(dir.path())
            .args(["-t", &LIFETIME_SECS.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("baresip is installed (baresip-core, scripts/system-packages.sh)");
        // Its command port opens once it has read its configuration.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let ctrl = loop {
            match TcpStream::connect(("127.0.0.1", ctrl_port)).await {
                Ok(s) => break s,
                Err(e) => {
                    let text = std::fs::read_to_string(&output).unwrap_or_default();
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "baresip's ctrl_tcp does not answer ({e}):\n{text}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        Baresip {
            _child: child,
            ctrl,
            read: Vec::new(),
            events: VecDeque::new(),
            seen: Vec::new(),
            output,
            _dir: dir,
        }
    }

    /// Runs a command (as typed at its prompt, without the `/`); answers its output, or what
    /// it said went wrong.
    pub async fn try_command(&mut self, command: &str, params: &str) -> Result<String, String> {
        let token = format!("{command}-{}", self.seen.len());
        let message = json!({"command": command, "params": params, "token": token}).to_string();
        let framed = format!("{}:{message},", message.len());
        self.ctrl.write_all(framed.as_bytes()).await.unwrap();
        loop {
            let m = self.message(&format!("the answer to {command}")).await;
            if m["response"] == true && m["token"] == token.as_str() {
                let data = m["data"].as_str().unwrap_or_default().to_string();
                return if m["ok"] == true { Ok(data) } else { Err(data) };
            }
            self.events.push_back(m);
        }
    }

    /// [`Self::try_command`] that must succeed.
    pub async fn command(&mut self, command: &str, params: &str) -> String {
        match self.try_command(command, params).await {
            Ok(data) => data,
            Err(e) => panic!("baresip refused {command} {params}: {e}\n{}", self.log()),
        }
    }

    /// Adds a user agent: `account` is a line of baresip's accounts file, e.g.
    /// `<sip:dave@example.com>;auth_pass="...";outbound="sip:host:port"`. One with a
    /// registration interval registers at once.
    pub async fn add_account(&mut self, account: &str) {
        self.command("uanew", account).await;
    }

    /// Dials `uri`; answers how the attempt ended: `CALL_ESTABLISHED`, or `CALL_CLOSED` with
    /// why.
    pub async fn dial(&mut self, uri: &str) -> Value {
        self.command("dial", uri).await;
        self.event(&["CALL_ESTABLISHED", "CALL_CLOSED"]).await
    }

    /// Dials `uri`, which must answer.
    pub async fn call(&mut self, uri: &str) {
        let call = self.dial(uri).await;
        assert_eq!(call["type"], "CALL_ESTABLISHED", "{call}\n{}", self.log());
    }

    /// The first event (oldest first) whose type is one of `types`; earlier events of other
    /// types are dropped.
    pub async fn event(&mut self, types: &[&str]) -> Value {
        let wanted = |e: &Value| types.iter().any(|t| e["type"] == *t);
        while let Some(e) = self.events.pop_front() {
            if wanted(&e) {
                return e;
            }
        }
        loop {
            let m = self.message(&format!("an event of {types:?}")).await;
            if m["event"] == true && wanted(&m) {
                return m;
            }
        }
    }

    /// Audio packets received so far in the current call, by baresip's own count (the
    /// `rcvd` of each RTP source in its `audio_debug`).
    pub async fn packets_received(&mut self) -> u64 {
        let debug = self.command("audio_debug", "").await;
        debug
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("rcvd=")?.parse::<u64>().ok())
            .sum()
    }

    /// Waits until baresip has counted at least `packets` received audio packets in the call.
    pub async fn until_received(&mut self, packets: u64) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let got = self.packets_received().await;
            if got >= packets {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "baresip received {got} audio packets, not {packets}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Its output and the events seen, for failure messages.
    pub fn log(&self) -> String {
        let output = std::fs::read_to_string(&self.output).unwrap_or_default();
        // Its status line is rewritten in place with `\r`: keep the last state of each line.
        let output: Vec<&str> = output
            .lines()
            .map(|l| l.rsplit('\r').find(|s| !s.trim().is_empty()).unwrap_or(""))
            .collect();
        format!(
            "-- baresip's output --\n{}\n-- its events --\n{}",
            output.join("\n"),
            self.seen.join("\n")
        )
    }

    /// The next netstring message from its command port.
    async fn message(&mut self, waiting_for: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(m) = self.take_message() {
                if m["event"] == true {
                    self.seen.push(m.to_string());
                }
                return m;
            }
            let mut chunk = [0u8; 4096];
            let n = match tokio::time::timeout_at(deadline, self.ctrl.read(&mut chunk)).await {
                Ok(n) => n.unwrap(),
                Err(_) => panic!("waited in vain for {waiting_for}\n{}", self.log()),
            };
            assert!(n > 0, "baresip closed its command port\n{}", self.log());
            self.read.extend_from_slice(&chunk[..n]);
        }
    }

    /// A complete netstring (`<length>:<JSON>,`) from what was read, if there is one.
    fn take_message(&mut self) -> Option<Value> {
        let colon = self.read.iter().position(|b| *b == b':')?;
        let len: usize = std::str::from_utf8(&self.read[..colon])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not a netstring: {:?}", self.read));
        let end = colon + 1 + len;
        if self.read.len() <= end {
            return None;
        }
        assert_eq!(self.read[end], b',', "a netstring ends with a comma");
        let m = serde_json::from_slice(&self.read[colon + 1..end]).unwrap();
        self.read.drain(..=end);
        Some(m)
    }
}
