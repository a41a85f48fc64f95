//! What is done to an account as a whole: disable it, enable it (`latchkey users
//! disable|enable`, `src/cli/`), turn its second factor off for an owner who lost
//! both the authenticator and the recovery codes (`reset-second-factor`), and delete
//! it (`latchkey users delete`, and the owner's `/account/delete`: one function for
//! both). Disabling or deleting
//! ends every session and API token of the account at once, and forgets the email
//! kept beside its sessions, so no request of it passes the session check again
//! (which is why `GET /api/v1/me` can answer from the session check without reading
//! the database).
//!
//! The database changes first (it decides whether the account may sign in), then the
//! store: the account's password version moves on in both, so a sign-in whose password
//! was checked before the change cannot start a session after it. Should the store
//! fail, the error says so and running the same step again finishes it.

use crate::accounts::{Accounts, User};
use crate::services::ServiceError;
use crate::store::{EmailChanges, Sessions, Store};
use crate::support::clock::now_ms;

/// Disables the account: it cannot sign in (it answers as a wrong password) and every
/// session ends now. Answers how many live sessions ended.
pub async fn disable(store: &Store, accounts: &Accounts, user: &User) -> Result<u32, ServiceError> {
    let Some(version) = accounts.set_disabled(user, true).await? else {
        return Ok(0);
    };
    let ended = store.close_account(&user.id, version, now_ms()).await?;
    tracing::info!(user = %user.id, ended, "account disabled; sessions ended");
    Ok(ended)
}

/// Enables a disabled account: it can sign in again (no session comes back).
pub async fn enable(accounts: &Accounts, user: &User) -> Result<(), ServiceError> {
    accounts.set_disabled(user, false).await?;
    tracing::info!(user = %user.id, "account enabled");
    Ok(())
}

/// Turns the account's second factor off (the authenticator secret and every recovery
/// code are deleted) and ends every session of it, so the password alone signs in
/// again and nothing signed in before stays. Answers how many live sessions ended;
/// `None` when the second factor was not on (nothing changes). A pending sign-in of
/// the account ends too (the code step finds the factor off). Should the store fail
/// after the database changed, `latchkey users end-sessions` finishes it.
pub async fn reset_second_factor(
    store: &Store,
    accounts: &Accounts,
    user: &User,
) -> Result<Option<u32>, ServiceError> {
    if !accounts.disable_second_factor(&user.id).await? {
        return Ok(None);
    }
    let ended = crate::services::sessions::end_all(store, &user.id).await?;
    tracing::info!(user = %user.id, ended, "second factor reset by the operator; sessions ended");
    Ok(Some(ended))
}

/// Deletes the account: its row and every row that refers to it (known devices,
/// consents, second factor, recovery codes: `ON DELETE CASCADE`), then in the store
/// every session of it (browser, API and app: their access and refresh tokens stop
/// working at once), its email, reset code, trusted browsers, address change and undo
/// links. What remains is its password version (so a sign-in checked before cannot
/// land after; 24 h) and keys that die within minutes and are refused meanwhile (a
/// pending two-step sign-in, an unused authorization code, a revoked token's `jti`).
/// The address may be registered again at once. Answers how many live sessions ended.
pub async fn delete(store: &Store, accounts: &Accounts, user: &User) -> Result<u32, ServiceError> {
    accounts.delete(&user.id).await?;
    let version = now_ms().max(user.password_changed_at + 1);
    let ended = store.close_account(&user.id, version, now_ms()).await?;
    store.forget_email_changes(&user.id).await?;
    tracing::info!(user = %user.id, ended, "account deleted; sessions ended");
    Ok(ended)
}
