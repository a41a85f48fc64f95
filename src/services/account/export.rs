//! "Download my data": the account as one JSON document, section by section. A
//! section is a name and a function that reads it, and `export` lists them one per
//! line: adding one (passkeys, activity) is its function and one line there. Nothing
//! secret is written: no password hash, no second-factor secret or recovery code, no
//! session id or token (a session id is a hash of its secret).

use serde_json::{json, Map, Value};

use crate::accounts::User;
use crate::services::sessions::{self, SessionView};
use crate::services::{activity, passkeys as passkey_service, second_factor};
use crate::services::{ServiceError, Services};
use crate::support::clock::{iso_time, now_ms};

/// What the document says it is, so a reader can tell versions apart.
pub const FORMAT: &str = "latchkey-account-export/1";

/// The account's data: `format`, `exported_at`, then one key per section.
pub async fn export(app: Services<'_>, user: &User) -> Result<Value, ServiceError> {
    let mut doc = Map::new();
    doc.insert("format".into(), FORMAT.into());
    doc.insert("exported_at".into(), iso_time(now_ms()).into());
    // One line per section.
    doc.insert("account".into(), account(app, user).await?);
    doc.insert("sessions".into(), live_sessions(app, user).await?);
    doc.insert("apps".into(), apps(app, user).await?);
    doc.insert(
        "second_factor".into(),
        second_factor_status(app, user).await?,
    );
    doc.insert("passkeys".into(), passkeys(app, user).await?);
    doc.insert("activity".into(), activity_log(app, user).await?);
    Ok(Value::Object(doc))
}

async fn account(_app: Services<'_>, user: &User) -> Result<Value, ServiceError> {
    Ok(json!({
        "id": user.id.to_string(),
        "email": user.email,
        "email_verified": user.email_verified(),
        "email_verified_at": user.email_verified_at.map(iso_time),
        "created_at": iso_time(user.created_at),
        "password_changed_at": iso_time(user.password_changed_at),
    }))
}

/// The live sessions as the devices page shows them, without their ids.
async fn live_sessions(app: Services<'_>, user: &User) -> Result<Value, ServiceError> {
    let all = sessions::list(app.store, &user.id).await?;
    let shown: Vec<Value> = all
        .iter()
        .map(|s| {
            let view = SessionView::new(s, "");
            json!({
                "label": view.label,
                "kind": view.kind,
                "ip": view.ip,
                "created_at": view.created_at,
                "last_seen_at": view.last_seen_at,
                "amr": view.amr,
            })
        })
        .collect();
    Ok(Value::Array(shown))
}

/// The apps the account allowed, with what and when.
async fn apps(app: Services<'_>, user: &User) -> Result<Value, ServiceError> {
    let consents = app.accounts.consents_of(&user.id).await?;
    let shown: Vec<Value> = consents
        .into_iter()
        .map(|(client_id, name, scopes, granted_at)| {
            json!({
                "client_id": client_id,
                "name": name,
                "scopes": scopes.split_whitespace().collect::<Vec<_>>(),
                "allowed_at": iso_time(granted_at),
            })
        })
        .collect();
    Ok(Value::Array(shown))
}

/// Whether the second factor is on, since when, and how many recovery codes are left.
async fn second_factor_status(app: Services<'_>, user: &User) -> Result<Value, ServiceError> {
    let status = match second_factor::enrolled(&app, &user.id).await {
        Ok(status) => status,
        Err(second_factor::SecondFactorError::Failed(e)) => return Err(e),
        Err(_) => None,
    };
    Ok(match status {
        Some(s) => json!({
            "enabled": true,
            "enabled_at": iso_time(s.enabled_at),
            "recovery_codes_left": s.recovery_codes_left,
        }),
        None => json!({ "enabled": false }),
    })
}

/// The passkeys: name, when added and last used, synced or bound to one device, and
/// whether one was refused as copied. No credential or public key.
async fn passkeys(app: Services<'_>, user: &User) -> Result<Value, ServiceError> {
    let shown: Vec<Value> = passkey_service::list(app, &user.id)
        .await?
        .into_iter()
        .map(|p| {
            json!({
                "name": p.name,
                "added_at": iso_time(p.created_ms),
                "last_used_at": p.last_used_ms.map(iso_time),
                "synced": p.synced,
                "refused_as_copied": p.cloned,
            })
        })
        .collect();
    Ok(Value::Array(shown))
}

/// The activity log, newest first, at most `activity_max_events`, as
/// `GET /api/v1/activity` shows each event but without the session it concerns.
async fn activity_log(app: Services<'_>, user: &User) -> Result<Value, ServiceError> {
    let events = activity::all(app.accounts, &app.settings.activity, &user.id).await?;
    let shown: Vec<Value> = events
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id,
                "at": e.at,
                "type": e.kind,
                "label": e.label,
                "ip": e.ip,
                "detail": e.detail,
                "count": e.count,
            })
        })
        .collect();
    Ok(Value::Array(shown))
}
