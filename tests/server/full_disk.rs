//! The data disk fills during a session (issue 15, item 1; SPEC S11): every chat the server
//! acknowledged is in the report after a SIGKILL and a restart, nothing it refused is, the full
//! disk refuses new work with a clear error, and new sessions work again once space is freed,
//! without a restart. The database is on a small tmpfs the test mounts (tests run as root).

use std::io::Write;

use crate::common::process::{add_csr, get, login, post, serve, tandem};
use crate::common::{SmallDisk, Ws};
use serde_json::{Value, json};

/// Fills the disk at `dir` with one file, then gives back `headroom` bytes of it.
fn fill_leaving(dir: &std::path::Path, headroom: u64) -> std::path::PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xA5u8; 16 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let len = f.metadata().unwrap().len();
    f.set_len(len.saturating_sub(headroom)).unwrap();
    path
}

/// Asks to start a session as `token`'s CSR; answers the status and the answer.
async fn start_session(base: &str, token: &str, topic: &str) -> (u16, Value) {
    post(base, "/api/sessions", Some(token), json!({"topic": topic})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_loses_no_acknowledged_chat_and_recovers_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    let _small = SmallDisk::mount(&disk, "2m");
    let db = disk.join("tandem.db");
    let on_small_disk = || {
        let mut t = tandem(dir.path());
        t.env("TANDEM_STORAGE_DATABASE", &db);
        t
    };
    add_csr(on_small_disk(), "carol").await;
    let (mut server, base) = serve(on_small_disk()).await;
    let token = login(&base, "carol").await;
    let (status, s) = start_session(&base, &token, "Full disk").await;
    assert_eq!(status, 201, "{s}");
    let id = s["session"]["id"].as_str().unwrap().to_string();
    let mut csr = Ws::connect(&base, s["token"].as_str().unwrap()).await;

    let filler = fill_leaving(&disk, 96 * 1024);
    let (mut acknowledged, mut refused) = (Vec::new(), Vec::new());
    for i in 0..3000 {
        let text = format!("message {i} {}", "x".repeat(200));
        match csr.chat(&text, None).await {
            Ok(()) => acknowledged.push(text),
            Err(code) => {
                assert_eq!(code, "storage_unavailable");
                refused.push(text);
                if refused.len() == 20 {
                    break;
                }
            }
        }
    }
    assert_eq!(refused.len(), 20, "the disk never filled");

    // Full: new work is refused with a clear error.
    let (status, problem) = start_session(&base, &token, "While full").await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["code"], "storage_unavailable", "{problem}");

    // Space comes back: the server recovers by itself.
    std::fs::remove_file(&filler).unwrap();
    let (status, later) = start_session(&base, &token, "After").await;
    assert_eq!(status, 201, "{later}");
    for i in 0..5 {
        let text = format!("after {i}");
        csr.chat(&text, None).await.expect("chat works again");
        acknowledged.push(text);
    }

    server.start_kill().unwrap(); // SIGKILL
    server.wait().await.unwrap();
    drop(csr);
    let (mut server, base) = serve(on_small_disk()).await;
    let token = login(&base, "carol").await;
    let (status, report) = get(&base, &format!("/api/sessions/{id}/report"), &token).await;
    assert_eq!(status, 200, "{report}");
    let stored: Vec<&str> = report["chat"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|t| !stored.contains(&t.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged chats lost, first: {:?}",
        lost.len(),
        acknowledged.len(),
        lost.first()
    );
    let kept: Vec<_> = refused
        .iter()
        .filter(|t| stored.contains(&t.as_str()))
        .collect();
    assert!(kept.is_empty(), "refused chats were stored: {kept:?}");
    server.start_kill().unwrap();
    server.wait().await.unwrap();
}
