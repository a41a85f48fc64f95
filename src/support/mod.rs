//! Foundations with no state of their own and no knowledge of the app's services:
//! the clock (`clock`), six-digit one-time codes (`codes`), random secrets and keyed hashes (`crypto`), an error's cause
//! chain on one log line (`report`), whether a request's client still waits
//! (`presence`), device labels from user agents (`device_label`), validated input
//! (`input`: `Email`, `NewPassword`, `Label`), the list of common and breached
//! passwords (`common_passwords`) and the app's Prometheus metrics (`metrics`).
//! Everything above may import these; they import nothing of the app.

pub mod clock;
pub mod codes;
pub mod common_passwords;
pub mod crypto;
pub mod device_label;
pub mod input;
pub mod metrics;
pub mod presence;
pub mod report;
