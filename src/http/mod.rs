//! What every face of the app shares at the HTTP edge: the one table of error answers
//! (`error`), what a request says about its client (`request`: `ClientIp`,
//! `RequestOrigin`), `GET /health` (`health`) and `GET /metrics` with the fairing
//! that counts answers (`exporter`).

pub mod error;
pub mod exporter;
pub mod health;
pub mod request;
