//! What one recording may cost (issue 15): an upload is checked against the limits before it
//! is accepted (its length, its gaps, the picture size its frames declare, the account's
//! quota); exports run from a queue (a few at once, one per account), each bounded by the same
//! picture size and by time; deleting a recording stops its export, and stopping the server
//! stops them all.

use super::*;
use crate::common::media_files;
use std::time::Duration;

/// A real VP8 keyframe of 160x90 (a few hundred bytes).
fn vp8_keyframe() -> Vec<u8> {
    let frames = media_files::video(Codec::Vp8, 160, 90, 0.2, 60, false);
    assert!(frames[0].keyframe);
    frames[0].data.clone()
}

/// An ARF with a screen track whose first keyframe is `keyframe`, and then only `events` (at
/// these arrival times, in microseconds).
fn sparse_arf(keyframe: &[u8], events: &[u64]) -> Vec<u8> {
    let mut w = arf_writer(&[Track::new(1, Codec::Vp8, 90_000, "screen-test")]);
    w.media(1, 0, 0, true, keyframe).unwrap();
    for &at in events {
        w.event(at, "chat", r#"{"text":"still there?"}"#).unwrap();
    }
    w.close().unwrap()
}

const SECOND: u64 = 1_000_000;
const HOUR: u64 = 3600 * SECOND;

/// Eleven hours of one still picture, with an event every 50 minutes: within every limit, and
/// an export that takes far longer than a test (about a million output frames).
fn long_arf() -> Vec<u8> {
    let events: Vec<u64> = (1..=13).map(|i| i * 50 * 60 * SECOND).collect();
    sparse_arf(&vp8_keyframe(), &events)
}

impl Setup {
    /// The recording's state as its owner sees it.
    async fn state(&self, token: &str, id: &str) -> Value {
        let (status, r) = self
            .t
            .get(&format!("/api/recordings/{id}"), Some(token))
            .await;
        assert_eq!(status, 200, "{r}");
        r
    }

    /// Waits until the recording is being exported (its progress is past 0).
    async fn until_exporting(&self, token: &str, id: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.state(token, id).await;
            assert_eq!(r["status"], "processing", "{r}");
            if r["progress"].as_f64().is_some_and(|p| p > 0.0) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never exported: {r}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the recording is no longer `processing`; its state then.
    async fn until_done(&self, token: &str, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let r = self.state(token, id).await;
            if r["status"] != "processing" {
                return r;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still exporting: {r}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A recording the server could have made (it has a session): not checked as an upload is.
    async fn server_made(&self, owner: &Account, arf: &[u8]) -> String {
        std::fs::create_dir_all(&self.dir).unwrap();
        let id = Uuid::new_v4();
        let path = self.dir.join(format!("{id}.arf"));
        std::fs::write(&path, arf).unwrap();
        let store = &self.t.server().store;
        store
            .create_recording(NewRecording {
                id,
                session_id: Some(tandem_actors::ids::SessionId::random()),
                owner: owner.id.parse().unwrap(),
                name: "Made here".into(),
                arf_path: path,
                created_at: tandem_actors::session::unix_now(),
            })
            .await
            .unwrap();
        store
            .finish_recording(id, 1, 1000, 1, RecordingStatus::Processing, None)
            .await
            .unwrap();
        // The exporter finds it at its next look (every few seconds).
        id.to_string()
    }

    /// Files an export is writing (its MP4 under a temporary name).
    fn partial_files(&self) -> Vec<String> {
        std::fs::read_dir(&self.dir)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".partial"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The crafted uploads of issue 15 are refused with the limit they break, and keep nothing: a
/// few hundred bytes with one event three days later (an export would render three days of
/// video), an event two hours after the last record (a gap), and a 3 KB file whose VP8
/// keyframe claims 16383x16383 (a decoder would allocate about 400 MB a picture). A normal
/// upload after them is exported as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_uploads_are_refused_and_a_normal_one_after_them_exports() {
    let s = Setup::start().await;
    let carol = s.t.account("carol", AccountRole::Csr).await;
    let keyframe = vp8_keyframe();

    let days = sparse_arf(&keyframe, &[3 * 24 * HOUR]);
    assert!(days.len() < 1024, "{} bytes", days.len());
    let (status, body) = s.upload(&carol.token, "", OCTETS, days).await;
    assert_eq!((status, code(&body)), (422, "recording_too_long"), "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("43200 s"),
        "says the limit: {body}"
    );

    let gap = sparse_arf(&keyframe, &[2 * HOUR]);
    let (status, body) = s.upload(&carol.token, "", OCTETS, gap).await;
    assert_eq!((status, code(&body)), (422, "recording_gap"), "{body}");

    let mut huge = keyframe.clone();
    huge[6..10].copy_from_slice(&[0xff, 0x3f, 0xff, 0x3f]);
    let huge = sparse_arf(&huge, &[SECOND]);
    let (status, body) = s.upload(&carol.token, "", OCTETS, huge).await;
    assert_eq!((status, code(&body)), (422, "frame_too_large"), "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("16383x16383"),
        "{body}"
    );

    assert!(s.files().is_empty(), "{:?}", s.files());
    let (_, list) = s.t.get("/api/recordings", Some(&carol.token)).await;
    assert_eq!(list["recordings"].as_array().map(Vec::len), Some(0));
    let m = s.t.metrics().await;
    assert!(
        m.contains(r#"tandem_uploads_refused_total{code="frame_too_large"} 1"#),
        "{m}"
    );

    let (id, seen) = s
        .upload_and_watch(&carol.token, real_arf(3, 320, 240))
        .await;
    let done = seen.last().unwrap();
    assert_eq!(done["status"], "ready", "{done}");
    crate::common::check_exported_mp4(
        &s.dir.join(format!("{id}.mp4")),
        done["duration_ms"].as_i64().unwrap(),
    );
}

/// A recording the server made is not checked as an upload is, but its export is bounded all
/// the same: a frame larger than the limit fails it before it is decoded, with a reason the
/// console shows, and nothing of an MP4 is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_refuses_frames_over_the_limit_and_says_so() {
    let s = Setup::start().await;
    let carol = s.t.account("carol", AccountRole::Csr).await;
    let mut huge = vp8_keyframe();
    huge[6..10].copy_from_slice(&[0xff, 0x3f, 0xff, 0x3f]);
    let id = s.server_made(&carol, &sparse_arf(&huge, &[SECOND])).await;
    let r = s.until_done(&carol.token, &id).await;
    assert_eq!(r["status"], "failed", "{r}");
    let error = r["error"].as_str().unwrap();
    assert!(
        error.contains("frame_too_large") && error.contains("16383x16383"),
        "{error}"
    );
    assert!(r["mp4_bytes"].is_null(), "{r}");
    assert!(s.partial_files().is_empty(), "{:?}", s.partial_files());
}

/// An export that takes longer than it is allowed for its recording's length fails cleanly
/// (`export_timeout`, shown as the recording's error) instead of holding its worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_past_its_time_fails_cleanly() {
    let s = Setup::start_with(&[
        ("TANDEM_RECORDING_EXPORT_TIME_RATIO", "0.000001"),
        ("TANDEM_RECORDING_EXPORT_MIN_SECS", "0"),
    ])
    .await;
    let carol = s.t.account("carol", AccountRole::Csr).await;
    let (status, r) = s.upload(&carol.token, "", OCTETS, long_arf()).await;
    assert_eq!(status, 201, "{r}");
    let r = s.until_done(&carol.token, r["id"].as_str().unwrap()).await;
    assert_eq!(r["status"], "failed", "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("export_timeout"),
        "{r}"
    );
    assert!(s.partial_files().is_empty(), "{:?}", s.partial_files());
}

/// With one export at a time: deleting the recording being exported stops its export (it
/// would run for hours) and leaves nothing of it; the upload queued behind it then exports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_recording_stops_its_export_and_the_next_one_goes() {
    let s = Setup::start_with(&[("TANDEM_RECORDING_EXPORT_WORKERS", "1")]).await;
    let carol = s.t.account("carol", AccountRole::Csr).await;
    let ann = s.t.account("ann", AccountRole::Csr).await;
    let (status, long) = s.upload(&carol.token, "", OCTETS, long_arf()).await;
    assert_eq!(status, 201, "{long}");
    let long = long["id"].as_str().unwrap().to_string();
    s.until_exporting(&carol.token, &long).await;
    let (status, next) = s
        .upload(&ann.token, "", OCTETS, real_arf(3, 320, 240))
        .await;
    assert_eq!(status, 201, "{next}");
    let next = next["id"].as_str().unwrap().to_string();
    assert_eq!(s.state(&ann.token, &next).await["progress"], 0.0, "queued");

    let (status, _) = s
        .send(
            reqwest::Method::DELETE,
            &format!("/api/recordings/{long}"),
            Some(&carol.token),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let r = s.until_done(&ann.token, &next).await;
    assert_eq!(r["status"], "ready", "{r}");
    crate::common::check_exported_mp4(
        &s.dir.join(format!("{next}.mp4")),
        r["duration_ms"].as_i64().unwrap(),
    );
    assert!(s.partial_files().is_empty(), "{:?}", s.partial_files());
    assert!(
        !s.dir.join(format!("{long}.mp4")).exists() && !s.dir.join(format!("{long}.arf")).exists()
    );
    // Metrics are the process's: other tests' exports may have been cancelled too.
    let m = s.t.metrics().await;
    let cancelled = m
        .lines()
        .find_map(|l| l.strip_prefix("tandem_exports_cancelled_total "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(cancelled.is_some_and(|n| n >= 1.0), "{m}");
}

/// One account's long export does not hold up another's (two workers, one export per account
/// at a time), and stopping the server stops the export still running: when `stop` returns,
/// nothing is being written any more, and the recording is still `processing` (it is exported
/// again at the next start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_export_holds_up_nobody_and_stops_with_the_server() {
    let mut s = Setup::start().await;
    let carol = s.t.account("carol", AccountRole::Csr).await;
    let ann = s.t.account("ann", AccountRole::Csr).await;
    let (status, long) = s.upload(&carol.token, "", OCTETS, long_arf()).await;
    assert_eq!(status, 201, "{long}");
    let long = long["id"].as_str().unwrap().to_string();
    s.until_exporting(&carol.token, &long).await;
    // Carol's second recording waits for her first; Ann's goes at once.
    let (status, carols) = s
        .upload(&carol.token, "", OCTETS, real_arf(2, 160, 120))
        .await;
    assert_eq!(status, 201, "{carols}");
    let (id, seen) = s.upload_and_watch(&ann.token, real_arf(3, 320, 240)).await;
    let done = seen.last().unwrap();
    assert_eq!(done["status"], "ready", "{done}");
    crate::common::check_exported_mp4(
        &s.dir.join(format!("{id}.mp4")),
        done["duration_ms"].as_i64().unwrap(),
    );
    let carols = s.state(&carol.token, carols["id"].as_str().unwrap()).await;
    assert_eq!(
        (carols["status"].as_str(), carols["progress"].as_f64()),
        (Some("processing"), Some(0.0)),
        "{carols}"
    );
    assert_eq!(s.state(&carol.token, &long).await["status"], "processing");
    assert!(!s.partial_files().is_empty(), "the long export runs");

    let store = s.t.server().store.clone();
    s.t.stop().await;
    assert!(
        s.partial_files().is_empty(),
        "an export still writes after the server stopped: {:?}",
        s.partial_files()
    );
    let row = store
        .recording(long.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, RecordingStatus::Processing);
}

/// The real server process, interrupted (Ctrl-C) while it exports a recording that would take
/// hours, exits promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_process_exits_on_ctrl_c_during_an_export() {
    use crate::common::process::{add_csr, login, serve, tandem};
    let dir = tempfile::tempdir().unwrap();
    add_csr(tandem(dir.path()), "carol").await;
    let (mut server, base) = serve(tandem(dir.path())).await;
    let token = login(&base, "carol").await;
    let http = reqwest::Client::new();
    let r: Value = http
        .post(format!("{base}/api/recordings"))
        .bearer_auth(&token)
        .header(header::CONTENT_TYPE, OCTETS)
        .body(long_arf())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["id"].as_str().unwrap().to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r: Value = http
            .get(format!("{base}/api/recordings/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r["progress"].as_f64().is_some_and(|p| p > 0.0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never exported: {r}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = server.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let exited = tokio::time::timeout(crate::common::PATIENCE, server.wait()).await;
    assert!(
        exited.is_ok(),
        "the server did not exit within {:?} of Ctrl-C",
        crate::common::PATIENCE
    );
}

/// An account's uploads may hold so many bytes: past that, 507 `upload_quota_exceeded` (the
/// upload is not kept); another account still uploads, and deleting makes room again.
#[tokio::test]
async fn uploads_past_the_accounts_quota_are_refused() {
    let arf = arf_bytes();
    let quota = (arf.len() * 2 + 100).to_string();
    let s = Setup::start_with(&[("TANDEM_RECORDING_UPLOAD_QUOTA_BYTES", &quota)]).await;
    let carol = s.t.account("carol", AccountRole::Csr).await;
    let ann = s.t.account("ann", AccountRole::Csr).await;
    let (status, first) = s.upload(&carol.token, "", OCTETS, arf.clone()).await;
    assert_eq!(status, 201, "{first}");
    let (status, _) = s.upload(&carol.token, "", OCTETS, arf.clone()).await;
    assert_eq!(status, 201);
    let before = s.files();
    let (status, body) = s.upload(&carol.token, "", OCTETS, arf.clone()).await;
    assert_eq!(
        (status, code(&body)),
        (507, "upload_quota_exceeded"),
        "{body}"
    );
    assert_eq!(s.files(), before, "nothing kept");
    let (status, _) = s.upload(&ann.token, "", OCTETS, arf.clone()).await;
    assert_eq!(status, 201, "Ann has her own quota");
    let (status, _) = s
        .send(
            reqwest::Method::DELETE,
            &format!("/api/recordings/{}", first["id"].as_str().unwrap()),
            Some(&carol.token),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = s.upload(&carol.token, "", OCTETS, arf).await;
    assert_eq!(status, 201, "{body}");
}

/// Begins an upload of `len` bytes on a connection of its own, asking to be told to go on
/// (`Expect: 100-continue`: the server says so once it is reading the body, so past the
/// quota's check) before sending them; answers the connection and the server's first answer.
async fn begin_upload(s: &Setup, token: &str, len: usize) -> (tokio::net::TcpStream, String) {
    let mut conn = tokio::net::TcpStream::connect(s.t.server().addr)
        .await
        .unwrap();
    let head = format!(
        "POST /api/recordings HTTP/1.1\r\nHost: tandem\r\nAuthorization: Bearer {token}\r\nContent-Type: {OCTETS}\r\nContent-Length: {len}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut said = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(crate::common::PATIENCE, async {
        while !said.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&said));
            said.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("the server answers the upload's headers");
    (conn, String::from_utf8_lossy(&said).into_owned())
}

/// Sends `body` (if the server still takes it) and reads the final answer: its status and
/// problem code.
async fn finish_upload(
    mut conn: tokio::net::TcpStream,
    said: String,
    body: &[u8],
) -> (u16, String) {
    let _ = conn.write_all(body).await;
    let mut rest = Vec::new();
    tokio::time::timeout(crate::common::PATIENCE, conn.read_to_end(&mut rest))
        .await
        .expect("the server answers the upload")
        .unwrap();
    let all = said + &String::from_utf8_lossy(&rest);
    let last = all
        .rsplit("HTTP/1.1 ")
        .next()
        .expect("an answer")
        .to_string();
    let status = last[..3].parse().unwrap();
    let code = last
        .split("\"code\":\"")
        .nth(1)
        .and_then(|c| c.split('"').next())
        .unwrap_or("")
        .to_string();
    (status, code)
}

/// Two uploads at once, each within the account's quota but not both: the one that began
/// first is stored and the other is refused before its body is sent (both used to be stored,
/// overshooting the quota by a whole upload). A failed upload gives back the room it took.
#[tokio::test]
async fn uploads_at_once_cannot_overshoot_the_quota_together() {
    let arf = arf_bytes();
    let quota = (arf.len() * 3 / 2).to_string();
    let s = Setup::start_with(&[("TANDEM_RECORDING_UPLOAD_QUOTA_BYTES", &quota)]).await;
    let carol = s.t.account("carol", AccountRole::Csr).await;
    let damaged = vec![7u8; arf.len()];
    let (status, body) = s.upload(&carol.token, "", OCTETS, damaged).await;
    assert_eq!((status, code(&body)), (422, "invalid_recording"), "{body}");

    let (first, said) = begin_upload(&s, &carol.token, arf.len()).await;
    assert!(said.starts_with("HTTP/1.1 100 "), "{said}");
    let (second, said_second) = begin_upload(&s, &carol.token, arf.len()).await;
    let (first, second) = tokio::join!(
        finish_upload(first, said, &arf),
        finish_upload(second, said_second.clone(), &arf)
    );
    assert_eq!(first, (201, String::new()));
    assert_eq!(
        second,
        (507, "upload_quota_exceeded".to_string()),
        "the second upload was told: {said_second}"
    );
    let arfs = s.files().iter().filter(|n| n.ends_with(".arf")).count();
    assert_eq!(arfs, 1, "{:?}", s.files());
}
