//! Settings: `Rocket.toml` (per profile) with `LATCHKEY_<NAME>` overrides, validated at
//! start. A wrong setting stops the server with one line naming it and the problem.

use std::time::Duration;

use ipnet::IpNet;
use rocket::fairing::AdHoc;
use rocket::figment::Figment;
use serde::{Deserialize, Serialize};

/// The settings as written (every field optional, defaults filled by profile).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct Raw {
    redis_url: Option<String>,
    database_url: Option<String>,
    key_prefix: Option<String>,
    cookie_secure: Option<bool>,
    session_idle_timeout: Option<i64>,
    session_absolute_timeout: Option<i64>,
    remember_absolute_timeout: Option<i64>,
    max_sessions_per_user: Option<i64>,
    mail_outbox: Option<String>,
    smtp_url: Option<String>,
    mail_from: Option<String>,
    public_url: Option<String>,
    new_device_mail: Option<bool>,
    jwt_secret: Option<String>,
    access_token_ttl: Option<i64>,
    refresh_token_ttl: Option<i64>,
    trusted_proxies: Option<ProxyList>,
    login_limit_account: Option<i64>,
    login_limit_ip: Option<i64>,
    login_limit_window: Option<i64>,
    reset_limit_account: Option<i64>,
    reset_limit_ip: Option<i64>,
    reset_limit_window: Option<i64>,
    reset_code_ttl: Option<i64>,
    reset_code_max_tries: Option<i64>,
    header_read_timeout: Option<i64>,
    max_connections: Option<i64>,
}

/// `trusted_proxies` may be a TOML list or, from the environment, a comma-separated string.
#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
enum ProxyList {
    List(Vec<String>),
    Text(String),
}

/// One rate-limit quota: `limit` events per `window`.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub limit: u32,
    pub window: Duration,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub debug: bool,
    pub redis_url: Option<String>,
    pub database_url: String,
    pub key_prefix: String,
    pub cookie_secure: bool,
    pub session_idle_timeout: Duration,
    pub session_absolute_timeout: Duration,
    /// Absolute (and idle) lifetime of a "remember me" session.
    pub remember_absolute_timeout: Duration,
    pub max_sessions_per_user: u32,
    pub mail_outbox: String,
    pub smtp_url: Option<String>,
    pub mail_from: String,
    /// Where links in mail point.
    pub public_url: String,
    pub new_device_mail: bool,
    pub jwt_secret: Vec<u8>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub trusted_proxies: Vec<IpNet>,
    pub login_account: Quota,
    pub login_ip: Quota,
    pub reset_account: Quota,
    pub reset_ip: Quota,
    pub reset_code_ttl: Duration,
    pub reset_code_max_tries: u32,
    /// A connection must send a complete request head within this (src/server).
    pub header_read_timeout: Duration,
    /// Open client connections at most; past it new ones are refused at once.
    pub max_connections: u32,
}

#[derive(Debug)]
pub struct SettingError {
    pub name: &'static str,
    pub problem: String,
}

impl std::fmt::Display for SettingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid setting `{}`: {}", self.name, self.problem)
    }
}

fn bad(name: &'static str, problem: impl Into<String>) -> SettingError {
    SettingError {
        name,
        problem: problem.into(),
    }
}

fn seconds(name: &'static str, v: Option<i64>, default: i64) -> Result<Duration, SettingError> {
    let v = v.unwrap_or(default);
    if v <= 0 {
        return Err(bad(
            name,
            format!("must be a positive number of seconds, got {v}"),
        ));
    }
    Ok(Duration::from_secs(v as u64))
}

fn count(name: &'static str, v: Option<i64>, default: i64) -> Result<u32, SettingError> {
    let v = v.unwrap_or(default);
    u32::try_from(v)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| bad(name, format!("must be a whole number above 0, got {v}")))
}

impl Settings {
    /// Reads the settings from Rocket's figment (already holding Rocket.toml and the
    /// `LATCHKEY_` environment) and checks every one.
    pub fn from_figment(figment: &Figment) -> Result<Settings, SettingError> {
        let debug = figment.profile().as_str() != "release";
        let raw: Raw = figment
            .extract()
            .map_err(|e| bad(setting_name(&e), e.to_string()))?;

        let session_idle_timeout = seconds("session_idle_timeout", raw.session_idle_timeout, 1800)?;
        let session_absolute_timeout = seconds(
            "session_absolute_timeout",
            raw.session_absolute_timeout,
            86400,
        )?;
        if session_idle_timeout > session_absolute_timeout {
            return Err(bad(
                "session_idle_timeout",
                "must not be longer than session_absolute_timeout",
            ));
        }
        let remember_absolute_timeout = seconds(
            "remember_absolute_timeout",
            raw.remember_absolute_timeout,
            30 * 86400,
        )?;

        let database_url = raw
            .database_url
            .unwrap_or_else(|| "sqlite://var/latchkey.db".into());
        if !database_url.starts_with("sqlite:") {
            return Err(bad(
                "database_url",
                "must start with sqlite:// (for example sqlite://var/latchkey.db)",
            ));
        }

        let redis_url = raw.redis_url.filter(|u| !u.trim().is_empty());
        if let Some(url) = &redis_url {
            if url != "memory"
                && !url.starts_with("redis://")
                && !url.starts_with("rediss://")
                && !url.starts_with("redis+unix://")
                && !url.starts_with("unix://")
            {
                return Err(bad(
                    "redis_url",
                    format!("must be redis://host:port/db, rediss://… or memory, got {url:?}"),
                ));
            }
        }

        let key_prefix = raw.key_prefix.unwrap_or_else(|| "lk".into());
        if key_prefix.is_empty() || key_prefix.len() > 64 || key_prefix.contains(['{', '}', ' ']) {
            return Err(bad(
                "key_prefix",
                "must be 1 to 64 characters without spaces or braces",
            ));
        }

        let jwt_secret = match raw.jwt_secret {
            Some(s) if s.len() >= 32 => s.into_bytes(),
            Some(s) => {
                return Err(bad(
                    "jwt_secret",
                    format!("must be at least 32 bytes, got {}", s.len()),
                ))
            }
            None if debug => crate::crypto::random_bytes(32),
            None => {
                return Err(bad(
                    "jwt_secret",
                    "is required in the release profile (at least 32 bytes)",
                ))
            }
        };

        let smtp_url = raw.smtp_url.filter(|u| !u.trim().is_empty());
        if let Some(url) = &smtp_url {
            if !url.starts_with("smtp://") && !url.starts_with("smtps://") {
                return Err(bad("smtp_url", "must start with smtp:// or smtps://"));
            }
        }
        let mail_from = raw
            .mail_from
            .unwrap_or_else(|| "Latchkey <no-reply@localhost>".into());
        if mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(bad(
                "mail_from",
                format!("is not a mail address: {mail_from:?}"),
            ));
        }

        let public_url = raw
            .public_url
            .unwrap_or_else(|| "http://127.0.0.1:8000".into())
            .trim_end_matches('/')
            .to_string();
        if !public_url.starts_with("http://") && !public_url.starts_with("https://") {
            return Err(bad("public_url", "must start with http:// or https://"));
        }

        let proxies: Vec<String> = match raw.trusted_proxies {
            None => vec![],
            Some(ProxyList::List(v)) => v,
            Some(ProxyList::Text(s)) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        };
        let trusted_proxies = proxies
            .iter()
            .map(|p| {
                p.parse::<IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        bad(
                            "trusted_proxies",
                            format!("{p:?} is not an IP address or CIDR"),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let login_window = seconds("login_limit_window", raw.login_limit_window, 900)?;
        let reset_window = seconds("reset_limit_window", raw.reset_limit_window, 3600)?;

        Ok(Settings {
            debug,
            redis_url,
            database_url,
            key_prefix,
            cookie_secure: raw.cookie_secure.unwrap_or(!debug),
            session_idle_timeout,
            session_absolute_timeout,
            remember_absolute_timeout,
            max_sessions_per_user: count("max_sessions_per_user", raw.max_sessions_per_user, 50)?,
            mail_outbox: raw.mail_outbox.unwrap_or_else(|| "var/outbox".into()),
            smtp_url,
            mail_from,
            public_url,
            new_device_mail: raw.new_device_mail.unwrap_or(true),
            jwt_secret,
            access_token_ttl: seconds("access_token_ttl", raw.access_token_ttl, 900)?,
            refresh_token_ttl: seconds("refresh_token_ttl", raw.refresh_token_ttl, 2_592_000)?,
            trusted_proxies,
            login_account: Quota {
                limit: count("login_limit_account", raw.login_limit_account, 5)?,
                window: login_window,
            },
            login_ip: Quota {
                limit: count("login_limit_ip", raw.login_limit_ip, 20)?,
                window: login_window,
            },
            reset_account: Quota {
                limit: count("reset_limit_account", raw.reset_limit_account, 3)?,
                window: reset_window,
            },
            reset_ip: Quota {
                limit: count("reset_limit_ip", raw.reset_limit_ip, 10)?,
                window: reset_window,
            },
            reset_code_ttl: seconds("reset_code_ttl", raw.reset_code_ttl, 600)?,
            reset_code_max_tries: count("reset_code_max_tries", raw.reset_code_max_tries, 5)?,
            header_read_timeout: seconds("header_read_timeout", raw.header_read_timeout, 10)?,
            max_connections: count("max_connections", raw.max_connections, 4096)?,
        })
    }

    /// The session cookie's name, as the contract fixes it.
    pub fn cookie_name(&self) -> &'static str {
        if self.cookie_secure {
            "__Host-latchkey"
        } else {
            "latchkey"
        }
    }
}

fn setting_name(e: &rocket::figment::Error) -> &'static str {
    // figment names the failing key in its path; keep the message, name a known key.
    let path = e.path.last().map(String::as_str).unwrap_or("");
    KNOWN
        .iter()
        .copied()
        .find(|k| *k == path)
        .unwrap_or("settings")
}

const KNOWN: &[&str] = &[
    "redis_url",
    "database_url",
    "key_prefix",
    "cookie_secure",
    "session_idle_timeout",
    "session_absolute_timeout",
    "remember_absolute_timeout",
    "max_sessions_per_user",
    "mail_outbox",
    "smtp_url",
    "mail_from",
    "public_url",
    "new_device_mail",
    "jwt_secret",
    "access_token_ttl",
    "refresh_token_ttl",
    "trusted_proxies",
    "login_limit_account",
    "login_limit_ip",
    "login_limit_window",
    "reset_limit_account",
    "reset_limit_ip",
    "reset_limit_window",
    "reset_code_ttl",
    "reset_code_max_tries",
    "header_read_timeout",
    "max_connections",
];

/// Where `templates/` and `static/` are: the working directory when it holds them (a
/// deployment), else the source tree the binary was built from (so `target/release/latchkey`
/// started from anywhere on the build machine still finds its pages).
pub fn asset_root() -> std::path::PathBuf {
    let has_assets =
        |dir: &std::path::Path| dir.join("templates/pages").is_dir() && dir.join("static").is_dir();
    let here = std::path::PathBuf::from(".");
    if has_assets(&here) {
        return here;
    }
    let built = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if has_assets(&built) {
        built
    } else {
        here
    }
}

/// Checks that the page templates, mail templates and stylesheet can be found.
pub fn check_assets(root: &std::path::Path) -> Result<(), String> {
    for dir in ["templates/pages", "templates/mail", "static"] {
        if !root.join(dir).is_dir() {
            return Err(format!(
                "the `{dir}` directory is missing from {}: start latchkey from the directory \
                 that holds `templates/` and `static/`",
                std::fs::canonicalize(root)
                    .unwrap_or_else(|_| root.to_path_buf())
                    .display()
            ));
        }
    }
    Ok(())
}

/// Rocket's figment plus `LATCHKEY_*` from the environment.
pub fn figment() -> Figment {
    use rocket::figment::providers::Env;
    rocket::Config::figment()
        .merge(Env::prefixed("LATCHKEY_").global())
        // Page templates live in templates/pages; mail templates beside them in templates/mail.
        .join(("template_dir", asset_root().join("templates/pages")))
}

/// Validates the settings and manages them; a bad one stops the launch.
pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Settings", |rocket| async move {
        if let Err(e) = check_assets(&asset_root()) {
            tracing::error!("{e}");
            eprintln!("latchkey: {e}");
            return Err(rocket);
        }
        match Settings::from_figment(rocket.figment()) {
            Ok(settings) => Ok(rocket.manage(settings)),
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("latchkey: {e}");
                Err(rocket)
            }
        }
    })
}
