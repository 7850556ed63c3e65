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
    /// Digest algorithms offered, the preferred first: "MD5" (the default), "SHA-256,MD5".
    pub digest_algorithms: String,
    /// TCP connections at once, and from one address (an IPv6 /64 counts as one).
    pub max_tcp_connections: usize,
    pub max_tcp_per_address: usize,
    /// A TCP connection that brings no whole message for this long is closed, unless a live
    /// registration or call holds it.
    pub tcp_idle_secs: u64,
    /// A message must be whole this long after its first byte arrived over TCP.
    pub tcp_message_secs: u64,
    /// Messages a second from one address, and the burst allowed above it; 0 is no limit.
    pub requests_per_second: u32,
    pub request_burst: u32,
    /// Server transactions at once; a new request past it gets 503.
    pub max_transactions: usize,
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

    /// What is wrong with the limits, if anything.
    pub fn check_limits(&self) -> Result<(), String> {
        if self.max_tcp_connections == 0 || self.max_tcp_per_address == 0 {
            return Err(
                "sip.max_tcp_connections and sip.max_tcp_per_address must be positive".into(),
            );
        }
        if self.tcp_idle_secs == 0 || self.tcp_message_secs == 0 {
            return Err("sip.tcp_idle_secs and sip.tcp_message_secs must be positive".into());
        }
        if self.requests_per_second > 0 && self.request_burst == 0 {
            return Err("sip.request_burst must be positive when requests_per_second is".into());
        }
        if self.max_transactions == 0 {
            return Err("sip.max_transactions must be positive".into());
        }
        Ok(())
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
