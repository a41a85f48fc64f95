//! The JSON API under `/api/v1`.

use rocket::fairing::AdHoc;

pub fn stage() -> AdHoc {
    AdHoc::on_ignite("API", |rocket| async { rocket })
}
