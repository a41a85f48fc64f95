//! How this server is reached and what bounds each client connection.

use std::time::Duration;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::allowed_host::AllowedHost;
use super::reader::{bad, Reader, SettingError};

/// The shortest `metrics_token`: anyone who can reach `/metrics` may guess at it.
pub const MIN_METRICS_TOKEN_CHARS: usize = 32;

/// How this server is reached (its public address and the proxies in front of it) and
/// what bounds each client connection (the server loop, `src/server/`).
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Where links in mail point; also the issuer of access tokens. No trailing `/`.
    pub public_url: String,
    pub trusted_proxies: Vec<IpNet>,
    /// A connection must send a complete request head within this; a request body
    /// may not stall longer than this.
    pub header_read_timeout: Duration,
    /// A request body must be complete within this of its first byte, however it
    /// trickles in.
    pub body_read_timeout: Duration,
    /// Open client connections at most; past it new ones are refused at once.
    pub max_connections: u32,
    /// How long a stopping server (SIGTERM, Ctrl-C) finishes the requests in flight
    /// before it closes what is left (`shutdown_grace`).
    pub shutdown_grace: Duration,
    /// `GET /metrics` answers only to `Authorization: Bearer <this>`; unset, 404.
    pub metrics_token: Option<SecretString>,
    /// Where `rd` may send a user after sign-in (`crate::services::return_to`).
    pub forward_auth_domains: Vec<AllowedHost>,
}

/// A list setting (`trusted_proxies`, `forward_auth_domains`): a TOML list or, from the
/// environment, a comma-separated string.
#[derive(Deserialize)]
#[serde(untagged)]
enum ProxyList {
    List(Vec<String>),
    Text(String),
}

impl ProxyList {
    fn entries(self) -> Vec<String> {
        match self {
            ProxyList::List(v) => v,
            ProxyList::Text(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }
}

fn parse_proxy(p: &str) -> Result<IpNet, SettingError> {
    p.parse::<IpNet>()
        .or_else(|_| p.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| {
            bad(
                "trusted_proxies",
                format!("{p:?} is not an IP address or CIDR"),
            )
        })
}

impl ServerSettings {
    pub(super) fn read(r: &Reader) -> Result<Self, SettingError> {
        let proxies = r.get::<ProxyList>("trusted_proxies")?;
        let s = ServerSettings {
            public_url: r
                .text("public_url", "http://localhost:8000")?
                .trim_end_matches('/')
                .to_string(),
            trusted_proxies: proxies
                .map(ProxyList::entries)
                .unwrap_or_default()
                .iter()
                .map(|p| parse_proxy(p))
                .collect::<Result<_, _>>()?,
            header_read_timeout: r.seconds("header_read_timeout", 10)?,
            body_read_timeout: r.seconds("body_read_timeout", 30)?,
            max_connections: r.count("max_connections", 4096)?,
            shutdown_grace: r.seconds("shutdown_grace", 10)?,
            metrics_token: r.optional_text("metrics_token")?.map(SecretString::from),
            forward_auth_domains: r
                .get::<ProxyList>("forward_auth_domains")?
                .map(ProxyList::entries)
                .unwrap_or_default()
                .iter()
                .map(|d| {
                    AllowedHost::parse(d).map_err(|problem| bad("forward_auth_domains", problem))
                })
                .collect::<Result<_, _>>()?,
        };
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), SettingError> {
        let url = &self.public_url;
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(bad("public_url", "must start with http:// or https://"));
        }
        if let Some(token) = &self.metrics_token {
            // Counted in characters, never quoted: the message must not print it.
            let len = token.expose_secret().chars().count();
            if len < MIN_METRICS_TOKEN_CHARS {
                return Err(bad(
                    "metrics_token",
                    format!(
                        "must be at least {MIN_METRICS_TOKEN_CHARS} characters, got {len} \
                         (make one with `openssl rand -hex 32`)"
                    ),
                ));
            }
        }
        Ok(())
    }
}
