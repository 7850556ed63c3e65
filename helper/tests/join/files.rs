//! SPEC F2 end to end, under Xvfb with the real server in this process and the real
//! `tandem-helper` answering on its terminal, serving a home folder the test makes: the CSR
//! lists, makes, renames and deletes on the customer's computer, each asked of the customer
//! (and refused on their no); a 100 MB folder of mixed files (nested folders, Unicode names, an
//! empty file, an empty folder) goes both ways with every SHA-256 equal; a 151 MB batch is
//! refused on both sides with its reason; a transfer cancelled midway leaves nothing on either
//! side; a transfer whose connection is cut goes on from where it stopped, both ways; a file
//! that changes while it is sent and a full disk on the customer's side are refused and leave
//! nothing; path escapes (`..`, absolute names, a symbolic link) are
//! refused.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use sha2::Digest as _;

use super::*;

/// Makes `dir` hold a folder tree of `total` bytes of varied files (deterministic content).
fn make_tree(dir: &Path, total: u64) {
    let names = [
        "Отчёт 2026/данные.bin",
        "Отчёт 2026/日本語/ファイル.dat",
        "Отчёт 2026/日本語/深い/more 🎉.bin",
        "Отчёт 2026/plain.txt",
        "Отчёт 2026/big.iso",
    ];
    // Sizes that do not fall on the upload step (8 MiB) or a block.
    let sizes = [3_333_333u64, 12_345_678, 21_000_001, 777];
    let mut left = total;
    let mut seed: u32 = 7;
    for (i, rel) in names.iter().enumerate() {
        let size = if i + 1 == names.len() { left } else { sizes[i] };
        left -= size;
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut data = vec![0u8; size as usize];
        for b in data.iter_mut() {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            *b = (seed >> 16) as u8;
        }
        std::fs::write(&path, data).unwrap();
    }
    std::fs::write(dir.join("Отчёт 2026/leer.txt"), b"").unwrap();
    std::fs::create_dir_all(dir.join("Отчёт 2026/empty folder")).unwrap();
}

/// CPU seconds process `pid` has used (user and system), from /proc.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the name and state.
    (f.get(10).copied().unwrap_or(0.0) + f.get(11).copied().unwrap_or(0.0)) / 100.0
}

fn sha_hex(bytes: &[u8]) -> String {
    tandem_helper::file_ops::hex(&sha2::Sha256::digest(bytes))
}

/// Every file under `dir` by its path relative to `dir`, with its SHA-256; and the folders.
fn tree(dir: &Path) -> (BTreeMap<String, String>, Vec<String>) {
    let mut files = BTreeMap::new();
    let mut folders = Vec::new();
    fn walk(
        base: &Path,
        at: &Path,
        files: &mut BTreeMap<String, String>,
        folders: &mut Vec<String>,
    ) {
        for e in std::fs::read_dir(at).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().to_str().unwrap().to_owned();
            if e.file_type().unwrap().is_dir() {
                folders.push(rel);
                walk(base, &p, files, folders);
            } else {
                files.insert(rel, sha_hex(&std::fs::read(&p).unwrap()));
            }
        }
    }
    walk(dir, dir, &mut files, &mut folders);
    folders.sort();
    (files, folders)
}

struct Csr {
    http: reqwest::Client,
    base: String,
    token: String,
    session: String,
}

/// Carol asks for file transfer and Dave allows it on his page (S9).
async fn file_transfer_allowed(s: &mut Session) {
    s.csr
        .send(json!({"type": "request_activity", "activity": "file_transfer"}))
        .await;
    let asked = s.dave.event("consent_requested", "file_transfer").await;
    s.dave
        .send(json!({"type": "consent_reply", "request": asked["request"], "grant": true}))
        .await;
    s.csr.event("activity_started", "file_transfer").await;
}

impl Csr {
    /// Carol in session `s`, with her participant token.
    fn of(s: &Session) -> Csr {
        Csr {
            http: reqwest::Client::new(),
            base: s.base.clone(),
            token: s.csr_token.clone(),
            session: s.session_id.clone(),
        }
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/api/sessions/{}/{tail}", self.base, self.session)
    }

    async fn post(&self, tail: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(tail))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, tail: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(tail))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Asks for operation `op`; its number.
    async fn ask(&self, op: Value) -> u64 {
        let (status, body) = self.post("computer-files", op.clone()).await;
        assert_eq!(status, 202, "{op}: {body}");
        body["op"].as_u64().unwrap()
    }

    /// Uploads every file of `dir` (as its tree says) as a new batch named from `top`.
    async fn upload_batch(&self, dir: &Path, top: &str) -> String {
        let (files, folders) = tree(dir);
        let listed: Vec<Value> = files
            .iter()
            .map(|(rel, sha)| {
                let size = std::fs::metadata(dir.join(rel)).unwrap().len();
                json!({"path": format!("{top}/{rel}"), "size": size, "sha256": sha})
            })
            .collect();
        let mut all_folders = vec![top.to_owned()];
        all_folders.extend(folders.iter().map(|f| format!("{top}/{f}")));
        let (status, made) = self
            .post(
                "file-batches",
                json!({"files": listed, "folders": all_folders}),
            )
            .await;
        assert_eq!(status, 201, "{made}");
        let batch = made["batch"].as_str().unwrap().to_owned();
        for (i, rel) in files.keys().enumerate() {
            let r = self
                .http
                .put(self.url(&format!("file-batches/{batch}/{i}?offset=0")))
                .bearer_auth(&self.token)
                .header("content-type", "application/octet-stream")
                .body(std::fs::read(dir.join(rel)).unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204, "{rel}: {}", r.text().await.unwrap());
        }
        batch
    }
}

/// The customer's answer to the file question on the helper's terminal.
fn answer(helper: &mut Proc, asked: &str, yes: bool) {
    let q = helper.line(|l| l.starts_with("question:"));
    assert!(
        q.contains("Carol asks to do this with your files:") && q.contains(asked),
        "{q}"
    );
    helper.type_line(if yes { "y" } else { "n" });
}

/// The results of operations `a` and `b`, in whichever order they end.
async fn both_done(ws: &mut Ws, a: u64, b: u64) -> (Value, Value) {
    let mut got: BTreeMap<u64, Value> = BTreeMap::new();
    while got.len() < 2 {
        let e = ws
            .until(|v| {
                v["type"] == "event"
                    && v["event"]["type"] == "computer_files_done"
                    && (v["event"]["op"] == a || v["event"]["op"] == b)
            })
            .await;
        got.insert(
            e["event"]["op"].as_u64().unwrap(),
            e["event"]["result"].clone(),
        );
    }
    (got.remove(&a).unwrap(), got.remove(&b).unwrap())
}

async fn done(ws: &mut Ws, op: u64) -> Value {
    ws.until(|v| {
        v["type"] == "event"
            && v["event"]["type"] == "computer_files_done"
            && v["event"]["op"] == op
    })
    .await["event"]["result"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn folders_go_both_ways_whole_and_every_operation_is_the_customers_to_allow() {
    let (_x, display) = xvfb();
    let mut s = session().await;
    let home = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), b"not yours").unwrap();
    std::os::unix::fs::symlink(outside.path(), home.path().join("link out")).unwrap();
    let mut helper = join_helper_with(
        &s,
        &display,
        &[("TANDEM_HELPER_FILES_ROOT", home.path().as_os_str())],
    );
    let attached = s.csr.event("computer_attached", "").await;
    assert!(
        attached["abilities"]
            .as_array()
            .unwrap()
            .contains(&json!("file_transfer")),
        "{attached}"
    );
    let csr = Csr::of(&s);

    // Nothing before the customer allows file transfer on their page (S9).
    let (status, refused) = csr
        .post("computer-files", json!({"op": "list", "path": ""}))
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("activity_not_running")),
        "{refused}"
    );
    file_transfer_allowed(&mut s).await;

    // Escapes are refused by the server before anything is asked.
    for bad in ["../", "/etc", "a/../../b"] {
        let (status, body) = csr
            .post("computer-files", json!({"op": "list", "path": bad}))
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("path_escapes")),
            "{bad}: {body}"
        );
    }

    // A no: nothing listed.
    let op = csr.ask(json!({"op": "list", "path": ""})).await;
    answer(&mut helper, "see what is in your home folder", false);
    let no = done(&mut s.csr, op).await;
    assert_eq!(
        (no["ok"].as_bool(), no["refused"].as_bool()),
        (Some(false), Some(true)),
        "{no}"
    );
    assert!(no.get("listing").is_none(), "{no}");

    // The customer's 100 MB folder to the CSR.
    make_tree(home.path(), 100_000_000);
    let op = csr.ask(json!({"op": "list", "path": ""})).await;
    answer(&mut helper, "see what is in your home folder", true);
    let listed = done(&mut s.csr, op).await;
    assert_eq!(listed["ok"], true, "{listed}");
    let names: Vec<&str> = listed["listing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Отчёт 2026"], "the link is not listed");

    let pid = helper.child.id();
    let cpu_before = cpu_secs(pid);
    let started = Instant::now();
    let op = csr
        .ask(json!({"op": "send", "paths": ["Отчёт 2026"]}))
        .await;
    answer(&mut helper, "copy \"Отчёт 2026\" to their computer", true);
    let sent = done(&mut s.csr, op).await;
    assert_eq!(sent["ok"], true, "{sent}");
    let batch = sent["batch"].as_str().unwrap();
    let (_, status) = csr.get(&format!("file-batches/{batch}")).await;
    assert_eq!(status["total"], 100_000_000, "{status}");
    assert_eq!(status["complete"], true);
    let fetched = tempfile::tempdir().unwrap();
    for (i, f) in status["files"].as_array().unwrap().iter().enumerate() {
        let r = csr
            .http
            .get(csr.url(&format!("file-batches/{batch}/{i}")))
            .bearer_auth(&csr.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let bytes = r.bytes().await.unwrap();
        assert_eq!(sha_hex(&bytes), f["sha256"].as_str().unwrap());
        let path = fetched.path().join(f["path"].as_str().unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    for folder in status["folders"].as_array().unwrap() {
        std::fs::create_dir_all(fetched.path().join(folder.as_str().unwrap())).unwrap();
    }
    let up = started.elapsed();
    let cpu_up = cpu_secs(pid) - cpu_before;
    let mine = tree(&home.path().join("Отчёт 2026"));
    assert_eq!(tree(&fetched.path().join("Отчёт 2026")), mine);
    assert!(mine.1.contains(&"empty folder".to_string()), "{mine:?}");
    assert!(mine.0.contains_key("leer.txt"));
    let r = csr
        .http
        .delete(csr.url(&format!("file-batches/{batch}")))
        .bearer_auth(&csr.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // The same folder back to the customer's computer, under another name, into a new folder.
    let op = csr
        .ask(json!({"op": "make_folder", "path": "Eingang"}))
        .await;
    answer(&mut helper, "make a new folder \"Eingang\"", false);
    assert_eq!(done(&mut s.csr, op).await["refused"], true);
    assert!(!home.path().join("Eingang").exists());
    let op = csr
        .ask(json!({"op": "make_folder", "path": "Eingang"}))
        .await;
    answer(&mut helper, "make a new folder \"Eingang\"", true);
    assert_eq!(done(&mut s.csr, op).await["ok"], true);
    let started = Instant::now();
    let batch = csr
        .upload_batch(&home.path().join("Отчёт 2026"), "Zurück ✓")
        .await;
    let cpu_before = cpu_secs(pid);
    let fetch_started = Instant::now();
    let op = csr
        .ask(json!({"op": "receive", "batch": batch, "folder": "Eingang"}))
        .await;
    answer(
        &mut helper,
        "copy files from their computer into \"Eingang\"",
        true,
    );
    let received = done(&mut s.csr, op).await;
    let down = started.elapsed();
    let fetch = fetch_started.elapsed();
    let cpu_down = cpu_secs(pid) - cpu_before;
    assert_eq!(received["ok"], true, "{received}");
    assert_eq!(tree(&home.path().join("Eingang/Zurück ✓")), mine);
    let (gone, _) = csr.get(&format!("file-batches/{batch}")).await;
    assert_eq!(gone, 404, "the helper removed the batch once it had it");
    println!(
        "F2: 100 MB customer -> CSR in {} ms (asked to fetched by the CSR; the helper's CPU {:.1} ms/MB), CSR -> customer in {} ms (upload and fetch; the helper's fetch {} ms, its CPU {:.1} ms/MB)",
        up.as_millis(),
        cpu_up * 1000.0 / 100.0,
        down.as_millis(),
        fetch.as_millis(),
        cpu_down * 1000.0 / 100.0,
    );

    // A batch already there is not written over (and a no puts nothing there at all).
    let batch = csr
        .upload_batch(&home.path().join("Eingang"), "Zurück ✓")
        .await;
    let before = tree(&home.path().join("Eingang"));
    let op = csr
        .ask(json!({"op": "receive", "batch": batch, "folder": "Eingang"}))
        .await;
    answer(&mut helper, "into \"Eingang\"", false);
    assert_eq!(done(&mut s.csr, op).await["refused"], true);
    assert_eq!(tree(&home.path().join("Eingang")), before);
    let op = csr
        .ask(json!({"op": "receive", "batch": batch, "folder": "Eingang"}))
        .await;
    answer(&mut helper, "into \"Eingang\"", true);
    let clash = done(&mut s.csr, op).await;
    assert_eq!(clash["ok"], false);
    assert!(
        clash["message"]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{clash}"
    );
    let r = csr
        .http
        .delete(csr.url(&format!("file-batches/{batch}")))
        .bearer_auth(&csr.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // Rename and delete, each asked.
    let op = csr
        .ask(json!({"op": "rename", "path": "Eingang/Zurück ✓", "to": "Archiv"}))
        .await;
    answer(
        &mut helper,
        "rename \"Eingang/Zurück ✓\" to \"Archiv\"",
        false,
    );
    assert_eq!(done(&mut s.csr, op).await["refused"], true);
    assert!(home.path().join("Eingang/Zurück ✓").exists());
    let op = csr
        .ask(json!({"op": "rename", "path": "Eingang/Zurück ✓", "to": "Archiv"}))
        .await;
    answer(
        &mut helper,
        "rename \"Eingang/Zurück ✓\" to \"Archiv\"",
        true,
    );
    assert_eq!(done(&mut s.csr, op).await["ok"], true);
    assert!(home.path().join("Eingang/Archiv/big.iso").exists());
    let op = csr.ask(json!({"op": "delete", "path": "Eingang"})).await;
    answer(&mut helper, "delete \"Eingang\" and all it holds", false);
    assert_eq!(done(&mut s.csr, op).await["refused"], true);
    assert!(home.path().join("Eingang").exists());
    let op = csr.ask(json!({"op": "delete", "path": "Eingang"})).await;
    answer(&mut helper, "delete \"Eingang\" and all it holds", true);
    assert_eq!(done(&mut s.csr, op).await["ok"], true);
    assert!(!home.path().join("Eingang").exists());

    // Through a symbolic link: refused by the helper, even with the customer's yes.
    let op = csr
        .ask(json!({"op": "delete", "path": "link out/secret.txt"}))
        .await;
    answer(&mut helper, "delete \"link out/secret.txt\"", true);
    let linked = done(&mut s.csr, op).await;
    assert_eq!(linked["ok"], false);
    assert!(
        linked["message"]
            .as_str()
            .unwrap()
            .contains("symbolic link"),
        "{linked}"
    );
    assert!(outside.path().join("secret.txt").exists());

    // 151 MB: refused by the server as the CSR lists it, and by the helper as it gathers it.
    let (status, big) = csr
        .post(
            "file-batches",
            json!({"files": [
                {"path": "a.bin", "size": 100_000_000, "sha256": "0".repeat(64)},
                {"path": "b/c.bin", "size": 51_000_000, "sha256": "0".repeat(64)},
            ]}),
        )
        .await;
    assert_eq!(
        (status, big["code"].as_str()),
        (413, Some("batch_too_large")),
        "{big}"
    );
    assert!(big["detail"].as_str().unwrap().contains("150 MB"), "{big}");
    let sparse = std::fs::File::create(home.path().join("Отчёт 2026/sparse.img")).unwrap();
    sparse.set_len(51_000_000).unwrap();
    let op = csr
        .ask(json!({"op": "send", "paths": ["Отчёт 2026"]}))
        .await;
    answer(&mut helper, "copy \"Отчёт 2026\"", true);
    let too_big = done(&mut s.csr, op).await;
    assert_eq!(too_big["ok"], false);
    assert!(
        too_big["message"].as_str().unwrap().contains("150 MB"),
        "{too_big}"
    );
    std::fs::remove_file(home.path().join("Отчёт 2026/sparse.img")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_cancelled_midway_leaves_nothing_on_either_side() {
    let (_x, display) = xvfb();
    let mut s = session().await;
    let home = tempfile::tempdir().unwrap();
    // Held to 20 MB/s, so that the test sees it midway.
    let rate = std::ffi::OsString::from("20000000");
    let mut helper = join_helper_with(
        &s,
        &display,
        &[
            ("TANDEM_HELPER_FILES_ROOT", home.path().as_os_str()),
            ("TANDEM_HELPER_FILES_RATE", rate.as_os_str()),
        ],
    );
    s.csr.event("computer_attached", "").await;
    let csr = Csr::of(&s);
    file_transfer_allowed(&mut s).await;
    let source = tempfile::tempdir().unwrap();
    make_tree(source.path(), 60_000_000);

    // To the customer: cancelled once a part has arrived.
    let batch = csr
        .upload_batch(&source.path().join("Отчёт 2026"), "Neu")
        .await;
    let op = csr
        .ask(json!({"op": "receive", "batch": batch, "folder": ""}))
        .await;
    answer(&mut helper, "into your home folder", true);
    eventually("a part arrives", || {
        let part = home.path().join("Neu");
        part.exists()
    })
    .await;
    let cancel = csr.ask(json!({"op": "cancel", "target": op})).await;
    let (cancelled, answered) = both_done(&mut s.csr, op, cancel).await;
    assert_eq!(cancelled["ok"], false);
    assert!(
        cancelled["message"].as_str().unwrap().contains("cancelled"),
        "{cancelled}"
    );
    assert_eq!(answered["ok"], true);
    let left: Vec<_> = std::fs::read_dir(home.path()).unwrap().flatten().collect();
    assert!(left.is_empty(), "nothing is left: {left:?}");

    // To the CSR: cancelled midway, the server keeps nothing of it.
    std::fs::rename(source.path().join("Отчёт 2026"), home.path().join("Alt")).unwrap();
    let op = csr.ask(json!({"op": "send", "paths": ["Alt"]})).await;
    answer(&mut helper, "copy \"Alt\"", true);
    let batches = s._dir.path().join("files/batches");
    eventually("an upload has begun", || {
        std::fs::read_dir(&batches)
            .map(|d| {
                d.flatten()
                    .any(|b| std::fs::read_dir(b.path()).is_ok_and(|mut f| f.next().is_some()))
            })
            .unwrap_or(false)
    })
    .await;
    let cancel = csr.ask(json!({"op": "cancel", "target": op})).await;
    let (cancelled, _) = both_done(&mut s.csr, op, cancel).await;
    assert_eq!(cancelled["ok"], false);
    assert!(cancelled.get("batch").is_none(), "{cancelled}");
    let kept: Vec<_> = std::fs::read_dir(&batches).unwrap().flatten().collect();
    assert!(kept.is_empty(), "the server keeps nothing: {kept:?}");
    assert_eq!(
        tree(&home.path().join("Alt")).0.len(),
        6,
        "the customer's own files stay"
    );

    // A file that grows while it is sent is refused, and the server keeps nothing of it.
    // The last file sent, so it is surely not sent yet when the upload has begun.
    let growing = home.path().join("Alt/日本語/深い/more 🎉.bin");
    let op = csr.ask(json!({"op": "send", "paths": ["Alt"]})).await;
    answer(&mut helper, "copy \"Alt\"", true);
    eventually("an upload has begun", || {
        std::fs::read_dir(&batches)
            .map(|d| {
                d.flatten()
                    .any(|b| std::fs::read_dir(b.path()).is_ok_and(|mut f| f.next().is_some()))
            })
            .unwrap_or(false)
    })
    .await;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&growing)
        .unwrap()
        .write_all(b"more")
        .unwrap();
    let changed = done(&mut s.csr, op).await;
    assert_eq!(changed["ok"], false, "{changed}");
    assert!(
        changed["message"]
            .as_str()
            .unwrap()
            .contains("changed while it was read"),
        "{changed}"
    );
    assert!(std::fs::read_dir(&batches).unwrap().next().is_none());
}

/// A full disk on the customer's side: the transfer says so and keeps nothing of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_on_the_customers_side_keeps_nothing() {
    let (_x, display) = xvfb();
    let mut s = session().await;
    let home = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(home.path())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "a 2 MB tmpfs takes root (CI runs as root)"
    );
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.0)
                .status();
        }
    }
    let _unmount = Unmount(home.path());
    let mut helper = join_helper_with(
        &s,
        &display,
        &[("TANDEM_HELPER_FILES_ROOT", home.path().as_os_str())],
    );
    s.csr.event("computer_attached", "").await;
    let csr = Csr::of(&s);
    file_transfer_allowed(&mut s).await;
    let source = tempfile::tempdir().unwrap();
    make_tree(source.path(), 40_000_000);
    let batch = csr
        .upload_batch(&source.path().join("Отчёт 2026"), "Zu groß")
        .await;
    let op = csr
        .ask(json!({"op": "receive", "batch": batch, "folder": ""}))
        .await;
    answer(&mut helper, "into your home folder", true);
    let full = done(&mut s.csr, op).await;
    assert_eq!(full["ok"], false, "{full}");
    assert!(
        full["message"].as_str().unwrap().contains("disk is full"),
        "{full}"
    );
    let left: Vec<_> = std::fs::read_dir(home.path()).unwrap().flatten().collect();
    assert!(left.is_empty(), "nothing is left: {left:?}");
}

/// A TCP proxy to `to` that cuts one connection once it has carried `after` bytes one way
/// (either way): how a transfer meets a broken connection. Answers its address and how many
/// connections it cut.
async fn cutting_proxy(
    to: std::net::SocketAddr,
    after: u64,
) -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cuts = Arc::new(AtomicU64::new(0));
    let counted = cuts.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let cuts = counted.clone();
            tokio::spawn(async move {
                let Ok(outbound) = tokio::net::TcpStream::connect(to).await else {
                    return;
                };
                let (ri, wi) = inbound.into_split();
                let (ro, wo) = outbound.into_split();
                let pipe = |mut r: tokio::net::tcp::OwnedReadHalf,
                            mut w: tokio::net::tcp::OwnedWriteHalf,
                            cuts: Arc<AtomicU64>| async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut moved = 0u64;
                    loop {
                        let Ok(n) = r.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 || w.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                        moved += n as u64;
                        // One cut in all, on the first connection to carry that much.
                        if moved > after
                            && cuts
                                .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
                                .is_ok()
                        {
                            return;
                        }
                    }
                };
                tokio::select! {
                    () = pipe(ro, wi, cuts.clone()) => {}
                    () = pipe(ri, wo, cuts) => {}
                }
                // Either side done or cut: both directions are dropped with the select.
            });
        }
    });
    (addr, cuts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_broken_off_goes_on_from_where_it_stopped_both_ways() {
    use std::sync::atomic::Ordering;
    let (_x, display) = xvfb();
    let mut s = session().await;
    let home = tempfile::tempdir().unwrap();
    let server: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    let csr = Csr::of(&s);
    file_transfer_allowed(&mut s).await;
    let source = tempfile::tempdir().unwrap();
    make_tree(source.path(), 60_000_000);
    let batch = csr
        .upload_batch(&source.path().join("Отчёт 2026"), "Neu")
        .await;

    // The helper reaches the server through a proxy that cuts one connection past 20 MB.
    let (proxy, cuts) = cutting_proxy(server, 20_000_000).await;
    let mut c = Command::new(env!("CARGO_BIN_EXE_tandem-helper"));
    c.args([
        "join",
        &format!("http://{proxy}"),
        &s.code,
        "--terminal",
        "--display",
        &display,
    ])
    .env("TANDEM_HELPER_FILES_ROOT", home.path());
    let mut helper = Proc::spawn(c);
    helper.line(|l| l.starts_with("joined the session as \"Dave's computer\""));
    s.csr.event("computer_attached", "").await;

    let op = csr
        .ask(json!({"op": "receive", "batch": batch, "folder": ""}))
        .await;
    answer(&mut helper, "into your home folder", true);
    let got = done(&mut s.csr, op).await;
    assert_eq!(got["ok"], true, "{got}");
    assert_eq!(cuts.load(Ordering::Acquire), 1, "a connection was cut");
    assert_eq!(
        tree(&home.path().join("Neu")),
        tree(&source.path().join("Отчёт 2026"))
    );

    // And the other way: a second cut past 20 MB of an upload.
    cuts.store(0, Ordering::Release);
    let op = csr.ask(json!({"op": "send", "paths": ["Neu"]})).await;
    answer(&mut helper, "copy \"Neu\"", true);
    let sent = done(&mut s.csr, op).await;
    assert_eq!(sent["ok"], true, "{sent}");
    assert_eq!(cuts.load(Ordering::Acquire), 1, "a connection was cut");
    let b = sent["batch"].as_str().unwrap();
    let (_, status) = csr.get(&format!("file-batches/{b}")).await;
    assert_eq!(status["complete"], true);
    // What was sent again is at most the step the cut broke: it went on, not over.
    let received = status["received"].as_u64().unwrap();
    assert!(
        received < 60_000_000 + 8 * 1024 * 1024 + 1,
        "{received} bytes received for 60 MB"
    );
    println!("F2 resumed: {received} bytes received for 60000000");
}
