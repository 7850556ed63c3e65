//! SPEC F1, basic file transfer over the API: the primary CSR publishes files while file
//! transfer with a customer runs, that customer (and nobody else of the customers) downloads
//! them whole, and they are gone from the server's disk when withdrawn, when file transfer
//! ends, and when the session ends. Sizes, names and a full disk are refused with a clear code
//! and leave nothing behind.

use std::path::Path;

use crate::common::{SmallDisk, TestServer, Ws, allow, ask};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tandem::store::AccountRole;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8)
        .collect()
}

fn hex_sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

async fn publish(
    t: &TestServer,
    session: &str,
    token: &str,
    name: &str,
    data: Vec<u8>,
) -> (u16, Value) {
    let mut url = reqwest::Url::parse(&format!("{}/api/sessions/{session}/files", t.base)).unwrap();
    url.query_pairs_mut().append_pair("name", name);
    let r = t
        .http
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(data)
        .send()
        .await
        .unwrap();
    crate::common::response(r).await
}

/// Downloads a file: the status, the body and the `Content-Disposition`.
async fn download(
    t: &TestServer,
    session: &str,
    file: &str,
    token: &str,
) -> (u16, Vec<u8>, String) {
    let r = t
        .http
        .get(format!("{}/api/sessions/{session}/files/{file}", t.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let disposition = r
        .headers()
        .get("content-disposition")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, r.bytes().await.unwrap().to_vec(), disposition)
}

/// Files (not folders) anywhere under `dir`.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

struct Setting {
    t: TestServer,
    carol: crate::common::Account,
    session: String,
    csr_token: String,
    csr: Ws,
    dora_token: String,
    dora: Ws,
    erin_token: String,
    _erin: Ws,
}

/// Carol's session with two customers, Dora selected.
async fn setting(extra: &[(&str, &str)]) -> Setting {
    let t = TestServer::start_with(extra).await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let s = t.start_session(&carol, "Files").await;
    let number = s["session"]["number"].as_str().unwrap().to_string();
    let csr = t.connect(&s).await;
    let d = t.join_by_number(&number, "Dora").await;
    let dora = t.connect(&d).await;
    let e = t.join_by_number(&number, "Erin").await;
    let erin = t.connect(&e).await;
    let mut csr = csr;
    csr.cmd(json!({"type": "select_customer", "customer": dora.id()}))
        .await
        .unwrap();
    Setting {
        session: s["session"]["id"].as_str().unwrap().to_string(),
        csr_token: s["token"].as_str().unwrap().to_string(),
        csr,
        dora_token: d["token"].as_str().unwrap().to_string(),
        dora,
        erin_token: e["token"].as_str().unwrap().to_string(),
        _erin: erin,
        carol,
        t,
    }
}

#[tokio::test]
async fn published_files_reach_their_customer_whole_and_leave_the_server_when_transfer_ends() {
    let Setting {
        t,
        carol,
        session,
        csr_token,
        mut csr,
        dora_token,
        mut dora,
        erin_token,
        ..
    } = setting(&[]).await;
    let report = bytes(300_000, 7);

    // Nothing is published before the customer allowed file transfer (S9).
    let (status, body) = publish(&t, &session, &csr_token, "report.pdf", report.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("activity_not_running")),
        "{body}"
    );
    let asked = ask(&mut csr, &mut dora, "file_transfer").await;
    allow(&mut csr, &mut dora, &asked).await;

    // Any Unicode name is kept as the CSR gave it; the download is the same bytes.
    let name = "Bericht für Dora 報告 ✓.pdf";
    let (status, first) = publish(&t, &session, &csr_token, name, report.clone()).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["sha256"], hex_sha(&report));
    assert_eq!(first["size"], report.len());
    let seen = dora.event("file_published").await;
    assert_eq!(
        (seen["name"].as_str(), &seen["sha256"]),
        (Some(name), &first["sha256"])
    );
    let id = first["id"].as_str().unwrap();
    let (status, got, disposition) = download(&t, &session, id, &dora_token).await;
    assert_eq!(status, 200);
    assert_eq!(hex_sha(&got), hex_sha(&report));
    assert!(
        disposition.contains(
            "filename*=UTF-8''Bericht%20f%C3%BCr%20Dora%20%E5%A0%B1%E5%91%8A%20%E2%9C%93.pdf"
        ),
        "{disposition}"
    );
    let empty = publish(&t, &session, &csr_token, "empty.txt", Vec::new()).await;
    assert_eq!(empty.0, 201, "{}", empty.1);
    let (status, got, _) =
        download(&t, &session, empty.1["id"].as_str().unwrap(), &dora_token).await;
    assert_eq!((status, got.len()), (200, 0));

    // The other customer neither hears of Dora's files nor downloads them.
    let (status, _, _) = download(&t, &session, id, &erin_token).await;
    assert_eq!(status, 404);
    // An assistant downloads them while in the session, and not after leaving.
    let ann = t.account("ann", AccountRole::Csr).await;
    let number = t
        .get(&format!("/api/sessions/{session}"), Some(&carol.token))
        .await
        .1["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let assisting = t.assist(&ann, &number).await;
    let ann_token = assisting["token"].as_str().unwrap().to_owned();
    let mut ann_ws = t.connect(&assisting).await;
    assert_eq!(download(&t, &session, id, &ann_token).await.0, 200);
    ann_ws.cmd(json!({"type": "leave"})).await.unwrap();
    csr.event_where("participant_left", |e| {
        e["participant"] == json!(ann_ws.id())
    })
    .await;
    assert_eq!(download(&t, &session, id, &ann_token).await.0, 404);

    // Only the primary CSR publishes; names that are paths are refused.
    let (status, body) = publish(&t, &session, &dora_token, "mine.txt", b"x".to_vec()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("not_primary")),
        "{body}"
    );
    for bad in ["../escape.txt", "a/b.txt", "..", "tab\there", "back\\slash"] {
        let (status, body) = publish(&t, &session, &csr_token, bad, b"x".to_vec()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("bad_file_name")),
            "{bad}: {body}"
        );
    }

    // Withdrawn: the customer is told, the download is gone and so is the file on disk.
    csr.cmd(json!({"type": "withdraw_file", "file": id}))
        .await
        .unwrap();
    let gone = dora.event("file_withdrawn").await;
    assert_eq!(gone["file"], id);
    assert_eq!(download(&t, &session, id, &dora_token).await.0, 404);
    let files_dir = t.dir.join("files");
    assert_eq!(
        files_under(&files_dir).len(),
        1,
        "only the empty file is left"
    );

    // Ending file transfer takes every file back.
    let second = publish(&t, &session, &csr_token, "second.bin", bytes(1000, 3))
        .await
        .1;
    csr.cmd(json!({"type": "stop_activity", "activity": "file_transfer"}))
        .await
        .unwrap();
    dora.event_where("activity_stopped", |e| e["activity"] == "file_transfer")
        .await;
    assert_eq!(
        download(&t, &session, second["id"].as_str().unwrap(), &dora_token)
            .await
            .0,
        404
    );
    assert!(
        files_under(&files_dir).is_empty(),
        "{:?}",
        files_under(&files_dir)
    );

    // And the end of the session takes the session's folder.
    let asked = ask(&mut csr, &mut dora, "file_transfer").await;
    allow(&mut csr, &mut dora, &asked).await;
    assert_eq!(
        publish(&t, &session, &csr_token, "last.bin", bytes(10, 1))
            .await
            .0,
        201
    );
    csr.cmd(json!({"type": "end_session", "confirm": true}))
        .await
        .unwrap();
    dora.until_closed().await;
    // The report says what was published to whom (RP2), the files themselves are gone.
    let (status, report) = t
        .get(
            &format!("/api/sessions/{session}/report"),
            Some(&carol.token),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    let listed: Vec<(&str, &str)> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["what"].as_str().unwrap(),
                f["name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("published", name),
            ("published", "empty.txt"),
            ("withdrawn", ""),
            ("published", "second.bin"),
            ("published", "last.bin")
        ]
    );
    assert_eq!(report["files"][0]["customer_name"], "Dora");
    let session_dir = files_dir.join(&session);
    for _ in 0..100 {
        if !session_dir.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!session_dir.exists(), "{:?}", files_under(&session_dir));
}

/// Sends a body of unknown length (chunked) over a plain socket, as a client that does not
/// say how much it sends; answers the status line and the body of the answer.
async fn chunked_upload(base: &str, path: &str, token: &str, total: usize) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'z'; 64 * 1024];
    let mut sent = 0;
    while sent < total {
        let n = chunk.len().min(total - sent);
        let frame = [format!("{n:x}\r\n").as_bytes(), &chunk[..n], b"\r\n"].concat();
        if s.write_all(&frame).await.is_err() {
            break;
        }
        sent += n;
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn files_over_the_limits_are_refused_before_or_while_read_and_nothing_is_kept() {
    let Setting {
        t,
        session,
        csr_token,
        mut csr,
        mut dora,
        ..
    } = setting(&[
        ("TANDEM_FILES_MAX_FILE_BYTES", "1000000"),
        ("TANDEM_FILES_MAX_SESSION_BYTES", "1500000"),
    ])
    .await;
    let asked = ask(&mut csr, &mut dora, "file_transfer").await;
    allow(&mut csr, &mut dora, &asked).await;
    let files_dir = t.dir.join("files");

    // Declared too large: refused before the body is read.
    let (status, body) = publish(&t, &session, &csr_token, "big.bin", bytes(1_000_001, 1)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("body_too_large")),
        "{body}"
    );
    // Not declared, and too large once read: refused, and the part written is removed.
    let path = format!("/api/sessions/{session}/files?name=stream.bin");
    let (status, text) = chunked_upload(&t.base, &path, &csr_token, 1_200_000).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("body_too_large"), "{text}");
    assert!(
        files_under(&files_dir).is_empty(),
        "{:?}",
        files_under(&files_dir)
    );
    // Within its limit, a body of unknown length is published.
    let path = format!("/api/sessions/{session}/files?name=stream.bin");
    let (status, text) = chunked_upload(&t.base, &path, &csr_token, 900_000).await;
    assert_eq!(status, 201, "{text}");

    // The session's room counts what is published.
    let (status, body) = publish(&t, &session, &csr_token, "more.bin", bytes(700_000, 2)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (507, Some("session_files_full")),
        "{body}"
    );
    assert_eq!(files_under(&files_dir).len(), 1);
    // Twenty files per customer at most.
    for i in 0..19 {
        let (status, body) = publish(&t, &session, &csr_token, &format!("n{i}"), vec![1]).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = publish(&t, &session, &csr_token, "n20", vec![1]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("too_many_files")),
        "{body}"
    );
    assert_eq!(files_under(&files_dir).len(), 20);
}

#[tokio::test]
async fn a_full_disk_refuses_the_file_with_507_and_keeps_nothing_of_it() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("small");
    let _small = SmallDisk::mount(&disk, "1m");
    let dir = disk.display().to_string();
    let Setting {
        t,
        session,
        csr_token,
        mut csr,
        mut dora,
        dora_token,
        ..
    } = setting(&[("TANDEM_FILES_DIR", &dir)]).await;
    let asked = ask(&mut csr, &mut dora, "file_transfer").await;
    allow(&mut csr, &mut dora, &asked).await;
    let (status, body) = publish(&t, &session, &csr_token, "huge.bin", bytes(3_000_000, 9)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (507, Some("insufficient_storage")),
        "{body}"
    );
    assert!(files_under(&disk).is_empty(), "{:?}", files_under(&disk));
    assert!(!dora.saw_event("file_published", |_| true));
    // Once there is room again (nothing was kept), the next file goes through.
    let small = bytes(200_000, 4);
    let (status, body) = publish(&t, &session, &csr_token, "fits.bin", small.clone()).await;
    assert_eq!(status, 201, "{body}");
    let (status, got, _) = download(&t, &session, body["id"].as_str().unwrap(), &dora_token).await;
    assert_eq!((status, hex_sha(&got)), (200, hex_sha(&small)));
}
