//! The services: each sequence the app runs, written once for the pages, the API and
//! the command line alike. By domain: signing in (`signin/`: the password, the second
//! step, trusted browsers, rate limits, the new-device mail, password reset), the
//! second factor (`second_factor/`), passkeys (`passkeys/`), sessions and their tokens
//! (`sessions/`), the OpenID Connect provider (`oidc/`), where `rd` may send a user
//! (`return_to`), what an operator does to an account (`account_admin`), verified
//! addresses (`verification`), what the owner does to the account itself (`account/`:
//! a new address, the data export) and the account's activity log (`activity`).
//! Nothing here imports the edge.
//!
//! This file: the app's long-lived parts (settings, store, accounts, hasher, mailer,
//! metrics) as one borrowed bundle, `Services`: a handler takes one `Services` instead
//! of six `&State<_>`, and a service takes the same bundle whoever calls it; and
//! `ServiceError`, what a service fails with.

pub mod account;
pub mod account_admin;
pub mod activity;
pub mod oidc;
pub mod passkeys;
pub mod return_to;
pub mod second_factor;
pub mod sessions;
pub mod signin;
pub mod verification;

use rocket::http::Status;
use rocket::outcome::Outcome;
use rocket::request::{self, FromRequest, Request};

use crate::accounts::{AccountError, Accounts, HashError, Hasher};
use crate::config::Settings;
use crate::mail::Mailer;
use crate::store::{Store, StoreError};
use crate::support::metrics::Metrics;

#[derive(Clone, Copy)]
pub struct Services<'r> {
    pub settings: &'r Settings,
    pub store: &'r Store,
    pub accounts: &'r Accounts,
    pub hasher: &'r Hasher,
    pub mailer: &'r Mailer,
    pub metrics: &'r Metrics,
}

/// The same services owned, for work that outlives the request (a background task).
#[derive(Clone)]
pub struct OwnedServices {
    pub settings: Settings,
    pub store: Store,
    pub accounts: Accounts,
    pub hasher: Hasher,
    pub mailer: Mailer,
    pub metrics: Metrics,
}

impl Services<'_> {
    pub fn owned(self) -> OwnedServices {
        OwnedServices {
            settings: self.settings.clone(),
            store: self.store.clone(),
            accounts: self.accounts.clone(),
            hasher: self.hasher.clone(),
            mailer: self.mailer.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

impl OwnedServices {
    pub fn borrow(&self) -> Services<'_> {
        Services {
            settings: &self.settings,
            store: &self.store,
            accounts: &self.accounts,
            hasher: &self.hasher,
            mailer: &self.mailer,
            metrics: &self.metrics,
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Services<'r> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ()> {
        let rocket = req.rocket();
        match (
            rocket.state::<Settings>(),
            rocket.state::<Store>(),
            rocket.state::<Accounts>(),
            rocket.state::<Hasher>(),
            rocket.state::<Mailer>(),
            rocket.state::<Metrics>(),
        ) {
            (
                Some(settings),
                Some(store),
                Some(accounts),
                Some(hasher),
                Some(mailer),
                Some(metrics),
            ) => Outcome::Success(Services {
                settings,
                store,
                accounts,
                hasher,
                mailer,
                metrics,
            }),
            // Every stage attaches its state before the server listens.
            _ => Outcome::Error((Status::InternalServerError, ())),
        }
    }
}

/// A service could not finish its work: the store, the account database or the
/// hasher failed. The cause is kept for the log; a request answers 503 or 500.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("the session store is unavailable")]
    Store(#[from] StoreError),
    #[error("the account database failed")]
    Accounts(#[from] AccountError),
    #[error("password hashing failed")]
    Hash(#[from] HashError),
}
