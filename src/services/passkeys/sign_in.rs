//! Signing in with a passkey: the request options (a ceremony), then the browser's
//! assertion checked against it. Usernameless from the sign-in page (the
//! authenticator picks the account; `amr` `hwk user`, no second step follows), or as
//! the second step of a password sign-in (`crate::services::signin::two_step`).
//!
//! Every assertion counts against the sign-in failure quotas as a password does (the
//! account's, or this browser's own budget when it is trusted, and the client IP's and
//! network's), and a right one is taken back. An unknown credential, a removed or
//! cloned one, another account's, a replayed or expired ceremony, a wrong origin,
//! relying party, challenge or signature: all one refusal.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PublicKeyCredential, RequestChallengeResponse, Webauthn,
    WebauthnError,
};
use webauthn_rs_proto::AllowCredentials;

use super::ceremony::{self, Ceremony, CeremonyCookie};
use super::mail::{self, Notice};
use super::{relying_party, PasskeyError};
use crate::accounts::{PasskeyRow, PasskeyUse, User};
use crate::services::sessions::{Origin, SessionSpec};
use crate::services::signin::limits::{self, Attempt};
use crate::services::signin::password::{start_session, SessionStart, SignInError, SignedIn};
use crate::services::signin::trusted_browsers::{self, BrowserClaim};
use crate::services::Services;
use crate::store::Amr;
use crate::support::clock::now_ms;
use crate::support::input::Email;
use crate::support::metrics::SignInOutcome;

/// The request options (`{"publicKey": …}`) and the cookie naming the ceremony: for any
/// discoverable passkey of this site (`second_step_of: None`), or for the passkeys of
/// the account whose password sign-in waits for its second step.
pub async fn start(
    app: Services<'_>,
    second_step_of: Option<&Uuid>,
) -> Result<(RequestChallengeResponse, CeremonyCookie), PasskeyError> {
    let rp = relying_party(app.settings).ok_or(PasskeyError::Unavailable)?;
    let (mut options, state) = rp.start_discoverable_authentication().map_err(|e| {
        tracing::warn!(error = %e, "passkeys: request options refused");
        PasskeyError::Refused
    })?;
    // The script chooses: conditional mediation for the autofill, none for the button.
    options.mediation = None;
    if let Some(user_id) = second_step_of {
        let allowed: Vec<AllowCredentials> = app
            .accounts
            .passkeys(user_id)
            .await?
            .iter()
            .filter(|p| p.cloned_at.is_none())
            .filter_map(|p| URL_SAFE_NO_PAD.decode(&p.credential_id).ok())
            .map(|id| AllowCredentials {
                type_: "public-key".to_string(),
                id,
                transports: None,
            })
            .collect();
        if allowed.is_empty() {
            return Err(PasskeyError::Refused);
        }
        options.public_key.allow_credentials = allowed;
    }
    let ceremony = Ceremony::SignIn {
        second_step_of: second_step_of.copied(),
        state,
    };
    let cookie = ceremony::put(app, &ceremony).await?;
    Ok((options, cookie))
}

/// An assertion as the browser sent it.
pub struct Assertion<'a> {
    /// The ceremony cookie this browser holds, if any.
    pub cookie: Option<&'a CeremonyCookie>,
    pub answer: &'a PublicKeyCredential,
    pub ip: &'a str,
    /// This browser's trusted-browser cookie, if it sent one.
    pub browser: Option<&'a BrowserClaim>,
    /// The account whose password sign-in waits for this, for a second step.
    pub second_step_of: Option<&'a Uuid>,
}

/// Checks an assertion under the sign-in failure quotas: the account it signs in to.
/// The ceremony is used up whatever the outcome.
pub async fn verify(app: Services<'_>, a: Assertion<'_>) -> Result<User, PasskeyError> {
    let rp = relying_party(app.settings).ok_or(PasskeyError::Unavailable)?;
    let credential_id = URL_SAFE_NO_PAD.encode(&a.answer.raw_id);
    let row = app.accounts.passkey_by_credential(&credential_id).await?;
    let owner = match &row {
        Some(r) => match Uuid::parse_str(&r.user_id) {
            Ok(id) => app.accounts.find_by_id(&id).await?,
            Err(_) => None,
        },
        None => None,
    };
    let attempt = limit(app, owner.as_ref(), a.ip, a.browser).await?;
    let state = match a.cookie {
        Some(cookie) => ceremony::take(app, cookie).await?,
        None => None,
    };
    let (
        Some(row),
        Some(owner),
        Some(Ceremony::SignIn {
            second_step_of,
            state,
        }),
    ) = (row, owner, state)
    else {
        return Err(PasskeyError::Refused);
    };
    let for_this_step = second_step_of.as_ref() == a.second_step_of
        && a.second_step_of.is_none_or(|id| *id == owner.id);
    if !for_this_step || row.cloned_at.is_some() || owner.disabled_at.is_some() {
        return Err(PasskeyError::Refused);
    }
    if !handle_matches(app, &owner, a.answer, second_step_of.is_none()).await? {
        return Err(PasskeyError::Refused);
    }
    check_and_record(app, &rp, a.answer, state, &row, &owner).await?;
    attempt.succeeded(app.store).await;
    Ok(owner)
}

/// The library's check of the assertion against the ceremony and the stored passkey
/// (challenge, origin, rp id, signature, user verification, counter), then the use
/// recorded while the counter moved forward.
async fn check_and_record(
    app: Services<'_>,
    rp: &Webauthn,
    answer: &PublicKeyCredential,
    state: DiscoverableAuthentication,
    row: &PasskeyRow,
    owner: &User,
) -> Result<(), PasskeyError> {
    let Ok(mut passkey) = serde_json::from_str::<Passkey>(&row.credential) else {
        return Err(PasskeyError::Refused);
    };
    let result = match rp.finish_discoverable_authentication_v2(answer, state, &passkey) {
        Ok(result) => result,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            cloned(app, owner, row).await?;
            return Err(PasskeyError::Refused);
        }
        Err(e) => {
            tracing::info!(user = %owner.id, error = %e, "passkeys: assertion refused");
            return Err(PasskeyError::Refused);
        }
    };
    if !result.user_verified() {
        return Err(PasskeyError::Refused);
    }
    passkey.update_credential(&result);
    let stored = serde_json::to_string(&passkey).map_err(|_| PasskeyError::Refused)?;
    let recorded = app
        .accounts
        .record_passkey_use(&PasskeyUse {
            id: &row.id,
            sign_count: i64::from(result.counter()),
            credential: &stored,
            now: now_ms(),
        })
        .await?;
    if !recorded {
        // Another assertion with this counter was taken first, or the passkey was
        // marked meanwhile.
        return Err(PasskeyError::Refused);
    }
    Ok(())
}

/// The failure quotas an assertion counts against: the account's (or this browser's,
/// when the account trusts it) when the credential names one, else the client IP's
/// and its network's.
async fn limit(
    app: Services<'_>,
    owner: Option<&User>,
    ip: &str,
    browser: Option<&BrowserClaim>,
) -> Result<Attempt, PasskeyError> {
    let email = owner.and_then(|u| Email::parse(&u.email).ok());
    let checked = match (owner, &email) {
        (Some(user), Some(email)) => {
            let source =
                trusted_browsers::source(app.store, browser, Some(user), email, ip).await?;
            limits::second_factor(app.store, &app.settings.limits, source).await?
        }
        _ => limits::unknown_credential(app.store, &app.settings.limits, ip).await?,
    };
    checked.map_err(PasskeyError::Throttled)
}

/// Whether the assertion's user handle is the account's: required when nothing else
/// named the account (usernameless), checked when present otherwise.
async fn handle_matches(
    app: Services<'_>,
    owner: &User,
    answer: &PublicKeyCredential,
    required: bool,
) -> Result<bool, PasskeyError> {
    let Some(handle) = answer.response.user_handle.as_ref() else {
        return Ok(!required);
    };
    let Ok(handle) = Uuid::from_slice(handle.as_slice()) else {
        return Ok(false);
    };
    let named = app
        .accounts
        .user_by_passkey_handle(&handle.to_string())
        .await?;
    Ok(named == Some(owner.id))
}

/// A counter that went backwards: the passkey is marked (refused from now on) and the
/// owner mailed, once.
async fn cloned(app: Services<'_>, owner: &User, row: &PasskeyRow) -> Result<(), PasskeyError> {
    tracing::warn!(user = %owner.id, passkey = %row.id, "passkeys: counter went backwards; marked as cloned");
    if app.accounts.mark_passkey_cloned(&row.id, now_ms()).await? {
        let notice = Notice::Cloned {
            name: row.name.clone(),
        };
        mail::mail_owner(&app, owner, notice);
    }
    Ok(())
}

/// A browser's usernameless sign-in.
pub struct PasskeySignIn<'a> {
    pub assertion: Assertion<'a>,
    pub origin: &'a Origin,
    pub remember: bool,
    /// The session this browser already had (ended, never reused).
    pub replaces: Option<(Uuid, String)>,
}

/// Signs in with a passkey alone: the assertion, then a session with `amr` `hwk user`
/// (the authenticator verified the user: two factors, no second step). Counted for
/// `/metrics` as a sign-in.
pub async fn sign_in(app: Services<'_>, s: PasskeySignIn<'_>) -> Result<SignedIn, PasskeyError> {
    let browser = s.assertion.browser;
    let result = match verify(app, s.assertion).await {
        Ok(user) => {
            let start = SessionStart {
                origin: s.origin,
                session: SessionSpec::Browser {
                    remember: s.remember,
                },
                replaces: s.replaces,
                browser,
                amr: Amr::Passkey,
            };
            start_session(app, user, start).await.map_err(|e| match e {
                SignInError::Failed(e) => PasskeyError::Failed(e),
                _ => PasskeyError::Refused,
            })
        }
        Err(e) => Err(e),
    };
    let outcome = match &result {
        Ok(_) => Some(SignInOutcome::Ok),
        Err(PasskeyError::Throttled(_)) => Some(SignInOutcome::Throttled),
        Err(PasskeyError::Refused) => Some(SignInOutcome::Wrong),
        Err(_) => None,
    };
    if let Some(outcome) = outcome {
        app.metrics.sign_in(outcome);
    }
    result
}
