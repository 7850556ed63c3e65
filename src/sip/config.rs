//! The SIP endpoint's settings (the `[sip]` table of the configuration; config/tandem.toml
//! documents each). They live with the endpoint; the loader in crate::config reads and checks
//! them with the rest.

use std::net::SocketAddr;

use serde::Deserialize;

use super::digest::Algorithm;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    pub public_address: String,
    pub service_number: String,
    pub max_calls: usize,
    pub ring_ms: u64,
    /// The digest realm; the host of `server.public_url` when empty.
    pub realm: String,
    /// Every INVITE must authenticate as a support account (no anonymous callers).
    pub require_auth: bool,
    /// Digest algorithms offered, the preferred first: "SHA-256,MD5".
    pub digest_algorithms: String,
}

impl SipConfig {
    /// The digest algorithms, or what is wrong with the list.
    pub fn algorithms(&self) -> Result<Vec<Algorithm>, String> {
        let mut out = Vec::new();
        for name in self.digest_algorithms.split(',') {
            let a = Algorithm::parse(name).ok_or_else(|| {
                format!(
                    "sip.digest_algorithms: {:?} is not SHA-256 or MD5",
                    name.trim()
                )
            })?;
            if !out.contains(&a) {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// The realm in use: the configured one, else the host of `public_url`.
    pub fn realm_for(&self, public_url: &str) -> String {
        if !self.realm.is_empty() {
            return self.realm.clone();
        }
        let rest = public_url.split_once("://").map_or(public_url, |(_, r)| r);
        let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
        let host = if host.starts_with('[') {
            host.split_inclusive(']').next().unwrap_or(host)
        } else {
            host.split(':').next().unwrap_or(host)
        };
        if host.is_empty() {
            "tandem".into()
        } else {
            host.to_string()
        }
    }
    /// The announced address, if one is set.
    pub fn public(&self) -> Result<Option<SocketAddr>, String> {
        if self.public_address.is_empty() {
            return Ok(None);
        }
        self.public_address.parse().map(Some).map_err(|_| {
            format!(
                "sip.public_address {:?} is not ip:port",
                self.public_address
            )
        })
    }
}
