//! Sessions of every kind, browser, API and app: starting one (its secret, its
//! shape by kind, the store's cap and staleness check), ending one, some or all, and
//! the view the devices page and the sessions API share.

use std::time::Duration;

use uuid::Uuid;

use super::access_tokens::LEEWAY_SECS;
use super::ids::{app_secret_hash, is_sid, secret_hash, sid_for};
use crate::accounts::User;
use crate::config::Settings;
use crate::store::{
    email_field, Amr, Created, NewSession, SessionCaps, SessionKind, SessionRecord, Sessions,
    Store, StoreResult,
};
use crate::support::clock::{iso_time, now_ms};
use crate::support::crypto::random_token;
use crate::support::device_label::{clip_bytes, is_mobile, MAX_LABEL_BYTES};
use crate::support::input::Label;

/// Where a session was started from. The user agent is read for the label and the
/// phone flag and not kept.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The device's label (from the user agent), under the rule of every label a
    /// client supplies.
    pub label: Label,
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
    /// An API session; `client_name` is its label when given.
    Api {
        client_name: Option<Label>,
    },
    /// An app's session (OpenID Connect), labelled with the app's name. With
    /// `offline` (the `offline_access` scope) it lives like an API session; without,
    /// it ends with its access token.
    App {
        client_id: String,
        name: Label,
        offline: bool,
        /// What the refresh secret's stored hash also covers (`app_secret_hash`).
        bound_to: String,
    },
}

/// The parts of a new session that depend on its kind.
struct Shape {
    kind: SessionKind,
    idle: Duration,
    absolute: Duration,
    label: Label,
    refresh_hash: Option<String>,
    client_id: Option<String>,
}

impl SessionSpec {
    fn shape(self, settings: &Settings, origin: &Origin, secret: &str) -> Shape {
        let s = &settings.sessions;
        let browser = |idle, absolute| Shape {
            kind: SessionKind::Browser,
            idle,
            absolute,
            label: origin.label.clone(),
            refresh_hash: None,
            client_id: None,
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
                label: client_name.unwrap_or_else(|| origin.label.clone()),
                refresh_hash: Some(secret_hash(secret)),
                client_id: None,
            },
            SessionSpec::App {
                client_id,
                name,
                offline,
                bound_to,
            } => {
                let t = &settings.tokens;
                // Without offline_access: as long as its access token is accepted.
                let life = if offline {
                    t.refresh_ttl
                } else {
                    t.access_ttl + Duration::from_secs(LEEWAY_SECS)
                };
                let absolute = if offline {
                    life.max(Duration::from_secs(365 * 86400))
                } else {
                    life
                };
                Shape {
                    kind: SessionKind::App,
                    idle: life,
                    absolute,
                    label: name,
                    refresh_hash: Some(app_secret_hash(&bound_to, secret)),
                    client_id: Some(client_id),
                }
            }
        }
    }
}

/// Starts a new session with a fresh secret (never one the client sent), recording
/// how it signed in (`amr`). `None` when the password changed (or the account closed)
/// after `password_version` was read with the password that was checked.
pub async fn start(
    store: &Store,
    settings: &Settings,
    user: &User,
    origin: &Origin,
    spec: SessionSpec,
    amr: Amr,
) -> StoreResult<Option<Started>> {
    let now = now_ms();
    let secret = random_token();
    let sid = sid_for(&secret);
    let shape = spec.shape(settings, origin, &secret);
    let new = NewSession {
        user_id: user.id,
        email: email_field(&user.email, user.email_verified()),
        sid: sid.clone(),
        kind: shape.kind,
        label: clip_bytes(shape.label.as_str(), MAX_LABEL_BYTES),
        mobile: is_mobile(&origin.user_agent),
        ip: origin.ip.clone(),
        refresh_hash: shape.refresh_hash,
        client_id: shape.client_id,
        amr,
        idle_ms: shape.idle.as_millis() as i64,
        absolute_expiry_ms: now + shape.absolute.as_millis() as i64,
    };
    let caps = SessionCaps {
        per_user: settings.sessions.max_per_user,
        per_app: settings.sessions.app_sessions_per_client,
    };
    match store
        .create_session(&new, caps, user.password_changed_at, now)
        .await?
    {
        Created::Stale => Ok(None),
        Created::Yes { evicted } => {
            if !evicted.is_empty() {
                tracing::info!(user = %user.id, kind = new.kind.as_str(), ended = evicted.len(), "session cap reached: sessions ended to make room");
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

/// Ends every session of the user (the operator's `users end-sessions`); answers how
/// many ended. The account may sign in again at once.
pub async fn end_all(store: &Store, user_id: &Uuid) -> StoreResult<u32> {
    store.revoke_sessions(user_id, None, None, now_ms()).await
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
    /// How it signed in: `["pwd"]`, or `["pwd", "otp"]` after a second factor.
    pub amr: Amr,
}

impl SessionView {
    pub fn new(s: &SessionRecord, current_sid: &str) -> SessionView {
        SessionView {
            id: s.sid.clone(),
            // Cleaned again as it is shown: a session stored before the label rule
            // keeps its label for up to a year.
            label: Label::lossy(&s.label)
                .map(|l| l.as_str().to_string())
                .unwrap_or_default(),
            kind: s.kind.as_str(),
            ip: s.ip.clone(),
            created_at: iso_time(s.created_ms),
            last_seen_at: iso_time(s.seen_ms),
            current: s.sid == current_sid,
            amr: s.amr,
        }
    }
}

/// A user's live sessions, most recently active first.
pub async fn list(store: &Store, user_id: &Uuid) -> StoreResult<Vec<SessionRecord>> {
    let mut sessions = store.list_sessions(user_id, now_ms()).await?;
    most_recent_first(&mut sessions);
    Ok(sessions)
}

/// The order the devices page and the sessions API show: most recently active first.
pub fn most_recent_first(sessions: &mut [SessionRecord]) {
    sessions.sort_by(|a, b| {
        b.seen_ms
            .cmp(&a.seen_ms)
            .then(b.created_ms.cmp(&a.created_ms))
    });
}
