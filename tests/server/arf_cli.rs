//! `tandem arf inspect`: what an operator sees of a recording closed cleanly, of one cut off by a
//! crash, and of a damaged one (SPEC R2).

use std::process::Command;

use tandem_arf::{Codec, FileWriter, Header, Track};

fn write(path: &std::path::Path, close: bool) {
    let header = Header {
        recording_id: "5f0c9a7e-8d7b-4c62-9a51-6a3f1c2b9e10".into(),
        session_id: "0b8e2a3c-1d4f-4e5a-8b6c-7d8e9f0a1b2c".into(),
        start_unix_ms: 1_764_000_000_000,
        metadata: "{}".into(),
    };
    let mut w = FileWriter::create_file(path, &header).unwrap();
    w.declare_track(0, &Track::new(1, Codec::Vp8, 90_000, "screen-dave"))
        .unwrap();
    w.declare_track(0, &Track::new(2, Codec::Opus, 48_000, "voice-mix"))
        .unwrap();
    for i in 0..150u64 {
        let at = i * 20_000;
        w.media(2, at, i * 960, false, &[0xf8; 60]).unwrap();
        if i % 3 == 0 {
            w.media(1, at, i * 1800, i % 75 == 0, &[7; 900]).unwrap();
        }
    }
    w.event(3_000_000, "chat", r#"{"from":"dave","text":"hello"}"#)
        .unwrap();
    w.flush().unwrap();
    if close {
        w.close().unwrap();
    }
}

fn inspect(path: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["arf", "inspect"])
        .arg(path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn inspect_describes_closed_torn_and_damaged_recordings() {
    let dir = tempfile::tempdir().unwrap();

    let closed = dir.path().join("closed.arf");
    write(&closed, true);
    let (ok, text) = inspect(&closed);
    assert!(ok, "{text}");
    for needle in ["screen-dave", "voice-mix", "chat", "5f0c9a7e"] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }

    // As after kill -9: flushed, never closed. Still readable; said to be without its index.
    let torn = dir.path().join("torn.arf");
    write(&torn, false);
    let (ok, torn_text) = inspect(&torn);
    assert!(ok, "{torn_text}");
    assert!(torn_text.contains("voice-mix"), "{torn_text}");
    assert_ne!(torn_text, text, "a torn file is described differently");

    // Damage in the middle: a clear error with its code, and a failing exit status.
    let mut bytes = std::fs::read(&closed).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0x5a;
    }
    let damaged = dir.path().join("damaged.arf");
    std::fs::write(&damaged, bytes).unwrap();
    let (ok, text) = inspect(&damaged);
    assert!(!ok, "{text}");
    assert!(text.contains("corrupt"), "{text}");

    let (ok, text) = inspect(&dir.path().join("missing.arf"));
    assert!(!ok && text.contains("missing.arf"), "{text}");
}
