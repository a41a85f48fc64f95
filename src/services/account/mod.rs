//! What an account's owner does to the account itself, beside signing in: change its
//! address (`email_change`: a code to the new address, an undo link to the old), take
//! its data away as one file (`export`), and the mails about both and about a deleted
//! account (`mail`). Deleting an account is `crate::services::account_admin::delete`,
//! the one deletion the page and the operator's command share.

pub mod email_change;
pub mod export;
pub mod mail;
