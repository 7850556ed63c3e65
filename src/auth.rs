//! Passwords (argon2) and signed, expiring tokens (HS256 JWT).
//!
//! Four kinds of token: an account's sign-in token, a participant's WebSocket token, an invite,
//! and a recording's streaming link. Each carries its kind, so one can never be used as another.
//!
//! An account's tokens (its sign-in token, and the participant tokens it was given as staff)
//! also carry the account's token generation when they were signed. Every use compares it with
//! the account's current one, read afresh, so disabling an account or bumping its generation
//! ("sign out everywhere") refuses them at once; [`Revocations`] tells open WebSockets to close.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tandem_actors::ids::{AccountId, ParticipantId, SessionId};
use tandem_actors::protocol::Role;
use uuid::Uuid;

use crate::store::{AccountRole, User};

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
        generation: u32,
    },
    Participant {
        session: SessionId,
        participant: ParticipantId,
        role: Role,
        /// The staff account the participant is, if any, at its generation when signed.
        account: Option<Holder>,
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

/// An account and its token generation, as a participant token carries them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder {
    pub account: AccountId,
    pub generation: u32,
}

impl Holder {
    pub fn of(user: &User) -> Self {
        Self {
            account: user.id,
            generation: user.token_generation,
        }
    }
}

/// Why an account's token is refused though its signature is good.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("this account is disabled")]
    Disabled,
    #[error("this token was revoked (signed out everywhere); sign in again")]
    Revoked,
}

impl Denied {
    /// The stable code: the problem's, and the close reason of a WebSocket it closes.
    pub fn code(self) -> &'static str {
        match self {
            Self::Disabled => "account_disabled",
            Self::Revoked => "token_revoked",
        }
    }
}

/// Whether a token of `generation` may still act for `user` (as read now).
pub fn check_holder(user: &User, generation: u32) -> Result<(), Denied> {
    if user.disabled {
        Err(Denied::Disabled)
    } else if generation != user.token_generation {
        Err(Denied::Revoked)
    } else {
        Ok(())
    }
}

/// Tells whoever holds an account's tokens open (its WebSockets) that they were revoked.
#[derive(Clone)]
pub struct Revocations(tokio::sync::broadcast::Sender<(AccountId, Denied)>);

impl Default for Revocations {
    fn default() -> Self {
        Self(tokio::sync::broadcast::channel(REVOCATIONS_QUEUE).0)
    }
}

/// Revocations a listener may fall behind by; one that falls further checks its account afresh.
const REVOCATIONS_QUEUE: usize = 256;

impl Revocations {
    pub fn revoke(&self, account: AccountId, why: Denied) {
        let _ = self.0.send((account, why));
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<(AccountId, Denied)> {
        self.0.subscribe()
    }
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
    /// The staff account of a participant token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    acct: Option<AccountId>,
    /// The account's token generation when signed (tokens from before it existed are 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tgen: Option<u32>,
    /// A sign-in token's own random id, so two sign-ins in the same second are two tokens
    /// (one can be signed out alone: [`crate::signed_out`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
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
        let (mut acct, mut tgen) = (None, None);
        let (kind, sub, sid, role) = match token {
            Token::Access {
                account,
                role,
                generation,
            } => {
                tgen = Some(*generation);
                ("access", account.to_string(), None, role.as_str())
            }
            Token::Participant {
                session,
                participant,
                role,
                account,
            } => {
                acct = account.map(|h| h.account);
                tgen = account.map(|h| h.generation);
                (
                    "participant",
                    participant.to_string(),
                    Some(*session),
                    role_str(*role),
                )
            }
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
            acct,
            tgen,
            jti: (kind == "access").then(|| {
                use rand::RngExt as _;
                hex::encode(rand::rng().random::<[u8; 16]>())
            }),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    fn claims(&self, token: &str) -> Result<Claims, AuthError> {
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
        Ok(data.claims)
    }

    /// When a valid token expires (Unix seconds): what holds a stream open on it closes then.
    pub fn expires_at(&self, token: &str) -> Result<u64, AuthError> {
        Ok(self.claims(token)?.exp)
    }

    pub fn verify(&self, token: &str) -> Result<Token, AuthError> {
        let c = self.claims(token)?;
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
                generation: c.tgen.unwrap_or(0),
            },
            "participant" => Token::Participant {
                session: c.sid.ok_or(AuthError::BadToken)?,
                participant: ParticipantId(parse(&c.sub)?),
                role: role(&c.role)?,
                account: c.acct.map(|account| Holder {
                    account,
                    generation: c.tgen.unwrap_or(0),
                }),
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
            account: None,
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
                generation: 0,
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
            generation: 3,
        };
        assert_eq!(b.verify(&a.sign(&t, unix_secs(), 60)).unwrap(), t);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn tokens_carry_the_generation_and_only_the_current_one_of_an_enabled_account_passes() {
        let s = Signer::from_secret(&[7; 32]);
        let holder = Holder {
            account: AccountId::random(),
            generation: 4,
        };
        let t = Token::Participant {
            session: SessionId::random(),
            participant: ParticipantId::random(),
            role: Role::Csr,
            account: Some(holder),
        };
        assert_eq!(s.verify(&s.sign(&t, unix_secs(), 60)).unwrap(), t);

        let mut user = User {
            id: holder.account,
            username: "u".into(),
            display_name: "U".into(),
            email: "u@x".into(),
            role: AccountRole::Csr,
            password_hash: String::new(),
            created_at: 0,
            disabled: false,
            token_generation: 4,
        };
        assert_eq!(check_holder(&user, 4), Ok(()));
        assert_eq!(check_holder(&user, 3), Err(Denied::Revoked));
        user.token_generation = 5;
        assert_eq!(check_holder(&user, 4), Err(Denied::Revoked));
        user.disabled = true;
        assert_eq!(check_holder(&user, 5), Err(Denied::Disabled));
    }
}
