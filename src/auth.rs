//! Passwords (argon2) and signed, expiring tokens (HS256 JWT).
//!
//! Four kinds of token: an account's sign-in token, a participant's WebSocket token, an invite,
//! and a recording's streaming link. Each carries its kind, so one can never be used as another.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tandem_actors::ids::{AccountId, ParticipantId, SessionId};
use tandem_actors::protocol::Role;
use uuid::Uuid;

use crate::store::AccountRole;

const ISSUER: &str = "tandem";
/// Shortest password accepted for an account.
pub const MIN_PASSWORD_CHARS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the token is malformed, tampered with, or signed by another server")]
    BadToken,
    #[error("the token has expired")]
    Expired,
    #[error("this kind of token cannot be used here")]
    WrongKind,
    #[error("key file {0}: {1}")]
    KeyFile(String, std::io::Error),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

pub fn hash_password(password: &str) -> Result<String, AuthError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Constant-time check of a password against a stored argon2 hash.
pub fn verify_password(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the username does not exist, so that a wrong username takes
/// as long as a wrong password and does not reveal which accounts exist.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never valid").expect("argon2 works"))
}

/// What a valid token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    Access {
        account: AccountId,
        role: AccountRole,
    },
    Participant {
        session: SessionId,
        participant: ParticipantId,
        role: Role,
    },
    Invite {
        session: SessionId,
        role: Role,
    },
    /// A signed streaming link: whoever holds it may play this one recording until it expires
    /// (SPEC R4), without an account.
    RecordingLink {
        recording: Uuid,
    },
}

#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    kind: String,
    sub: String,
    iat: u64,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<SessionId>,
    role: String,
}

#[derive(Clone)]
pub struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

pub fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn role_str(r: Role) -> &'static str {
    match r {
        Role::Csr => "csr",
        Role::Customer => "customer",
    }
}

impl Signer {
    pub fn from_secret(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// Reads the key file, creating it with 64 random bytes (mode 0600) the first time, so
    /// tokens stay valid across restarts.
    pub fn from_key_file(path: &Path) -> Result<Self, AuthError> {
        let err = |e| AuthError::KeyFile(path.display().to_string(), e);
        match std::fs::read(path) {
            Ok(bytes) if bytes.len() >= 32 => Ok(Self::from_secret(&bytes)),
            Ok(_) => Err(err(std::io::Error::other("shorter than 32 bytes"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use rand::Rng;
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(err)?;
                }
                let mut key = [0u8; 64];
                rand::rng().fill_bytes(&mut key);
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(err)?;
                f.write_all(&key).map_err(err)?;
                f.sync_all().map_err(err)?;
                Ok(Self::from_secret(&key))
            }
            Err(e) => Err(err(e)),
        }
    }

    /// Signs `token`, valid from `now` for `ttl_secs`.
    pub fn sign(&self, token: &Token, now: u64, ttl_secs: u64) -> String {
        let (kind, sub, sid, role) = match token {
            Token::Access { account, role } => ("access", account.to_string(), None, role.as_str()),
            Token::Participant {
                session,
                participant,
                role,
            } => (
                "participant",
                participant.to_string(),
                Some(*session),
                role_str(*role),
            ),
            Token::Invite { session, role } => (
                "invite",
                session.to_string(),
                Some(*session),
                role_str(*role),
            ),
            Token::RecordingLink { recording } => {
                ("recording_link", recording.to_string(), None, "viewer")
            }
        };
        let claims = Claims {
            iss: ISSUER.into(),
            kind: kind.into(),
            sub,
            iat: now,
            exp: now + ttl_secs,
            sid,
            role: role.into(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    pub fn verify(&self, token: &str) -> Result<Token, AuthError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&[ISSUER]);
        v.leeway = 5;
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &v).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                    _ => AuthError::BadToken,
                }
            })?;
        let c = data.claims;
        let role = |s: &str| match s {
            "csr" => Ok(Role::Csr),
            "customer" => Ok(Role::Customer),
            _ => Err(AuthError::BadToken),
        };
        let parse = |s: &str| s.parse().map_err(|_| AuthError::BadToken);
        Ok(match c.kind.as_str() {
            "access" => Token::Access {
                account: AccountId(parse(&c.sub)?),
                role: c.role.parse().map_err(|_| AuthError::BadToken)?,
            },
            "participant" => Token::Participant {
                session: c.sid.ok_or(AuthError::BadToken)?,
                participant: ParticipantId(parse(&c.sub)?),
                role: role(&c.role)?,
            },
            "invite" => Token::Invite {
                session: c.sid.ok_or(AuthError::BadToken)?,
                role: role(&c.role)?,
            },
            "recording_link" => Token::RecordingLink {
                recording: parse(&c.sub)?,
            },
            _ => return Err(AuthError::BadToken),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn tokens_round_trip_and_reject_tampering_expiry_and_other_keys() {
        let s = Signer::from_secret(&[7; 32]);
        let now = unix_secs();
        let t = Token::Participant {
            session: SessionId::random(),
            participant: ParticipantId::random(),
            role: Role::Customer,
        };
        let signed = s.sign(&t, now, 60);
        assert_eq!(s.verify(&signed).unwrap(), t);

        let mut tampered = signed.clone().into_bytes();
        let i = tampered.len() - 5;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        assert!(matches!(
            s.verify(std::str::from_utf8(&tampered).unwrap()),
            Err(AuthError::BadToken)
        ));
        let old = s.sign(&t, now - 3600, 60);
        assert!(matches!(s.verify(&old), Err(AuthError::Expired)));
        let other = Signer::from_secret(&[8; 32]);
        assert!(matches!(other.verify(&signed), Err(AuthError::BadToken)));
        assert!(matches!(s.verify("garbage"), Err(AuthError::BadToken)));
    }

    #[test]
    fn recording_links_round_trip_and_are_their_own_kind() {
        let s = Signer::from_secret(&[7; 32]);
        let t = Token::RecordingLink {
            recording: Uuid::new_v4(),
        };
        let signed = s.sign(&t, unix_secs(), 60);
        assert_eq!(s.verify(&signed).unwrap(), t);
        let access = s.sign(
            &Token::Access {
                account: AccountId::random(),
                role: AccountRole::Csr,
            },
            unix_secs(),
            60,
        );
        assert!(!matches!(
            s.verify(&access).unwrap(),
            Token::RecordingLink { .. }
        ));
    }

    #[test]
    fn key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k/secret.key");
        let a = Signer::from_key_file(&path).unwrap();
        let b = Signer::from_key_file(&path).unwrap();
        let t = Token::Access {
            account: AccountId::random(),
            role: AccountRole::Admin,
        };
        assert_eq!(b.verify(&a.sign(&t, unix_secs(), 60)).unwrap(), t);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
