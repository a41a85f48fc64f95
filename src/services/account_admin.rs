//! What is done to an account as a whole: disable it, enable it (`latchkey users
//! disable|enable`, `src/cli/`), turn its second factor off for an owner who lost
//! both the authenticator and the recovery codes (`reset-second-factor`), delete it
//! (`latchkey users delete`, and the owner's `/account/delete`: one function for
//! both), and delete the unverified accounts nobody used for `unverified_account_ttl`
//! (`sweep_unverified`). Disabling or deleting
//! ends every session and API token of the account at once, and forgets the email
//! kept beside its sessions, so no request of it passes the session check again
//! (which is why `GET /api/v1/me` can answer from the session check without reading
//! the database).
//!
//! The database changes first (it decides whether the account may sign in), then the
//! store: the account's password version moves on in both, so a sign-in whose password
//! was checked before the change cannot start a session after it. Should the store
//! fail, the error says so and running the same step again finishes it.

use std::time::Duration;

use crate::accounts::{Accounts, User};
use crate::services::ServiceError;
use crate::store::{EmailChanges, EmailVerifications, Sessions, Store};
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
    let ended = forget_in_store(store, user).await?;
    tracing::info!(user = %user.id, ended, "account deleted; sessions ended");
    Ok(ended)
}

/// What the store holds of a deleted account: every session ends, its email goes
/// from beside them, its password version moves on (a sign-in checked before cannot
/// land after), and its reset code, trusted browsers, pending verification, waiting
/// address change and undo links go.
/// Rate-limit counts stay until their windows pass (they are keyed by hashes, not by
/// the account). Answers how many live sessions ended.
async fn forget_in_store(store: &Store, user: &User) -> Result<u32, ServiceError> {
    let version = now_ms().max(user.password_changed_at + 1);
    let ended = store.close_account(&user.id, version, now_ms()).await?;
    store.forget_verification(&user.id).await?;
    store.forget_email_changes(&user.id).await?;
    Ok(ended)
}

/// Unverified accounts looked at per database query of the sweep.
const SWEEP_BATCH: u32 = 100;

/// Deletes, as `delete` does, every account never verified and not used (signed in
/// to, or registered) for `ttl`, which frees its address. An account with a live
/// session is in use: it is kept, and counts as used now. Each deletion is
/// conditional, so an account verified or signed in to meanwhile stays. Answers how
/// many accounts were deleted.
pub async fn sweep_unverified(
    store: &Store,
    accounts: &Accounts,
    ttl: Duration,
) -> Result<u32, ServiceError> {
    let cutoff = now_ms() - i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let mut deleted = 0;
    loop {
        let batch = accounts.unverified_unused(cutoff, SWEEP_BATCH).await?;
        let full = batch.len() == SWEEP_BATCH as usize;
        for user in batch {
            if !store.list_sessions(&user.id, now_ms()).await?.is_empty() {
                accounts.note_used(&user.id).await?;
                continue;
            }
            if accounts
                .delete_if_unverified_unused(&user.id, cutoff)
                .await?
            {
                forget_in_store(store, &user).await?;
                tracing::info!(user = %user.id, "unverified account unused past unverified_account_ttl: deleted");
                deleted += 1;
            }
        }
        if !full {
            return Ok(deleted);
        }
    }
}
