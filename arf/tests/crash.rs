//! A writer process killed with SIGKILL leaves a file that reads back completely up to its last
//! flush. The test binary runs itself again as the writer (selected by an environment variable),
//! learns from its stdout how far it has flushed and written, and kills it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tandem_arf::{Codec, Event, FileWriter, Header, Media, Reader, Record, Track, WriterConfig};

const CHILD_ENV: &str = "TANDEM_ARF_CRASH_CHILD_PATH";
const FLUSHED: &str = "ARF_FLUSHED ";
const WRITTEN: &str = "ARF_WRITTEN ";

/// The i-th record the child writes after declaring track 1; the parent recomputes it.
fn nth_record(i: u64) -> Record {
    let at_us = i * 1_000;
    if i % 10 == 9 {
        Record::Event(Event {
            at_us,
            kind: "pointer".into(),
            json: format!(r#"{{"x":{i},"y":{}}}"#, i * 2),
        })
    } else {
        let len = 200 + (i % 13) as usize * 150;
        let payload = (0..len).map(|b| (b as u64 ^ i) as u8).collect();
        Record::Media(Media {
            track: 1,
            at_us,
            media_ts: i * 3000,
            keyframe: i.is_multiple_of(50),
            payload,
        })
    }
}

fn track() -> Track {
    Track::new(1, Codec::Vp8, 90_000, "screen-p1")
}

/// Not a test on its own: the writer process of `killed_writer_leaves_a_readable_file`.
#[test]
fn crash_child_writer() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let header = Header {
        recording_id: "crash".into(),
        session_id: "s".into(),
        ..Header::default()
    };
    // Small blocks: several are written by size between two flushes.
    let config = WriterConfig {
        block_bytes: 16 * 1024,
        ..WriterConfig::default()
    };
    let mut w = FileWriter::create_file_with_config(&path, &header, config).expect("create");
    w.declare_track(0, &track()).expect("declare");
    let mut i = 0u64;
    let mut last_flush = Instant::now();
    // Ends when the parent is gone (printing to a closed pipe panics) or, at the latest, here.
    while i < 10_000_000 {
        match nth_record(i) {
            Record::Media(m) => w.media(m.track, m.at_us, m.media_ts, m.keyframe, &m.payload),
            Record::Event(e) => w.event(e.at_us, &e.kind, &e.json),
            _ => unreachable!("nth_record makes media and events only"),
        }
        .expect("write");
        i += 1;
        if last_flush.elapsed() >= Duration::from_millis(200) {
            w.flush().expect("flush");
            // Records flushed, the track record included.
            println!("{FLUSHED}{}", w.records_written());
            last_flush = Instant::now();
        } else if i.is_multiple_of(50) {
            // Records in blocks handed to the OS (cut by size) but not flushed.
            println!("{WRITTEN}{}", w.records_written());
        }
        // About 10 MB/s, so the files stay small.
        if i.is_multiple_of(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Kills the child if the test fails before it does, so no writer outlives the test.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn killed_writer_leaves_a_readable_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("killed.arf");
    let exe = std::env::current_exe().expect("current exe");
    let child = Command::new(exe)
        .args([
            "crash_child_writer",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the writer");
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().expect("piped stdout");

    // After the fourth flush, kill at the next report of blocks written since: the writer is
    // busy then, and the file holds blocks that were never flushed.
    let (mut flushes, mut flushed, mut written) = (0, 0u64, 0u64);
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("child output");
        let count = |mark: &str| {
            let at = line.find(mark)?;
            Some(
                line[at + mark.len()..]
                    .trim()
                    .parse::<u64>()
                    .expect("record count"),
            )
        };
        if let Some(n) = count(FLUSHED) {
            flushed = n;
            flushes += 1;
        } else if let Some(n) = count(WRITTEN)
            && flushes >= 4
        {
            written = n;
            break;
        }
    }
    assert!(
        flushes >= 4 && written >= flushed,
        "the writer stopped early"
    );
    // `Child::kill` is SIGKILL on Unix: no destructor, no flush, no trailer.
    child.0.kill().expect("kill");
    let status = child.0.wait().expect("wait");
    assert!(!status.success());

    let mut reader = Reader::open(&path).expect("open");
    let records: Vec<Record> = reader
        .records()
        .collect::<Result<_, _>>()
        .expect("read back without error");
    // Everything up to the last flush is there, and so are the blocks written after it: the
    // OS has them even though the process died.
    let read = records.len() as u64;
    assert!(
        read >= written,
        "{read} records read, {written} written, {flushed} flushed"
    );
    assert_eq!(
        records[0],
        Record::Track {
            at_us: 0,
            track: track()
        }
    );
    for (i, r) in records[1..].iter().enumerate() {
        assert_eq!(r, &nth_record(i as u64), "record {i}");
    }
    assert!(reader.end().is_some());
    let summary = reader.summary().expect("summary");
    assert_eq!(summary.records, read);
    assert_eq!(summary.index, tandem_arf::IndexSource::Rebuilt);
}
