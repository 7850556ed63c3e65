//! Recordings over HTTP (SPEC R4): who sees which, modify, disable, reassign, delete, signed
//! streaming links, byte ranges for playing and seeking, uploads of ARF files and how far their
//! conversion to MP4 is, and a real browser playing and seeking, through a link, an MP4 this
//! server exported.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::common::{Account, TestServer, response};
use reqwest::header;
use serde_json::{Value, json};
use tandem::auth::{Token, unix_secs};
use tandem::store::{AccountRole, NewRecording, RecordingStatus};
use tandem_arf::{Codec, Header, Track, Writer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// Upload limit of the test servers: above the 256 KiB JSON limit, so the test upload proves
/// that limit does not apply, and small enough to go over cheaply.
const MAX_UPLOAD: usize = 1024 * 1024;

/// Runs ffmpeg, quietly, overwriting its output.
fn ffmpeg(args: &[&str]) {
    let out = std::process::Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error"])
        .args(args)
        .output()
        .expect("ffmpeg runs (apt-get install -y ffmpeg)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A 4 s, 320x240, 25 fps H.264 + AAC MP4 with its index at the front, made once per run.
fn fixture_mp4() -> &'static Path {
    static MP4: OnceLock<PathBuf> = OnceLock::new();
    MP4.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("recordings_http");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("testsrc-4s.mp4");
        if !path.exists() {
            let part = dir.join(format!("testsrc-{}.mp4", std::process::id()));
            ffmpeg(&[
                "-f",
                "lavfi",
                "-i",
                "testsrc=duration=4:size=320x240:rate=25",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=1000:duration=4",
                "-c:v",
                "libx264",
                "-c:a",
                "aac",
                "-movflags",
                "+faststart",
                part.to_str().unwrap(),
            ]);
            std::fs::rename(&part, &path).unwrap();
        }
        path
    })
}

/// An ARF writer in memory with these tracks declared.
fn arf_writer(tracks: &[Track]) -> Writer<Vec<u8>> {
    let header = Header {
        recording_id: Uuid::new_v4().to_string(),
        session_id: Uuid::new_v4().to_string(),
        start_unix_ms: 1_735_000_000_000,
        metadata: "{}".into(),
    };
    let mut w = Writer::create(Vec::new(), &header).unwrap();
    for t in tracks {
        w.declare_track(0, t).unwrap();
    }
    w
}

/// An ARF file of about 400 KB lasting 2.5 s: one video track with a frame every 100 ms.
fn arf_bytes() -> Vec<u8> {
    let mut w = arf_writer(&[Track::new(1, Codec::Vp8, 90_000, "screen-test")]);
    for i in 0..=25u64 {
        let payload = vec![(i % 251) as u8; 15_000];
        w.media(1, i * 100_000, i * 9_000, i % 10 == 0, &payload)
            .unwrap();
    }
    w.close().unwrap()
}

/// A real recording made with ffmpeg: `seconds` of a moving test picture (VP8, `w`x`h`, 15 fps)
/// on a screen track and a 440 Hz tone (Opus, 20 ms packets) as the voice mix.
fn real_arf(seconds: u32, w: u32, h: u32) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let ivf = dir.path().join("screen.ivf");
    let ogg = dir.path().join("voice.ogg");
    let picture = format!("testsrc2=duration={seconds}:size={w}x{h}:rate=15");
    let (ivf_path, ogg_path) = (ivf.to_str().unwrap(), ogg.to_str().unwrap());
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &picture,
        "-c:v",
        "libvpx",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-b:v",
        "150k",
        "-g",
        "45",
        "-f",
        "ivf",
        ivf_path,
    ]);
    let tone = format!("sine=frequency=440:duration={seconds}:sample_rate=48000");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &tone,
        "-c:a",
        "libopus",
        "-b:a",
        "24k",
        "-frame_duration",
        "20",
        "-f",
        "ogg",
        ogg_path,
    ]);

    // IVF: a 32-byte header with the time base, then frames of (size, pts) and the bytes.
    let ivf = std::fs::read(ivf).unwrap();
    assert_eq!(&ivf[..4], b"DKIF");
    let le32 = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let (den, num) = (u64::from(le32(&ivf, 16)), u64::from(le32(&ivf, 20)));
    let mut items: Vec<(u64, u16, u64, bool, Vec<u8>)> = Vec::new();
    let mut at = usize::from(u16::from_le_bytes([ivf[6], ivf[7]]));
    while at + 12 <= ivf.len() {
        let size = le32(&ivf, at) as usize;
        let pts = u64::from_le_bytes(ivf[at + 4..at + 12].try_into().unwrap());
        let frame = ivf[at + 12..at + 12 + size].to_vec();
        let us = pts * num * 1_000_000 / den;
        // VP8: the lowest bit of the first byte is 0 on a keyframe.
        items.push((us, 1, us * 9 / 100, frame[0] & 1 == 0, frame));
        at += 12 + size;
    }
    // Ogg: pages of laced segments; the first two packets are Opus's headers.
    let ogg = std::fs::read(ogg).unwrap();
    let (mut packets, mut packet, mut at) = (Vec::new(), Vec::new(), 0);
    while at + 27 <= ogg.len() {
        assert_eq!(&ogg[at..at + 4], b"OggS");
        let segments = usize::from(ogg[at + 26]);
        let mut data = at + 27 + segments;
        for &lace in &ogg[at + 27..at + 27 + segments] {
            packet.extend_from_slice(&ogg[data..data + usize::from(lace)]);
            data += usize::from(lace);
            if lace < 255 {
                packets.push(std::mem::take(&mut packet));
            }
        }
        at = data;
    }
    for (i, p) in packets.into_iter().skip(2).enumerate() {
        let i = i as u64;
        items.push((i * 20_000, 2, i * 960, false, p));
    }
    items.sort_by_key(|i| (i.0, i.1));
    let mut w = arf_writer(&[
        Track::new(1, Codec::Vp8, 90_000, "screen-test"),
        Track::new(2, Codec::Opus, 48_000, "voice-mix"),
    ]);
    for (us, track, ts, key, payload) in items {
        w.media(track, us, ts, key, &payload).unwrap();
    }
    w.close().unwrap()
}

const OCTETS: &str = "application/octet-stream";

struct Setup {
    t: TestServer,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Setup {
    async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// A server with these settings besides the test's recordings folder and upload limit.
    async fn start_with(extra: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("recordings");
        let max = MAX_UPLOAD.to_string();
        let mut settings = vec![
            ("TANDEM_RECORDING_DIR", dir.to_str().unwrap()),
            ("TANDEM_RECORDING_MAX_UPLOAD_BYTES", &max),
        ];
        settings.extend_from_slice(extra);
        let t = TestServer::start_in(tmp.path(), &settings).await;
        Setup { t, dir, _tmp: tmp }
    }

    /// A finished recording with its files in the recordings folder: an ARF of junk bytes and,
    /// when `status` is ready, the fixture MP4.
    async fn recording(&self, owner: &Account, name: &str, status: RecordingStatus) -> Stored {
        std::fs::create_dir_all(&self.dir).unwrap();
        let id = Uuid::new_v4();
        let arf = self.dir.join(format!("{id}.arf"));
        std::fs::write(&arf, b"ARF bytes of a test").unwrap();
        let store = &self.t.server().store;
        store
            .create_recording(NewRecording {
                id,
                session_id: Some(tandem_actors::ids::SessionId::random()),
                owner: owner.id.parse().unwrap(),
                name: name.into(),
                arf_path: arf.clone(),
                created_at: tandem_actors::session::unix_now(),
            })
            .await
            .unwrap();
        let mut mp4 = None;
        if status != RecordingStatus::Recording {
            store
                .finish_recording(id, 1, 4000, 19, RecordingStatus::Processing, None)
                .await
                .unwrap();
        }
        if status == RecordingStatus::Ready {
            let path = self.dir.join(format!("{id}.mp4"));
            std::fs::copy(fixture_mp4(), &path).unwrap();
            let size = std::fs::metadata(&path).unwrap().len() as i64;
            store
                .set_recording_mp4(id, Some(&path), Some(size), status, None)
                .await
                .unwrap();
            mp4 = Some(path);
        } else if status == RecordingStatus::Failed {
            store
                .set_recording_mp4(id, None, None, status, Some("the encoder gave up"))
                .await
                .unwrap();
        }
        Stored {
            id: id.to_string(),
            arf,
            mp4,
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .t
            .http
            .request(method, format!("{}{path}", self.t.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        response(req.send().await.unwrap()).await
    }

    async fn patch(&self, id: &str, token: &str, body: Value) -> (u16, Value) {
        self.send(
            reqwest::Method::PATCH,
            &format!("/api/recordings/{id}"),
            Some(token),
            Some(body),
        )
        .await
    }

    /// A raw request for file bytes: the status, the headers and the body.
    async fn bytes(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        headers: &[(header::HeaderName, &str)],
    ) -> (u16, header::HeaderMap, Vec<u8>) {
        let mut req = self
            .t
            .http
            .request(method, format!("{}{path}", self.t.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(k, *v);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.bytes().await.unwrap().to_vec();
        (status, headers, body)
    }

    /// Asks for a streaming link to recording `id`: the status and the answer.
    async fn link(&self, id: &str, token: &str) -> (u16, Value) {
        self.t
            .post(
                &format!("/api/recordings/{id}/links"),
                Some(token),
                json!({}),
            )
            .await
    }

    /// A GET that is refused: its status and problem code.
    async fn refusal(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let (status, _, body) = self.bytes(reqwest::Method::GET, path, token, &[]).await;
        let body: Value = serde_json::from_slice(&body).unwrap();
        (status, code(&body).to_string())
    }

    async fn get_range(
        &self,
        path: &str,
        token: Option<&str>,
        range: &str,
    ) -> (u16, header::HeaderMap, Vec<u8>) {
        self.bytes(reqwest::Method::GET, path, token, &[(header::RANGE, range)])
            .await
    }

    async fn upload(&self, token: &str, query: &str, ctype: &str, body: Vec<u8>) -> (u16, Value) {
        let r = self
            .t
            .http
            .post(format!("{}/api/recordings{query}", self.t.base))
            .bearer_auth(token)
            .header(header::CONTENT_TYPE, ctype)
            .body(body)
            // A hang fails the test, naming the upload, rather than holding up the whole run.
            .timeout(std::time::Duration::from_secs(60))
            .send()
            .await
            .unwrap_or_else(|e| panic!("upload {query:?}: {e}"));
        response(r).await
    }

    /// Uploads `arf` and watches it being converted: every state the recording shows (alone,
    /// and in the list, in turn) until it is no longer `processing`.
    async fn upload_and_watch(&self, token: &str, arf: Vec<u8>) -> (String, Vec<Value>) {
        let (status, r) = self.upload(token, "", OCTETS, arf).await;
        assert_eq!(status, 201, "{r}");
        let id = r["id"].as_str().unwrap().to_string();
        let mut seen = vec![r];
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
        while seen.last().unwrap()["status"] == "processing" {
            assert!(
                tokio::time::Instant::now() < deadline,
                "still converting: {:?}",
                seen.last()
            );
            let now = if seen.len() % 2 == 0 {
                let (_, list) = self.t.get("/api/recordings", Some(token)).await;
                list["recordings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["id"] == id.as_str())
                    .unwrap()
                    .clone()
            } else {
                let (status, r) = self
                    .t
                    .get(&format!("/api/recordings/{id}"), Some(token))
                    .await;
                assert_eq!(status, 200, "{r}");
                r
            };
            seen.push(now);
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        (id, seen)
    }

    /// Files in the recordings folder, sorted, but for the MP4 exporter's (an upload is exported
    /// as soon as it is stored).
    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.ends_with(".mp4") && !n.ends_with(".partial"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

struct Stored {
    id: String,
    arf: PathBuf,
    mp4: Option<PathBuf>,
}

fn header_str(h: &header::HeaderMap, name: header::HeaderName) -> &str {
    h.get(name).map_or("", |v| v.to_str().unwrap())
}

fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn owners_see_their_own_recordings_and_admins_see_all() {
    let s = Setup::start().await;
    let carol = s.t.account("carol", AccountRole::Csr).await;
    let ann = s.t.account("ann", AccountRole::Agent).await;
    let admin = s.t.account("admin", AccountRole::Admin).await;
    let first = s.recording(&carol, "First", RecordingStatus::Ready).await;
    let second = s
        .recording(&carol, "Second", RecordingStatus::Processing)
        .await;
    let anns = s.recording(&ann, "Ann's", RecordingStatus::Ready).await;
    let ids = |v: &Value| {
        v["recordings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };

    let (status, list) = s.t.get("/api/recordings", Some(&carol.token)).await;
    assert_eq!(status, 200, "{list}");
    let mut mine = ids(&list);
    mine.sort();
    let mut expected = vec![first.id.clone(), second.id.clone()];
    expected.sort();
    assert_eq!(mine, expected);
    let (_, list) = s.t.get("/api/recordings", Some(&ann.token)).await;
    assert_eq!(ids(&list), [anns.id.as_str()]);
    let (_, list) = s.t.get("/api/recordings", Some(&admin.token)).await;
    assert_eq!(ids(&list).len(), 3);
    let (status, list) =
        s.t.get("/api/recordings?mine=true", Some(&admin.token))
            .await;
    assert_eq!((status, ids(&list).len()), (200, 0));
    let (status, body) =
        s.t.get("/api/recordings?colour=red", Some(&carol.token))
            .await;
    assert_eq!((status, code(&body)), (400, "invalid_query"));

    // The shape, without the server's file paths.
    let (status, r) =
        s.t.get(&format!("/api/recordings/{}", first.id), Some(&carol.token))
            .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["name"], "First");
    assert_eq!(r["owner"], carol.id.as_str());
    assert_eq!(r["status"], "ready");
    assert_eq!(r["duration_ms"], 4000);
    assert_eq!(r["disabled"], false);
    assert_eq!(r["description"], "");
    assert!(r["session_id"].is_string() && r["mp4_bytes"].as_i64().unwrap() > 10_000);
    assert!(
        r.get("arf_path").is_none() && r.get("mp4_path").is_none(),
        "{r}"
    );

    let path = format!("/api/recordings/{}", first.id);
    let (status, body) = s.t.get(&path, Some(&ann.token)).await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    let (status, _) = s.t.get(&path, Some(&admin.token)).await;
    assert_eq!(status, 200);
    let (status, body) = s.t.get(&path, None).await;
    assert_eq!((status, code(&body)), (401, "unauthenticated"));
    let (status, body) =
        s.t.get(
            &format!("/api/recordings/{}", Uuid::new_v4()),
            Some(&admin.token),
        )
        .await;
    assert_eq!((status, code(&body)), (404, "unknown_recording"));
    let (status, body) = s.t.get("/api/recordings/nope", Some(&admin.token)).await;
    assert_eq!((status, code(&body)), (404, "unknown_recording"));

    // A customer's participant token is not an account.
    let session = s.t.start_session(&carol, "x").await;
    let (status, body) = s.t.get("/api/recordings", session["token"].as_str()).await;
    assert_eq!((status, code(&body)), (401, "wrong_token_kind"));
}

#[tokio::test]
async fn owners_and_admins_rename_describe_disable_and_reassign() {
    let s = Setup::start().await;
    let carol = s.t.account("carol", AccountRole::Csr).await;
    let ann = s.t.account("ann", AccountRole::Csr).await;
    let admin = s.t.account("admin", AccountRole::Admin).await;
    let r = s.recording(&carol, "Printer", RecordingStatus::Ready).await;

    let (status, body) = s
        .patch(
            &r.id,
            &carol.token,
            json!({"name": "  Printer offline  ", "description": "Driver reinstalled.\nWorks."}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Printer offline");
    assert_eq!(body["description"], "Driver reinstalled.\nWorks.");
    let (status, body) = s.patch(&r.id, &carol.token, json!({})).await;
    assert_eq!(
        (status, body["name"].as_str()),
        (200, Some("Printer offline"))
    );

    for (change, expected) in [
        (json!({"name": ""}), "invalid_name"),
        (json!({"name": "   "}), "invalid_name"),
        (json!({"name": "n".repeat(201)}), "invalid_name"),
        (json!({"name": "a\u{7}b"}), "invalid_name"),
        (
            json!({"description": "d".repeat(2001)}),
            "invalid_description",
        ),
        (json!({"owner": Uuid::new_v4()}), "unknown_account"),
        (json!({"owner": "not-an-id"}), "unknown_account"),
        (json!({"name": 5}), "invalid_body"),
        (json!({"colour": "red"}), "invalid_body"),
    ] {
        let (status, body) = s.patch(&r.id, &carol.token, change.clone()).await;
        assert_eq!((status, code(&body)), (422, expected), "{change}");
    }
    let (status, body) = s
        .patch(&r.id, &carol.token, json!({"name": "n".repeat(200)}))
        .await;
    assert_eq!(status, 200, "{body}");
    // Nobody but the owner and admins changes anything.
    let (status, body) = s.patch(&r.id, &ann.token, json!({"owner": ann.id})).await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    let (status, body) = s.patch(&r.id, &ann.token, json!({"name": "Mine"})).await;
    assert_eq!((status, code(&body)), (403, "forbidden"));

    // The owner hands it to Ann: now it is hers and no longer Carol's.
    let (status, body) = s.patch(&r.id, &carol.token, json!({"owner": ann.id})).await;
    assert_eq!(
        (status, body["owner"].as_str()),
        (200, Some(ann.id.as_str()))
    );
    let path = format!("/api/recordings/{}", r.id);
    let (status, _) = s.t.get(&path, Some(&carol.token)).await;
    assert_eq!(status, 403);
    let (status, _) = s.t.get(&path, Some(&ann.token)).await;
    assert_eq!(status, 200);
    let (status, body) = s
        .patch(&r.id, &carol.token, json!({"owner": carol.id}))
        .await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    // An admin may hand it to anyone, themselves included.
    let (status, body) = s
        .patch(&r.id, &admin.token, json!({"owner": admin.id}))
        .await;
    assert_eq!(
        (status, body["owner"].as_str()),
        (200, Some(admin.id.as_str()))
    );
    let (status, body) = s
        .patch(&r.id, &admin.token, json!({"owner": carol.id}))
        .await;
    assert_eq!(
        (status, body["owner"].as_str()),
        (200, Some(carol.id.as_str()))
    );

    // Disabled: the owner can no longer play it or make links; admins can.
    let (status, body) = s
        .patch(&r.id, &carol.token, json!({"disabled": true}))
        .await;
    assert_eq!((status, body["disabled"].as_bool()), (200, Some(true)));
    let mp4 = format!("/api/recordings/{}/mp4", r.id);
    assert_eq!(
        s.refusal(&mp4, Some(&carol.token)).await,
        (403, "recording_disabled".to_string())
    );
    let (status, body) = s.link(&r.id, &carol.token).await;
    assert_eq!((status, code(&body)), (403, "recording_disabled"));
    // Admins still play it, but nobody gets a link: a link's holder is never an admin.
    let (status, body) = s.link(&r.id, &admin.token).await;
    assert_eq!((status, code(&body)), (403, "recording_disabled"));
    let (status, _, bytes) = s
        .bytes(reqwest::Method::GET, &mp4, Some(&admin.token), &[])
        .await;
    assert_eq!(
        (status, bytes.len() as u64),
        (200, std::fs::metadata(fixture_mp4()).unwrap().len())
    );
    let (status, body) = s
        .patch(&r.id, &carol.token, json!({"disabled": false}))
        .await;
    assert_eq!((status, body["disabled"].as_bool()), (200, Some(false)));
    let (status, _, _) = s
        .bytes(reqwest::Method::GET, &mp4, Some(&carol.token), &[])
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn deleting_removes_the_row_and_both_files() {
    let s = Setup::start().await;
    let carol = s.t.account("carol", AccountRole::Csr).await;
    let ann = s.t.account("ann", AccountRole::Csr).await;
    let admin = s.t.account("admin", AccountRole::Admin).await;
    let r = s.recording(&carol, "Gone", RecordingStatus::Ready).await;
    let del = |id: &str, token: &str| {
        let path = format!("/api/recordings/{id}");
        let token = token.to_string();
        let s = &s;
        async move {
            s.send(reqwest::Method::DELETE, &path, Some(&token), None)
                .await
        }
    };

    let (status, body) = del(&r.id, &ann.token).await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    assert!(r.arf.exists() && r.mp4.as_ref().unwrap().exists());
    let (status, _) = del(&r.id, &carol.token).await;
    assert_eq!(status, 204);
    assert!(!r.arf.exists() && !r.mp4.as_ref().unwrap().exists());
    let (status, body) =
        s.t.get(&format!("/api/recordings/{}", r.id), Some(&carol.token))
            .await;
    assert_eq!((status, code(&body)), (404, "unknown_recording"));
    let (status, body) = del(&r.id, &carol.token).await;
    assert_eq!((status, code(&body)), (404, "unknown_recording"));

    // Still being recorded: refused, and nothing removed.
    let live = s
        .recording(&carol, "Live", RecordingStatus::Recording)
        .await;
    let (status, body) = del(&live.id, &admin.token).await;
    assert_eq!((status, code(&body)), (409, "recording_in_progress"));
    assert!(live.arf.exists());

    // Files already gone are fine.
    let lost = s.recording(&carol, "Lost", RecordingStatus::Ready).await;
    std::fs::remove_file(&lost.arf).unwrap();
    std::fs::remove_file(lost.mp4.as_ref().unwrap()).unwrap();
    let (status, _) = del(&lost.id, &admin.token).await;
    assert_eq!(status, 204);

    // A file that cannot be removed (here a folder where the ARF should be): 500, row kept.
    let stuck = s.recording(&carol, "Stuck", RecordingStatus::Failed).await;
    std::fs::remove_file(&stuck.arf).unwrap();
    std::fs::create_dir(&stuck.arf).unwrap();
    std::fs::write(stuck.arf.join("x"), b"x").unwrap();
    let (status, body) = del(&stuck.id, &carol.token).await;
    assert_eq!((status, code(&body)), (500, "internal"));
    let (status, _) =
        s.t.get(&format!("/api/recordings/{}", stuck.id), Some(&carol.token))
            .await;
    assert_eq!(status, 200);
}

mod limits;
mod playback;
mod uploads;

/// One server-sent event from the dashboard's feed: its name and data.
async fn next_event(resp: &mut reqwest::Response, buf: &mut String) -> (String, Value) {
    loop {
        if let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let name = block.lines().find_map(|l| l.strip_prefix("event:"));
            let data = block.lines().find_map(|l| l.strip_prefix("data:"));
            if let (Some(name), Some(data)) = (name, data) {
                return (
                    name.trim().to_string(),
                    serde_json::from_str(data.trim()).unwrap(),
                );
            }
            continue; // a keep-alive comment
        }
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), resp.chunk())
            .await
            .expect("the feed said nothing for 10 s")
            .expect("the feed broke")
            .expect("the feed ended");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

async fn open_feed(s: &Setup, token: &str) -> reqwest::Response {
    s.t.http
        .get(format!("{}/api/feed", s.t.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_dashboard_feed_sends_the_lists_then_their_changes_and_is_bounded() {
    // Issue 18 item 3: the dashboard's lists change by themselves, over the CSR's own
    // connection, with the same access checks as the lists.
    let s = Setup::start().await;
    let carol = s.t.account("carol", AccountRole::Csr).await;
    let ann = s.t.account("ann", AccountRole::Agent).await;
    let anns = s.recording(&ann, "Ann's", RecordingStatus::Ready).await;

    let resp = open_feed(&s, "not a token").await;
    assert_eq!(resp.status(), 401);

    let mut feed = open_feed(&s, &carol.token).await;
    assert_eq!(feed.status(), 200);
    assert_eq!(
        feed.headers()[header::CONTENT_TYPE].to_str().unwrap(),
        "text/event-stream"
    );
    let mut buf = String::new();
    // A CSR is no agent: no offers, and none of Ann's recordings.
    assert_eq!(
        next_event(&mut feed, &mut buf).await,
        ("recordings".into(), json!([]))
    );
    let mine = s.recording(&carol, "Printer", RecordingStatus::Ready).await;
    let (name, list) = next_event(&mut feed, &mut buf).await;
    assert_eq!(name, "recordings");
    assert_eq!(list[0]["id"], mine.id.as_str(), "{list}");
    let (status, _) = s
        .patch(&mine.id, &carol.token, json!({"name": "Printer offline"}))
        .await;
    assert_eq!(status, 200);
    let (_, list) = next_event(&mut feed, &mut buf).await;
    assert_eq!(list[0]["name"], "Printer offline", "{list}");

    // An agent also gets the sessions waiting for them.
    let mut agent = open_feed(&s, &ann.token).await;
    let mut abuf = String::new();
    assert_eq!(
        next_event(&mut agent, &mut abuf).await,
        ("offers".into(), json!([]))
    );
    let (name, list) = next_event(&mut agent, &mut abuf).await;
    assert_eq!(
        (name.as_str(), list[0]["id"].as_str()),
        ("recordings", Some(anns.id.as_str()))
    );

    // At most four streams per account; a closed one frees its place.
    let mut more = Vec::new();
    for _ in 0..3 {
        let r = open_feed(&s, &carol.token).await;
        assert_eq!(r.status(), 200);
        more.push(r);
    }
    let refused = open_feed(&s, &carol.token).await;
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(code(&body), "too_many_feeds");
    drop(more.pop());
    let again = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let r = open_feed(&s, &carol.token).await;
            if r.status() == 200 {
                return r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a closed stream gives its place back");
    drop(again);

    // Signing out everywhere ends the stream.
    let (status, _) =
        s.t.post(
            &format!("/api/users/{}/revoke", carol.id),
            Some(&carol.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 204);
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match feed.chunk().await {
                Ok(Some(_)) => continue,
                _ => return,
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the feed goes on after signing out everywhere"
    );
}
