//! Latchkey: a self-hosted sign-in service. `app()` is the table of contents: each
//! stage attaches one area's state and routes.

// Below the web, the API and the command line: the domain, its services and its
// stores. None of these imports `web`, `api` or `cli`.
pub mod account_admin;
pub mod accounts;
pub mod clock;
pub mod codes;
pub mod config;
pub mod crypto;
pub mod device;
pub mod domain;
pub mod forward;
pub mod limits;
pub mod mail;
pub mod metrics;
pub mod notices;
pub mod oidc;
pub mod presence;
pub mod refresh;
pub mod report;
pub mod second_factor;
pub mod services;
pub mod sessions;
pub mod signin;
pub mod store;
pub mod tokens;
pub mod trusted_devices;
pub mod two_step;

// The edge: what a request says about its client, errors as answers, the two faces
// of the app, the server loop that holds the sockets in front of them; and the
// operator's command line beside them.
pub mod api;
pub mod cli;
pub mod error;
pub mod exporter;
pub mod health;
pub mod request;
pub mod server;
pub mod web;

use rocket::figment::Figment;
use rocket::{Build, Rocket};

/// The app with settings from Rocket.toml and the environment.
pub fn app() -> Rocket<Build> {
    app_with(config::figment())
}

/// The app with the given settings (tests pass their own).
pub fn app_with(figment: Figment) -> Rocket<Build> {
    rocket::custom(figment)
        .attach(config::stage())
        .attach(exporter::stage())
        .attach(store::stage())
        .attach(accounts::stage())
        .attach(second_factor::stage())
        .attach(mail::stage())
        .attach(web::stage())
        .attach(api::stage())
        .attach(api::oauth::stage())
        .attach(api::oauth_ends::stage())
        .attach(health::stage())
}
