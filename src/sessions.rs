//! Device sessions, browser and API alike: starting one, the cookie that names it,
//! and the views the devices page and the sessions API share.
//!
//! The cookie carries `UID.TOKEN`. The store knows the session by `SID`, the first 128
//! bits of SHA-256(TOKEN), so a dump of Redis holds nothing that signs anyone in.

use std::time::Duration;

use uuid::Uuid;

use crate::accounts::User;
use crate::clock::{iso_time, now_ms};
use crate::config::Settings;
use crate::crypto::{random_token, sha256_hex};
use crate::store::{Created, NewSession, SessionKind, SessionRecord, Store, StoreResult};

/// The longest cookie value we read; anything longer is not ours.
const MAX_COOKIE_LEN: usize = 128;

/// The session id derived from a cookie or refresh secret.
pub fn sid_for(token: &str) -> String {
    sha256_hex(token.as_bytes())[..32].to_string()
}

/// A well-formed SID: 32 lowercase hex characters.
pub fn is_sid(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What a session cookie says, once parsed: the user and the session it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCookie {
    pub user_id: Uuid,
    pub sid: String,
}

impl SessionCookie {
    /// Parses `UID.TOKEN`; anything else is no session at all.
    pub fn parse(value: &str) -> Option<SessionCookie> {
        if value.len() > MAX_COOKIE_LEN {
            return None;
        }
        let (uid, token) = value.split_once('.')?;
        let user_id = Uuid::parse_str(uid).ok()?;
        let well_formed = token.len() == 43
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| SessionCookie {
            user_id,
            sid: sid_for(token),
        })
    }
}

/// Where a session was started from.
#[derive(Debug, Clone)]
pub struct Origin {
    pub label: String,
    pub user_agent: String,
    pub ip: String,
}

/// A started session: the secret goes to the client, once.
#[derive(Debug, Clone)]
pub struct Started {
    pub sid: String,
    pub secret: String,
    pub cookie_value: String,
    pub lifetime: Duration,
}

/// What kind of session to start.
pub enum SessionSpec {
    Browser {
        remember: bool,
    },
    /// An API session; `client_name` (already cleaned) is its label when given.
    Api {
        client_name: Option<String>,
    },
}

/// The parts of a new session that depend on its kind.
struct Shape {
    kind: SessionKind,
    idle: Duration,
    absolute: Duration,
    label: String,
    client_name: Option<String>,
    refresh_hash: Option<String>,
}

impl SessionSpec {
    fn shape(self, settings: &Settings, origin: &Origin, secret: &str) -> Shape {
        let s = &settings.sessions;
        let browser = |idle, absolute| Shape {
            kind: SessionKind::Browser,
            idle,
            absolute,
            label: origin.label.clone(),
            client_name: None,
            refresh_hash: None,
        };
        match self {
            SessionSpec::Browser { remember: false } => browser(s.idle_timeout, s.absolute_timeout),
            SessionSpec::Browser { remember: true } => {
                browser(s.remember_timeout, s.remember_timeout)
            }
            SessionSpec::Api { client_name } => Shape {
                kind: SessionKind::Api,
                idle: settings.tokens.refresh_ttl,
                // An API session lives while it is used, up to a year.
                absolute: settings
                    .tokens
                    .refresh_ttl
                    .max(Duration::from_secs(365 * 86400)),
                label: client_name.clone().unwrap_or_else(|| origin.label.clone()),
                client_name,
                refresh_hash: Some(secret_hash(secret)),
            },
        }
    }
}

/// What the store keeps of a refresh secret: SHA-256, hex.
pub fn secret_hash(secret: &str) -> String {
    sha256_hex(secret.as_bytes())
}

/// Starts a new session with a fresh secret (never one the client sent). `None` when
/// the password changed while the credentials were being checked.
pub async fn start(
    store: &Store,
    settings: &Settings,
    user: &User,
    origin: &Origin,
    spec: SessionSpec,
) -> StoreResult<Option<Started>> {
    let now = now_ms();
    let secret = random_token();
    let sid = sid_for(&secret);
    let shape = spec.shape(settings, origin, &secret);
    let new = NewSession {
        user_id: user.id,
        sid: sid.clone(),
        kind: shape.kind,
        label: shape.label,
        user_agent: origin.user_agent.clone(),
        ip: origin.ip.clone(),
        csrf: random_token(),
        refresh_hash: shape.refresh_hash,
        client_name: shape.client_name,
        idle_ms: shape.idle.as_millis() as i64,
        absolute_expiry_ms: now + shape.absolute.as_millis() as i64,
    };
    let max = settings.sessions.max_per_user;
    match store
        .create_session(&new, max, user.password_changed_at, now)
        .await?
    {
        Created::Stale => Ok(None),
        Created::Yes { evicted } => {
            if !evicted.is_empty() {
                tracing::info!(user = %user.id, ended = evicted.len(), "session cap reached: least recently used sessions ended");
            }
            Ok(Some(Started {
                cookie_value: format!("{}.{}", user.id, secret),
                sid,
                secret,
                lifetime: shape.absolute,
            }))
        }
    }
}

/// Ends one session of the user. False when `sid` names none of theirs: keys are built
/// from the user's own id, so another user's session id names nothing here.
pub async fn end(store: &Store, user_id: &Uuid, sid: &str) -> StoreResult<bool> {
    Ok(is_sid(sid) && store.revoke_session(user_id, sid, now_ms()).await?)
}

/// Ends every session of the user but `keep`; answers how many ended.
pub async fn end_others(store: &Store, user_id: &Uuid, keep: &str) -> StoreResult<u32> {
    store
        .revoke_sessions(user_id, Some(keep), None, now_ms())
        .await
}

/// One session as the person sees it, on the devices page and in `GET /api/v1/sessions`
/// alike. Times are RFC 3339, UTC.
#[derive(Debug, serde::Serialize)]
pub struct SessionView {
    pub id: String,
    pub label: String,
    pub kind: &'static str,
    pub ip: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub current: bool,
}

impl SessionView {
    pub fn new(s: &SessionRecord, current_sid: &str) -> SessionView {
        SessionView {
            id: s.sid.clone(),
            label: s.label.clone(),
            kind: s.kind.as_str(),
            ip: s.ip.clone(),
            created_at: iso_time(s.created_ms),
            last_seen_at: iso_time(s.seen_ms),
            current: s.sid == current_sid,
        }
    }
}

/// A user's live sessions, most recently active first.
pub async fn list(store: &Store, user_id: &Uuid) -> StoreResult<Vec<SessionRecord>> {
    let mut sessions = store.list_sessions(user_id, now_ms()).await?;
    sessions.sort_by(|a, b| {
        b.seen_ms
            .cmp(&a.seen_ms)
            .then(b.created_ms.cmp(&a.created_ms))
    });
    Ok(sessions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_must_be_exactly_uid_dot_token() {
        let token = random_token();
        let uid = Uuid::now_v7();
        let parsed = SessionCookie::parse(&format!("{uid}.{token}")).expect("well formed");
        assert_eq!(parsed.user_id, uid);
        assert_eq!(parsed.sid, sid_for(&token));
        assert!(is_sid(&parsed.sid));
        for bad in [
            String::new(),
            token.clone(),
            format!("{uid}"),
            format!("{uid}."),
            format!("not-a-uuid.{token}"),
            format!("{uid}.{token}x"),
            format!("{uid}.{}", "é".repeat(43)),
            format!("{uid}.{token}.{token}"),
            "a".repeat(5000),
        ] {
            assert_eq!(SessionCookie::parse(&bad), None, "{bad:?}");
        }
    }
}
