//! The service's listener: accepts connections on the logon socket, admits each caller
//! ([`Admission`]) and hands the connection to a worker process of its own
//! (`tandem-helper-logon --worker`, the connection as standard input). It never reads a request
//! itself, and runs no PAM: a worker's effects stay in that worker.

use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};

use super::admission::Admission;
use super::proto::Reply;

/// Serves until the listener fails. `worker` is the command that serves one connection on its
/// standard input.
pub fn serve(listener: UnixListener, worker: Command) -> std::io::Result<()> {
    let mut worker = worker;
    let started = Instant::now();
    let mut admission = Admission::default();
    let mut workers: Vec<Child> = Vec::new();
    loop {
        // A second's tick reaps workers that ended.
        let mut fds = [PollFd::new(&listener, PollFlags::IN)];
        let tick = Timespec::try_from(Duration::from_secs(1)).expect("a second fits");
        match poll(&mut fds, Some(&tick)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        workers.retain_mut(|child| matches!(child.try_wait(), Ok(None)));
        if fds[0].revents().is_empty() {
            continue;
        }
        let (stream, _) = match listener.accept() {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("tandem-helper-logon: accept: {e}");
                continue;
            }
        };
        let now = started.elapsed().as_millis() as u64;
        if let Some(child) = admit(&mut admission, now, stream, &mut worker) {
            workers.push(child);
        }
    }
}

fn admit(
    admission: &mut Admission,
    now_ms: u64,
    mut stream: UnixStream,
    worker: &mut Command,
) -> Option<Child> {
    let cred = rustix::net::sockopt::socket_peercred(&stream).ok()?;
    let uid = cred.uid.as_raw();
    if let Err(code) = admission.admit(now_ms, uid) {
        eprintln!(
            "tandem-helper-logon: uid {uid} (pid {}): refused ({})",
            cred.pid.as_raw_nonzero(),
            code.code()
        );
        let _ = stream.write_all(&Reply::Refused { code }.line());
        return None;
    }
    let spawned = worker
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(stream)))
        .stdout(Stdio::null())
        .spawn();
    // The command keeps what it was given: the listener must not hold the connection open.
    worker.stdin(Stdio::null());
    match spawned {
        Ok(child) => Some(child),
        Err(e) => {
            eprintln!("tandem-helper-logon: could not start a worker: {e}");
            None
        }
    }
}
