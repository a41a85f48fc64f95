//! Health for people and load balancers:
//! - `GET /health`: 200 when Redis (or the embedded store) and the database answer,
//!   503 naming what failed otherwise;
//! - `GET /health/live`: 200 while the process serves requests (a liveness probe:
//!   restart me only when this fails);
//! - `GET /health/ready`: 200 when this instance can serve (the database answers, and
//!   Redis answers or, on a Redis Cluster, live masters serve most slots), else 503
//!   (a readiness probe: send me traffic only when this passes). A cluster with a
//!   master down is still ready, and the JSON lists the slots no master serves.

use rocket::fairing::AdHoc;
use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{get, routes, State};
use serde_json::{json, Value};

use crate::accounts::Accounts;
use crate::store::Store;

fn describe(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "unavailable"
    }
}

fn answer(ok: bool, body: Value) -> (Status, Json<Value>) {
    let status = if ok {
        Status::Ok
    } else {
        Status::ServiceUnavailable
    };
    (status, Json(body))
}

#[get("/health")]
async fn health(store: &State<Store>, accounts: &State<Accounts>) -> (Status, Json<Value>) {
    let (store_ok, db_ok) = tokio::join!(store.ping(), accounts.ping());
    let all_ok = store_ok.is_ok() && db_ok.is_ok();
    let body = json!({
        "status": describe(all_ok),
        "store": { "backend": store.backend_name(), "status": describe(store_ok.is_ok()) },
        "database": { "status": describe(db_ok.is_ok()) },
    });
    answer(all_ok, body)
}

#[get("/health/live")]
fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Slots a cluster may have without a master and still be ready: fewer than half.
const MOST_SLOTS: u32 = crate::store::CLUSTER_SLOTS as u32 / 2;

#[get("/health/ready")]
async fn ready(store: &State<Store>, accounts: &State<Accounts>) -> (Status, Json<Value>) {
    let (store_state, db_ok) = tokio::join!(store.readiness(), accounts.ping());
    let db_ok = db_ok.is_ok();
    let mut store_json = json!({ "backend": store.backend_name() });
    let store_ok = match &store_state {
        Ok(down) => {
            let missing: u32 = down.iter().map(|(a, b)| u32::from(b - a) + 1).sum();
            if store.is_cluster() {
                store_json["slots_down"] =
                    json!(down.iter().map(|(a, b)| [a, b]).collect::<Vec<_>>());
                store_json["slots_served"] =
                    json!(u32::from(crate::store::CLUSTER_SLOTS) - missing);
            }
            missing < MOST_SLOTS
        }
        Err(_) => false,
    };
    store_json["status"] = json!(match (&store_state, store_ok) {
        (Ok(down), true) if !down.is_empty() => "degraded",
        (_, ok) => describe(ok),
    });
    let all_ok = store_ok && db_ok;
    let body = json!({
        "status": describe(all_ok),
        "store": store_json,
        "database": { "status": describe(db_ok) },
    });
    answer(all_ok, body)
}

pub fn stage() -> AdHoc {
    AdHoc::on_ignite("Health", |rocket| async {
        rocket.mount("/", routes![health, live, ready])
    })
}
