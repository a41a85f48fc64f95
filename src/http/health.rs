//! `GET /health`: 200 when Redis (or the embedded store) and the database answer, 503
//! naming what failed otherwise.

use rocket::fairing::AdHoc;
use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{get, routes, State};
use serde_json::{json, Value};

use crate::accounts::Accounts;
use crate::store::Store;

#[get("/health")]
async fn health(store: &State<Store>, accounts: &State<Accounts>) -> (Status, Json<Value>) {
    let (store_ok, db_ok) = tokio::join!(store.ping(), accounts.ping());
    let describe = |ok: bool| if ok { "ok" } else { "unavailable" };
    let all_ok = store_ok.is_ok() && db_ok.is_ok();
    let body = json!({
        "status": describe(all_ok),
        "store": { "backend": store.backend_name(), "status": describe(store_ok.is_ok()) },
        "database": { "status": describe(db_ok.is_ok()) },
    });
    let status = if all_ok {
        Status::Ok
    } else {
        Status::ServiceUnavailable
    };
    (status, Json(body))
}

pub fn stage() -> AdHoc {
    AdHoc::on_ignite("Health", |rocket| async {
        rocket.mount("/", routes![health])
    })
}
