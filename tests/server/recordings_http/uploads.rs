//! ARF uploads (SPEC R4): checked, stored and limited, and how far their conversion to MP4
//! is until it is ready.

use super::*;
use crate::common::SmallDisk;

/// An upload sent in chunks with no Content-Length, over a raw connection (the test client
/// sends only sized bodies): the status of the answer.
async fn chunked_upload(s: &Setup, token: &str, total: usize) -> u16 {
    let mut conn = tokio::net::TcpStream::connect(s.t.server().addr)
        .await
        .unwrap();
    let head = format!(
        "POST /api/recordings HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < total {
        let n = chunk.len().min(total - sent);
        let mut frame = format!("{n:x}\r\n").into_bytes();
        frame.extend_from_slice(&chunk[..n]);
        frame.extend_from_slice(b"\r\n");
        // Bounded, so a server that neither reads nor closes fails the test instead of hanging it.
        let written = tokio::time::timeout(crate::common::PATIENCE, conn.write_all(&frame))
            .await
            .expect("the server reads the upload or closes the connection");
        if written.is_err() {
            break;
        }
        sent += n;
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(crate::common::PATIENCE, conn.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the server neither answered nor closed: {answer:?}"
    );
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"))
}

/// A client that declares too large a body and waits for `100 Continue` before sending it:
/// the first status line it gets back (the refusal, not a `100`).
async fn expect_continue_upload(s: &Setup, token: &str, declared: usize) -> String {
    let mut conn = tokio::net::TcpStream::connect(s.t.server().addr)
        .await
        .unwrap();
    let head = format!(
        "POST /api/recordings HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\
         Expect: 100-continue\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = tokio::time::timeout(crate::common::PATIENCE, conn.read(&mut buf))
            .await
            .expect("an answer without sending the body");
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    answer.split(' ').nth(1).unwrap_or("none").to_string()
}

#[tokio::test]
async fn uploads_are_checked_stored_and_limited() {
    let s = Setup::start().await;
    let carol = s.t.account("carol", AccountRole::Csr).await;
    let arf = arf_bytes();
    assert!(
        arf.len() > 256 * 1024 && arf.len() < MAX_UPLOAD,
        "{}",
        arf.len()
    );
    let (status, r) = s
        .upload(&carol.token, "?name=Imported%20call", OCTETS, arf.clone())
        .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["name"], "Imported call");
    assert_eq!(r["status"], "processing");
    assert_eq!(r["duration_ms"], 2500);
    assert_eq!(r["arf_bytes"], arf.len());
    assert_eq!(r["owner"], carol.id.as_str());
    assert!(r["session_id"].is_null() && r["mp4_bytes"].is_null(), "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    assert_eq!(s.files(), [format!("{id}.arf")]);
    let (status, _, body) = s
        .bytes(
            reqwest::Method::GET,
            &format!("/api/recordings/{id}/arf"),
            Some(&carol.token),
            &[],
        )
        .await;
    assert_eq!((status, body == arf), (200, true));
    let (status, r) = s.upload(&carol.token, "", OCTETS, arf.clone()).await;
    assert_eq!(
        (status, r["name"].as_str()),
        (201, Some("Uploaded recording"))
    );
    let before = s.files();
    assert_eq!(before.len(), 2);

    // Damaged or not a recording: refused with the reader's code, nothing kept.
    let (status, body) = s
        .upload(&carol.token, "", OCTETS, b"not a recording".repeat(100))
        .await;
    assert_eq!((status, code(&body)), (422, "invalid_recording"));
    assert!(
        body["detail"].as_str().unwrap().contains("bad_magic"),
        "{body}"
    );
    let mut damaged = arf.clone();
    let middle = damaged.len() / 2;
    for b in &mut damaged[middle..middle + 64] {
        *b ^= 0x55;
    }
    let (status, body) = s.upload(&carol.token, "", OCTETS, damaged).await;
    assert_eq!((status, code(&body)), (422, "invalid_recording"), "{body}");
    let (status, body) = s.upload(&carol.token, "", OCTETS, Vec::new()).await;
    assert_eq!((status, code(&body)), (422, "invalid_recording"), "{body}");

    // Over the limit, declared or streamed.
    let (status, body) = s
        .upload(&carol.token, "", OCTETS, vec![0; MAX_UPLOAD + 1])
        .await;
    assert_eq!((status, code(&body)), (413, "body_too_large"));
    assert_eq!(
        chunked_upload(&s, &carol.token, MAX_UPLOAD + 100_000).await,
        413
    );
    assert_eq!(
        expect_continue_upload(&s, &carol.token, MAX_UPLOAD + 1).await,
        "413"
    );

    // Not sent as octets, a bad name, no account.
    let (status, body) = s
        .upload(&carol.token, "", "application/json", arf.clone())
        .await;
    assert_eq!((status, code(&body)), (415, "unsupported_media_type"));
    let long = format!("?name={}", "n".repeat(201));
    let (status, body) = s.upload(&carol.token, &long, OCTETS, arf.clone()).await;
    assert_eq!((status, code(&body)), (422, "invalid_name"));
    let (status, body) = s.upload(&carol.token, "?size=1", OCTETS, arf.clone()).await;
    assert_eq!((status, code(&body)), (400, "invalid_query"));
    let (status, body) = s.upload("", "", OCTETS, arf.clone()).await;
    assert_eq!((status, code(&body)), (401, "unauthenticated"));
    assert_eq!(s.files(), before);
    let (_, list) = s.t.get("/api/recordings", Some(&carol.token)).await;
    assert_eq!(list["recordings"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_says_how_far_its_conversion_is_until_it_is_ready() {
    // R4 "convert ARF to MP4": while `processing`, a recording shows its `progress` (0 to 1),
    // alone and in the list; it only grows; once `ready` it has none.
    let s = Setup::start().await;
    let carol = s.t.account("carol", AccountRole::Csr).await;
    let arf = real_arf(30, 640, 360);
    assert!(arf.len() < MAX_UPLOAD, "{} bytes", arf.len());
    let (_, seen) = s.upload_and_watch(&carol.token, arf).await;
    let last = seen.last().unwrap();
    assert_eq!(last["status"], "ready", "{last}");
    assert!(last.get("progress").is_none(), "{last}");
    let converting = &seen[..seen.len() - 1];
    let progress: Vec<f64> = converting
        .iter()
        .map(|r| {
            r["progress"]
                .as_f64()
                .unwrap_or_else(|| panic!("no progress while processing: {r}"))
        })
        .collect();
    assert!(
        progress.iter().all(|p| (0.0..=1.0).contains(p)),
        "{progress:?}"
    );
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "progress went back: {progress:?}"
    );
    assert!(
        progress.iter().any(|p| *p > 0.0 && *p < 1.0),
        "never seen part-way: {progress:?}"
    );
}

/// An upload that fills the disk is refused as the server's problem (507
/// `insufficient_storage`), not as a damaged recording, and leaves nothing behind: no file, no
/// row. Once there is room again, the same upload is taken.
#[tokio::test]
async fn an_upload_to_a_full_disk_is_refused_as_such_and_leaves_nothing() {
    let s = Setup::start().await;
    let carol = s.t.account("carol", AccountRole::Csr).await;
    let arf = arf_bytes();
    let disk = SmallDisk::mount(&s.dir, "256k");
    let (status, r) = s.upload(&carol.token, "", OCTETS, arf.clone()).await;
    assert_eq!(
        (status, r["code"].as_str()),
        (507, Some("insufficient_storage")),
        "{r}"
    );
    assert!(s.files().is_empty(), "{:?}", s.files());
    let (_, list) = s.t.get("/api/recordings", Some(&carol.token)).await;
    assert_eq!(
        list["recordings"].as_array().map(Vec::len),
        Some(0),
        "{list}"
    );
    drop(disk);
    let (status, r) = s.upload(&carol.token, "", OCTETS, arf).await;
    assert_eq!(status, 201, "{r}");
}
