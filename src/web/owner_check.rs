//! Making sure the owner is at the keyboard before a change to the account itself (a
//! new address, deleting it): the current password, checked as a sign-in is (the same
//! quotas; a wrong one counts as a failed sign-in), then, when the second factor is on,
//! a current code or a recovery code under the same quotas (a recovery code is used
//! up). `Err(page)` is the form again, saying why not; nothing has changed then.

use rocket::http::Status;

use super::page::Page;
use super::password::{check_current, try_again};
use crate::accounts::User;
use crate::http::error::AppResult;
use crate::services::second_factor::{self, Purpose, SecondFactorError};
use crate::services::signin::trusted_browsers::BrowserClaim;
use crate::services::signin::two_step::{self, CodeError};
use crate::services::Services;

/// What the owner typed to prove it is them.
pub struct OwnerProof<'a> {
    pub password: Option<&'a str>,
    pub code: Option<&'a str>,
    pub browser: Option<&'a BrowserClaim>,
    pub ip: &'a str,
}

/// The password, then the second factor when on. `form` makes the page to answer
/// with (each refusal renders it anew).
pub async fn check_owner(
    app: Services<'_>,
    user: &User,
    proof: &OwnerProof<'_>,
    form: impl Fn() -> Page,
) -> AppResult<Result<(), Page>> {
    match check_current(app, user, proof.password, proof.ip, proof.browser, form()).await? {
        Ok(slot) => drop(slot),
        Err(page) => return Ok(Err(page)),
    }
    if !second_factor::has_second_factor(app, user).await? {
        return Ok(Ok(()));
    }
    let code = proof.code.unwrap_or("").trim();
    if code.is_empty() {
        let msg = "Enter the 6-digit code your authenticator app shows now, or one of your recovery codes.";
        return Ok(Err(form().error(msg, Status::BadRequest)));
    }
    let wrong = "That code is not right or was already used. Enter the 6-digit code your app shows now (a code works once), or one of your recovery codes.";
    let accepted =
        match two_step::check_account_code(app, user, code, proof.browser, proof.ip).await {
            Ok(accepted) => accepted,
            Err(CodeError::Throttled(t)) => return Ok(Err(form().throttled(t, try_again))),
            Err(CodeError::Failed(e)) => return Err(e.into()),
            Err(CodeError::Wrong | CodeError::Stale) => {
                return Ok(Err(form().error(wrong, Status::BadRequest)))
            }
        };
    match second_factor::use_up(&app, &user.id, accepted, Purpose::AccountChange).await {
        Ok(_) => Ok(Ok(())),
        Err(SecondFactorError::Failed(e)) => Err(e.into()),
        Err(_) => Ok(Err(form().error(wrong, Status::BadRequest))),
    }
}
