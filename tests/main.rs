//! Every integration test, in one binary: one link of the app instead of one per file.
//! Each module is one user-facing area; `support` is the one harness they share (its
//! fixtures start at `TestApp`).
//!
//! Run one area with `cargo test --test main auth::`, one test by (part of) its name.

mod support;

mod accessibility;
mod account_delete;
mod accounts;
mod activity;
mod addresses;
mod api;
mod auth;
mod browser;
mod connections;
mod cookies;
mod databases;
mod devices;
mod email_change;
mod failure;
mod faults;
mod forms;
mod forward;
mod hashing;
mod instances;
mod limits;
mod lockout;
mod metrics;
mod oauth_ends;
mod oidc;
mod oidc_hardening;
mod oidc_two_step;
mod operator;
mod passkeys;
mod passwords;
mod proxies;
mod reset;
mod second_factor;
mod store_behaviour;
mod two_step;
mod verify;
