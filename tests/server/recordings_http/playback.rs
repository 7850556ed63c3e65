//! Playing recordings (SPEC R4): the MP4 with byte ranges for seeking, a recording not ready
//! yet, signed links that play one recording without an account until they expire, and a
//! real browser playing and seeking through one.

use super::*;

#[tokio::test]
async fn the_mp4_is_served_with_byte_ranges_for_seeking() {
    let s = Setup::start().await;
    let carol = s.t.account("carol", AccountRole::Csr).await;
    let r = s
        .recording(&carol, "Printer / Dave \"2\"", RecordingStatus::Ready)
        .await;
    let file = std::fs::read(fixture_mp4()).unwrap();
    let size = file.len();
    assert!(size > 20_000, "the fixture is {size} bytes");
    let mp4 = format!("/api/recordings/{}/mp4", r.id);
    let tok = Some(carol.token.as_str());

    let (status, h, body) = s.bytes(reqwest::Method::GET, &mp4, tok, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body, file);
    assert_eq!(header_str(&h, header::CONTENT_TYPE), "video/mp4");
    assert_eq!(header_str(&h, header::ACCEPT_RANGES), "bytes");
    assert_eq!(header_str(&h, header::CONTENT_LENGTH), size.to_string());
    assert!(h.get(header::CONTENT_DISPOSITION).is_none());
    let etag = header_str(&h, header::ETAG).to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 10,
        "{etag}"
    );
    assert!(httpdate_ok(header_str(&h, header::LAST_MODIFIED)));

    for (range, first, last) in [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-1999", 1000, 1999),
        ("bytes=-500", size - 500, size - 1),
        (&format!("bytes={}-", size - 300), size - 300, size - 1),
        (&format!("bytes=100-{}", size + 5000), 100, size - 1),
    ] {
        let (status, h, body) = s.get_range(&mp4, tok, range).await;
        assert_eq!(status, 206, "{range}");
        assert_eq!(body, file[first..=last], "{range}");
        assert_eq!(
            header_str(&h, header::CONTENT_RANGE),
            format!("bytes {first}-{last}/{size}"),
            "{range}"
        );
        assert_eq!(
            header_str(&h, header::CONTENT_LENGTH),
            (last - first + 1).to_string()
        );
    }

    let (status, h, body) = s.get_range(&mp4, tok, "bytes=999999999-").await;
    assert_eq!(status, 416);
    assert_eq!(
        header_str(&h, header::CONTENT_RANGE),
        format!("bytes */{size}")
    );
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(code(&problem), "range_not_satisfiable");
    // Several ranges, or a malformed one, get the whole file.
    for range in ["bytes=0-9,100-109", "bytes=9-2", "pages=1-2"] {
        let (status, _, body) = s.get_range(&mp4, tok, range).await;
        assert_eq!((status, body.len()), (200, size), "{range}");
    }

    // If-Range: the current ETag gets the range; anything else the whole (changed) file.
    let (status, _, body) = s
        .bytes(
            reqwest::Method::GET,
            &mp4,
            tok,
            &[(header::RANGE, "bytes=0-99"), (header::IF_RANGE, &etag)],
        )
        .await;
    assert_eq!((status, body.as_slice()), (206, &file[..100]));
    for stale in ["\"0123-abc\"", "W/\"x\"", "Sat, 29 Oct 1994 19:43:31 GMT"] {
        let (status, _, body) = s
            .bytes(
                reqwest::Method::GET,
                &mp4,
                tok,
                &[(header::RANGE, "bytes=0-99"), (header::IF_RANGE, stale)],
            )
            .await;
        assert_eq!((status, body.len()), (200, size), "{stale}");
    }

    let (status, h, body) = s.bytes(reqwest::Method::HEAD, &mp4, tok, &[]).await;
    assert_eq!(status, 200);
    assert!(body.is_empty());
    assert_eq!(header_str(&h, header::CONTENT_LENGTH), size.to_string());
    assert_eq!(header_str(&h, header::ETAG), etag);
    assert_eq!(header_str(&h, header::ACCEPT_RANGES), "bytes");

    // The download is the same bytes under a safe name.
    let download = format!("/api/recordings/{}/download", r.id);
    let (status, h, body) = s.bytes(reqwest::Method::GET, &download, tok, &[]).await;
    assert_eq!((status, body == file), (200, true));
    assert_eq!(
        header_str(&h, header::CONTENT_DISPOSITION),
        "attachment; filename=\"Printer _ Dave _2_.mp4\""
    );
    let (status, _, body) = s.get_range(&download, tok, "bytes=-10").await;
    assert_eq!((status, body.as_slice()), (206, &file[size - 10..]));

    // The ARF, for its owner, with ranges too.
    let arf = format!("/api/recordings/{}/arf", r.id);
    let (status, h, body) = s.bytes(reqwest::Method::GET, &arf, tok, &[]).await;
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"ARF bytes of a test"[..])
    );
    assert_eq!(
        header_str(&h, header::CONTENT_TYPE),
        "application/octet-stream"
    );
    assert!(header_str(&h, header::CONTENT_DISPOSITION).ends_with(".arf\""));
    let (status, _, body) = s.get_range(&arf, tok, "bytes=4-8").await;
    assert_eq!((status, body.as_slice()), (206, &b"bytes"[..]));
    let ann = s.t.account("ann", AccountRole::Csr).await;
    let (status, _, _) = s
        .bytes(reqwest::Method::GET, &arf, Some(&ann.token), &[])
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = s
        .bytes(reqwest::Method::GET, &mp4, Some(&ann.token), &[])
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = s.bytes(reqwest::Method::GET, &mp4, None, &[]).await;
    assert_eq!(status, 401);
}

fn httpdate_ok(s: &str) -> bool {
    s.ends_with(" GMT") && s.len() == 29
}

#[tokio::test]
async fn a_recording_without_an_mp4_is_not_ready() {
    let s = Setup::start().await;
    let carol = s.t.account("carol", AccountRole::Csr).await;
    for status in [
        RecordingStatus::Recording,
        RecordingStatus::Processing,
        RecordingStatus::Failed,
    ] {
        let r = s.recording(&carol, "Not yet", status).await;
        assert_eq!(
            s.refusal(&format!("/api/recordings/{}/mp4", r.id), Some(&carol.token))
                .await,
            (409, "recording_not_ready".to_string()),
            "{status:?}"
        );
        let (code_, body) = s.link(&r.id, &carol.token).await;
        assert_eq!(
            (code_, code(&body)),
            (409, "recording_not_ready"),
            "{status:?}"
        );
    }
    let live = s
        .recording(&carol, "Live", RecordingStatus::Recording)
        .await;
    assert_eq!(
        s.refusal(
            &format!("/api/recordings/{}/arf", live.id),
            Some(&carol.token)
        )
        .await,
        (409, "recording_in_progress".to_string())
    );
}

/// The path and query of a link, to be sent to the test server (links carry the public URL).
fn link_path(url: &str) -> &str {
    let at = url.find("/api/").unwrap();
    &url[at..]
}

#[tokio::test]
async fn a_signed_link_plays_one_recording_without_an_account_until_it_expires() {
    let s = Setup::start().await;
    let carol = s.t.account("carol", AccountRole::Csr).await;
    let ann = s.t.account("ann", AccountRole::Csr).await;
    let r = s.recording(&carol, "Shared", RecordingStatus::Ready).await;
    let other = s.recording(&carol, "Other", RecordingStatus::Ready).await;
    let file = std::fs::read(fixture_mp4()).unwrap();

    let (status, link) = s.link(&r.id, &carol.token).await;
    assert_eq!(status, 201, "{link}");
    let url = link["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!(
            "http://localhost:8080/api/recordings/{}/mp4?link=",
            r.id
        )),
        "{url}"
    );
    let expires = link["expires_at"].as_u64().unwrap();
    let expected = (unix_secs() + 3600) * 1000;
    assert!(expires.abs_diff(expected) < 5000, "{expires} vs {expected}");
    let path = link_path(url).to_string();

    let (status, h, body) = s.bytes(reqwest::Method::GET, &path, None, &[]).await;
    assert_eq!((status, body == file), (200, true));
    assert_eq!(header_str(&h, header::CONTENT_TYPE), "video/mp4");
    let (status, _, body) = s.get_range(&path, None, "bytes=0-99").await;
    assert_eq!((status, body.as_slice()), (206, &file[..100]));
    let token = path.split("link=").nth(1).unwrap().to_string();
    let (status, _, body) = s
        .bytes(
            reqwest::Method::GET,
            &format!("/api/recordings/{}/download?link={token}", r.id),
            None,
            &[],
        )
        .await;
    assert_eq!((status, body.len()), (200, file.len()));

    let invalid = (403, "invalid_link".to_string());
    // The same link on another recording.
    assert_eq!(
        s.refusal(
            &format!("/api/recordings/{}/mp4?link={token}", other.id),
            None
        )
        .await,
        invalid
    );
    // Expired, tampered with, signed by another key, or a sign-in token.
    let signer = &s.t.server().signer;
    let id: Uuid = r.id.parse().unwrap();
    let expired = signer.sign(
        &Token::RecordingLink { recording: id },
        unix_secs() - 7200,
        3600,
    );
    let mut tampered = token.clone().into_bytes();
    let at = tampered.len() - 3;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let foreign = tandem::auth::Signer::from_secret(&[9; 32]).sign(
        &Token::RecordingLink { recording: id },
        unix_secs(),
        60,
    );
    for bad in [expired.as_str(), &tampered, &foreign, &carol.token, ""] {
        assert_eq!(
            s.refusal(&format!("/api/recordings/{}/mp4?link={bad}", r.id), None)
                .await,
            invalid,
            "{bad}"
        );
    }
    // Only the owner and admins make links.
    let (status, body) = s.link(&r.id, &ann.token).await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    // A disabled recording plays for nobody but admins, links included.
    let (status, _) = s
        .patch(&r.id, &carol.token, json!({"disabled": true}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        s.refusal(&path, None).await,
        (403, "recording_disabled".to_string())
    );
    // Deleted: the link leads nowhere.
    let admin = s.t.account("admin", AccountRole::Admin).await;
    let (status, _) = s
        .send(
            reqwest::Method::DELETE,
            &format!("/api/recordings/{}", r.id),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        s.refusal(&path, None).await,
        (404, "unknown_recording".to_string())
    );
}

/// A real browser plays an MP4 this server exported, through a signed link (no account), and
/// seeks in it, which takes range requests (tests/e2e/playback.mjs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_plays_and_seeks_an_exported_mp4_through_a_signed_link() {
    let s = Setup::start().await;
    let carol = s.t.account("carol", AccountRole::Csr).await;
    let (id, seen) = s
        .upload_and_watch(&carol.token, real_arf(6, 640, 360))
        .await;
    let r = seen.last().unwrap();
    assert_eq!(r["status"], "ready", "{r}");
    let seconds = r["duration_ms"].as_f64().unwrap() / 1000.0;
    assert!((5.5..=6.0).contains(&seconds), "{r}");
    let (status, link) = s.link(&id, &carol.token).await;
    assert_eq!(status, 201, "{link}");
    let url = format!("{}{}", s.t.base, link_path(link["url"].as_str().unwrap()));
    let report = crate::common::browser::run_script(
        &s.t,
        "playback.mjs",
        &[&url, &seconds.to_string(), "640x360"],
    )
    .await;
    assert!(
        report["results"]["range_requests"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
}
