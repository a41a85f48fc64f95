//! What a request says about its client, for pages and the API alike: the client's IP
//! (`ClientIp`, believing `X-Forwarded-For` only from trusted proxies), the device
//! a session started from it would record (`RequestOrigin`), and its `Authorization`
//! header as it came (`AuthorizationHeader`).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;
use rocket::http::Status;
use rocket::outcome::Outcome;
use rocket::request::{self, FromRequest, Request};

use crate::config::Settings;
use crate::services::sessions::Origin;
use crate::support::device_label::{clip, label_for, MAX_USER_AGENT};

/// The client's IP: the socket peer, unless that peer is a trusted proxy, in which
/// case `X-Forwarded-For` is walked from the right (the hop nearest to us) past
/// trusted proxies to the first address that is not one. An entry that is not an
/// address (after taking off a port: `ip:port`, `[v6]`, `[v6]:port`) ends the walk
/// there, at the last trusted hop: what lies left of it was written by someone we
/// cannot vouch for, so it is never skipped over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

/// One `X-Forwarded-For` entry as an address: `ip`, `ip:port`, `[v6]` or `[v6]:port`.
pub fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let ip = entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|s| s.ip()))
        .or_else(|_| {
            let inner = entry.strip_prefix('[').and_then(|e| e.strip_suffix(']'));
            inner.unwrap_or("").parse::<Ipv6Addr>().map(IpAddr::V6)
        })
        .ok()?;
    Some(ip.to_canonical())
}

impl ClientIp {
    pub fn resolve(
        peer: Option<IpAddr>,
        forwarded_for: Option<&str>,
        trusted_proxies: &[IpNet],
    ) -> ClientIp {
        let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
        let Some(mut client) = peer.map(|p| p.to_canonical()) else {
            return ClientIp(None);
        };
        // Empty list elements (`a,,b`, a trailing comma) are no entry at all.
        let hops = forwarded_for
            .unwrap_or("")
            .rsplit(',')
            .filter(|h| !h.trim().is_empty());
        for hop in hops {
            if !trusted(&client) {
                break;
            }
            match forwarded_address(hop) {
                Some(ip) => client = ip,
                None => break,
            }
        }
        ClientIp(Some(client))
    }

    pub fn text(&self) -> String {
        self.0
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "unknown".into())
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientIp {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ()> {
        let Some(settings) = req.rocket().state::<Settings>() else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        let forwarded = req
            .headers()
            .get("X-Forwarded-For")
            .collect::<Vec<_>>()
            .join(",");
        Outcome::Success(ClientIp::resolve(
            req.remote().map(|r| r.ip()),
            Some(&forwarded),
            &settings.server.trusted_proxies,
        ))
    }
}

/// Whether the request's socket peer is one of `trusted_proxies`: only then are the
/// headers a proxy writes about the original request (`X-Forwarded-*`,
/// `X-Original-URL`) believed.
pub fn from_trusted_proxy(req: &Request<'_>) -> bool {
    let Some(settings) = req.rocket().state::<Settings>() else {
        return false;
    };
    req.remote().is_some_and(|peer| {
        let ip = peer.ip().to_canonical();
        settings
            .server
            .trusted_proxies
            .iter()
            .any(|net| net.contains(&ip))
    })
}

/// The `Authorization` header as it came (client authentication, Bearer tokens, the
/// metrics token): whoever reads it parses it.
pub struct AuthorizationHeader(pub Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for AuthorizationHeader {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ()> {
        request::Outcome::Success(AuthorizationHeader(
            req.headers().get_one("Authorization").map(str::to_string),
        ))
    }
}

/// Where this request comes from, as a session records it (label, user agent, IP).
pub struct RequestOrigin(pub Origin);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for RequestOrigin {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ()> {
        let ip = match req.guard::<ClientIp>().await {
            Outcome::Success(ip) => ip,
            Outcome::Error(e) => return Outcome::Error(e),
            Outcome::Forward(s) => return Outcome::Forward(s),
        };
        let user_agent = clip(
            req.headers().get_one("User-Agent").unwrap_or(""),
            MAX_USER_AGENT,
        );
        Outcome::Success(RequestOrigin(Origin {
            label: label_for(&user_agent),
            user_agent,
            ip: ip.text(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn forwarded_entries_with_and_without_ports() {
        assert_eq!(forwarded_address("5.6.7.8"), ip("5.6.7.8"));
        assert_eq!(forwarded_address(" 5.6.7.8:4711 "), ip("5.6.7.8"));
        assert_eq!(forwarded_address("2001:db8::5"), ip("2001:db8::5"));
        assert_eq!(forwarded_address("[2001:db8::5]"), ip("2001:db8::5"));
        assert_eq!(forwarded_address("[2001:db8::5]:4711"), ip("2001:db8::5"));
        assert_eq!(forwarded_address("::ffff:5.6.7.8"), ip("5.6.7.8"));
        for garbage in [
            "garbage",
            "unknown",
            "_hidden",
            "5.6.7.8:99999",
            "5.6.7",
            "[5.6.7.8]",
            "2001:db8::5:4711x",
            "[2001:db8::5",
            "",
        ] {
            assert_eq!(forwarded_address(garbage), None, "{garbage}");
        }
    }

    #[test]
    fn an_entry_that_is_not_an_address_ends_the_walk() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let resolve = |xff: &str| ClientIp::resolve(ip("10.0.0.1"), Some(xff), &proxies).text();
        assert_eq!(resolve("9.9.9.9, 5.6.7.8:4711"), "5.6.7.8");
        assert_eq!(resolve("9.9.9.9, [2001:db8::5]:4711"), "2001:db8::5");
        assert_eq!(resolve("9.9.9.9, 10.2.2.2:80"), "9.9.9.9");
        // Never skipped: the walk stops at the last trusted hop.
        assert_eq!(resolve("9.9.9.9, garbage"), "10.0.0.1");
        assert_eq!(resolve("9.9.9.9, garbage, 10.2.2.2"), "10.2.2.2");
        assert_eq!(resolve("9.9.9.9,, 5.6.7.8"), "5.6.7.8");
        assert_eq!(resolve("9.9.9.9, 5.6.7.8,"), "5.6.7.8");
        // Every hop a proxy: the left-most one.
        assert_eq!(resolve("10.3.3.3, 10.2.2.2"), "10.3.3.3");
        // An untrusted peer's header is not read at all.
        let direct = ClientIp::resolve(ip("198.51.100.1"), Some("1.1.1.1"), &proxies);
        assert_eq!(direct.text(), "198.51.100.1");
    }
}
