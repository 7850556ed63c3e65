//! SPEC M3: runs one script as the user the helper runs as (the desktop user), in a fresh
//! private folder with its input file beside it, within a time limit and with its output
//! bounded; the folder is removed afterwards, whatever happened. On a time limit the script's
//! whole process group is killed, so nothing it started is left running.

use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the script is given: its file and the optional input file, by name.
pub struct ScriptFiles {
    pub name: String,
    pub bytes: Vec<u8>,
    pub input: Option<(String, Vec<u8>)>,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub time: Duration,
    /// Bytes of output kept (standard output and error together).
    pub output: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub output: String,
    pub truncated: bool,
    pub duration_ms: u64,
    /// The folder it ran in (removed by now).
    pub folder: PathBuf,
}

/// A folder removed when dropped.
struct Folder(PathBuf);

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A plain file name: no folder, not `.` or `..`.
fn plain(name: &str) -> std::io::Result<&str> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{name:?} is not a plain file name"),
        ));
    }
    Ok(name)
}

/// Removes the folders of scripts whose helper is gone (it exited, or the computer stopped,
/// while a script ran): each folder is named after the helper process that made it.
pub fn sweep_left_behind() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("tandem-script-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = Path::new("/proc").join(pid.to_string()).exists();
        if !alive && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn fresh_folder() -> std::io::Result<Folder> {
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    for attempt in 0..100u32 {
        let path = base.join(format!(
            "tandem-script-{}-{nanos}-{attempt}",
            std::process::id()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(Folder(path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no fresh folder could be made"))
}

/// Reads a pipe to its end, keeping the first `keep` bytes; answers them and whether more came.
fn drain(mut pipe: impl Read, keep: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut more = false;
    let mut buf = [0u8; 8192];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => return (kept, more),
            Ok(n) => {
                let room = keep.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                more |= n > room;
            }
        }
    }
}

/// How long the output is waited for once the script's process group is gone.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// Runs `files` and waits for it (at most `limits.time`, or until `cancel` is set).
pub fn run(files: &ScriptFiles, limits: Limits, cancel: &AtomicBool) -> std::io::Result<Ran> {
    let folder = fresh_folder()?;
    let dir: &Path = &folder.0;
    let script = dir.join(plain(&files.name)?);
    std::fs::write(&script, &files.bytes)?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700))?;
    let mut command = if files.bytes.starts_with(b"#!") || files.bytes.starts_with(b"\x7fELF") {
        Command::new(&script)
    } else {
        // No interpreter line: a shell script, as a double-click would run it.
        let mut c = Command::new("/bin/sh");
        c.arg(&script);
        c
    };
    if let Some((name, bytes)) = &files.input {
        if name == &files.name {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the input file has the script's name",
            ));
        }
        let input = dir.join(plain(name)?);
        std::fs::write(&input, bytes)?;
        command.env("TANDEM_INPUT", &input);
    }
    let started = Instant::now();
    let mut child = command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = mpsc::channel();
        if let Some(p) = pipe {
            let keep = limits.output;
            std::thread::spawn(move || {
                let _ = tx.send(drain(p, keep));
            });
        }
        rx
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let group = rustix::process::Pid::from_raw(child.id() as i32);
    let kill_group = || {
        if let Some(pid) = group {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    };
    let deadline = started + limits.time;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        let stopped = cancel.load(Ordering::Relaxed);
        if stopped || Instant::now() >= deadline {
            timed_out = !stopped;
            kill_group();
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // What it started in the background goes with it: nothing of a script outlives it.
    kill_group();
    let (mut output, mut truncated) = out.recv_timeout(DRAIN_WAIT).unwrap_or_default();
    let (errors, errors_cut) = err.recv_timeout(DRAIN_WAIT).unwrap_or_default();
    if !errors.is_empty() {
        output.extend_from_slice(b"\n[standard error]\n");
        output.extend_from_slice(&errors);
    }
    truncated |= errors_cut || output.len() > limits.output;
    output.truncate(limits.output);
    let mut text = String::from_utf8_lossy(&output).into_owned();
    // The cut may have split a character; keep within the limit in bytes.
    while text.len() > limits.output {
        text.pop();
    }
    Ok(Ran {
        exit_code: if timed_out { None } else { status.code() },
        timed_out,
        output: text,
        truncated,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        folder: dir.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(text: &str) -> ScriptFiles {
        ScriptFiles {
            name: "test.sh".into(),
            bytes: text.as_bytes().to_vec(),
            input: None,
        }
    }

    const LIMITS: Limits = Limits {
        time: Duration::from_secs(20),
        output: 1000,
    };

    #[test]
    fn a_script_runs_in_its_own_folder_with_its_input_and_the_folder_goes() {
        let mut files = script("#!/bin/sh\npwd\ncat \"$TANDEM_INPUT\"\necho oops >&2\nexit 3\n");
        files.input = Some(("in.txt".into(), b"hello input\n".to_vec()));
        let ran = run(&files, LIMITS, &AtomicBool::new(false)).unwrap();
        assert_eq!(ran.exit_code, Some(3));
        let folder = ran.folder.display().to_string();
        assert!(ran.output.starts_with(&folder), "{}", ran.output);
        assert!(ran.output.contains("hello input"));
        assert!(ran.output.contains("[standard error]\noops"));
        assert!(!ran.folder.exists(), "the folder is removed");
    }

    #[test]
    fn a_script_that_never_ends_is_stopped_with_what_it_started() {
        let limits = Limits {
            time: Duration::from_millis(500),
            ..LIMITS
        };
        let ran = run(
            &script("sleep 30 &\necho started\nwait\n"),
            limits,
            &AtomicBool::new(false),
        )
        .unwrap();
        assert!(ran.timed_out);
        assert_eq!(ran.exit_code, None);
        assert!(ran.output.contains("started"));
        assert!(ran.duration_ms < 10_000, "{}", ran.duration_ms);
        assert!(!ran.folder.exists());
    }

    #[test]
    fn output_is_bounded_and_said_so() {
        let ran = run(
            &script("yes 0123456789 | head -c 100000\n"),
            LIMITS,
            &AtomicBool::new(false),
        )
        .unwrap();
        assert!(ran.truncated);
        assert_eq!(ran.output.len(), LIMITS.output);
        assert_eq!(ran.exit_code, Some(0));
    }

    #[test]
    fn a_name_that_is_a_path_is_not_written() {
        let mut files = script("echo x");
        files.name = "../escape.sh".into();
        assert!(run(&files, LIMITS, &AtomicBool::new(false)).is_err());
        // Nor an input file that would replace the script.
        let mut files = script("echo x");
        files.input = Some(("test.sh".into(), b"rm -rf ~".to_vec()));
        assert!(run(&files, LIMITS, &AtomicBool::new(false)).is_err());
    }

    #[test]
    fn what_a_script_leaves_running_is_killed_when_it_ends_and_the_runner_does_not_wait_for_it() {
        let marker = std::env::temp_dir().join(format!("tandem-runner-bg-{}", std::process::id()));
        let text = format!(
            "(sleep 3; touch {}) &\necho left one behind\n",
            marker.display()
        );
        let started = Instant::now();
        let ran = run(&script(&text), LIMITS, &AtomicBool::new(false)).unwrap();
        assert_eq!(ran.exit_code, Some(0));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(3500));
        assert!(!marker.exists(), "the background child was killed");
    }

    #[test]
    fn a_cancelled_run_stops_its_script_at_once() {
        let cancel = std::sync::Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            flag.store(true, Ordering::Relaxed);
        });
        let ran = run(&script("echo begun\nsleep 30\n"), LIMITS, &cancel).unwrap();
        assert!(!ran.timed_out);
        assert_eq!(ran.exit_code, None);
        assert!(ran.duration_ms < 10_000);
        assert!(!ran.folder.exists());
    }

    #[test]
    fn folders_of_helpers_that_are_gone_are_swept_and_others_kept() {
        let tmp = std::env::temp_dir();
        // No process has this id (above the kernel's pid_max).
        let gone = tmp.join("tandem-script-4194999-1-0");
        let mine = tmp.join(format!("tandem-script-{}-1-0", std::process::id()));
        std::fs::create_dir_all(&gone).unwrap();
        std::fs::create_dir_all(&mine).unwrap();
        sweep_left_behind();
        assert!(!gone.exists());
        assert!(mine.exists());
        std::fs::remove_dir_all(mine).unwrap();
    }
}
