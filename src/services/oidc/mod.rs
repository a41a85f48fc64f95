//! The OpenID Connect provider's services (ARCHITECTURE.md, "Request flows"
//! and "Decisions"): the keyring, registered apps and client authentication, codes, app
//! sessions and their tokens. The pages and endpoints are in `web::oauth` and
//! `api::oauth`; the operator's commands in `cli`.

pub mod claims;
pub mod clients;
pub mod grants;
pub mod keys;
pub mod logout;
pub mod reauth;
pub mod revocation;

pub use keys::Keyring;
