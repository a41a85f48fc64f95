//! Latchkey: a self-hosted sign-in service. `app()` is the table of contents: each
//! stage attaches one area's state and routes.

// Foundations: no state, no knowledge of the app (clock, crypto, input, metrics...).
pub mod support;
// Settings, read and checked once at start.
pub mod config;

// State: what the app keeps and where (Redis or in-process, the account database,
// outgoing mail).
pub mod accounts;
pub mod mail;
pub mod store;

// Services: each sequence written once (sign-in, second factor, sessions, OpenID
// Connect), for every face alike. Nothing here or below imports the edge.
pub mod services;

// The edge: HTTP errors and request facts, the server loop in front of Rocket, the
// pages, the JSON API, and the operator's command line beside them.
pub mod api;
pub mod cli;
pub mod http;
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
        .attach(http::exporter::stage())
        .attach(store::stage())
        .attach(accounts::stage())
        .attach(services::second_factor::stage())
        .attach(mail::stage())
        .attach(services::verification::stage())
        .attach(web::stage())
        .attach(api::stage())
        .attach(api::oauth::stage())
        .attach(api::oauth_ends::stage())
        .attach(http::health::stage())
}
