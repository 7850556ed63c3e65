//! One logon, in a process of its own: the listener runs `tandem-helper-logon --worker` with the
//! connection as standard input. PAM's effects on the calling process (loginuid, limits, a logind
//! session) stay here, and this process lives exactly as long as the session.
//!
//! Order: who calls (`SO_PEERCRED`) → the request → policy (root, system accounts and the caller
//! themself are refused before any password is checked, so the service is no oracle for them) →
//! PAM authenticate and account → one session per user (a lock) → PAM session → Xvfb as the
//! user with a fresh cookie → the session program as the user → `started`. Then it waits for the
//! connection to close (the helper ended it, or died) or the session program to exit (the user
//! signed out), and tears everything down in reverse.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pam_client2::{Context, ErrorCode, Flag, SessionToken, conv_mock::Conversation};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open};
use zeroize::Zeroize;

use super::proto::{EndReason, MAX_LINE, Refusal, Reply, Request};
use super::xauth;

/// How the service is set up (the same for the listener and each worker).
#[derive(Debug, Clone)]
pub struct Config {
    /// The PAM service file in /etc/pam.d.
    pub pam_service: String,
    /// The user's session program and its arguments; when it exits the user signed out.
    pub session_command: Vec<String>,
    /// Where per-session folders (cookie, runtime folder) and per-user locks go.
    pub run_dir: PathBuf,
    /// The smallest uid that may be signed in (system accounts are below).
    pub uid_min: u32,
    /// The display server.
    pub xvfb: PathBuf,
}

/// How long the caller has to send its request, and the display server to say it is ready.
const REQUEST_WAIT: Duration = Duration::from_secs(30);
const DISPLAY_WAIT: Duration = Duration::from_secs(15);
/// How long a process gets after SIGTERM before SIGKILL.
const TERM_WAIT: Duration = Duration::from_secs(3);

/// Serves the one connection on `stream`. Problems are answered to the caller and logged on
/// standard error (the service's log: it names the caller's uid and pid and the user asked for,
/// never the password).
pub fn run(mut stream: UnixStream, config: &Config) {
    let Ok(caller) = rustix::net::sockopt::socket_peercred(&stream) else {
        return;
    };
    let (uid, pid) = (caller.uid.as_raw(), caller.pid.as_raw_nonzero());
    let request = match read_request(&mut stream) {
        Ok(r) => r,
        Err(code) => {
            log(uid, pid, "?", &format!("refused ({})", code.code()));
            let _ = stream.write_all(&Reply::Refused { code }.line());
            return;
        }
    };
    let Request::Start { user, .. } = &request;
    let user = user.clone();
    match start(request, uid, config) {
        Ok(mut running) => {
            log(
                uid,
                pid,
                &user,
                &format!("signed in on {}", running.display),
            );
            let started = Reply::Started {
                display: running.display.clone(),
                cookie: xauth::hex(&running.cookie),
                width: running.size.0,
                height: running.size.1,
            };
            let ended = if stream.write_all(&started.line()).is_ok() {
                running.wait(&stream)
            } else {
                None
            };
            if let Some(reason) = ended {
                let _ = stream.write_all(&Reply::Ended { reason }.line());
            }
            log(
                uid,
                pid,
                &user,
                &format!("ended ({})", ended.map_or("closed", |r| r.code())),
            );
            running.stop();
        }
        Err(code) => {
            log(uid, pid, &user, &format!("refused ({})", code.code()));
            let _ = stream.write_all(&Reply::Refused { code }.line());
        }
    }
}

fn log(uid: u32, pid: std::num::NonZeroI32, user: &str, what: &str) {
    eprintln!("tandem-helper-logon: uid {uid} (pid {pid}) for user {user:?}: {what}");
}

fn read_request(stream: &mut UnixStream) -> Result<Request, Refusal> {
    stream
        .set_read_timeout(Some(REQUEST_WAIT))
        .map_err(|_| Refusal::Failed)?;
    let mut line = Vec::new();
    let mut reader = BufReader::new(&*stream).take(MAX_LINE as u64 + 1);
    reader
        .read_until(b'\n', &mut line)
        .map_err(|_| Refusal::BadRequest)?;
    let parsed = Request::parse(line.trim_ascii_end());
    line.zeroize();
    stream.set_read_timeout(None).map_err(|_| Refusal::Failed)?;
    parsed
}

/// The account asked for, as the system knows it.
struct Account {
    name: String,
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    home: PathBuf,
    shell: PathBuf,
}

fn account(name: &str) -> Option<Account> {
    let user = nix::unistd::User::from_name(name).ok()??;
    let cname = CString::new(name).ok()?;
    let groups = nix::unistd::getgrouplist(&cname, user.gid)
        .ok()?
        .into_iter()
        .map(|g| g.as_raw())
        .collect();
    Some(Account {
        name: name.to_owned(),
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        groups,
        home: user.dir,
        shell: user.shell,
    })
}

/// Everything started for one session, stopped in reverse by [`Running::stop`].
struct Running {
    display: String,
    cookie: [u8; 16],
    size: (u16, u16),
    leader: Process,
    xvfb: Process,
    /// The PAM session, closed (and its credentials deleted) after the processes are gone.
    pam: Option<(Context<Conversation>, SessionToken)>,
    folder: PathBuf,
    /// The caller's and the user's locks: held while the session runs.
    locks: Option<[File; 2]>,
}

struct Process {
    child: Child,
    pidfd: OwnedFd,
}

impl Process {
    fn spawn(command: &mut Command) -> std::io::Result<Process> {
        let child = command.spawn()?;
        let pid = Pid::from_raw(child.id() as i32).expect("a child's pid is positive");
        let pidfd = pidfd_open(pid, PidfdFlags::empty())?;
        Ok(Process { child, pidfd })
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32).expect("a child's pid is positive")
    }

    /// Waits up to `limit` for it to exit; whether it did (and was reaped).
    fn exited_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let mut fds = [PollFd::new(&self.pidfd, PollFlags::IN)];
            let timeout = Timespec::try_from(left).ok();
            let _ = poll(&mut fds, timeout.as_ref());
        }
    }

    /// SIGTERM to its process group (or to it alone), then SIGKILL if it lingers; reaped.
    fn stop(&mut self, group: bool) {
        let pid = self.pid();
        let kill = |signal| {
            let _ = if group {
                rustix::process::kill_process_group(pid, signal)
            } else {
                rustix::process::kill_process(pid, signal)
            };
        };
        kill(Signal::TERM);
        if !self.exited_within(TERM_WAIT) {
            kill(Signal::KILL);
            let _ = self.child.wait();
        }
        if group {
            // What the leader left behind in its group.
            let _ = rustix::process::kill_process_group(pid, Signal::KILL);
        }
    }
}

fn start(request: Request, caller: u32, config: &Config) -> Result<Running, Refusal> {
    let Request::Start {
        user,
        mut password,
        width,
        height,
    } = request;
    let found = account(&user);
    // Refused before the password is checked: the answer then says nothing about it.
    if let Some(a) = &found
        && (a.uid == 0 || a.uid < config.uid_min || a.uid == caller)
    {
        password.zeroize();
        return Err(Refusal::NotAllowed);
    }
    let mut pam = Context::new(
        &config.pam_service,
        Some(&user),
        Conversation::with_credentials(user.clone(), password.clone()),
    )
    .map_err(|_| Refusal::Failed)?;
    password.zeroize();
    let checked = pam
        .authenticate(Flag::DISALLOW_NULL_AUTHTOK)
        .and_then(|()| pam.acct_mgmt(Flag::NONE));
    pam.conversation_mut().password.zeroize();
    if let Err(e) = checked {
        return Err(match e.code() {
            ErrorCode::ACCT_EXPIRED
            | ErrorCode::NEW_AUTHTOK_REQD
            | ErrorCode::PERM_DENIED
            | ErrorCode::AUTHTOK_EXPIRED => Refusal::NotAllowed,
            ErrorCode::SERVICE_ERR | ErrorCode::SYSTEM_ERR | ErrorCode::BUF_ERR => Refusal::Failed,
            _ => Refusal::AuthFailed,
        });
    }
    // PAM knows a user the system's accounts do not (a directory without NSS): nothing to run as.
    let account = found.ok_or(Refusal::Failed)?;
    fs::create_dir_all(&config.run_dir).map_err(|_| Refusal::Failed)?;
    // One session per caller, and one per user: a second one breaks desktops (their settings,
    // their single-instance programs).
    let locks = [
        lock(&config.run_dir, &format!("caller-{caller}"))?,
        lock(&config.run_dir, &format!("user-{}", account.name))?,
    ];
    let folder = config
        .run_dir
        .join(format!("session-{}", std::process::id()));
    let made = session_folder(&folder, &account);
    let result = made.and_then(|cookie| {
        launch(
            pam,
            &account,
            &folder,
            cookie,
            (width, height),
            locks,
            config,
        )
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&folder);
    }
    result
}

/// Held by this worker until the session is over (and by nobody once it exits).
fn lock(run_dir: &Path, name: &str) -> Result<File, Refusal> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(run_dir.join(format!("{name}.lock")))
        .map_err(|_| Refusal::Failed)?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .map_err(|_| Refusal::Busy)?;
    Ok(file)
}

/// The session's private folder, the user's: the Xauthority file with a fresh cookie, and a
/// runtime folder where PAM gives none.
fn session_folder(folder: &Path, account: &Account) -> Result<[u8; 16], Refusal> {
    let owned = |path: &Path, mode: u32| -> std::io::Result<()> {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
        std::os::unix::fs::chown(path, Some(account.uid), Some(account.gid))
    };
    let make = || -> std::io::Result<[u8; 16]> {
        let _ = fs::remove_dir_all(folder);
        fs::create_dir(folder)?;
        owned(folder, 0o700)?;
        fs::create_dir(folder.join("runtime"))?;
        owned(&folder.join("runtime"), 0o700)?;
        let mut cookie = [0u8; 16];
        rustix::rand::getrandom(&mut cookie, rustix::rand::GetRandomFlags::empty())?;
        let path = folder.join("Xauthority");
        let mut file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(&xauth::entry(&cookie))?;
        owned(&path, 0o600)?;
        Ok(cookie)
    };
    make().map_err(|_| Refusal::Failed)
}

fn launch(
    mut pam: Context<Conversation>,
    account: &Account,
    folder: &Path,
    cookie: [u8; 16],
    size: (u16, u16),
    locks: [File; 2],
    config: &Config,
) -> Result<Running, Refusal> {
    // Read by pam_systemd: a graphical session of a user, with no seat (it is not this screen).
    for var in ["XDG_SESSION_TYPE=x11", "XDG_SESSION_CLASS=user"] {
        pam.putenv(var).map_err(|_| Refusal::Failed)?;
    }
    let (env, token): (Vec<(String, String)>, SessionToken) = {
        let session = pam.open_session(Flag::NONE).map_err(|_| Refusal::Failed)?;
        let list = session
            .envlist()
            .iter_tuples()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect();
        // Kept open until [`Running::stop`] closes it.
        (list, session.leak())
    };
    let started = processes(account, folder, size, &env, config);
    match started {
        Ok((display, xvfb, leader)) => Ok(Running {
            display,
            cookie,
            size,
            leader,
            xvfb,
            pam: Some((pam, token)),
            folder: folder.to_owned(),
            locks: Some(locks),
        }),
        Err(refusal) => {
            let _ = pam.unleak_session(token).close(Flag::NONE);
            Err(refusal)
        }
    }
}

/// The user's display server and session program, as the user: the display's name and both.
fn processes(
    account: &Account,
    folder: &Path,
    size: (u16, u16),
    env: &[(String, String)],
    config: &Config,
) -> Result<(String, Process, Process), Refusal> {
    let xauthority = folder.join("Xauthority");
    x11_unix_folder().map_err(|_| Refusal::Failed)?;
    let mut xvfb = Command::new(&config.xvfb);
    xvfb.args(["-displayfd", "1", "-nolisten", "tcp", "-auth"])
        .arg(&xauthority)
        .args(["-screen", "0", &format!("{}x{}x24", size.0, size.1)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin");
    as_user(&mut xvfb, account);
    let mut xvfb = Process::spawn(&mut xvfb).map_err(|_| Refusal::Failed)?;
    let Some(number) = display_number(&mut xvfb) else {
        xvfb.stop(false);
        return Err(Refusal::Failed);
    };
    let display = format!(":{number}");
    let runtime = env
        .iter()
        .find(|(k, _)| k == "XDG_RUNTIME_DIR")
        .map(|(_, v)| PathBuf::from(v))
        .unwrap_or_else(|| folder.join("runtime"));
    let (program, args) = config
        .session_command
        .split_first()
        .ok_or(Refusal::Failed)?;
    let home = if account.home.is_dir() {
        account.home.clone()
    } else {
        PathBuf::from("/")
    };
    let mut leader = Command::new(program);
    leader
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("HOME", &account.home)
        .env("USER", &account.name)
        .env("LOGNAME", &account.name)
        .env("SHELL", &account.shell)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("DISPLAY", &display)
        .env("XAUTHORITY", &xauthority)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("XDG_SESSION_TYPE", "x11")
        .current_dir(home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    as_user(&mut leader, account);
    let leader = match Process::spawn(&mut leader) {
        Ok(p) => p,
        Err(_) => {
            xvfb.stop(false);
            return Err(Refusal::Failed);
        }
    };
    Ok((display, xvfb, leader))
}

/// X servers put their sockets in /tmp/.X11-unix, which must be root's and sticky for a user's
/// server to use it.
fn x11_unix_folder() -> std::io::Result<()> {
    let dir = Path::new("/tmp/.X11-unix");
    if !dir.is_dir() {
        fs::create_dir(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o1777))?;
    }
    Ok(())
}

/// Xvfb writes its display number on `-displayfd` once it accepts connections.
fn display_number(xvfb: &mut Process) -> Option<u32> {
    let mut out = xvfb.child.stdout.take()?;
    let deadline = Instant::now() + DISPLAY_WAIT;
    let mut text = Vec::new();
    while !text.ends_with(b"\n") && text.len() < 16 {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(&out, PollFlags::IN)];
        let ready = poll(&mut fds, Timespec::try_from(left).ok().as_ref()).ok()?;
        if ready == 0 || left.is_zero() {
            return None;
        }
        let mut buf = [0u8; 16];
        let n = out.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        text.extend_from_slice(&buf[..n]);
    }
    std::str::from_utf8(&text).ok()?.trim().parse().ok()
}

/// The child becomes the user before it runs anything: their groups, gid and uid (all three of
/// each), in a session of its own. Not `Command::uid`: std then drops the supplementary groups.
#[allow(unsafe_code)]
fn as_user(command: &mut Command, account: &Account) {
    let groups: Vec<rustix::fs::Gid> = account
        .groups
        .iter()
        .map(|g| rustix::fs::Gid::from_raw(*g))
        .collect();
    let gid = rustix::fs::Gid::from_raw(account.gid);
    let uid = rustix::fs::Uid::from_raw(account.uid);
    // SAFETY: runs in the child between fork and exec; it makes system calls only (no allocation,
    // no locks), and rustix's thread calls change this one thread, the only one after fork.
    unsafe {
        command.pre_exec(move || {
            rustix::thread::set_thread_groups(&groups)?;
            rustix::thread::set_thread_res_gid(gid, gid, gid)?;
            rustix::thread::set_thread_res_uid(uid, uid, uid)?;
            rustix::process::setsid()?;
            Ok(())
        });
    }
}

impl Running {
    /// Until the connection closes (`None`: nobody to tell) or the session ends by itself.
    fn wait(&mut self, stream: &UnixStream) -> Option<EndReason> {
        loop {
            let mut fds = [
                PollFd::new(stream, PollFlags::IN),
                PollFd::new(&self.leader.pidfd, PollFlags::IN),
                PollFd::new(&self.xvfb.pidfd, PollFlags::IN),
            ];
            if poll(&mut fds, None).is_err() {
                return None;
            }
            let [conn, leader, xvfb] = fds.map(|f| f.revents());
            if !leader.is_empty() {
                return Some(EndReason::LoggedOut);
            }
            if !xvfb.is_empty() {
                return Some(EndReason::Failed);
            }
            if !conn.is_empty() {
                // The caller sends nothing more: anything, or the end, ends the session.
                let mut buf = [0u8; 64];
                let _ = rustix::io::read(stream.as_fd(), &mut buf);
                return None;
            }
        }
    }

    fn stop(mut self) {
        self.leader.stop(true);
        self.xvfb.stop(false);
        // pam_close_session and deleting the credentials, as root, after the user's processes.
        if let Some((mut pam, token)) = self.pam.take() {
            let _ = pam.unleak_session(token).close(Flag::NONE);
        }
        // Free before the folder goes: once it is gone, a new session may start.
        drop(self.locks.take());
        let _ = fs::remove_dir_all(&self.folder);
    }
}
