//! Settings: `Rocket.toml` (per profile) with `LATCHKEY_<NAME>` overrides, validated at
//! start. A wrong setting stops the server with one line naming it and the problem.
//!
//! `Settings` is one section per concern (storage, server, sessions, limits, reset
//! codes, mail, API tokens, the second factor). A rule about one value's kind (positive seconds, a count
//! above zero) is checked as it is read; a section's other rules (URL schemes, lengths,
//! one value against another) in its `validate()`. Every setting's name is written
//! once: on the line that reads it. Secrets (`jwt_secret`,
//! `smtp_url`, which may hold a password) are `secrecy` types, so no `Debug`, log line
//! or panic message prints them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use rocket::fairing::AdHoc;
use rocket::figment::Figment;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// One rate-limit quota: `limit` events per `window`.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub limit: u32,
    pub window: Duration,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Any profile but `release`: allows a generated `jwt_secret`.
    pub debug: bool,
    pub storage: StorageSettings,
    pub server: ServerSettings,
    pub sessions: SessionSettings,
    pub limits: LimitSettings,
    pub codes: CodeSettings,
    pub mail: MailSettings,
    pub tokens: TokenSettings,
    pub second_factor: SecondFactorSettings,
}

/// Where state lives: Redis (or the embedded store) and the account database.
#[derive(Debug, Clone)]
pub struct StorageSettings {
    /// `None`: Redis on 127.0.0.1:6379, or (debug) the embedded store when none answers.
    pub redis_url: Option<String>,
    /// `redis_cluster_nodes`: seed nodes of a Redis Cluster, used instead of `redis_url`.
    pub redis_cluster_nodes: Option<Vec<String>>,
    pub key_prefix: String,
    /// `sqlite://PATH` or `postgres://user:password@host/db`: a secret, since it may
    /// carry a password.
    pub database_url: SecretString,
}

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
    /// Open client connections at most; past it new ones are refused at once.
    pub max_connections: u32,
    /// `GET /metrics` answers only to `Authorization: Bearer <this>`; unset, 404.
    pub metrics_token: Option<SecretString>,
    /// Where `rd` may send a user after sign-in (`crate::services::return_to::ReturnTo`).
    pub forward_auth_domains: Vec<crate::services::return_to::AllowedHost>,
}

/// Browser sessions and their cookie.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub cookie_secure: bool,
    /// The parent domain the session cookie is shared with (`Domain`), lower case,
    /// without a leading dot; `None`: a host-only cookie.
    pub cookie_domain: Option<String>,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    /// Absolute (and idle) lifetime of a "remember me" session.
    pub remember_timeout: Duration,
    pub max_per_user: u32,
}

/// Rate-limit quotas.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// Failed sign-ins per account (and per device cookie).
    pub login_account: Quota,
    pub login_ip: Quota,
    /// Failed sign-ins per network (IPv4 /24, IPv6 /64).
    pub login_network: Quota,
    /// Password verifications, right or wrong, per client IP.
    pub hash_ip: Quota,
    /// Reset requests per account (and per device cookie).
    pub reset_account: Quota,
    pub reset_ip: Quota,
    /// New accounts per client IP.
    pub register_ip: Quota,
}

/// Password-reset codes.
#[derive(Debug, Clone)]
pub struct CodeSettings {
    pub ttl: Duration,
    pub max_tries: u32,
    /// How long a sign-in waits for its second factor after the right password.
    pub second_factor_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct MailSettings {
    pub outbox: String,
    /// `smtp://user:password@host`: a secret, since it may carry a password.
    pub smtp_url: Option<SecretString>,
    pub from: String,
    pub new_device_mail: bool,
}

/// API access tokens. `jwt_secret` also keys the reset-code hashes.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub jwt_secret: SecretSlice<u8>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// How long after a rotation the previous refresh token still answers (with the
    /// same successor); zero turns the window off.
    pub refresh_grace: Duration,
}

/// The longest grace window a refresh token may have: every second of it is a
/// second in which a stolen previous token is answered instead of ending the session.
pub const MAX_REFRESH_GRACE_SECS: i64 = 300;
/// The second factor: `second_factor_key` seals the authenticator secrets (AES-256-GCM)
/// and keys the recovery-code hashes (HMAC-SHA256), each under its own key derived
/// from it (`crate::services::second_factor::Keys`).
#[derive(Debug, Clone)]
pub struct SecondFactorSettings {
    /// 32 bytes. Debug profile without the setting: [`DEVELOPMENT_SECOND_FACTOR_KEY`].
    pub key: SecretSlice<u8>,
    /// The key is the published development key (debug profile only).
    pub development_key: bool,
}

/// The debug profile's `second_factor_key` when none is set: fixed, so a restart
/// never makes enrolled secrets unreadable, and public (it is in the source), so it
/// protects nothing. The release profile refuses to start without a key of its own.
pub const DEVELOPMENT_SECOND_FACTOR_KEY: &[u8; 32] = b"latchkey-development-2fa-key-v1!";

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

impl std::error::Error for SettingError {}

fn bad(name: &'static str, problem: impl Into<String>) -> SettingError {
    SettingError {
        name,
        problem: problem.into(),
    }
}

/// Reads one setting at a time by its name, so the name that fails is the name in
/// the message.
struct Reader<'a>(&'a Figment);

impl Reader<'_> {
    fn get<T: DeserializeOwned>(&self, name: &'static str) -> Result<Option<T>, SettingError> {
        match self.0.extract_inner::<T>(name) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.missing() => Ok(None),
            Err(e) => Err(bad(name, e.to_string())),
        }
    }

    fn text(&self, name: &'static str, default: &str) -> Result<String, SettingError> {
        Ok(self.get(name)?.unwrap_or_else(|| default.to_string()))
    }

    /// A text setting where blank means unset.
    fn optional_text(&self, name: &'static str) -> Result<Option<String>, SettingError> {
        Ok(self.get::<String>(name)?.filter(|s| !s.trim().is_empty()))
    }

    fn flag(&self, name: &'static str, default: bool) -> Result<bool, SettingError> {
        Ok(self.get(name)?.unwrap_or(default))
    }

    fn seconds(&self, name: &'static str, default: i64) -> Result<Duration, SettingError> {
        let v: i64 = self.get(name)?.unwrap_or(default);
        if v <= 0 {
            return Err(bad(
                name,
                format!("must be a positive number of seconds, got {v}"),
            ));
        }
        Ok(Duration::from_secs(v as u64))
    }

    /// Whole seconds from 0 (off) to `max`.
    fn seconds_up_to(
        &self,
        name: &'static str,
        default: i64,
        max: i64,
    ) -> Result<Duration, SettingError> {
        let v: i64 = self.get(name)?.unwrap_or(default);
        if !(0..=max).contains(&v) {
            return Err(bad(
                name,
                format!("must be a whole number of seconds from 0 to {max}, got {v}"),
            ));
        }
        Ok(Duration::from_secs(v as u64))
    }

    fn count(&self, name: &'static str, default: i64) -> Result<u32, SettingError> {
        let v: i64 = self.get(name)?.unwrap_or(default);
        u32::try_from(v)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| bad(name, format!("must be a whole number above 0, got {v}")))
    }
}

impl Settings {
    /// Reads the settings from Rocket's figment (already holding Rocket.toml and the
    /// `LATCHKEY_` environment) and checks every one.
    pub fn from_figment(figment: &Figment) -> Result<Settings, SettingError> {
        let debug = figment.profile().as_str() != "release";
        let r = Reader(figment);
        Ok(Settings {
            debug,
            storage: StorageSettings::read(&r)?,
            server: ServerSettings::read(&r)?,
            sessions: SessionSettings::read(&r, debug)?,
            limits: LimitSettings::read(&r)?,
            codes: CodeSettings::read(&r)?,
            mail: MailSettings::read(&r)?,
            tokens: TokenSettings::read(&r, debug)?,
            second_factor: SecondFactorSettings::read(&r, debug)?,
        })
    }
}

impl StorageSettings {
    fn read(r: &Reader) -> Result<Self, SettingError> {
        let database_url = r.text("database_url", "sqlite://var/latchkey.db")?;
        // Checked before it becomes a secret: the message never quotes it.
        let schemes = ["sqlite:", "postgres://", "postgresql://"];
        if !schemes.iter().any(|s| database_url.starts_with(s)) {
            return Err(bad(
                "database_url",
                "must be sqlite://PATH (for example sqlite://var/latchkey.db) \
                 or postgres://user:password@host:port/database",
            ));
        }
        let s = StorageSettings {
            redis_url: r.optional_text("redis_url")?,
            redis_cluster_nodes: r.optional_text("redis_cluster_nodes")?.map(|list| {
                list.split(',')
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty())
                    .collect()
            }),
            key_prefix: r.text("key_prefix", "lk")?,
            database_url: database_url.into(),
        };
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), SettingError> {
        if let Some(url) = &self.redis_url {
            let schemes = ["redis://", "rediss://", "redis+unix://", "unix://"];
            if url != "memory" && !schemes.iter().any(|s| url.starts_with(s)) {
                return Err(bad(
                    "redis_url",
                    format!("must be redis://host:port/db, rediss://… or memory, got {url:?}"),
                ));
            }
        }
        if let Some(nodes) = &self.redis_cluster_nodes {
            let ok = |n: &String| n.starts_with("redis://") || n.starts_with("rediss://");
            if nodes.is_empty() || !nodes.iter().all(ok) {
                return Err(bad(
                    "redis_cluster_nodes",
                    "must be comma-separated redis://host:port seed nodes",
                ));
            }
        }
        let prefix = &self.key_prefix;
        if prefix.is_empty() || prefix.len() > 64 || prefix.contains(['{', '}', ' ']) {
            return Err(bad(
                "key_prefix",
                "must be 1 to 64 characters without spaces or braces",
            ));
        }
        Ok(())
    }
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
    fn read(r: &Reader) -> Result<Self, SettingError> {
        let proxies = r.get::<ProxyList>("trusted_proxies")?;
        let s = ServerSettings {
            public_url: r
                .text("public_url", "http://127.0.0.1:8000")?
                .trim_end_matches('/')
                .to_string(),
            trusted_proxies: proxies
                .map(ProxyList::entries)
                .unwrap_or_default()
                .iter()
                .map(|p| parse_proxy(p))
                .collect::<Result<_, _>>()?,
            header_read_timeout: r.seconds("header_read_timeout", 10)?,
            max_connections: r.count("max_connections", 4096)?,
            metrics_token: r.optional_text("metrics_token")?.map(SecretString::from),
            forward_auth_domains: r
                .get::<ProxyList>("forward_auth_domains")?
                .map(ProxyList::entries)
                .unwrap_or_default()
                .iter()
                .map(|d| {
                    crate::services::return_to::AllowedHost::parse(d)
                        .map_err(|problem| bad("forward_auth_domains", problem))
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
        Ok(())
    }
}

impl SessionSettings {
    fn read(r: &Reader, debug: bool) -> Result<Self, SettingError> {
        let s = SessionSettings {
            cookie_secure: r.flag("cookie_secure", !debug)?,
            cookie_domain: r
                .optional_text("cookie_domain")?
                .map(|d| cookie_domain(&d))
                .transpose()?,
            idle_timeout: r.seconds("session_idle_timeout", 1800)?,
            absolute_timeout: r.seconds("session_absolute_timeout", 86400)?,
            remember_timeout: r.seconds("remember_absolute_timeout", 30 * 86400)?,
            max_per_user: r.count("max_sessions_per_user", 50)?,
        };
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), SettingError> {
        if self.idle_timeout > self.absolute_timeout {
            return Err(bad(
                "session_idle_timeout",
                "must not be longer than session_absolute_timeout",
            ));
        }
        Ok(())
    }

    /// The session cookie's name, as the contract fixes it: `__Host-` needs a host-only
    /// cookie, so a shared one (`cookie_domain`) is `__Secure-`.
    pub fn cookie_name(&self) -> &'static str {
        match (self.cookie_secure, &self.cookie_domain) {
            (true, None) => "__Host-latchkey",
            (true, Some(_)) => "__Secure-latchkey",
            (false, _) => "latchkey",
        }
    }
}

/// `cookie_domain` as a cookie's `Domain` carries it: a DNS name of two labels or
/// more, lower case, no leading or trailing dot (a leading dot is dropped, as browsers
/// drop it), and no IP address (a `Domain` cannot share a cookie across addresses).
fn cookie_domain(raw: &str) -> Result<String, SettingError> {
    let d = raw.trim().trim_start_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let is_ip = d.parse::<std::net::IpAddr>().is_ok();
    if is_ip || !d.contains('.') || !d.split('.').all(label_ok) {
        return Err(bad(
            "cookie_domain",
            format!("must be a parent domain such as example.com, got {raw:?}"),
        ));
    }
    Ok(d)
}

impl LimitSettings {
    fn read(r: &Reader) -> Result<Self, SettingError> {
        let login_window = r.seconds("login_limit_window", 900)?;
        let network_window = r.seconds("login_limit_network_window", 60)?;
        let hash_window = r.seconds("hash_limit_window", 60)?;
        let reset_window = r.seconds("reset_limit_window", 3600)?;
        let register_window = r.seconds("register_limit_window", 3600)?;
        let quota = |name, default, window| -> Result<Quota, SettingError> {
            Ok(Quota {
                limit: r.count(name, default)?,
                window,
            })
        };
        Ok(LimitSettings {
            login_account: quota("login_limit_account", 5, login_window)?,
            login_ip: quota("login_limit_ip", 20, login_window)?,
            login_network: quota("login_limit_network", 60, network_window)?,
            hash_ip: quota("hash_limit_ip", 60, hash_window)?,
            reset_account: quota("reset_limit_account", 3, reset_window)?,
            reset_ip: quota("reset_limit_ip", 10, reset_window)?,
            register_ip: quota("register_limit_ip", 10, register_window)?,
        })
    }
}

impl CodeSettings {
    fn read(r: &Reader) -> Result<Self, SettingError> {
        Ok(CodeSettings {
            ttl: r.seconds("reset_code_ttl", 600)?,
            max_tries: r.count("reset_code_max_tries", 5)?,
            second_factor_timeout: r.seconds("second_factor_timeout", 300)?,
        })
    }
}

impl MailSettings {
    fn read(r: &Reader) -> Result<Self, SettingError> {
        let smtp_url = r.optional_text("smtp_url")?;
        if let Some(url) = &smtp_url {
            // Checked before it becomes a secret: the message never quotes it.
            if !url.starts_with("smtp://") && !url.starts_with("smtps://") {
                return Err(bad("smtp_url", "must start with smtp:// or smtps://"));
            }
        }
        let s = MailSettings {
            outbox: r.text("mail_outbox", "var/outbox")?,
            smtp_url: smtp_url.map(SecretString::from),
            from: r.text("mail_from", "Latchkey <no-reply@localhost>")?,
            new_device_mail: r.flag("new_device_mail", true)?,
        };
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), SettingError> {
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(bad(
                "mail_from",
                format!("is not a mail address: {:?}", self.from),
            ));
        }
        Ok(())
    }
}

impl TokenSettings {
    fn read(r: &Reader, debug: bool) -> Result<Self, SettingError> {
        let jwt_secret = match r.get::<String>("jwt_secret")? {
            Some(s) => s.into_bytes(),
            None if debug => crate::support::crypto::random_bytes(32),
            None => {
                return Err(bad(
                    "jwt_secret",
                    "is required in the release profile (at least 32 bytes)",
                ))
            }
        };
        let s = TokenSettings {
            jwt_secret: jwt_secret.into(),
            access_ttl: r.seconds("access_token_ttl", 900)?,
            refresh_ttl: r.seconds("refresh_token_ttl", 2_592_000)?,
            refresh_grace: r.seconds_up_to("refresh_grace_seconds", 30, MAX_REFRESH_GRACE_SECS)?,
        };
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), SettingError> {
        let len = self.jwt_secret.expose_secret().len();
        if len < 32 {
            return Err(bad(
                "jwt_secret",
                format!("must be at least 32 bytes, got {len}"),
            ));
        }
        Ok(())
    }
}

impl SecondFactorSettings {
    fn read(r: &Reader, debug: bool) -> Result<Self, SettingError> {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        use base64::Engine;
        const NAME: &str = "second_factor_key";
        const HOW: &str = "make one with `openssl rand -base64 32`";
        let Some(text) = r.optional_text(NAME)? else {
            if debug {
                return Ok(SecondFactorSettings {
                    key: DEVELOPMENT_SECOND_FACTOR_KEY.to_vec().into(),
                    development_key: true,
                });
            }
            return Err(bad(
                NAME,
                format!("is required in the release profile (32 random bytes in base64: {HOW})"),
            ));
        };
        // Checked before it becomes a secret: the message never quotes it.
        let text = text.trim();
        let key = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE.decode(text))
            .map_err(|_| bad(NAME, format!("must be 32 bytes in base64 ({HOW})")))?;
        if key.len() != 32 {
            return Err(bad(
                NAME,
                format!(
                    "must be 32 bytes in base64, got {} bytes ({HOW})",
                    key.len()
                ),
            ));
        }
        Ok(SecondFactorSettings {
            key: key.into(),
            development_key: false,
        })
    }
}

/// Where `templates/` and `static/` are: the working directory when it holds them (a
/// deployment), else the source tree the binary was built from (so `target/release/latchkey`
/// started from anywhere on the build machine still finds its pages).
pub fn asset_root() -> PathBuf {
    let has_assets =
        |dir: &Path| dir.join("templates/pages").is_dir() && dir.join("static").is_dir();
    let here = PathBuf::from(".");
    if has_assets(&here) {
        return here;
    }
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if has_assets(&built) {
        built
    } else {
        here
    }
}

/// Checks that the page templates, mail templates and stylesheet can be found.
pub fn check_assets(root: &Path) -> Result<(), String> {
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

/// Request body limits (Rocket's `limits`): also the most of a body the server loop
/// reads before the route runs (`src/server`). Nothing here takes uploads, so none is
/// above 64 KiB; a multipart form (`data-form`) is held to the same 32 KiB as a
/// url-encoded one. Rocket's own defaults (2 MiB multipart, 1 MiB JSON) would apply to
/// a binary started where no `Rocket.toml` is found, so these are set here, under
/// `Rocket.toml` and `ROCKET_LIMITS`, which may still change them.
pub const DATA_LIMITS: [(&str, &str); 5] = [
    ("form", "32 KiB"),
    ("data-form", "32 KiB"),
    ("json", "32 KiB"),
    ("file", "64 KiB"),
    ("msgpack", "64 KiB"),
];

/// Rocket's figment (its defaults, then [`DATA_LIMITS`], then `Rocket.toml` and
/// `ROCKET_*`, as `rocket::Config::figment` reads them) plus `LATCHKEY_*` from the
/// environment.
pub fn figment() -> Figment {
    use rocket::figment::providers::{Env, Format, Toml};
    use rocket::figment::Profile;
    let limits: std::collections::BTreeMap<&str, &str> = DATA_LIMITS.into_iter().collect();
    Figment::from(rocket::Config::default())
        .merge(("limits", limits))
        .merge(Toml::file(Env::var_or("ROCKET_CONFIG", "Rocket.toml")).nested())
        .merge(Env::prefixed("ROCKET_").ignore(&["PROFILE"]).global())
        .select(Profile::from_env_or(
            "ROCKET_PROFILE",
            rocket::Config::DEFAULT_PROFILE,
        ))
        .merge(Env::prefixed("LATCHKEY_").global())
        // Page templates live in templates/pages; mail templates beside them in templates/mail.
        .join(("template_dir", asset_root().join("templates/pages")))
}

/// Validates the settings and manages them; a bad one stops the launch.
pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Settings", |rocket| async move {
        let checked = check_assets(&asset_root())
            .and_then(|()| Settings::from_figment(rocket.figment()).map_err(|e| e.to_string()));
        match checked {
            Ok(settings) => Ok(rocket.manage(settings)),
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("latchkey: {e}");
                Err(rocket)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT_SECRET: &str = "a-jwt-secret-that-must-never-be-printed-0123";
    const SMTP_PASSWORD: &str = "smtp-password-never-printed";
    const DATABASE_PASSWORD: &str = "database-password-never-printed";

    fn settings_with_secrets() -> Settings {
        let figment = rocket::Config::figment()
            .merge(("jwt_secret", JWT_SECRET))
            .merge((
                "smtp_url",
                format!("smtp://mailer:{SMTP_PASSWORD}@mail.example.com:587"),
            ))
            .merge((
                "database_url",
                format!("postgres://latchkey:{DATABASE_PASSWORD}@db.example.com/accounts"),
            ));
        Settings::from_figment(&figment).expect("settings")
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let settings = settings_with_secrets();
        // They are there, and usable...
        assert_eq!(
            settings.tokens.jwt_secret.expose_secret(),
            JWT_SECRET.as_bytes()
        );
        let smtp = settings.mail.smtp_url.as_ref().expect("smtp_url");
        assert!(smtp.expose_secret().contains(SMTP_PASSWORD));
        let database = settings.storage.database_url.expose_secret();
        assert!(database.contains(DATABASE_PASSWORD));
        // ...and no Debug print of the settings (a log line, a panic) shows them.
        for printed in [format!("{settings:?}"), format!("{settings:#?}")] {
            assert!(!printed.contains(JWT_SECRET), "{printed}");
            assert!(!printed.contains(SMTP_PASSWORD), "{printed}");
            assert!(!printed.contains(DATABASE_PASSWORD), "{printed}");
            assert!(printed.contains("REDACTED"), "{printed}");
        }
    }

    #[test]
    fn the_second_factor_key_is_required_in_release_and_fixed_in_debug() {
        let release = rocket::Config::figment()
            .select("release")
            .merge(("jwt_secret", JWT_SECRET));
        let e = Settings::from_figment(&release).expect_err("release without a key");
        assert_eq!(e.name, "second_factor_key", "{e}");
        let key = [7u8; 32];
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key);
        let with_key = release.merge(("second_factor_key", b64));
        let settings = Settings::from_figment(&with_key).expect("release with a key");
        assert_eq!(settings.second_factor.key.expose_secret(), &key);
        assert!(!settings.second_factor.development_key);
        // Debug: the same development key at every start, never a random one.
        let a = Settings::from_figment(&rocket::Config::figment()).expect("debug");
        let b = Settings::from_figment(&rocket::Config::figment()).expect("debug");
        assert_eq!(
            a.second_factor.key.expose_secret(),
            b.second_factor.key.expose_secret()
        );
        assert!(a.second_factor.development_key);
    }

    #[test]
    fn a_wrong_value_is_named_with_its_setting() {
        for (name, value) in [
            ("session_idle_timeout", serde_json::json!(-5)),
            ("login_limit_ip", serde_json::json!("many")),
            ("redis_url", serde_json::json!("http://example.com")),
            (
                "redis_cluster_nodes",
                serde_json::json!("10.0.0.1:6379,10.0.0.2:6379"),
            ),
            ("smtp_url", serde_json::json!("mail.example.com")),
            (
                "database_url",
                serde_json::json!("mysql://db.example.com/accounts"),
            ),
            ("trusted_proxies", serde_json::json!(["not-a-cidr"])),
            ("header_read_timeout", serde_json::json!(0)),
            ("max_connections", serde_json::json!(-1)),
            ("register_limit_ip", serde_json::json!(0)),
            ("hash_limit_window", serde_json::json!(-60)),
            ("login_limit_network", serde_json::json!("lots")),
            ("cookie_domain", serde_json::json!("127.0.0.1")),
            ("cookie_domain", serde_json::json!("com")),
            ("cookie_domain", serde_json::json!("exa mple.com")),
            ("forward_auth_domains", serde_json::json!(["*.example.com"])),
            ("forward_auth_domains", serde_json::json!("good.com/path")),
            ("forward_auth_domains", serde_json::json!(["user@good.com"])),
            ("refresh_grace_seconds", serde_json::json!(-1)),
            ("refresh_grace_seconds", serde_json::json!(301)),
            ("refresh_grace_seconds", serde_json::json!(2.5)),
            ("refresh_grace_seconds", serde_json::json!("soon")),
            ("second_factor_key", serde_json::json!("not base64!")),
            ("second_factor_key", serde_json::json!("c2hvcnQ=")),
        ] {
            let figment = rocket::Config::figment().merge((name, value));
            let e = Settings::from_figment(&figment).expect_err(name);
            assert_eq!(e.name, name, "{e}");
        }
    }

    #[test]
    fn the_refresh_grace_window_is_30_seconds_unless_set_and_zero_turns_it_off() {
        let at = |v: Option<i64>| {
            let mut figment = rocket::Config::figment();
            if let Some(v) = v {
                figment = figment.merge(("refresh_grace_seconds", v));
            }
            Settings::from_figment(&figment)
                .expect("settings")
                .tokens
                .refresh_grace
        };
        assert_eq!(at(None), Duration::from_secs(30));
        assert_eq!(at(Some(0)), Duration::ZERO);
        assert_eq!(at(Some(300)), Duration::from_secs(300));
    }
}
