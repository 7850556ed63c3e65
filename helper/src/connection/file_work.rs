//! SPEC F2: the shell of a file operation the customer allowed. Each runs on a thread of its
//! own (a transfer moves up to 150 MB and must not hold up the screen share) and ends by
//! telling the server how it went (`POST /api/sessions/{id}/computer-files/{op}`).
//!
//! The bytes go through the server over HTTP (docs/protocol.md, "Files on the customer's
//! computer"): a file received is fetched with `Range` from where it stopped if the
//! connection breaks; a file sent goes up in steps of [`STEP`] bytes at the offset the server
//! confirms, so a broken step is sent again. Both ends check each file's SHA-256.

use std::io::{Read as _, Seek as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::Digest as _;
use tokio::sync::mpsc::UnboundedSender;

use super::UiUpdate;
use crate::file_ops::{FileError, Placing, Root, hex, sha256_file};
use crate::file_paths::FilesRequest;

/// Bytes sent per upload request.
pub const STEP: usize = 8 << 20;
/// Tries per file before a transfer gives up on a broken connection.
const TRIES: u32 = 6;

/// `TANDEM_HELPER_FILES_RATE`: most bytes a second one transfer moves (unset: as fast as it
/// goes), for a customer whose link is needed for other things too.
pub const RATE_ENV: &str = "TANDEM_HELPER_FILES_RATE";

/// Holds a transfer to [`RATE_ENV`]'s rate.
struct Pace {
    rate: Option<f64>,
    started: std::time::Instant,
    moved: u64,
}

impl Pace {
    fn from_env() -> Self {
        let rate = std::env::var(RATE_ENV)
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|r| *r > 0.0);
        Self {
            rate,
            started: std::time::Instant::now(),
            moved: 0,
        }
    }

    async fn moved(&mut self, n: usize) {
        self.moved += n as u64;
        if let Some(rate) = self.rate {
            let due = Duration::from_secs_f64(self.moved as f64 / rate);
            let elapsed = self.started.elapsed();
            if due > elapsed {
                tokio::time::sleep(due - elapsed).await;
            }
        }
    }
}

/// Where and as whom the helper talks to the server.
#[derive(Clone)]
pub struct Link {
    pub base: reqwest::Url,
    pub session: String,
    pub token: String,
    pub ui: UnboundedSender<UiUpdate>,
}

/// How an operation ended, as the server takes it.
struct Ended {
    ok: bool,
    refused: bool,
    message: String,
    extra: Value,
}

impl Ended {
    fn ok(message: String) -> Self {
        Self {
            ok: true,
            refused: false,
            message,
            extra: json!({}),
        }
    }

    fn failed(message: String) -> Self {
        Self {
            ok: false,
            ..Self::ok(message)
        }
    }
}

/// Why a transfer stopped.
enum Stop {
    Cancelled,
    Failed(String),
}

impl From<FileError> for Stop {
    fn from(e: FileError) -> Self {
        Stop::Failed(e.to_string())
    }
}

/// Tells the server the customer refused operation `op` (or the helper did, and why).
pub fn refuse(link: Link, op: u64, why: String, by_customer: bool) {
    spawn(link, move |link| async move {
        let ended = Ended {
            refused: by_customer,
            ..Ended::failed(why)
        };
        report(&link, op, ended).await;
    });
}

/// Runs operation `op` with `cancel` as its stop flag.
pub fn start(link: Link, op: u64, request: FilesRequest, cancel: Arc<AtomicBool>) {
    spawn(link, move |link| async move {
        let ended = perform(&link, op, &request, &cancel).await;
        report(&link, op, ended).await;
    });
}

fn spawn<F, Fut>(link: Link, work: F)
where
    F: FnOnce(Link) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let _ = std::thread::Builder::new()
        .name("files".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(work(link));
        });
}

async fn perform(link: &Link, op: u64, request: &FilesRequest, cancel: &AtomicBool) -> Ended {
    let Some(root) = Root::from_env() else {
        return Ended::failed("this computer has no home folder to serve".into());
    };
    if let Err(e) = request.check() {
        return Ended::failed(e.to_string());
    }
    // A stalled connection is given up (and the step tried again) rather than waited on.
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default();
    let done = match request {
        FilesRequest::List { path } => match root.list(path) {
            Ok((listing, truncated)) => {
                let mut e = Ended::ok(format!("{} entries in {}", listing.len(), shown(path)));
                e.extra = json!({ "listing": listing, "truncated": truncated, "folder": path });
                return e;
            }
            Err(e) => Err(e.to_string()),
        },
        FilesRequest::MakeFolder { path } => root
            .make_folder(path)
            .map(|()| format!("made the folder {}", shown(path)))
            .map_err(|e| e.to_string()),
        FilesRequest::Delete { path } => root
            .delete(path)
            .map(|()| format!("deleted {}", shown(path)))
            .map_err(|e| e.to_string()),
        FilesRequest::Rename { path, to } => root
            .rename(path, to)
            .map(|()| format!("renamed {} to \"{to}\"", shown(path)))
            .map_err(|e| e.to_string()),
        FilesRequest::Receive { batch, folder } => {
            match receive(link, &http, &root, batch, folder, cancel).await {
                Ok(m) => Ok(m),
                Err(Stop::Cancelled) => {
                    // Cancelled, the batch is of no more use; failed, the CSR may put it
                    // elsewhere.
                    if let Ok(u) = url(link, &format!("file-batches/{batch}")) {
                        let _ = http.delete(u).bearer_auth(&link.token).send().await;
                    }
                    Err("cancelled; nothing of it was kept on either side".into())
                }
                Err(Stop::Failed(why)) => Err(format!("{why}; nothing of it was kept")),
            }
        }
        FilesRequest::Send { paths } => {
            return match send(link, &http, &root, op, paths, cancel).await {
                Ok((message, batch)) => {
                    let mut e = Ended::ok(message);
                    e.extra = json!({ "batch": batch });
                    e
                }
                Err(Stop::Cancelled) => Ended::failed("cancelled; nothing was sent".into()),
                Err(Stop::Failed(why)) => Ended::failed(format!("{why}; nothing was sent")),
            };
        }
        // Cancelling is the loop's work; this answers the request itself.
        FilesRequest::Cancel { target } => Ok(format!("operation {target} is being cancelled")),
    };
    match done {
        Ok(m) => {
            let mut e = Ended::ok(m);
            // The folder the operation changed, as it is now: the customer allowed the change,
            // so seeing its result is not asked again.
            if let Some(folder) = changed_folder(request)
                && let Ok((listing, truncated)) = root.list(&folder)
            {
                e.extra = json!({ "listing": listing, "truncated": truncated, "folder": folder });
            }
            e
        }
        Err(m) => Ended::failed(m),
    }
}

/// The folder an operation changes.
fn changed_folder(request: &FilesRequest) -> Option<String> {
    let parent = |p: &str| {
        p.rsplit_once('/')
            .map_or(String::new(), |(d, _)| d.to_owned())
    };
    match request {
        FilesRequest::MakeFolder { path }
        | FilesRequest::Delete { path }
        | FilesRequest::Rename { path, .. } => Some(parent(path)),
        FilesRequest::Receive { folder, .. } => Some(folder.clone()),
        _ => None,
    }
}

fn shown(rel: &str) -> String {
    if rel.is_empty() {
        "the home folder".into()
    } else {
        format!("\"{rel}\"")
    }
}

fn megabytes(n: u64) -> String {
    format!("{:.1} MB", n as f64 / 1e6)
}

fn url(link: &Link, tail: &str) -> Result<reqwest::Url, Stop> {
    link.base
        .join(&format!("/api/sessions/{}/{tail}", link.session))
        .map_err(|e| Stop::Failed(e.to_string()))
}

async fn problem(res: reqwest::Response) -> Stop {
    let status = res.status();
    let body: Value = res.json().await.unwrap_or_default();
    Stop::Failed(
        body["detail"]
            .as_str()
            .map_or_else(|| format!("the server answered {status}"), str::to_owned),
    )
}

fn check(cancel: &AtomicBool) -> Result<(), Stop> {
    if cancel.load(Ordering::Relaxed) {
        Err(Stop::Cancelled)
    } else {
        Ok(())
    }
}

/// Fetches the batch into `folder`: each file whole and checked, or nothing at all.
async fn receive(
    link: &Link,
    http: &reqwest::Client,
    root: &Root,
    batch: &str,
    folder: &str,
    cancel: &AtomicBool,
) -> Result<String, Stop> {
    let res = http
        .get(url(link, &format!("file-batches/{batch}"))?)
        .bearer_auth(&link.token)
        .send()
        .await
        .map_err(|e| Stop::Failed(e.to_string()))?;
    if !res.status().is_success() {
        return Err(problem(res).await);
    }
    let manifest: Value = res.json().await.map_err(|e| Stop::Failed(e.to_string()))?;
    let files: Vec<(String, u64, String)> = manifest["files"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["path"].as_str().unwrap_or_default().to_owned(),
                f["size"].as_u64().unwrap_or(0),
                f["sha256"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let folders: Vec<String> = manifest["folders"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_owned))
        .collect();
    // What the server says is checked here too: a rogue one may not fill this disk.
    let total = files
        .iter()
        .try_fold(0u64, |t, f| t.checked_add(f.1))
        .unwrap_or(u64::MAX);
    if total > crate::file_paths::MAX_BATCH_BYTES {
        return Err(FileError::TooLarge(total).into());
    }
    if files.len() + folders.len() > crate::file_ops::MAX_BATCH_FILES {
        return Err(FileError::TooMany.into());
    }
    let into = root.target_folder(folder)?;
    let names: Vec<String> = files.iter().map(|f| f.0.clone()).collect();
    let mut placing = Placing::begin(into, &names, &folders)?;
    let _ = link.ui.send(UiUpdate::Notice(format!(
        "receiving {} files ({}) into {}",
        files.len(),
        megabytes(total),
        shown(folder)
    )));
    for f in &folders {
        placing.folder(f)?;
    }
    let mut pace = Pace::from_env();
    for (index, (rel, size, sha)) in files.iter().enumerate() {
        check(cancel)?;
        let mut file = placing.open(rel)?;
        let mut have = 0u64;
        let mut hash = sha2::Sha256::new();
        let mut tries = 0;
        while have < *size || tries == 0 {
            check(cancel)?;
            tries += 1;
            let mut req = http
                .get(url(link, &format!("file-batches/{batch}/{index}"))?)
                .bearer_auth(&link.token);
            if have > 0 {
                req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
            }
            let res = match req.send().await {
                Ok(r) if r.status().is_success() => r,
                Ok(r) if r.status().is_client_error() => return Err(problem(r).await),
                Ok(_) | Err(_) if tries < TRIES => {
                    tokio::time::sleep(Duration::from_millis(200 << tries)).await;
                    continue;
                }
                Ok(r) => return Err(problem(r).await),
                Err(e) => return Err(Stop::Failed(e.to_string())),
            };
            let mut res = res;
            loop {
                check(cancel)?;
                match res.chunk().await {
                    Ok(Some(chunk)) => {
                        have += chunk.len() as u64;
                        if have > *size {
                            return Err(Stop::Failed(format!("{rel} arrived longer than sent")));
                        }
                        file.write_all(&chunk)
                            .map_err(|e| Stop::from(io_error(rel, e)))?;
                        hash.update(&chunk);
                        pace.moved(chunk.len()).await;
                    }
                    Ok(None) => break,
                    // Broken off: fetched again from where it stopped.
                    Err(_) if tries < TRIES => break,
                    Err(e) => return Err(Stop::Failed(e.to_string())),
                }
            }
            if have < *size && tries >= TRIES {
                return Err(Stop::Failed(format!("{rel} could not be fetched whole")));
            }
        }
        if hex(&hash.finalize()) != *sha {
            return Err(Stop::Failed(format!(
                "{rel} arrived damaged (its SHA-256 is not the sender's)"
            )));
        }
        placing.place(rel, file)?;
    }
    let made = placing.finish();
    let _ = http
        .delete(url(link, &format!("file-batches/{batch}"))?)
        .bearer_auth(&link.token)
        .send()
        .await;
    let _ = link.ui.send(UiUpdate::Notice(format!(
        "received {} files into {}",
        files.len(),
        shown(folder)
    )));
    Ok(format!(
        "received {} files and {} folders ({}) into {}; every SHA-256 checked",
        files.len(),
        made - files.len(),
        megabytes(total),
        shown(folder)
    ))
}

fn io_error(rel: &str, e: std::io::Error) -> FileError {
    if e.raw_os_error() == Some(28) || e.kind() == std::io::ErrorKind::StorageFull {
        FileError::DiskFull
    } else {
        FileError::Io(rel.to_owned(), e.to_string())
    }
}

/// Sends `paths` to the server as a batch for the CSR; answers the batch's id.
async fn send(
    link: &Link,
    http: &reqwest::Client,
    root: &Root,
    op: u64,
    paths: &[String],
    cancel: &AtomicBool,
) -> Result<(String, String), Stop> {
    let gathered = {
        let root = root.clone();
        let paths = paths.to_vec();
        tokio::task::spawn_blocking(move || root.gather(&paths))
            .await
            .map_err(|e| Stop::Failed(e.to_string()))??
    };
    let _ = link.ui.send(UiUpdate::Notice(format!(
        "sending {} files ({}) to the support representative",
        gathered.files.len(),
        megabytes(gathered.total)
    )));
    // First pass: each file's SHA-256 and when it last changed, for the batch's list.
    let mut listed = Vec::new();
    let mut stamps = Vec::new();
    for f in &gathered.files {
        check(cancel)?;
        let meta = std::fs::metadata(&f.path).map_err(|e| io_error(&f.rel, e))?;
        let sha = sha256_file(&f.path).map_err(|e| io_error(&f.rel, e))?;
        stamps.push((meta.len(), meta.modified().ok()));
        listed.push(json!({ "path": f.rel, "size": meta.len(), "sha256": sha }));
    }
    let res = http
        .post(url(link, "file-batches")?)
        .bearer_auth(&link.token)
        .json(&json!({ "files": listed, "folders": gathered.folders, "op": op }))
        .send()
        .await
        .map_err(|e| Stop::Failed(e.to_string()))?;
    if !res.status().is_success() {
        return Err(problem(res).await);
    }
    let batch = res
        .json::<Value>()
        .await
        .map_err(|e| Stop::Failed(e.to_string()))?["batch"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let sent = upload_all(link, http, &batch, &gathered.files, &stamps, cancel).await;
    if let Err(stop) = sent {
        let _ = http
            .delete(url(link, &format!("file-batches/{batch}"))?)
            .bearer_auth(&link.token)
            .send()
            .await;
        return Err(stop);
    }
    let skipped = if gathered.skipped.is_empty() {
        String::new()
    } else {
        format!(
            "; {} links or special files were not sent",
            gathered.skipped.len()
        )
    };
    Ok((
        format!(
            "{} files and {} folders ({}) are ready to download; every SHA-256 checked{skipped}",
            gathered.files.len(),
            gathered.folders.len(),
            megabytes(gathered.total)
        ),
        batch,
    ))
}

async fn upload_all(
    link: &Link,
    http: &reqwest::Client,
    batch: &str,
    files: &[crate::file_ops::Outgoing],
    stamps: &[(u64, Option<std::time::SystemTime>)],
    cancel: &AtomicBool,
) -> Result<(), Stop> {
    let mut pace = Pace::from_env();
    // Held to a rate, a step is what a quarter of a second moves, so a cancel is prompt.
    let step = pace
        .rate
        .map_or(STEP, |r| ((r / 4.0) as usize).clamp(64 * 1024, STEP));
    let mut buf = vec![0u8; step];
    for (index, f) in files.iter().enumerate() {
        let mut file = std::fs::File::open(&f.path).map_err(|e| io_error(&f.rel, e))?;
        let size = stamps[index].0;
        let mut offset: u64 = 0;
        let mut tries = 0;
        loop {
            check(cancel)?;
            file.seek(std::io::SeekFrom::Start(offset))
                .map_err(|e| io_error(&f.rel, e))?;
            let want =
                usize::try_from(size.saturating_sub(offset).min(step as u64)).unwrap_or(step);
            let mut got = 0;
            while got < want {
                let n = file
                    .read(&mut buf[got..want])
                    .map_err(|e| io_error(&f.rel, e))?;
                if n == 0 {
                    return Err(FileError::Changed(f.rel.clone()).into());
                }
                got += n;
            }
            let target = url(
                link,
                &format!("file-batches/{batch}/{index}?offset={offset}"),
            )?;
            let res = http
                .put(target)
                .bearer_auth(&link.token)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(buf[..want].to_vec())
                .send()
                .await;
            match res {
                Ok(r) if r.status() == reqwest::StatusCode::NO_CONTENT => break,
                Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED => {
                    offset += want as u64;
                    tries = 0;
                    pace.moved(want).await;
                }
                Ok(r) if r.status() == reqwest::StatusCode::UNPROCESSABLE_ENTITY => {
                    // The server's SHA-256 is not the one listed: it changed between the reads.
                    return Err(FileError::Changed(f.rel.clone()).into());
                }
                // A lost answer: the last step did arrive, the file is whole there.
                Ok(r) if r.status() == reqwest::StatusCode::CONFLICT && tries < TRIES => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(200 << tries)).await;
                    match status_of(link, http, batch, index).await {
                        Some((_, true)) => break,
                        Some((have, false)) => offset = have.min(size),
                        None => {}
                    }
                }
                Ok(r) if r.status().is_client_error() || tries >= TRIES => {
                    return Err(problem(r).await);
                }
                Err(e) if tries >= TRIES => return Err(Stop::Failed(e.to_string())),
                // Broken off: ask where the server is and go on from there.
                _ => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(200 << tries)).await;
                    match status_of(link, http, batch, index).await {
                        Some((_, true)) => break,
                        Some((have, false)) => offset = have.min(size),
                        None => {}
                    }
                }
            }
        }
        let meta = std::fs::metadata(&f.path).map_err(|e| io_error(&f.rel, e))?;
        if (meta.len(), meta.modified().ok()) != stamps[index] {
            return Err(FileError::Changed(f.rel.clone()).into());
        }
    }
    Ok(())
}

/// How many bytes of file `index` the server has, and whether it is whole there.
async fn status_of(
    link: &Link,
    http: &reqwest::Client,
    batch: &str,
    index: usize,
) -> Option<(u64, bool)> {
    let res = http
        .get(url(link, &format!("file-batches/{batch}")).ok()?)
        .bearer_auth(&link.token)
        .send()
        .await
        .ok()?;
    let v: Value = res.json().await.ok()?;
    let f = &v["files"][index];
    Some((f["have"].as_u64()?, f["stored"].as_bool()?))
}

async fn report(link: &Link, op: u64, ended: Ended) {
    let Ended {
        ok,
        refused,
        message,
        extra,
    } = ended;
    let message: String = message.chars().take(1000).collect();
    let mut body = json!({ "ok": ok, "refused": refused, "message": message });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    let Ok(target) = link.base.join(&format!(
        "/api/sessions/{}/computer-files/{op}",
        link.session
    )) else {
        return;
    };
    let sent = reqwest::Client::new()
        .post(target)
        .bearer_auth(&link.token)
        .json(&body)
        .send()
        .await;
    if let Err(e) = sent {
        let _ = link.ui.send(UiUpdate::Notice(format!(
            "the support representative could not be told how a file operation ended: {e}"
        )));
    }
}
