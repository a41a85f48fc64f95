//! Passkeys (WebAuthn), written once for the pages and the command line: adding one to
//! an account (`register`), signing in with one, alone or as the second step of a
//! password sign-in (`sign_in`), the list the security page shows, renaming and
//! removing, and the owner's mails (`mail`).
//!
//! - **The library** is `webauthn-rs` (Kanidm). Its `Passkey` requires user
//!   verification at registration and at every sign-in, which is what lets a passkey
//!   sign in alone (`amr` `hwk user`): the authenticator checked a fingerprint, face
//!   or PIN. The creation options ask for a discoverable credential (resident key
//!   preferred) so the usernameless button and the browser's autofill can find it.
//! - **Ceremonies** (`ceremony`): the state between the options and the answer lives
//!   in the store for 5 minutes under the hash of a random token the browser holds in
//!   a cookie; taking it deletes it, so an answer is checked at most once.
//! - **The account's user handle** is random (a UUID v4 in `passkey_handles`), made
//!   with its first passkey: an authenticator holds neither the user id nor the
//!   address as the handle.
//! - **Counters**: a use is recorded only when the signature counter moved forward; a
//!   counter that went backwards (a cloned key) is refused, the passkey is marked and
//!   refused from then on, and the owner is mailed.

mod authenticators;
mod ceremony;
pub mod mail;
pub mod register;
pub mod sign_in;

use uuid::Uuid;
use webauthn_rs::prelude::{Url, Webauthn, WebauthnBuilder};

pub use self::ceremony::{CeremonyCookie, CEREMONY_TTL_MS};
use crate::accounts::{AccountError, PasskeyRow};
use crate::config::Settings;
use crate::services::activity::{self, Event, Kind};
use crate::services::signin::limits::Throttled;
use crate::services::{ServiceError, Services};
use crate::store::StoreError;
use crate::support::input::{Label, LabelError};

/// Passkeys one account may have.
pub const MAX_PASSKEYS: i64 = 10;
/// The name of a passkey its owner did not name.
pub const DEFAULT_NAME: &str = "Passkey";
/// The relying party's name, as browsers show it.
const RP_NAME: &str = "Latchkey";

/// Why a passkey step did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// `public_url` is an IP address: browsers refuse WebAuthn there.
    #[error("passkeys are unavailable on this server")]
    Unavailable,
    /// The answer was wrong: no ceremony (expired, already used, another browser's),
    /// a wrong origin, relying party or challenge, a bad signature, an unknown, removed
    /// or cloned credential, or another account's. One answer for all.
    #[error("the passkey was not accepted")]
    Refused,
    #[error("too many sign-in attempts")]
    Throttled(Throttled),
    /// The account has [`MAX_PASSKEYS`] already.
    #[error("the account has the most passkeys it may have")]
    TooMany,
    /// This authenticator's credential is registered already.
    #[error("this passkey is registered already")]
    Duplicate,
    /// The name breaks the label rule.
    #[error("{}", .0.describe("The name"))]
    BadName(LabelError),
    #[error("the passkey step could not finish")]
    Failed(#[source] ServiceError),
}

macro_rules! failed_from {
    ($($cause:ty),*) => {$(
        impl From<$cause> for PasskeyError {
            fn from(e: $cause) -> Self {
                PasskeyError::Failed(e.into())
            }
        }
    )*};
}
failed_from!(ServiceError, StoreError, AccountError);

/// The relying party `settings` describe; `None` when passkeys are unavailable.
pub fn relying_party(settings: &Settings) -> Option<Webauthn> {
    let rp_id = settings.passkeys.rp_id.as_deref()?;
    let origin: &Url = &settings.passkeys.origin;
    let built = WebauthnBuilder::new(rp_id, origin)
        .and_then(|b| b.rp_name(RP_NAME).build())
        .map_err(|e| tracing::error!(error = %e, "passkeys: the relying party is misconfigured"));
    built.ok()
}

/// Whether passkeys can be used on this server (a host name in `public_url`).
pub fn available(settings: &Settings) -> bool {
    settings.passkeys.rp_id.is_some()
}

/// A new passkey's name as typed: trimmed, the label rule; `None` when blank (the
/// authenticator's own name is used then, or [`DEFAULT_NAME`]).
pub fn parse_new_name(input: &str) -> Result<Option<Label>, PasskeyError> {
    Label::parse(input).map_err(PasskeyError::BadName)
}

/// A passkey name as typed: trimmed, the label rule; blank is [`DEFAULT_NAME`].
pub fn parse_name(input: &str) -> Result<Label, PasskeyError> {
    Ok(Label::parse(input)
        .map_err(PasskeyError::BadName)?
        .unwrap_or_else(|| Label::ours(DEFAULT_NAME)))
}

/// A passkey as its owner sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    pub created_ms: i64,
    pub last_used_ms: Option<i64>,
    /// Backup eligible: synced between the owner's devices (else bound to one).
    pub synced: bool,
    /// Its counter went backwards once: refused since.
    pub cloned: bool,
}

impl From<PasskeyRow> for PasskeyView {
    fn from(r: PasskeyRow) -> Self {
        PasskeyView {
            id: r.id,
            name: r.name,
            created_ms: r.created_at,
            last_used_ms: r.last_used_at,
            synced: r.synced == 1,
            cloned: r.cloned_at.is_some(),
        }
    }
}

/// The account's passkeys, oldest first.
pub async fn list(app: Services<'_>, user_id: &Uuid) -> Result<Vec<PasskeyView>, ServiceError> {
    let rows = app.accounts.passkeys(user_id).await?;
    Ok(rows.into_iter().map(PasskeyView::from).collect())
}

/// Renames one of the account's passkeys: false when it has none with `id`.
pub async fn rename(
    app: Services<'_>,
    user_id: &Uuid,
    id: &str,
    name: &Label,
) -> Result<bool, ServiceError> {
    Ok(app
        .accounts
        .rename_passkey(user_id, id, name.as_str())
        .await?)
}

/// Why a passkey was not removed.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("no such passkey")]
    NotFound,
    /// It is the account's last way to sign in.
    #[error("the last way to sign in")]
    LastWay,
    #[error("the passkey could not be removed")]
    Failed(#[from] ServiceError),
}

/// Removes one of the account's passkeys and mails the owner. Refused when it is the
/// account's last way to sign in: every account has a password today, so this holds
/// for an account that has none (made some other way) only.
pub async fn remove(app: Services<'_>, user_id: &Uuid, id: &str) -> Result<(), RemoveError> {
    let user = app
        .accounts
        .find_by_id(user_id)
        .await
        .map_err(ServiceError::from)?
        .ok_or(RemoveError::NotFound)?;
    let passkeys = app
        .accounts
        .passkeys(user_id)
        .await
        .map_err(ServiceError::from)?;
    let Some(removed) = passkeys.iter().find(|p| p.id == id) else {
        return Err(RemoveError::NotFound);
    };
    if user.password_hash.is_empty() && passkeys.len() == 1 {
        return Err(RemoveError::LastWay);
    }
    if !app
        .accounts
        .remove_passkey(user_id, id)
        .await
        .map_err(ServiceError::from)?
    {
        return Err(RemoveError::NotFound);
    }
    tracing::info!(user = %user_id, passkey = %id, "passkey removed");
    let event = Event::new(Kind::PasskeyRemoved).detail(&removed.name);
    activity::record(app, user_id, event).await;
    let notice = mail::Notice::Removed {
        name: removed.name.clone(),
    };
    mail::mail_owner(&app, &user, notice);
    Ok(())
}

/// Removes every passkey of the account (`latchkey users remove-passkeys`): how many.
pub async fn remove_all(app: Services<'_>, user_id: &Uuid) -> Result<u64, ServiceError> {
    let removed = app.accounts.remove_passkeys(user_id).await?;
    tracing::info!(user = %user_id, removed, "every passkey removed");
    Ok(removed)
}
