//! SPEC M4's fixtures: a real user made for the test (`useradd`, `chpasswd`; removed when
//! dropped) and `tandem-helper-logon` running as root with the shipped PAM file under a name of
//! the test's own. Needs root, as CI runs.
#![allow(dead_code)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use super::process::{WAIT, until};

pub struct TestUser {
    pub name: String,
    pub password: String,
    pub uid: u32,
    pub home: PathBuf,
}

impl TestUser {
    /// A fresh user `tm4-<pid>-<n>` with a home and a password; earlier runs' leftovers
    /// (their test process gone) are removed first.
    pub fn create(n: u32) -> TestUser {
        sweep();
        let name = format!("tm4-{}-{n}", std::process::id());
        let password = format!("Pw-{}-{n}-ok", std::process::id());
        run(Command::new("useradd").args([
            "--create-home",
            "--user-group",
            "--shell",
            "/bin/sh",
            &name,
        ]));
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .expect("chpasswd starts");
        use std::io::Write;
        chpasswd
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{name}:{password}\n").as_bytes())
            .unwrap();
        assert!(chpasswd.wait().unwrap().success(), "chpasswd");
        let home = PathBuf::from(format!("/home/{name}"));
        let uid = std::fs::metadata(&home).expect("a home").uid();
        TestUser {
            name,
            password,
            uid,
            home,
        }
    }

    /// The user's processes now.
    pub fn processes(&self) -> Vec<u32> {
        processes_of(self.uid)
    }

    /// Waits until the user has no process left; panics with them after [`WAIT`].
    pub fn until_no_process(&self) {
        let deadline = Instant::now() + WAIT;
        while !self.processes().is_empty() {
            assert!(
                Instant::now() < deadline,
                "processes of {} left: {:?}",
                self.name,
                self.processes()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        remove_user(&self.name);
    }
}

fn run(command: &mut Command) {
    let out = command.output().expect("runs");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn remove_user(name: &str) {
    if let Ok(uid) = Command::new("id").args(["-u", name]).output() {
        let uid: u32 = String::from_utf8_lossy(&uid.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        if uid >= 1000 {
            for pid in processes_of(uid) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
    let _ = Command::new("userdel")
        .args(["--force", "--remove", name])
        .stderr(Stdio::null())
        .status();
}

/// Users of earlier runs whose test process is gone.
fn sweep() {
    let Ok(passwd) = std::fs::read_to_string("/etc/passwd") else {
        return;
    };
    for line in passwd.lines() {
        let name = line.split(':').next().unwrap_or_default();
        let Some(pid) = name.strip_prefix("tm4-").and_then(|r| r.split('-').next()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            remove_user(name);
        }
    }
}

/// The processes whose real uid is `uid`.
pub fn processes_of(uid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let real = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|u| u.parse::<u32>().ok());
        if real == Some(uid) {
            out.push(pid);
        }
    }
    out
}

/// `tandem-helper-logon` on a socket of its own, as root.
pub struct Service {
    child: Child,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub run_dir: PathBuf,
    pam_file: PathBuf,
}

impl Service {
    /// The user's session is the test window (a copy anyone may run) titled "Window B", drawn
    /// in colours of its own, which logs to `~/events.log` and quits on Ctrl+Q.
    pub fn start(user: &TestUser) -> Service {
        Self::start_with(user, &[])
    }

    /// [`Service::start`] with these options before the session program.
    pub fn start_with(user: &TestUser, options: &[&str]) -> Service {
        let dir = tempfile::tempdir().expect("a temp folder");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let window = dir.path().join("test_window");
        std::fs::copy(test_window_exe(), &window).expect("the test window copies");
        static SERVICES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SERVICES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let service = format!("tandem-helper-test-{}-{n}", std::process::id());
        let pam_file = PathBuf::from(format!("/etc/pam.d/{service}"));
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/pam.d/tandem-helper"),
            &pam_file,
        )
        .expect("the PAM file installs");
        let socket = dir.path().join("logon.sock");
        let run_dir = dir.path().join("run");
        let events = user.home.join("events.log");
        let child = Command::new(env!("CARGO_BIN_EXE_tandem-helper-logon"))
            .arg("--socket")
            .arg(&socket)
            .args(["--pam-service", &service])
            .arg("--run-dir")
            .arg(&run_dir)
            .args(options)
            .arg("--")
            .arg(&window)
            .args([
                "--session",
                "--title",
                "Window B",
                "--x",
                "0",
                "--y",
                "0",
                "--width",
                "640",
                "--height",
                "480",
                "--colors",
                "ff00ff,00ffff,ff8000,8000ff",
                "--events",
            ])
            .arg(&events)
            .spawn()
            .expect("tandem-helper-logon starts");
        // Listening once the socket is made 0666 (a probe connection would count as a try).
        until("the logon socket listens", || {
            std::fs::metadata(&socket).is_ok_and(|m| m.permissions().mode() & 0o777 == 0o666)
        });
        Service {
            child,
            dir,
            socket,
            run_dir,
            pam_file,
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pam_file);
    }
}

fn test_window_exe() -> PathBuf {
    std::env::current_exe()
        .expect("test binary")
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("examples/test_window")
}
