//! Adding a passkey: the creation options (a ceremony), then the browser's answer
//! checked against it and stored, the owner mailed. The caller has re-checked the
//! account first (its password, or a sign-in of the last 5 minutes).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use uuid::Uuid;
use webauthn_rs::prelude::{
    CreationChallengeResponse, Credential, CredentialID, RegisterPublicKeyCredential,
};
use webauthn_rs_proto::ResidentKeyRequirement;

use super::ceremony::{self, Ceremony, CeremonyCookie};
use super::mail::{self, Notice};
use super::{authenticators, relying_party, PasskeyError, DEFAULT_NAME, MAX_PASSKEYS};
use crate::accounts::{AccountError, NewPasskey, User};
use crate::services::activity::{self, Event, Kind};
use crate::services::Services;
use crate::support::clock::now_ms;
use crate::support::input::Label;

/// The creation options for `user` (`{"publicKey": …}`) and the cookie naming the
/// ceremony. Refused when the account has [`MAX_PASSKEYS`] already.
pub async fn start(
    app: Services<'_>,
    user: &User,
) -> Result<(CreationChallengeResponse, CeremonyCookie), PasskeyError> {
    let rp = relying_party(app.settings).ok_or(PasskeyError::Unavailable)?;
    let existing = app.accounts.passkeys(&user.id).await?;
    if existing.len() as i64 >= MAX_PASSKEYS {
        return Err(PasskeyError::TooMany);
    }
    let handle = user_handle(app, &user.id).await?;
    let exclude: Vec<CredentialID> = existing
        .iter()
        .filter_map(|p| URL_SAFE_NO_PAD.decode(&p.credential_id).ok())
        .collect();
    let (mut options, state) = rp
        .start_passkey_registration(handle, &user.email, &user.email, Some(exclude))
        .map_err(|e| {
            tracing::warn!(error = %e, "passkeys: registration options refused");
            PasskeyError::Refused
        })?;
    // Discoverable, so the usernameless button and the autofill find it; preferred,
    // not required, so a security key with no room left still works as a second step.
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.resident_key = Some(ResidentKeyRequirement::Preferred);
        selection.require_resident_key = false;
    }
    let cookie = ceremony::put(
        app,
        &Ceremony::Register {
            user_id: user.id,
            state,
        },
    )
    .await?;
    Ok((options, cookie))
}

/// The account's user handle: random, made with its first passkey.
async fn user_handle(app: Services<'_>, user_id: &Uuid) -> Result<Uuid, PasskeyError> {
    let fresh = Uuid::new_v4().to_string();
    let stored = app.accounts.passkey_handle(user_id, &fresh).await?;
    // Always a UUID as stored here; anything else was written by hand.
    Uuid::parse_str(&stored).map_err(|_| PasskeyError::Refused)
}

/// A passkey just added.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Added {
    pub id: String,
    pub name: String,
}

/// The browser's answer to this browser's ceremony for `user`: checked (the challenge,
/// the origin and relying party, user verification), then stored under `name` (when
/// none was typed: the authenticator's make when it is a known one, else
/// [`DEFAULT_NAME`]) while the account has fewer than [`MAX_PASSKEYS`]; the owner is
/// mailed. The ceremony is used up whatever the outcome.
pub async fn finish(
    app: Services<'_>,
    user: &User,
    cookie: &CeremonyCookie,
    answer: &RegisterPublicKeyCredential,
    typed: Option<&Label>,
) -> Result<Added, PasskeyError> {
    let rp = relying_party(app.settings).ok_or(PasskeyError::Unavailable)?;
    let Some(Ceremony::Register { user_id, state }) = ceremony::take(app, cookie).await? else {
        return Err(PasskeyError::Refused);
    };
    if user_id != user.id {
        return Err(PasskeyError::Refused);
    }
    let passkey = rp
        .finish_passkey_registration(answer, &state)
        .map_err(|e| {
            tracing::info!(user = %user.id, error = %e, "passkeys: registration answer refused");
            PasskeyError::Refused
        })?;
    let name = match typed {
        Some(name) => name.clone(),
        None => Label::ours(
            authenticators::name_of(&answer.response.attestation_object).unwrap_or(DEFAULT_NAME),
        ),
    };
    let credential = Credential::from(passkey.clone());
    let stored = serde_json::to_string(&passkey).map_err(|_| PasskeyError::Refused)?;
    let id = Uuid::now_v7();
    let new = NewPasskey {
        id,
        user_id: &user.id,
        credential_id: &URL_SAFE_NO_PAD.encode(passkey.cred_id().as_slice()),
        name: name.as_str(),
        credential: &stored,
        sign_count: i64::from(credential.counter),
        synced: credential.backup_eligible,
        now: now_ms(),
    };
    match app.accounts.add_passkey(&new, MAX_PASSKEYS).await {
        Ok(true) => {}
        Ok(false) => return Err(PasskeyError::TooMany),
        Err(AccountError::Duplicate) => return Err(PasskeyError::Duplicate),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(user = %user.id, passkey = %id, "passkey added");
    let added = Event::new(Kind::PasskeyAdded).detail(name.as_str());
    activity::record(app, &user.id, added).await;
    let notice = Notice::Added {
        name: name.to_string(),
    };
    mail::mail_owner(&app, user, notice);
    Ok(Added {
        id: id.to_string(),
        name: name.to_string(),
    })
}
