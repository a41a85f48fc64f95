//! `Settings`: one section per concern, each read by name and checked by its own
//! file's `read` (and `validate`), from Rocket's figment.

use rocket::figment::Figment;

use super::activity::ActivitySettings;
use super::codes::CodeSettings;
use super::limits::LimitSettings;
use super::mail::MailSettings;
use super::passkeys::PasskeySettings;
use super::reader::{Reader, SettingError};
use super::second_factor::SecondFactorSettings;
use super::server::ServerSettings;
use super::sessions::SessionSettings;
use super::storage::StorageSettings;
use super::tokens::TokenSettings;
use super::verification::VerificationSettings;

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
    pub activity: ActivitySettings,
    pub passkeys: PasskeySettings,
    pub verification: VerificationSettings,
}

impl Settings {
    /// Reads the settings from Rocket's figment (already holding Rocket.toml and the
    /// `LATCHKEY_` environment) and checks every one.
    pub fn from_figment(figment: &Figment) -> Result<Settings, SettingError> {
        let debug = figment.profile().as_str() != "release";
        let r = Reader(figment);
        let server = ServerSettings::read(&r)?;
        Ok(Settings {
            debug,
            storage: StorageSettings::read(&r)?,
            passkeys: PasskeySettings::read(&r, &server)?,
            server,
            sessions: SessionSettings::read(&r, debug)?,
            limits: LimitSettings::read(&r)?,
            codes: CodeSettings::read(&r)?,
            mail: MailSettings::read(&r)?,
            tokens: TokenSettings::read(&r, debug)?,
            second_factor: SecondFactorSettings::read(&r, debug)?,
            activity: ActivitySettings::read(&r)?,
            verification: VerificationSettings::read(&r)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use secrecy::ExposeSecret;

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
            ("body_read_timeout", serde_json::json!(0)),
            ("shutdown_grace", serde_json::json!(-1)),
            (
                "redis_sentinel_nodes",
                serde_json::json!("redis://10.0.0.1:26379"),
            ),
            ("redis_sentinel_master", serde_json::json!("mymaster")),
            ("shutdown_grace", serde_json::json!("soon")),
            ("app_sessions_per_client", serde_json::json!(0)),
            ("metrics_token", serde_json::json!("short-token")),
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
            ("require_verified_email", serde_json::json!("perhaps")),
            ("unverified_account_ttl", serde_json::json!(0)),
        ] {
            let figment = rocket::Config::figment().merge((name, value));
            let e = Settings::from_figment(&figment).expect_err(name);
            assert_eq!(e.name, name, "{e}");
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
