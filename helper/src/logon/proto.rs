//! The logon socket's messages: one JSON object per line. The helper sends one `start`; the
//! service answers `started` or `refused`, and later, on the same connection, `ended`.

use serde::{Deserialize, Serialize};

/// The longest line either side reads: a request is small, so a longer one is not ours.
pub const MAX_LINE: usize = 4096;
/// The smallest and largest display the service makes.
pub const MIN_SIZE: (u16, u16) = (320, 240);
pub const MAX_SIZE: (u16, u16) = (3840, 2160);

/// What the helper asks.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Check `user`'s password and start their session on a new display of this size.
    Start {
        user: String,
        password: String,
        width: u16,
        height: u16,
    },
}

/// Never prints the password.
impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Request::Start {
            user,
            width,
            height,
            ..
        } = self;
        write!(f, "Start {{ user: {user:?}, {width}x{height} }}")
    }
}

impl Request {
    /// Reads one line; a request that is not well formed is refused before anything is tried.
    pub fn parse(line: &[u8]) -> Result<Request, Refusal> {
        if line.len() > MAX_LINE {
            return Err(Refusal::BadRequest);
        }
        let request: Request = serde_json::from_slice(line).map_err(|_| Refusal::BadRequest)?;
        let Request::Start {
            user,
            password,
            width,
            height,
        } = &request;
        let sized =
            (MIN_SIZE.0..=MAX_SIZE.0).contains(width) && (MIN_SIZE.1..=MAX_SIZE.1).contains(height);
        if !user_name_ok(user) || password.is_empty() || password.contains('\0') || !sized {
            return Err(Refusal::BadRequest);
        }
        Ok(request)
    }

    pub fn line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("a request serializes");
        line.push(b'\n');
        line
    }
}

/// A user name as `useradd` makes them (and the server checks): 1 to 32 of letters, digits,
/// `.`, `_` and `-`, not starting with `-`.
pub fn user_name_ok(user: &str) -> bool {
    (1..=32).contains(&user.len())
        && !user.starts_with('-')
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// What the service answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// The session runs on `display` (`:N`); `cookie` (32 hex digits) is its MIT-MAGIC-COOKIE-1,
    /// given only to this caller.
    Started {
        display: String,
        cookie: String,
        width: u16,
        height: u16,
    },
    Refused {
        code: Refusal,
    },
    /// The session is over (the service then closes the connection).
    Ended {
        reason: EndReason,
    },
}

impl Reply {
    pub fn line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("a reply serializes");
        line.push(b'\n');
        line
    }

    pub fn parse(line: &[u8]) -> Option<Reply> {
        if line.len() > MAX_LINE {
            return None;
        }
        serde_json::from_slice(line).ok()
    }
}

/// Why nothing was started. The codes are what the CSR's console is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Wrong password, or no such user (not told apart, so names cannot be probed).
    #[error("the user name or password was not accepted")]
    AuthFailed,
    /// Root, a system account, the caller themself, or an account PAM refuses (expired, locked).
    #[error("that user may not be signed in this way")]
    NotAllowed,
    /// The user already has a session from this service, or the caller has one running.
    #[error("that user is already signed in")]
    Busy,
    /// Too many tries from this caller in the last minute.
    #[error("too many tries: wait a minute")]
    TooManyTries,
    #[error("the request was not understood")]
    BadRequest,
    /// The display or the session could not be started.
    #[error("the session could not be started")]
    Failed,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::AuthFailed => "auth_failed",
            Refusal::NotAllowed => "not_allowed",
            Refusal::Busy => "busy",
            Refusal::TooManyTries => "too_many_tries",
            Refusal::BadRequest => "bad_request",
            Refusal::Failed => "failed",
        }
    }
}

/// Why a running session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The user's session program exited: they signed out.
    LoggedOut,
    /// The display server stopped.
    Failed,
}

impl EndReason {
    pub fn code(self) -> &'static str {
        match self {
            EndReason::LoggedOut => "logged_out",
            EndReason::Failed => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(user: &str, password: &str, width: u16, height: u16) -> Vec<u8> {
        Request::Start {
            user: user.into(),
            password: password.into(),
            width,
            height,
        }
        .line()
    }

    #[test]
    fn a_well_formed_start_is_read_back() {
        let line = start("bob", "pw", 1280, 720);
        assert_eq!(
            Request::parse(line.trim_ascii_end()),
            Ok(Request::Start {
                user: "bob".into(),
                password: "pw".into(),
                width: 1280,
                height: 720
            })
        );
    }

    #[test]
    fn odd_requests_are_refused_before_anything_is_tried() {
        for line in [
            start("", "pw", 1280, 720),
            start("-rf", "pw", 1280, 720),
            start("a/b", "pw", 1280, 720),
            start(&"a".repeat(33), "pw", 1280, 720),
            start("bob", "", 1280, 720),
            start("bob", "p\0w", 1280, 720),
            start("bob", "pw", 100, 720),
            start("bob", "pw", 7680, 4320),
            br#"{"op":"start","user":"bob","password":"pw","width":1280,"height":720,"x":1}"#
                .to_vec(),
            br#"{"op":"stop"}"#.to_vec(),
            vec![b'{'; MAX_LINE + 1],
            b"\xff\xfe".to_vec(),
        ] {
            assert_eq!(Request::parse(&line), Err(Refusal::BadRequest), "{line:?}");
        }
    }

    #[test]
    fn the_password_never_prints() {
        let request = Request::parse(start("bob", "hunter2", 640, 480).trim_ascii_end()).unwrap();
        assert!(!format!("{request:?}").contains("hunter2"));
    }

    #[test]
    fn replies_round_trip_with_their_codes() {
        for reply in [
            Reply::Started {
                display: ":7".into(),
                cookie: "00".repeat(16),
                width: 640,
                height: 480,
            },
            Reply::Refused {
                code: Refusal::AuthFailed,
            },
            Reply::Ended {
                reason: EndReason::LoggedOut,
            },
        ] {
            let line = reply.line();
            assert_eq!(Reply::parse(line.trim_ascii_end()), Some(reply));
        }
        assert_eq!(
            String::from_utf8(
                Reply::Refused {
                    code: Refusal::TooManyTries
                }
                .line()
            )
            .unwrap(),
            "{\"type\":\"refused\",\"code\":\"too_many_tries\"}\n"
        );
    }
}
