//! The account's activity log: one call, [`record`], writes what happened (a sign-in,
//! a failure, a change, a session ended) from whichever flow did it, and [`page`] reads
//! it back, newest first, for the activity page, the API and the command line alike.
//!
//! Recording never fails the request that caused it: a database error is logged and
//! counted (`latchkey_activity_record_failures_total`). Failed sign-ins and lock-outs
//! are written after the answer ([`record_later`]), so a known account's wrong
//! password costs no more time than an unknown one's, and are grouped per address and
//! hour (one row whose count goes up).

use uuid::Uuid;

use crate::accounts::{Accounts, Bounds, EventRow, NewEvent};
use crate::config::ActivitySettings;
use crate::services::sessions::Origin;
use crate::services::{ServiceError, Services};
use crate::store::{Amr, SessionRecord};
use crate::support::clock::{exact_time, iso_time, now_ms};
use crate::support::metrics::Metrics;
use crate::support::report::Report;

/// Events shown per page, and the most one API call returns.
pub const PAGE_SIZE: u32 = 25;
pub const MAX_LIMIT: u32 = 100;
const HOUR_MS: i64 = 3_600_000;

/// What happened: the event `type`s of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    SignIn,
    SignInFailed,
    LockedOut,
    PasswordChanged,
    PasswordReset,
    SecondFactorOn,
    SecondFactorOff,
    RecoveryCodeUsed,
    PasskeyAdded,
    PasskeyRemoved,
    EmailVerified,
    EmailChanged,
    AppAllowed,
    AppRemoved,
    SessionEnded,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SignIn => "sign_in",
            Kind::SignInFailed => "sign_in_failed",
            Kind::LockedOut => "locked_out",
            Kind::PasswordChanged => "password_changed",
            Kind::PasswordReset => "password_reset",
            Kind::SecondFactorOn => "second_factor_on",
            Kind::SecondFactorOff => "second_factor_off",
            Kind::RecoveryCodeUsed => "recovery_code_used",
            Kind::PasskeyAdded => "passkey_added",
            Kind::PasskeyRemoved => "passkey_removed",
            Kind::EmailVerified => "email_verified",
            Kind::EmailChanged => "email_changed",
            Kind::AppAllowed => "app_allowed",
            Kind::AppRemoved => "app_removed",
            Kind::SessionEnded => "session_ended",
        }
    }

    /// Grouped per address and hour: a flood stays a few rows.
    fn grouped(self) -> bool {
        matches!(self, Kind::SignInFailed | Kind::LockedOut)
    }

    fn in_words(self) -> &'static str {
        match self {
            Kind::SignIn => "Signed in",
            Kind::SignInFailed => "Failed sign-in",
            Kind::LockedOut => "Sign-in refused: too many attempts",
            Kind::PasswordChanged => "Password changed",
            Kind::PasswordReset => "Password reset by email",
            Kind::SecondFactorOn => "Two-step verification turned on",
            Kind::SecondFactorOff => "Two-step verification turned off",
            Kind::RecoveryCodeUsed => "Recovery code used",
            Kind::PasskeyAdded => "Passkey added",
            Kind::PasskeyRemoved => "Passkey removed",
            Kind::EmailVerified => "Email address verified",
            Kind::EmailChanged => "Email address changed",
            Kind::AppAllowed => "App allowed",
            Kind::AppRemoved => "App removed",
            Kind::SessionEnded => "Signed out",
        }
    }
}

/// What ended a session (the `detail` of `session_ended`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    /// The session's own device signed out.
    ThisDevice,
    /// Another of the account's sessions signed it out.
    AnotherDevice,
    PasswordChange,
    /// A password reset by email.
    PasswordReset,
    /// Turning the second factor off ends the other sessions.
    SecondFactorOff,
    /// The operator (`latchkey users end-sessions`, `reset-second-factor`, `disable`).
    Operator,
}

impl EndedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            EndedBy::ThisDevice => "this_device",
            EndedBy::AnotherDevice => "another_device",
            EndedBy::PasswordChange => "password_change",
            EndedBy::PasswordReset => "password_reset",
            EndedBy::SecondFactorOff => "second_factor_off",
            EndedBy::Operator => "operator",
        }
    }
}

/// How a sign-in proved itself (the `detail` of `sign_in`).
pub fn sign_in_method(amr: Amr, api: bool) -> &'static str {
    match (api, amr) {
        (true, _) => "app",
        (false, Amr::Password) => "password",
        (false, Amr::PasswordAndOtp) | (false, Amr::PasswordAndPasskey) => "two_step",
        (false, Amr::Passkey) => "passkey",
    }
}

/// One event to record: its kind, where it came from (device label and address),
/// the session it concerns and its detail.
#[derive(Debug, Clone)]
pub struct Event {
    kind: Kind,
    label: String,
    ip: String,
    session_id: Option<String>,
    detail: String,
    /// How many it stands for (sessions ended at once); 1 for most.
    count: i64,
}

impl Event {
    pub fn new(kind: Kind) -> Event {
        Event {
            kind,
            label: String::new(),
            ip: String::new(),
            session_id: None,
            detail: String::new(),
            count: 1,
        }
    }

    /// From this device (its label and address).
    pub fn from(mut self, origin: &Origin) -> Event {
        self.label = origin.label.as_str().to_string();
        self.ip = origin.ip.clone();
        self
    }

    /// Named this way (an app's own name for itself).
    pub fn label(mut self, label: &str) -> Event {
        self.label = label.to_string();
        self
    }

    /// From this address (no device label known).
    pub fn ip(mut self, ip: &str) -> Event {
        self.ip = ip.to_string();
        self
    }

    /// About this session (started or ended).
    pub fn session(mut self, sid: &str) -> Event {
        self.session_id = Some(sid.to_string());
        self
    }

    pub fn detail(mut self, detail: &str) -> Event {
        self.detail = detail.to_string();
        self
    }

    /// A session ended: which, and by what.
    pub fn session_ended(sid: Option<&str>, by: EndedBy) -> Event {
        Event {
            session_id: sid.map(str::to_string),
            ..Event::new(Kind::SessionEnded).detail(by.as_str())
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// After this event ended `n` other sessions at once: one `session_ended` from the
    /// same place, with `n` as its count (none when `n` is 0).
    pub fn ended(self, by: EndedBy, n: u32) -> Option<Event> {
        (n > 0).then(|| Event {
            kind: Kind::SessionEnded,
            session_id: None,
            detail: by.as_str().to_string(),
            count: i64::from(n),
            ..self
        })
    }

    fn group_key(&self, now: i64) -> Option<String> {
        self.kind.grouped().then(|| {
            format!(
                "{}\n{}\n{}\n{}",
                self.kind.as_str(),
                self.detail,
                self.ip,
                now.div_euclid(HOUR_MS)
            )
        })
    }
}

fn bounds(settings: &ActivitySettings, now: i64) -> Bounds {
    Bounds {
        max_events: settings.max_events,
        oldest_ms: now - settings.retention_ms(),
    }
}

async fn write(
    accounts: &Accounts,
    settings: &ActivitySettings,
    metrics: Option<&Metrics>,
    user_id: &Uuid,
    event: &Event,
) {
    let now = now_ms();
    let new = NewEvent {
        kind: event.kind.as_str(),
        label: &event.label,
        ip: &event.ip,
        session_id: event.session_id.as_deref(),
        detail: &event.detail,
        group_key: event.group_key(now),
        count: event.count,
    };
    if let Err(e) = accounts
        .record_event(user_id, &new, now, bounds(settings, now))
        .await
    {
        if let Some(metrics) = metrics {
            metrics.activity_failures.inc();
        }
        tracing::warn!(error = %Report(&e), user = %user_id, kind = event.kind.as_str(), "could not record an activity event");
    }
}

/// Records one event of the account. Never fails: an error is logged and counted.
pub async fn record(app: Services<'_>, user_id: &Uuid, event: Event) {
    write(
        app.accounts,
        &app.settings.activity,
        Some(app.metrics),
        user_id,
        &event,
    )
    .await;
}

/// Records one event from outside a request (the operator's commands). Never fails:
/// an error is logged.
pub async fn record_in(
    accounts: &Accounts,
    settings: &ActivitySettings,
    user_id: &Uuid,
    event: Event,
) {
    write(accounts, settings, None, user_id, &event).await;
}

/// Records one event after the request has answered (failed sign-ins and lock-outs:
/// the answer takes no longer for a known account than for an unknown one).
pub fn record_later(app: Services<'_>, user_id: Uuid, event: Event) {
    let accounts = app.accounts.clone();
    let settings = app.settings.activity.clone();
    let metrics = app.metrics.clone();
    tokio::spawn(async move {
        write(&accounts, &settings, Some(&metrics), &user_id, &event).await;
    });
}

/// One event as the page, the API and the command line show it. `at` is RFC 3339.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventView {
    pub id: String,
    pub at: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub label: String,
    pub ip: String,
    pub session_id: Option<String>,
    pub detail: String,
    /// How many times (grouped events); not in the API's shape.
    #[serde(skip)]
    pub count: i64,
    #[serde(skip)]
    pub at_ms: i64,
}

impl EventView {
    fn new(row: EventRow) -> EventView {
        EventView {
            id: row.id.to_string(),
            at: iso_time(row.at),
            kind: row.kind,
            label: row.label,
            ip: row.ip,
            session_id: row.session_id,
            detail: row.detail,
            count: row.count,
            at_ms: row.at,
        }
    }

    /// What happened, in words, for people.
    pub fn summary(&self) -> String {
        let Some(kind) = KINDS.iter().find(|k| k.as_str() == self.kind) else {
            return self.kind.clone();
        };
        let what = kind.in_words();
        let detail = match (*kind, self.detail.as_str()) {
            (Kind::SignIn, "password") => " with a password".to_string(),
            (Kind::SignIn, "two_step") => " with a password and a one-time code".to_string(),
            (Kind::SignIn, "app") => " from an app".to_string(),
            (Kind::SignIn, "passkey") => " with a passkey".to_string(),
            (Kind::SignInFailed, "code") => ": wrong one-time code".to_string(),
            (Kind::SignInFailed, _) => ": wrong password".to_string(),
            (Kind::SessionEnded, by) => match by {
                "this_device" => " on this device".to_string(),
                "another_device" => " from another device".to_string(),
                "password_change" => " by a password change".to_string(),
                "password_reset" => " by a password reset".to_string(),
                "second_factor_off" => " when two-step verification was turned off".to_string(),
                "operator" => " by the operator".to_string(),
                "not_me" => " by \"This wasn't me\"".to_string(),
                "app_removed" => " when the app was removed".to_string(),
                other => format!(" ({other})"),
            },
            (Kind::EmailVerified, "code") => " with the mailed code".to_string(),
            (Kind::EmailVerified, "link") => " with the mailed link".to_string(),
            (Kind::EmailVerified, "reset") => " by a password reset".to_string(),
            (Kind::EmailVerified, "operator") => " by the operator".to_string(),
            (Kind::AppAllowed | Kind::AppRemoved, name) if !name.is_empty() => {
                format!(": {name}")
            }
            _ => String::new(),
        };
        let times = if self.count > 1 {
            format!(" ({} times)", self.count)
        } else {
            String::new()
        };
        format!("{what}{detail}{times}")
    }

    pub fn when(&self) -> String {
        exact_time(self.at_ms)
    }
}

const KINDS: [Kind; 15] = [
    Kind::SignIn,
    Kind::SignInFailed,
    Kind::LockedOut,
    Kind::PasswordChanged,
    Kind::PasswordReset,
    Kind::SecondFactorOn,
    Kind::SecondFactorOff,
    Kind::RecoveryCodeUsed,
    Kind::PasskeyAdded,
    Kind::PasskeyRemoved,
    Kind::EmailVerified,
    Kind::EmailChanged,
    Kind::AppAllowed,
    Kind::AppRemoved,
    Kind::SessionEnded,
];

/// A page of the log: the events, and the cursor of the next (older) page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventPage {
    pub events: Vec<EventView>,
    pub next: Option<String>,
}

/// A cursor as the client sent it: an event id. Anything else is `None` (the caller
/// answers 400).
pub fn parse_cursor(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|n| *n > 0)
}

/// Up to `limit` events of the account older than the cursor `before`, newest first,
/// within the retention; `next` names the page after it when there is one.
pub async fn page(
    accounts: &Accounts,
    settings: &ActivitySettings,
    user_id: &Uuid,
    before: Option<i64>,
    limit: u32,
) -> Result<EventPage, ServiceError> {
    let limit = limit.clamp(1, MAX_LIMIT);
    let since = now_ms() - settings.retention_ms();
    let mut rows = accounts.events(user_id, before, since, limit + 1).await?;
    let next = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    Ok(EventPage {
        events: rows.into_iter().map(EventView::new).collect(),
        next,
    })
}

/// Every event the account's log keeps, newest first, at most `max_events` and within
/// the retention: the data export's section.
pub async fn all(
    accounts: &Accounts,
    settings: &ActivitySettings,
    user_id: &Uuid,
) -> Result<Vec<EventView>, ServiceError> {
    let since = now_ms() - settings.retention_ms();
    let rows = accounts
        .events(user_id, None, since, settings.max_events)
        .await?;
    Ok(rows.into_iter().map(EventView::new).collect())
}

/// The sign-ins among `events` whose session is still live (one of `live`).
pub fn live_sign_ins<'a>(events: &'a [EventView], live: &[SessionRecord]) -> Vec<&'a str> {
    events
        .iter()
        .filter(|e| e.kind == Kind::SignIn.as_str())
        .filter_map(|e| e.session_id.as_deref())
        .filter(|sid| live.iter().any(|s| s.sid == *sid))
        .collect()
}
