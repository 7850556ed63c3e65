//! `--janus`: Janus (Debian's `janus` package, 1.1.2 on bookworm), the peer issue 19 compares
//! Tandem with, started on a configuration of its own (one plugin and the HTTP transport),
//! pinned to core 1 like Tandem with `--pin`, and driven over its HTTP API.
//!
//! - With `--phones-per-session`, the voice rooms of [`crate::voice_room`] in its AudioBridge:
//!   one room per session, every phone a plain-RTP participant with A-law (the AudioBridge's
//!   `rtp` join) on 127.0.0.1, the listeners joined muted. The rooms mix at 16 kHz, the
//!   AudioBridge's default.
//! - With `--media`, the media sessions of [`crate::media`] in its VideoRoom (see
//!   [`crate::videoroom`]): its ICE skips loopback addresses, so it gathers only on the veth
//!   address of the load test's own network namespace ([`crate::netns`]).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

const LIBS: &str = "/usr/lib/x86_64-linux-gnu/janus";

/// Which of Janus's plugins to load.
#[derive(Clone, Copy)]
pub enum Plugin {
    AudioBridge,
    VideoRoom,
}

impl Plugin {
    fn package(self) -> &'static str {
        match self {
            Plugin::AudioBridge => "janus.plugin.audiobridge",
            Plugin::VideoRoom => "janus.plugin.videoroom",
        }
    }
}

/// Janus started with `plugin` (see [`start`]) on a free port, once its HTTP API answers: the
/// process, its pid (for its CPU) and the API.
pub async fn launch(
    dir: &Path,
    pin: bool,
    plugin: Plugin,
) -> anyhow::Result<(tokio::process::Child, u32, Api)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let janus = start(dir, port, pin, plugin)?;
    let pid = janus.id().context("janus pid")?;
    let api = Api::connect(format!("http://127.0.0.1:{port}/janus")).await?;
    Ok((janus, pid, api))
}

/// Janus started on a configuration in `dir` with `plugin`, its HTTP API on `port`.
fn start(
    dir: &Path,
    port: u16,
    pin: bool,
    plugin: Plugin,
) -> anyhow::Result<tokio::process::Child> {
    let plugins = dir.join("plugins");
    let transports = dir.join("transports");
    let empty = dir.join("none");
    for d in [&plugins, &transports, &empty] {
        std::fs::create_dir_all(d)?;
    }
    let link = |from: &str, to: &Path| -> anyhow::Result<()> {
        let target = to.join(Path::new(from).file_name().context("name")?);
        if !target.exists() {
            std::os::unix::fs::symlink(from, target)?;
        }
        Ok(())
    };
    let library = match plugin {
        Plugin::AudioBridge => "libjanus_audiobridge.so",
        Plugin::VideoRoom => "libjanus_videoroom.so",
    };
    link(&format!("{LIBS}/plugins/{library}"), &plugins)?;
    link(&format!("{LIBS}/transports/libjanus_http.so"), &transports)?;
    std::fs::write(
        dir.join("janus.jcfg"),
        format!(
            "general: {{\n configs_folder = \"{d}\"\n plugins_folder = \"{p}\"\n transports_folder = \"{t}\"\n events_folder = \"{e}\"\n loggers_folder = \"{e}\"\n debug_level = 2\n session_timeout = 0\n}}\nmedia: {{\n rtp_port_range = \"20000-29999\"\n ipv6 = false\n}}\nnat: {{\n {ice}\n}}\n",
            d = dir.display(),
            p = plugins.display(),
            t = transports.display(),
            e = empty.display(),
            ice = match plugin {
                Plugin::AudioBridge => "ice_ignore_list = \"vmnet\"".to_string(),
                Plugin::VideoRoom => format!("ice_enforce_list = \"{}\"", crate::netns::DEVICE),
            },
        ),
    )?;
    std::fs::write(
        dir.join("janus.transport.http.jcfg"),
        format!(
            "general: {{\n base_path = \"/janus\"\n http = true\n port = {port}\n ip = \"127.0.0.1\"\n https = false\n}}\nadmin: {{\n admin_http = false\n admin_https = false\n}}\n"
        ),
    )?;
    match plugin {
        Plugin::AudioBridge => std::fs::write(
            dir.join("janus.plugin.audiobridge.jcfg"),
            "general: {\n rtp_port_range = \"30000-39999\"\n local_ip = \"127.0.0.1\"\n events = false\n}\n",
        )?,
        Plugin::VideoRoom => std::fs::write(
            dir.join("janus.plugin.videoroom.jcfg"),
            "general: {\n events = false\n}\n",
        )?,
    }
    let mut c = if pin {
        let mut c = tokio::process::Command::new("taskset");
        c.args(["-c", "1", "janus"]);
        c
    } else {
        tokio::process::Command::new("janus")
    };
    c.arg("-F")
        .arg(dir)
        .arg("-C")
        .arg(dir.join("janus.jcfg"))
        .args(["-N", "-L"])
        .arg(dir.join("janus.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    c.spawn().context("starting janus (apt install janus)")
}

/// The Janus HTTP API at `base` (`http://127.0.0.1:PORT/janus`).
pub struct Api {
    http: reqwest::Client,
    base: String,
    transaction: u64,
    /// Events read but not yet asked for.
    kept: Vec<Value>,
}

impl Api {
    pub async fn connect(base: String) -> anyhow::Result<Self> {
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            match http.get(format!("{base}/info")).send().await {
                Ok(r) if r.status().is_success() => break,
                _ if started.elapsed() < Duration::from_secs(15) => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                _ => bail!("janus did not come up at {base}"),
            }
        }
        Ok(Self {
            http,
            base,
            transaction: 0,
            kept: Vec::new(),
        })
    }

    async fn post(&mut self, path: &str, mut body: Value) -> anyhow::Result<Value> {
        self.transaction += 1;
        body["transaction"] = json!(format!("t{}", self.transaction));
        let v: Value = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        if v["janus"] == "error" {
            bail!("janus: {v}");
        }
        Ok(v)
    }

    pub async fn session(&mut self) -> anyhow::Result<u64> {
        let v = self.post("", json!({"janus": "create"})).await?;
        v["data"]["id"].as_u64().context("no session id")
    }

    pub async fn attach(&mut self, session: u64, plugin: Plugin) -> anyhow::Result<u64> {
        let v = self
            .post(
                &format!("/{session}"),
                json!({"janus": "attach", "plugin": plugin.package()}),
            )
            .await?;
        v["data"]["id"].as_u64().context("no handle id")
    }

    pub async fn message(
        &mut self,
        session: u64,
        handle: u64,
        body: Value,
    ) -> anyhow::Result<Value> {
        self.post(
            &format!("/{session}/{handle}"),
            json!({"janus": "message", "body": body}),
        )
        .await
    }

    /// A message carrying an SDP offer or answer (`kind`).
    pub async fn message_sdp(
        &mut self,
        session: u64,
        handle: u64,
        body: Value,
        kind: &str,
        sdp: &str,
    ) -> anyhow::Result<Value> {
        self.post(
            &format!("/{session}/{handle}"),
            json!({"janus": "message", "body": body, "jsep": {"type": kind, "sdp": sdp}}),
        )
        .await
    }

    /// Tells Janus that no candidates follow those in the SDP (the load test's clients have
    /// one, a host candidate).
    pub async fn candidates_done(&mut self, session: u64, handle: u64) -> anyhow::Result<()> {
        self.post(
            &format!("/{session}/{handle}"),
            json!({"janus": "trickle", "candidate": {"completed": true}}),
        )
        .await?;
        Ok(())
    }

    /// The session's next event that `wanted` picks, kept or by long poll: the answers to
    /// plugin requests come this way. Events not picked are kept for a later call.
    pub async fn event<T>(
        &mut self,
        session: u64,
        mut wanted: impl FnMut(&Value) -> anyhow::Result<Option<T>>,
    ) -> anyhow::Result<T> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut fresh = std::mem::take(&mut self.kept);
        loop {
            while !fresh.is_empty() {
                let e = fresh.remove(0);
                if e["session_id"].as_u64() == Some(session)
                    && let Some(t) = wanted(&e)?
                {
                    self.kept.extend(fresh);
                    return Ok(t);
                }
                self.kept.push(e);
            }
            if Instant::now() > deadline {
                bail!("janus did not answer in 30 s");
            }
            fresh = self.events(session).await?;
        }
    }

    /// Forgets the events kept for `session` (its set-up is over).
    pub fn forget(&mut self, session: u64) {
        self.kept
            .retain(|e| e["session_id"].as_u64() != Some(session));
    }

    async fn events(&mut self, session: u64) -> anyhow::Result<Vec<Value>> {
        let v: Value = self
            .http
            .get(format!("{}/{session}?maxev=50", self.base))
            .send()
            .await?
            .json()
            .await?;
        Ok(match v {
            Value::Array(a) => a,
            v => vec![v],
        })
    }

    /// A room of the phones at `phones` (their RTP addresses), the first `talkers` unmuted:
    /// where each is to send its RTP, in the same order.
    pub async fn room(
        &mut self,
        room: u64,
        phones: &[SocketAddr],
        talkers: usize,
    ) -> anyhow::Result<Vec<SocketAddr>> {
        let session = self.session().await?;
        let mut handles = Vec::new();
        for _ in phones {
            handles.push(self.attach(session, Plugin::AudioBridge).await?);
        }
        let created = self
            .message(
                session,
                handles[0],
                json!({"request": "create", "room": room, "sampling_rate": 16000,
                       "allow_rtp_participants": true, "audiolevel_ext": false}),
            )
            .await?;
        if created["plugindata"]["data"]["audiobridge"] != "created" {
            bail!("room {room} not created: {created}");
        }
        for (i, (phone, handle)) in phones.iter().zip(&handles).enumerate() {
            self.message(
                session,
                *handle,
                json!({"request": "join", "room": room, "display": format!("phone {i}"),
                       "codec": "pcma", "muted": i >= talkers,
                       "rtp": {"ip": phone.ip().to_string(), "port": phone.port()}}),
            )
            .await?;
        }
        // The joins are answered as events, read by long polls on the session.
        let mut at: Vec<Option<SocketAddr>> = vec![None; phones.len()];
        let deadline = Instant::now() + Duration::from_secs(30);
        while at.iter().any(Option::is_none) {
            if Instant::now() > deadline {
                bail!("janus did not answer every join of room {room}");
            }
            for e in self.events(session).await? {
                let data = &e["plugindata"]["data"];
                if data["audiobridge"] == "event" && data["error"].is_string() {
                    bail!("janus refused a join: {data}");
                }
                let (Some(sender), Some(ip), Some(port)) = (
                    e["sender"].as_u64(),
                    data["rtp"]["ip"].as_str(),
                    data["rtp"]["port"].as_u64(),
                ) else {
                    continue;
                };
                if let Some(i) = handles.iter().position(|h| *h == sender) {
                    at[i] = Some(format!("{ip}:{port}").parse()?);
                }
            }
        }
        Ok(at.into_iter().flatten().collect())
    }
}
