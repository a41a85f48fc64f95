//! The JSON API under `/api/v1`: the token endpoint (`token.rs`), the Bearer guard
//! (`guard.rs`), the signed-in routes (`account.rs`) and what the API adds to the app's
//! error answers: OAuth codes and the Bearer challenge (`error.rs`); and the OpenID
//! Connect provider's machine endpoints (`oauth.rs`: discovery, JWKS, token, userinfo;
//! `oauth_ends.rs`: revocation and introspection). Access tokens themselves live in
//! `crate::services::sessions::access_tokens`, signing in in `crate::services::signin`.

mod account;
mod error;
mod guard;
pub mod oauth;
pub mod oauth_ends;
mod token;

use rocket::fairing::AdHoc;
use rocket::{routes, Route};

pub use self::account::OPENAPI;
pub use self::error::ApiError;
pub use self::guard::{ApiSession, AuthFailure};
use crate::config::Settings;
use crate::services::sessions::access_tokens::AccessTokens;

/// Where the API is mounted.
pub const BASE: &str = "/api/v1";

pub fn routes() -> Vec<Route> {
    routes![
        token::token,
        account::me,
        account::list,
        account::revoke,
        account::revoke_others,
        account::logout,
        account::activity,
        account::openapi,
    ]
}

pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("API", |rocket| async move {
        let Some(tokens) = rocket.state::<Settings>().map(AccessTokens::new) else {
            tracing::error!("the API needs the settings stage first");
            return Err(rocket);
        };
        Ok(rocket
            .manage(tokens)
            .mount(BASE, routes())
            // A 401 under /api carries the Bearer challenge; every other status under
            // /api answers JSON through the app's catcher (`crate::http::error`).
            .register("/api", error::catchers()))
    })
}
