//! SIP digest authentication as a server (RFC 3261 22, RFC 7616, RFC 8760): the challenge a
//! 401 carries and the check of the `Authorization` a softphone answers with. Sans-IO: the
//! time comes in, and accounts are looked up through a closure.
//!
//! Only what is stored per account is `HA1 = H(username:realm:password)` for MD5 and for
//! SHA-256, never the password: account passwords are argon2 hashes, which digest cannot use,
//! so a softphone has its own SIP password. Nonces are stateless (a time and an HMAC of it
//! under a key made at start-up, bound to the client's address); `qop=auth` is required, and
//! the nonce count of each nonce must grow, so a captured request cannot be replayed.
//!
//! The password is checked before the nonce: a right password with a nonce that is not good
//! (too old, from before a restart, from another address, or a count that did not grow) is
//! challenged again with `stale=true`, which a phone answers without asking its user, rather
//! than refused (RFC 7616 3.3). Phones cache nonces and would otherwise be locked out by a
//! restart.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

/// How long a nonce is good for; an older one gets a new challenge marked `stale`.
pub const NONCE_TTL: Duration = Duration::from_secs(300);
/// Nonces whose counts are remembered; bounded so no sender can grow it without end (only
/// correctly answered challenges are remembered, so filling it needs a password).
const MAX_NONCES: usize = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha256 => "SHA-256",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "MD5" => Some(Self::Md5),
            "SHA-256" => Some(Self::Sha256),
            _ => None,
        }
    }

    /// Lowercase hex of the hash of `data`.
    pub fn hex(self, data: &[u8]) -> String {
        match self {
            Self::Md5 => hex::encode(Md5::digest(data)),
            Self::Sha256 => hex::encode(Sha256::digest(data)),
        }
    }
}

/// `HA1 = H(username:realm:password)`, what is stored in place of the SIP password.
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    alg.hex(format!("{username}:{realm}:{password}").as_bytes())
}

/// What is known of an account that can authenticate over SIP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipCredential {
    pub username: String,
    /// The realm the HA1s were made for; another realm makes them useless.
    pub realm: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
}

impl SipCredential {
    pub fn new(username: &str, realm: &str, password: &str) -> Self {
        Self {
            username: username.to_string(),
            realm: realm.to_string(),
            ha1_md5: ha1(Algorithm::Md5, username, realm, password),
            ha1_sha256: ha1(Algorithm::Sha256, username, realm, password),
        }
    }

    fn ha1(&self, alg: Algorithm) -> &str {
        match alg {
            Algorithm::Md5 => &self.ha1_md5,
            Algorithm::Sha256 => &self.ha1_sha256,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the credentials cannot be read")]
    Malformed,
    #[error("the credentials are for another realm")]
    WrongRealm,
    #[error("the algorithm is not offered")]
    Algorithm,
    #[error("qop=auth is required")]
    NoQop,
    #[error("the nonce was not made here")]
    BadNonce,
    /// The nonce is ours but too old: challenge again with `stale=true`.
    #[error("the nonce has expired")]
    Stale,
    #[error("the nonce count did not grow")]
    Replay,
    #[error("the digest URI is not the request's")]
    WrongUri,
    #[error("no such SIP account")]
    UnknownUser,
    #[error("wrong password")]
    WrongPassword,
}

impl AuthError {
    /// Whether the caller proved the password and only the nonce was not good: answer with
    /// a new challenge marked `stale`, and do not count it as a failure.
    pub fn rechallenge(&self) -> bool {
        matches!(self, Self::BadNonce | Self::Stale | Self::Replay)
    }

    /// Whether this was a guess at a password (a wrong one, or for nobody): what is counted
    /// against the caller. Other errors are a phone's mistakes, not guesses.
    pub fn is_guess(&self) -> bool {
        matches!(self, Self::WrongPassword | Self::UnknownUser)
    }

    /// Stable label for metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::WrongRealm => "wrong_realm",
            Self::Algorithm => "algorithm",
            Self::NoQop => "no_qop",
            Self::BadNonce => "bad_nonce",
            Self::Stale => "stale",
            Self::Replay => "replay",
            Self::WrongUri => "wrong_uri",
            Self::UnknownUser => "unknown_user",
            Self::WrongPassword => "wrong_password",
        }
    }
}

/// The parameters of a `Digest` credentials header, as sent (values unquoted).
fn params(value: &str) -> Result<HashMap<String, String>, AuthError> {
    let rest = value.trim_start();
    let (scheme, mut rest) = rest.split_once([' ', '\t']).ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return Err(AuthError::Malformed);
    }
    let mut out = HashMap::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let (name, after) = rest.split_once('=').ok_or(AuthError::Malformed)?;
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() || name.contains([' ', ',', '"']) {
            return Err(AuthError::Malformed);
        }
        let after = after.trim_start();
        let (v, next) = if let Some(quoted) = after.strip_prefix('"') {
            // quoted-string with quoted-pairs (RFC 3261 25.1).
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, e)) => v.push(e),
                        None => return Err(AuthError::Malformed),
                    },
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => v.push(c),
                }
            }
            let end = end.ok_or(AuthError::Malformed)?;
            (v, &quoted[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        if out.insert(name, v).is_some() {
            // A parameter twice is ambiguous; refuse rather than pick one.
            return Err(AuthError::Malformed);
        }
        rest = next;
        if out.len() > 32 {
            return Err(AuthError::Malformed);
        }
    }
    Ok(out)
}

/// The `username` an `Authorization: Digest` value claims, unchecked (for throttling guesses
/// at one account).
pub fn claimed_username(value: &str) -> Option<String> {
    params(value).ok()?.remove("username")
}

/// What a checked `Authorization` header proved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    pub username: String,
    pub algorithm: Algorithm,
}

pub struct DigestAuth {
    realm: String,
    /// Offered in this order of preference.
    algorithms: Vec<Algorithm>,
    key: [u8; 32],
    /// Highest nonce count seen per nonce, with the nonce's time.
    counts: HashMap<String, (u64, u32)>,
}

impl DigestAuth {
    pub fn new(realm: &str, algorithms: Vec<Algorithm>) -> Self {
        Self {
            realm: realm.to_string(),
            algorithms,
            key: rand::random(),
            counts: HashMap::new(),
        }
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The MAC of a nonce's first 32 characters (its time and its random part), for `client`.
    fn mac(&self, head: &str, client: IpAddr) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("any key size");
        mac.update(head.as_bytes());
        mac.update(self.realm.as_bytes());
        // Bound to the address it was given to, so a sender forging another's address over
        // UDP cannot use a nonce fetched from its own.
        mac.update(client.to_canonical().to_string().as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// A new nonce: 16 hex digits of time, 16 random (so two phones challenged in the same
    /// second get different nonces), and the MAC of both.
    fn nonce(&self, now_secs: u64, client: IpAddr) -> String {
        let head = format!("{now_secs:016x}{:016x}", rand::random::<u64>());
        let mac = self.mac(&head, client);
        head + &mac
    }

    /// The `WWW-Authenticate` values of a 401: one per algorithm, the preferred first.
    pub fn challenge(&self, now_secs: u64, client: IpAddr, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now_secs, client);
        self.algorithms
            .iter()
            .map(|a| {
                let mut v = format!(
                    "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
                    self.realm,
                    a.name()
                );
                if stale {
                    let _ = write!(v, ", stale=true");
                }
                v
            })
            .collect()
    }

    /// Checks `Authorization: <value>` on a request of `method` from `client` to the request
    /// URI (compared with the digest's `uri` by `same_uri`). `lookup` finds the account's
    /// credential.
    pub fn check<'c>(
        &mut self,
        now_secs: u64,
        client: IpAddr,
        method: &str,
        value: &str,
        same_uri: impl Fn(&str) -> bool,
        lookup: impl Fn(&str) -> Option<&'c SipCredential>,
    ) -> Result<Authenticated, AuthError> {
        let p = params(value)?;
        let get = |k: &str| p.get(k).map(String::as_str).ok_or(AuthError::Malformed);
        let username = get("username")?;
        let realm = get("realm")?;
        let nonce = get("nonce")?;
        let uri = get("uri")?;
        let response = get("response")?;
        if realm != self.realm {
            return Err(AuthError::WrongRealm);
        }
        let algorithm = match p.get("algorithm") {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(a).ok_or(AuthError::Algorithm)?,
        };
        if !self.algorithms.contains(&algorithm) {
            return Err(AuthError::Algorithm);
        }
        if p.get("qop").map(String::as_str) != Some("auth") {
            return Err(AuthError::NoQop);
        }
        let cnonce = get("cnonce")?;
        let nc_text = get("nc")?;
        if nc_text.len() != 8 {
            return Err(AuthError::Malformed);
        }
        let nc = u32::from_str_radix(nc_text, 16).map_err(|_| AuthError::Malformed)?;
        if !same_uri(uri) {
            return Err(AuthError::WrongUri);
        }
        let cred = lookup(username)
            .filter(|c| c.realm == self.realm)
            .ok_or(AuthError::UnknownUser)?;
        let ha2 = algorithm.hex(format!("{method}:{uri}").as_bytes());
        let expected = algorithm.hex(
            format!(
                "{}:{nonce}:{nc_text}:{cnonce}:auth:{ha2}",
                cred.ha1(algorithm)
            )
            .as_bytes(),
        );
        if !bool::from(
            expected
                .as_bytes()
                .ct_eq(response.to_ascii_lowercase().as_bytes()),
        ) {
            return Err(AuthError::WrongPassword);
        }
        // The password is proven; now whether the nonce is a good one of ours.
        if nonce.len() != 64 || !nonce.is_ascii() {
            return Err(AuthError::BadNonce);
        }
        let issued = u64::from_str_radix(&nonce[..16], 16).map_err(|_| AuthError::BadNonce)?;
        let mac = self.mac(&nonce[..32], client);
        if !bool::from(mac.as_bytes().ct_eq(&nonce.as_bytes()[32..])) {
            return Err(AuthError::BadNonce);
        }
        if issued > now_secs + 5 || now_secs - issued.min(now_secs) > NONCE_TTL.as_secs() {
            return Err(AuthError::Stale);
        }
        // Only now is the count remembered.
        if let Some((_, last)) = self.counts.get(nonce)
            && nc <= *last
        {
            return Err(AuthError::Replay);
        }
        if self.counts.len() >= MAX_NONCES {
            let oldest = now_secs.saturating_sub(NONCE_TTL.as_secs() + 5);
            self.counts.retain(|_, (t, _)| *t >= oldest);
            if self.counts.len() >= MAX_NONCES {
                return Err(AuthError::Stale);
            }
        }
        self.counts.insert(nonce.to_string(), (issued, nc));
        Ok(Authenticated {
            username: username.to_string(),
            algorithm,
        })
    }

    /// Forgets the counts of nonces too old to be accepted anyway.
    pub fn prune(&mut self, now_secs: u64) {
        let oldest = now_secs.saturating_sub(NONCE_TTL.as_secs() + 5);
        self.counts.retain(|_, (t, _)| *t >= oldest);
    }
}

/// A client's answer to a challenge, for tests and the load generator: the `Authorization`
/// value a softphone with `password` sends.
pub fn answer(
    challenge: &str,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    nc: u32,
    cnonce: &str,
) -> Option<String> {
    let p = params(challenge).ok()?;
    let realm = p.get("realm")?;
    let nonce = p.get("nonce")?;
    let alg = Algorithm::parse(p.get("algorithm").map_or("MD5", String::as_str))?;
    let ha1 = ha1(alg, username, realm, password);
    let ha2 = alg.hex(format!("{method}:{uri}").as_bytes());
    let nc = format!("{nc:08x}");
    let response = alg.hex(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}").as_bytes());
    Some(format!(
        "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm={}, qop=auth, nc={nc}, cnonce=\"{cnonce}\"",
        alg.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;
    const URI: &str = "sip:tandem.example";
    const PHONE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 10));

    fn auth() -> (DigestAuth, SipCredential) {
        let a = DigestAuth::new("tandem.example", vec![Algorithm::Sha256, Algorithm::Md5]);
        let c = SipCredential::new("dave", "tandem.example", "correct horse battery");
        (a, c)
    }

    fn check(
        a: &mut DigestAuth,
        c: &SipCredential,
        now: u64,
        value: &str,
    ) -> Result<Authenticated, AuthError> {
        a.check(
            now,
            PHONE,
            "REGISTER",
            value,
            |u| u == URI,
            |u| (u == c.username).then_some(c),
        )
    }

    /// Dave's answer with his password to `ch` for a REGISTER to [`URI`].
    fn dave(ch: &str, nc: u32) -> String {
        let password = "correct horse battery";
        answer(ch, "REGISTER", URI, "dave", password, nc, "c1").unwrap()
    }

    #[test]
    fn rfc_7616_examples_are_computed() {
        // RFC 7616 3.9.1: Mufasa's responses with SHA-256 and with MD5.
        for (alg, expected) in [
            (
                Algorithm::Sha256,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
            (Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
        ] {
            let ha1 = ha1(alg, "Mufasa", "http-auth@example.org", "Circle of Life");
            let ha2 = alg.hex(b"GET:/dir/index.html");
            let resp = alg.hex(
                format!(
                    "{ha1}:7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v:00000001:\
                     f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ:auth:{ha2}"
                )
                .as_bytes(),
            );
            assert_eq!(resp, expected, "{alg:?}");
        }
    }

    #[test]
    fn both_algorithms_are_challenged_and_accepted() {
        let (mut a, c) = auth();
        let challenges = a.challenge(NOW, PHONE, false);
        assert_eq!(challenges.len(), 2);
        assert!(challenges[0].contains("algorithm=SHA-256"));
        assert!(challenges[1].contains("algorithm=MD5"));
        // One challenge, one nonce for both: each answer counts on from the last.
        for (nc, ch) in (1..).zip(&challenges) {
            let v = dave(ch, nc);
            let ok = check(&mut a, &c, NOW + 2, &v).unwrap();
            assert_eq!(ok.username, "dave");
        }
    }

    #[test]
    fn a_wrong_password_or_user_is_refused() {
        let (mut a, c) = auth();
        let ch = &a.challenge(NOW, PHONE, false)[1];
        let v = answer(ch, "REGISTER", URI, "dave", "wrong", 1, "c1").unwrap();
        assert_eq!(check(&mut a, &c, NOW, &v), Err(AuthError::WrongPassword));
        let v = answer(ch, "REGISTER", URI, "eve", "correct horse battery", 1, "c1").unwrap();
        assert_eq!(check(&mut a, &c, NOW, &v), Err(AuthError::UnknownUser));
        // The same answer for another method or URI does not count.
        let v = answer(ch, "INVITE", URI, "dave", "correct horse battery", 1, "c1").unwrap();
        assert_eq!(check(&mut a, &c, NOW, &v), Err(AuthError::WrongPassword));
        let v = answer(
            ch,
            "REGISTER",
            "sip:other",
            "dave",
            "correct horse battery",
            1,
            "c",
        )
        .unwrap();
        assert_eq!(check(&mut a, &c, NOW, &v), Err(AuthError::WrongUri));
    }

    #[test]
    fn a_replayed_or_stale_or_forged_nonce_is_refused() {
        let (mut a, c) = auth();
        let ch = &a.challenge(NOW, PHONE, false)[0];
        let v1 = dave(ch, 1);
        assert!(check(&mut a, &c, NOW, &v1).is_ok());
        assert_eq!(check(&mut a, &c, NOW, &v1), Err(AuthError::Replay));
        let v2 = dave(ch, 2);
        assert!(check(&mut a, &c, NOW, &v2).is_ok());
        // Too old: stale, so the phone is asked again without being told it was wrong.
        let v3 = dave(ch, 3);
        let late = NOW + NONCE_TTL.as_secs() + 1;
        assert_eq!(check(&mut a, &c, late, &v3), Err(AuthError::Stale));
        assert!(a.challenge(late, PHONE, true)[0].ends_with("stale=true"));
        // A nonce from another server (another key) is not ours.
        let other = DigestAuth::new("tandem.example", vec![Algorithm::Md5]);
        let ch = &other.challenge(NOW, PHONE, false)[0];
        let v = dave(ch, 1);
        assert_eq!(check(&mut a, &c, NOW, &v), Err(AuthError::BadNonce));
        // All three are asked again, not refused: the password was right.
        for e in [AuthError::Replay, AuthError::Stale, AuthError::BadNonce] {
            assert!(e.rechallenge() && !e.is_guess());
        }
        // A nonce given to another address is not good for this one.
        let elsewhere: IpAddr = "198.51.100.1".parse().unwrap();
        let ch = &a.challenge(NOW, elsewhere, false)[0];
        assert_eq!(
            check(&mut a, &c, NOW, &dave(ch, 1)),
            Err(AuthError::BadNonce)
        );
        // With a wrong password the nonce does not matter: it is a wrong password, counted.
        let v = answer(ch, "REGISTER", URI, "dave", "guess", 1, "c1").unwrap();
        assert_eq!(check(&mut a, &c, NOW, &v), Err(AuthError::WrongPassword));
        assert!(AuthError::WrongPassword.is_guess() && !AuthError::WrongPassword.rechallenge());
    }

    #[test]
    fn only_offered_algorithms_and_qop_auth_are_taken() {
        let mut a = DigestAuth::new("tandem.example", vec![Algorithm::Sha256]);
        let c = SipCredential::new("dave", "tandem.example", "correct horse battery");
        let ch = a.challenge(NOW, PHONE, false)[0].replace("SHA-256", "MD5");
        let v = dave(&ch, 1);
        assert_eq!(check(&mut a, &c, NOW, &v), Err(AuthError::Algorithm));
        let ch = &a.challenge(NOW, PHONE, false)[0];
        let v = dave(ch, 1);
        let no_qop = v.replace(", qop=auth", "");
        assert_eq!(check(&mut a, &c, NOW, &no_qop), Err(AuthError::NoQop));
        let other_realm = v.replace("realm=\"tandem.example\"", "realm=\"x\"");
        assert_eq!(
            check(&mut a, &c, NOW, &other_realm),
            Err(AuthError::WrongRealm)
        );
    }

    #[test]
    fn credentials_headers_parse_strictly() {
        let p = params(r#"Digest username="a\"b", realm="r", nc=00000001 , qop=auth"#).unwrap();
        assert_eq!(p["username"], "a\"b");
        assert_eq!(p["nc"], "00000001");
        assert_eq!(p["qop"], "auth");
        for bad in [
            "",
            "Basic abc",
            "Digest",
            "Digest username=\"open",
            "Digest username=a, username=b",
            "Digest =x",
            "Digest username=\"a\\",
        ] {
            assert_eq!(params(bad).err(), Some(AuthError::Malformed), "{bad:?}");
        }
    }
}
