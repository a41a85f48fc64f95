//! What a request says about its client, for pages and the API alike: the client's IP
//! (`ClientIp`, believing `X-Forwarded-For` only from trusted proxies) and the device
//! a session started from it would record (`RequestOrigin`).

use std::net::IpAddr;

use ipnet::IpNet;
use rocket::http::Status;
use rocket::outcome::Outcome;
use rocket::request::{self, FromRequest, Request};

use crate::config::Settings;
use crate::device::{clip, label_for, MAX_USER_AGENT};
use crate::sessions::Origin;

/// The client's IP: the socket peer, unless that peer is a trusted proxy, in which
/// case the right-most address of `X-Forwarded-For` that is not a trusted proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl ClientIp {
    pub fn resolve(
        peer: Option<IpAddr>,
        forwarded_for: Option<&str>,
        trusted_proxies: &[IpNet],
    ) -> ClientIp {
        let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
        let Some(peer) = peer.map(|p| p.to_canonical()) else {
            return ClientIp(None);
        };
        if !trusted(&peer) {
            return ClientIp(Some(peer));
        }
        let hops: Vec<IpAddr> = forwarded_for
            .unwrap_or("")
            .split(',')
            .filter_map(|h| h.trim().parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical())
            .collect();
        let client = hops
            .iter()
            .rev()
            .find(|ip| !trusted(ip))
            .or(hops.first())
            .copied()
            .unwrap_or(peer);
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
