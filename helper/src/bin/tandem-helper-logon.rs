//! `tandem-helper-logon`: the root service behind SPEC M4 (log in as another user). See
//! helper/src/logon.rs and docs/helper.md; installed with helper/packaging (a socket-activated
//! systemd unit and its PAM file).

use std::os::fd::{AsFd, FromRawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::Parser;
use tandem_helper::logon::{listener, worker};

#[derive(Parser)]
#[command(
    name = "tandem-helper-logon",
    version,
    about = "Checks another user's password with PAM and starts their session on a display of its own, for Tandem Helper (runs as root)"
)]
struct Cli {
    /// The socket to listen on (made 0666: every local user may ask; each needs the target's
    /// password). Without it: the socket systemd passes (LISTEN_FDS).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// The PAM service (a file in /etc/pam.d).
    #[arg(long, default_value = "tandem-helper")]
    pam_service: String,
    /// Per-session folders and per-user locks.
    #[arg(long, default_value = "/run/tandem-helper")]
    run_dir: PathBuf,
    /// Users below this uid (system accounts) are never signed in.
    #[arg(long, default_value_t = 1000)]
    uid_min: u32,
    /// The display server (run as the user, with -displayfd).
    #[arg(long, default_value = "Xvfb")]
    xvfb: PathBuf,
    /// Serve the one connection on standard input (the listener starts these).
    #[arg(long, hide = true)]
    worker: bool,
    /// The user's session program and its arguments (default: /etc/X11/Xsession). When it exits
    /// the user signed out.
    #[arg(last = true)]
    session_command: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !rustix::process::geteuid().is_root() {
        eprintln!("tandem-helper-logon: must run as root (it checks other users' passwords)");
        return ExitCode::FAILURE;
    }
    let session_command = if cli.session_command.is_empty() {
        vec!["/etc/X11/Xsession".to_owned()]
    } else {
        cli.session_command.clone()
    };
    let config = worker::Config {
        pam_service: cli.pam_service.clone(),
        session_command,
        run_dir: cli.run_dir.clone(),
        uid_min: cli.uid_min,
        xvfb: cli.xvfb.clone(),
    };
    if cli.worker {
        // Standard input is the connection the listener accepted.
        let stream = match std::io::stdin().as_fd().try_clone_to_owned() {
            Ok(fd) => UnixStream::from(fd),
            Err(_) => return ExitCode::FAILURE,
        };
        worker::run(stream, &config);
        return ExitCode::SUCCESS;
    }
    let listener = match listen(&cli) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tandem-helper-logon: cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    let mut command = Command::new(exe);
    command
        .arg("--worker")
        .arg("--pam-service")
        .arg(&config.pam_service)
        .arg("--run-dir")
        .arg(&config.run_dir)
        .arg("--uid-min")
        .arg(config.uid_min.to_string())
        .arg("--xvfb")
        .arg(&config.xvfb)
        .arg("--")
        .args(&config.session_command);
    match listener::serve(listener, command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tandem-helper-logon: {e}");
            ExitCode::FAILURE
        }
    }
}

fn listen(cli: &Cli) -> std::io::Result<UnixListener> {
    if let Some(path) = &cli.socket {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
        return Ok(listener);
    }
    let ours = std::env::var("LISTEN_PID").ok() == Some(std::process::id().to_string());
    if ours && std::env::var("LISTEN_FDS").ok().as_deref() == Some("1") {
        // SAFETY: systemd passes the listening socket as fd 3 (sd_listen_fds), ours alone.
        #[allow(unsafe_code)]
        return Ok(unsafe { UnixListener::from_raw_fd(3) });
    }
    Err(std::io::Error::other(
        "no --socket, and systemd passed no socket (LISTEN_FDS)",
    ))
}
