//! SPEC F2's batches over the API (docs/protocol.md, "Files on the customer's computer"): a
//! batch goes up in steps at the offset the server confirms, is checked whole against its
//! SHA-256, and comes down from any byte; only its two sides see it; a bad list, a wrong
//! step, a damaged file and a full disk are refused with their codes and keep nothing.

use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tandem::store::AccountRole;

use crate::common::{SmallDisk, TestServer, Ws, allow, ask};

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed) ^ (i >> 11) as u8)
        .collect()
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// Carol's session with Dora, whose Tandem Helper (able to move files) is connected, and file
/// transfer allowed on Dora's page.
struct Setting {
    t: TestServer,
    base: String,
    carol: String,
    dora: String,
    computer: String,
    _ws: (Ws, Ws, Ws),
}

async fn setting(extra: &[(&str, &str)]) -> Setting {
    let t = TestServer::start_with(extra).await;
    let account = t.account("carol", AccountRole::Csr).await;
    let s = t.start_session(&account, "Files").await;
    let mut csr = t.connect(&s).await;
    let d = t
        .join_by_number(s["session"]["number"].as_str().unwrap(), "Dora")
        .await;
    let mut dora = t.connect(&d).await;
    let (status, code) = t
        .post("/api/helper/codes", d["token"].as_str(), json!({}))
        .await;
    assert_eq!(status, 201, "{code}");
    let (status, paired) = t
        .post(
            "/api/helper/join",
            None,
            json!({"code": code["code"], "can": ["file_transfer"]}),
        )
        .await;
    assert_eq!(status, 201, "{paired}");
    let computer = t.connect(&paired).await;
    let asked = ask(&mut csr, &mut dora, "file_transfer").await;
    allow(&mut csr, &mut dora, &asked).await;
    Setting {
        base: format!(
            "{}/api/sessions/{}",
            t.base,
            s["session"]["id"].as_str().unwrap()
        ),
        carol: s["token"].as_str().unwrap().to_owned(),
        dora: d["token"].as_str().unwrap().to_owned(),
        computer: paired["token"].as_str().unwrap().to_owned(),
        _ws: (csr, dora, computer),
        t,
    }
}

impl Setting {
    async fn send(&self, r: reqwest::RequestBuilder) -> (u16, Value) {
        crate::common::response(r.send().await.unwrap()).await
    }

    async fn create(&self, token: &str, body: Value) -> (u16, Value) {
        self.send(
            self.t
                .http
                .post(format!("{}/file-batches", self.base))
                .bearer_auth(token)
                .json(&body),
        )
        .await
    }

    /// A batch of one file, `data` at `path`, made by Carol: its id.
    async fn one_file_batch(&self, path: &str, data: &[u8]) -> String {
        let (status, made) = self
            .create(
                &self.carol,
                json!({"files": [{"path": path, "size": data.len(), "sha256": sha(data)}]}),
            )
            .await;
        assert_eq!(status, 201, "{made}");
        made["batch"].as_str().unwrap().to_owned()
    }

    /// Carol's upload of `data` as batch `batch`'s one file meets the full disk: refused with
    /// 507, and nothing of it kept.
    async fn refused_on_full_disk(&self, batch: &str, data: Vec<u8>) {
        let (status, body) = self.put(&self.carol, batch, 0, 0, data).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (507, Some("insufficient_storage")),
            "{body}"
        );
        let (_, st) = self.status(&self.carol, batch).await;
        assert_eq!(st["files"][0]["have"], 0, "{st}");
    }

    async fn put(
        &self,
        token: &str,
        batch: &str,
        i: usize,
        offset: u64,
        body: Vec<u8>,
    ) -> (u16, Value) {
        self.send(
            self.t
                .http
                .put(format!(
                    "{}/file-batches/{batch}/{i}?offset={offset}",
                    self.base
                ))
                .bearer_auth(token)
                .header("content-type", "application/octet-stream")
                .body(body),
        )
        .await
    }

    async fn status(&self, token: &str, batch: &str) -> (u16, Value) {
        self.send(
            self.t
                .http
                .get(format!("{}/file-batches/{batch}", self.base))
                .bearer_auth(token),
        )
        .await
    }
}

#[tokio::test]
async fn a_batch_goes_up_in_steps_is_checked_whole_and_comes_down_from_any_byte() {
    let files_dir = tempfile::tempdir().unwrap();
    let dir = files_dir.path().display().to_string();
    let s = setting(&[("TANDEM_FILES_DIR", &dir)]).await;
    let data = bytes(3_000_000, 5);
    let list = json!({
        "files": [
            {"path": "Ordner/ä 日本.bin", "size": data.len(), "sha256": sha(&data)},
            {"path": "leer", "size": 0, "sha256": sha(b"")},
        ],
        "folders": ["Ordner/sub"],
    });

    // Only the primary CSR makes one for the customer's computer, and only a well-formed one.
    let (status, body) = s.create(&s.dora, list.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("not_primary")),
        "{body}"
    );
    let (status, body) = s
        .create(&s.computer, json!({"files": list["files"], "op": 77}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_files_op")),
        "{body}"
    );
    for (bad, code) in [
        (
            json!({"files": [{"path": "../x", "size": 1, "sha256": sha(b"x")}]}),
            "path_escapes",
        ),
        (
            json!({"files": [{"path": "/etc/x", "size": 1, "sha256": sha(b"x")}]}),
            "path_escapes",
        ),
        (
            json!({"files": [{"path": "a", "size": 1, "sha256": "xyz"}]}),
            "bad_sha256",
        ),
        (json!({"files": [], "folders": []}), "bad_batch"),
    ] {
        let (status, body) = s.create(&s.carol, bad.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some(code)),
            "{bad}: {body}"
        );
    }
    let (status, body) = s
        .create(
            &s.carol,
            json!({"files": [
                {"path": "a", "size": 100_000_000, "sha256": sha(b"")},
                {"path": "b", "size": 51_000_000, "sha256": sha(b"")},
            ]}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("batch_too_large")),
        "{body}"
    );

    let (status, made) = s.create(&s.carol, list).await;
    assert_eq!(status, 201, "{made}");
    let batch = made["batch"].as_str().unwrap().to_owned();
    // Dora's page is neither side of it.
    let (status, _) = s.status(&s.dora, &batch).await;
    assert_eq!(status, 404);
    // Only the uploader sends.
    let (status, body) = s.put(&s.computer, &batch, 0, 0, data.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_batch")),
        "{body}"
    );

    // A first step; the same step again is refused with where to go on from.
    let (status, body) = s
        .put(&s.carol, &batch, 0, 0, data[..1_000_000].to_vec())
        .await;
    assert_eq!(
        (status, body["have"].as_u64()),
        (202, Some(1_000_000)),
        "{body}"
    );
    let (status, body) = s.put(&s.carol, &batch, 0, 0, data[..10].to_vec()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("offset_mismatch")),
        "{body}"
    );
    assert!(
        body["detail"].as_str().unwrap().contains("offset=1000000"),
        "{body}"
    );
    let (_, st) = s.status(&s.computer, &batch).await;
    assert_eq!(st["files"][0]["have"], 1_000_000, "{st}");
    // The rest, damaged: refused, and nothing of the file is kept.
    let mut damaged = data[1_000_000..].to_vec();
    damaged[5] ^= 1;
    let (status, body) = s.put(&s.carol, &batch, 0, 1_000_000, damaged).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("checksum_mismatch")),
        "{body}"
    );
    let (_, st) = s.status(&s.carol, &batch).await;
    assert_eq!(
        (st["files"][0]["have"].as_u64(), st["complete"].as_bool()),
        (Some(0), Some(false))
    );
    // Too long a body.
    let mut long = data.clone();
    long.push(0);
    let (status, body) = s.put(&s.carol, &batch, 0, 0, long).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("body_too_large")),
        "{body}"
    );
    // Whole, in two steps, and the empty one.
    let (status, _) = s
        .put(&s.carol, &batch, 0, 0, data[..2_000_000].to_vec())
        .await;
    assert_eq!(status, 202);
    let (status, body) = s
        .put(&s.carol, &batch, 0, 2_000_000, data[2_000_000..].to_vec())
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = s.put(&s.carol, &batch, 0, 0, vec![1]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("already_stored")),
        "{body}"
    );
    let (_, st) = s.status(&s.computer, &batch).await;
    assert_eq!(st["complete"], false, "{st}");
    let (status, _) = s.put(&s.carol, &batch, 1, 0, Vec::new()).await;
    assert_eq!(status, 204);
    let (_, st) = s.status(&s.computer, &batch).await;
    assert_eq!(
        (st["complete"].as_bool(), st["total"].as_u64()),
        (Some(true), Some(3_000_000))
    );

    let (status, p) = s
        .send(
            s.t.http
                .get(format!("{}/file-batches/{batch}/progress", s.base))
                .bearer_auth(&s.computer),
        )
        .await;
    assert_eq!(
        (
            status,
            p["complete"].as_bool(),
            p["total"].as_u64(),
            p["served"].as_u64()
        ),
        (200, Some(true), Some(3_000_000), Some(0)),
        "{p}"
    );
    // Down, whole and from a byte on, for the customer's computer only.
    let url = format!("{}/file-batches/{batch}/0", s.base);
    let r =
        s.t.http
            .get(&url)
            .bearer_auth(&s.carol)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 404, "the uploader does not fetch its own");
    let r =
        s.t.http
            .get(&url)
            .bearer_auth(&s.computer)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sha(&r.bytes().await.unwrap()), sha(&data));
    let r =
        s.t.http
            .get(&url)
            .bearer_auth(&s.computer)
            .header("range", "bytes=2500000-")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"].to_str().unwrap(),
        "bytes 2500000-2999999/3000000"
    );
    assert_eq!(&r.bytes().await.unwrap()[..], &data[2_500_000..]);
    let r =
        s.t.http
            .get(&url)
            .bearer_auth(&s.computer)
            .header("range", "bytes=0-10")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 416);

    // Done: removed from the server's disk.
    assert!(!files_under(files_dir.path()).is_empty());
    let r =
        s.t.http
            .delete(format!("{}/file-batches/{batch}", s.base))
            .bearer_auth(&s.computer)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 204);
    assert!(
        files_under(files_dir.path()).is_empty(),
        "{:?}",
        files_under(files_dir.path())
    );
    let (status, _) = s.status(&s.carol, &batch).await;
    assert_eq!(status, 404);

    // A `send`: the computer fills a batch for it, and the CSR sees how far it is.
    let (status, asked) = s
        .send(
            s.t.http
                .post(format!("{}/computer-files", s.base))
                .bearer_auth(&s.carol)
                .json(&json!({"op": "send", "paths": ["Ordner"]})),
        )
        .await;
    assert_eq!(status, 202, "{asked}");
    let op = asked["op"].as_u64().unwrap();
    let progress = format!("{}/computer-files/{op}", s.base);
    let (status, _) = s.send(s.t.http.get(&progress).bearer_auth(&s.carol)).await;
    assert_eq!(status, 404, "no batch yet");
    let (status, made) = s
        .create(
            &s.computer,
            json!({"files": [{"path": "Ordner/x.bin", "size": data.len(), "sha256": sha(&data)}], "op": op}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let (status, _) = s
        .put(
            &s.computer,
            made["batch"].as_str().unwrap(),
            0,
            0,
            data[..1_500_000].to_vec(),
        )
        .await;
    assert_eq!(status, 202);
    let (status, p) = s.send(s.t.http.get(&progress).bearer_auth(&s.carol)).await;
    assert_eq!(
        (status, p["received"].as_u64(), p["total"].as_u64()),
        (200, Some(1_500_000), Some(3_000_000)),
        "{p}"
    );
    let (status, body) = s.send(s.t.http.get(&progress).bearer_auth(&s.dora)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("not_staff")),
        "{body}"
    );

    // The computer answers only operations sent to it.
    let (status, body) = s
        .send(
            s.t.http
                .post(format!("{}/computer-files/9", s.base))
                .bearer_auth(&s.computer)
                .json(&json!({"ok": true, "message": "done"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_files_op")),
        "{body}"
    );
}

#[tokio::test]
async fn a_full_disk_refuses_the_batch_or_the_file_with_507_and_keeps_nothing_of_it() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("small");
    let _small = SmallDisk::mount(&disk, "1m");
    let dir = disk.display().to_string();
    let s = setting(&[("TANDEM_FILES_DIR", &dir)]).await;
    // More than the disk holds: refused before anything is sent.
    let data = bytes(3_000_000, 7);
    let (status, body) = s
        .create(
            &s.carol,
            json!({"files": [{"path": "big.bin", "size": data.len(), "sha256": sha(&data)}]}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (507, Some("insufficient_storage")),
        "{body}"
    );
    assert!(
        body["detail"].as_str().unwrap().contains("3000000"),
        "{body}"
    );
    // Two that fit alone but not together: the second file meets the full disk.
    let part = bytes(700_000, 8);
    let batches = [
        s.one_file_batch("a.bin", &part).await,
        s.one_file_batch("a.bin", &part).await,
    ];
    let (status, _) = s.put(&s.carol, &batches[0], 0, 0, part.clone()).await;
    assert_eq!(status, 204);
    s.refused_on_full_disk(&batches[1], part).await;
    assert_eq!(files_under(&disk).len(), 1, "{:?}", files_under(&disk));

    // A file whose very last byte meets the full disk: the server's last write fails after
    // the body has all come (tokio writes in the background), and it is refused all the same,
    // not kept short. It fitted when its batch was made; a smaller file took the room since.
    let room = {
        let v = rustix::fs::statvfs(&disk).unwrap();
        v.f_bavail * v.f_frsize
    };
    let small = bytes(3 * 4096, 9);
    let last = bytes((room - small.len() as u64 + 1) as usize, 10);
    let made = [
        s.one_file_batch("b.bin", &last).await,
        s.one_file_batch("b.bin", &small).await,
    ];
    let (status, _) = s.put(&s.carol, &made[1], 0, 0, small).await;
    assert_eq!(status, 204);
    s.refused_on_full_disk(&made[0], last).await;
    assert_eq!(files_under(&disk).len(), 2, "{:?}", files_under(&disk));
}

#[tokio::test]
async fn a_sessions_batches_go_when_it_ends() {
    let files_dir = tempfile::tempdir().unwrap();
    let dir = files_dir.path().display().to_string();
    let mut s = setting(&[("TANDEM_FILES_DIR", &dir)]).await;
    let data = bytes(100_000, 3);
    let batch = s.one_file_batch("a.bin", &data).await;
    let (status, _) = s.put(&s.carol, &batch, 0, 0, data).await;
    assert_eq!(status, 204);
    assert_eq!(files_under(files_dir.path()).len(), 1);
    s._ws
        .0
        .cmd(json!({"type": "end_session", "confirm": true}))
        .await
        .unwrap();
    crate::common::phone::eventually("the batch is removed with its session", || {
        files_under(files_dir.path()).is_empty()
    })
    .await;
}
