//! Who a request comes from, for the per-address limits of the API (sign-in, session numbers):
//! the socket's address, or behind a trusted reverse proxy ([server] trusted_proxies) the
//! address that proxy names in its header ([server] client_address_header).
//!
//! A proxy appends the address it got the request from to what the request already carried, so
//! only the right end of the list is trustworthy: the client is the rightmost address that is
//! not itself a trusted proxy. Anything left of it was written by the client and is ignored
//! (else a client could name any address it liked and never run out of tries). A request whose
//! socket peer is not a trusted proxy is that peer, whatever its headers say.
//!
//! The connection shares of src/listener.rs stay on the socket's address: they are decided
//! before any header is read.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use super::AppState;
use crate::config::ClientAddressHeader;
use crate::problem::Problem;

/// The client's address as the per-address limits count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// The proxies whose word is taken, and the header they write it in.
#[derive(Clone, Debug)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ClientAddressHeader,
}

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>, header: ClientAddressHeader) -> Self {
        Self { nets, header }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client of a request that came from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let name = match self.header {
            ClientAddressHeader::XForwardedFor => "x-forwarded-for",
            ClientAddressHeader::Forwarded => "forwarded",
        };
        // Several headers of one name are one list, in order (RFC 9110 5.3).
        let values: Vec<_> = headers.get_all(name).iter().collect();
        for value in values.into_iter().rev() {
            let Ok(value) = value.to_str() else {
                // Unreadable: the last proxy that could be read is the client.
                return client;
            };
            for hop in value.rsplit(',') {
                let named = match self.header {
                    ClientAddressHeader::XForwardedFor => node(hop),
                    ClientAddressHeader::Forwarded => forwarded_for(hop).and_then(node),
                };
                // "unknown", an obfuscated name or garbage: stop at the proxy that wrote it.
                let Some(ip) = named else {
                    return client;
                };
                client = ip.to_canonical();
                if !self.trusts(client) {
                    return client;
                }
            }
        }
        client
    }
}

/// The `for=` parameter of one RFC 7239 forwarded-element.
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then_some(v)
    })
}

/// An address as proxies write it: bare, quoted, in brackets, or with a port.
fn node(raw: &str) -> Option<IpAddr> {
    let s = raw.trim().trim_matches('"');
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| s.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let ConnectInfo(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .ok_or_else(|| Problem::internal("a request without its peer's address"))?;
        Ok(ClientAddress(
            state.trusted_proxies.client(peer.ip(), &parts.headers),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(header: ClientAddressHeader) -> TrustedProxies {
        TrustedProxies::new(
            vec![
                "10.0.0.0/8".parse().unwrap(),
                "2001:db8:ff::/48".parse().unwrap(),
            ],
            header,
        )
    }

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let p = proxies(ClientAddressHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["198.51.100.1"]);
        assert_eq!(p.client(ip("192.0.2.7"), &h), ip("192.0.2.7"));
        assert_eq!(p.client(ip("::ffff:192.0.2.7"), &h), ip("192.0.2.7"));
    }

    #[test]
    fn behind_proxies_the_client_is_the_rightmost_untrusted_address() {
        let p = proxies(ClientAddressHeader::XForwardedFor);
        // The client claimed 203.0.113.66 itself; the first proxy saw 192.0.2.7.
        let h = headers("x-forwarded-for", &["203.0.113.66, 192.0.2.7, 10.1.1.1"]);
        assert_eq!(p.client(ip("10.2.2.2"), &h), ip("192.0.2.7"));
        // Split over two headers, with ports and brackets.
        let h = headers(
            "x-forwarded-for",
            &["203.0.113.66", "[2001:db8:1:2::5]:4711, 10.1.1.1:80"],
        );
        assert_eq!(p.client(ip("10.2.2.2"), &h), ip("2001:db8:1:2::5"));
        // No header: the proxy itself.
        assert_eq!(p.client(ip("10.2.2.2"), &HeaderMap::new()), ip("10.2.2.2"));
        // Only proxies: the leftmost of them.
        let h = headers("x-forwarded-for", &["10.9.9.9, 10.1.1.1"]);
        assert_eq!(p.client(ip("10.2.2.2"), &h), ip("10.9.9.9"));
    }

    #[test]
    fn an_unreadable_hop_stops_at_the_proxy_that_wrote_it() {
        let p = proxies(ClientAddressHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["192.0.2.7, unknown, 10.1.1.1"]);
        assert_eq!(p.client(ip("10.2.2.2"), &h), ip("10.1.1.1"));
        let h = headers("x-forwarded-for", &["192.0.2.7, garbage"]);
        assert_eq!(p.client(ip("10.2.2.2"), &h), ip("10.2.2.2"));
    }

    #[test]
    fn the_forwarded_header_is_read_when_configured_and_the_other_is_ignored() {
        let p = proxies(ClientAddressHeader::Forwarded);
        let mut h = headers(
            "forwarded",
            &[
                "for=203.0.113.66, for=\"[2001:db8:1:2::5]:4711\";proto=https, For=10.1.1.1;by=10.0.0.1",
            ],
        );
        h.append("x-forwarded-for", "198.51.100.1".parse().unwrap());
        assert_eq!(p.client(ip("2001:db8:ff::1"), &h), ip("2001:db8:1:2::5"));
        let h = headers("x-forwarded-for", &["198.51.100.1"]);
        assert_eq!(p.client(ip("10.2.2.2"), &h), ip("10.2.2.2"));
        let h = headers("forwarded", &["for=_hidden, for=10.1.1.1"]);
        assert_eq!(p.client(ip("10.2.2.2"), &h), ip("10.1.1.1"));
    }
}
