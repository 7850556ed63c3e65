//! The helper's side of the logon socket: ask for a session, learn how it ended, end it.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::proto::{EndReason, MAX_LINE, Refusal, Reply, Request};
use super::xauth;

/// Where the service listens when installed (its systemd socket).
pub const SOCKET: &str = "/run/tandem-helper/logon.sock";

/// The socket to ask: `TANDEM_HELPER_LOGON_SOCKET`, or where the installed service listens.
pub fn socket() -> std::path::PathBuf {
    std::env::var_os("TANDEM_HELPER_LOGON_SOCKET")
        .map_or_else(|| SOCKET.into(), std::path::PathBuf::from)
}

/// How long a start may take: PAM delays a wrong password by seconds, and the display must start.
const START_WAIT: Duration = Duration::from_secs(60);

/// The other user's display, once started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub display: String,
    pub cookie: [u8; 16],
    pub size: (u16, u16),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StartError {
    #[error("{0}")]
    Refused(Refusal),
    /// Nothing listens (the service is not installed) or it broke off.
    #[error("the sign-in service is not reachable: {0}")]
    Unreachable(String),
}

impl StartError {
    /// The code the session is told.
    pub fn code(&self) -> &'static str {
        match self {
            StartError::Refused(r) => r.code(),
            StartError::Unreachable(_) => "failed",
        }
    }
}

/// A running session: dropping it (or [`Logon::end`]) ends it.
#[derive(Debug)]
pub struct Logon {
    stream: UnixStream,
}

/// Whether the service is there to ask (the helper says it `can` `login_as_user` only then).
pub fn available(socket: &Path) -> bool {
    std::fs::metadata(socket).is_ok_and(|m| {
        use std::os::unix::fs::FileTypeExt;
        m.file_type().is_socket()
    })
}

/// Asks for `user`'s session. Blocks for the answer (seconds, with PAM's delay).
pub fn start(
    socket: &Path,
    user: &str,
    password: &str,
    size: (u16, u16),
) -> Result<(Started, Logon), StartError> {
    let unreachable = |e: std::io::Error| StartError::Unreachable(e.to_string());
    let mut stream = UnixStream::connect(socket).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(START_WAIT))
        .map_err(unreachable)?;
    let request = Request::Start {
        user: user.to_owned(),
        password: password.to_owned(),
        width: size.0,
        height: size.1,
    };
    // A refusal before the request is read (too many tries) may close the connection first: the
    // answer is read all the same.
    let wrote = stream.write_all(&request.line());
    drop(request);
    let line = read_line(&stream).map_err(unreachable)?;
    if line.is_empty() {
        return Err(StartError::Unreachable(match wrote {
            Err(e) => e.to_string(),
            Ok(()) => "no answer".into(),
        }));
    }
    stream.set_read_timeout(None).map_err(unreachable)?;
    match Reply::parse(line.trim_ascii_end()) {
        Some(Reply::Started {
            display,
            cookie,
            width,
            height,
        }) => {
            let cookie = xauth::from_hex(&cookie)
                .ok_or_else(|| StartError::Unreachable("a bad cookie".into()))?;
            let started = Started {
                display,
                cookie,
                size: (width, height),
            };
            Ok((started, Logon { stream }))
        }
        Some(Reply::Refused { code }) => Err(StartError::Refused(code)),
        _ => Err(StartError::Unreachable("no answer".into())),
    }
}

/// One line, a byte at a time: nothing after it is read ahead (and lost) before the session's
/// watcher reads it.
fn read_line(mut stream: &UnixStream) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut byte = [0u8];
    while line.len() <= MAX_LINE {
        if stream.read(&mut byte)? == 0 || byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
    }
    Ok(line)
}

impl Logon {
    /// A handle the session's end is awaited on (on a thread of its own), while this one ends it.
    pub fn watcher(&self) -> std::io::Result<Watcher> {
        Ok(Watcher(self.stream.try_clone()?))
    }

    /// Ends the session: the service stops the user's programs and their display.
    pub fn end(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

pub struct Watcher(UnixStream);

impl Watcher {
    /// Blocks until the session ends: how, or `None` when it was ended from this side (or the
    /// service went away).
    pub fn ended(self) -> Option<EndReason> {
        let line = read_line(&self.0).ok()?;
        match Reply::parse(line.trim_ascii_end())? {
            Reply::Ended { reason } => Some(reason),
            _ => None,
        }
    }
}
