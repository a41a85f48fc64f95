//! `GET /metrics` (Prometheus text, behind `metrics_token`) and the fairing that counts
//! every answered request by route and status. The metrics themselves are
//! `crate::support::metrics`; this stage makes the app's registry and manages it before the
//! store and accounts stages, which record into it.

use rocket::fairing::{AdHoc, Fairing, Info, Kind};
use rocket::http::{ContentType, Status};
use rocket::outcome::Outcome;
use rocket::request::{self, FromRequest, Request};
use rocket::{get, routes, Response, State};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::config::Settings;
use crate::support::metrics::Metrics;
use crate::support::report::Report;

/// A request that may read the metrics: it carried `Authorization: Bearer
/// <metrics_token>`. Unset token → 404 (the route does not exist); a missing or wrong
/// one → 401.
pub struct MetricsReader;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for MetricsReader {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ()> {
        let token = req
            .rocket()
            .state::<Settings>()
            .and_then(|s| s.server.metrics_token.as_ref());
        let Some(token) = token else {
            return Outcome::Error((Status::NotFound, ()));
        };
        let presented = req
            .headers()
            .get_one("Authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or("");
        let expected = token.expose_secret().as_bytes();
        if bool::from(presented.as_bytes().ct_eq(expected)) {
            Outcome::Success(MetricsReader)
        } else {
            Outcome::Error((Status::Unauthorized, ()))
        }
    }
}

#[get("/metrics")]
fn metrics(
    _reader: MetricsReader,
    metrics: &State<Metrics>,
) -> Result<(ContentType, String), Status> {
    match metrics.render() {
        Ok(text) => Ok((
            ContentType::new("text", "plain").with_params(("version", "0.0.4")),
            text,
        )),
        Err(e) => {
            tracing::error!("metrics could not be rendered: {}", Report(&e));
            Err(Status::InternalServerError)
        }
    }
}

/// Counts each answer by the route that matched (its path pattern) and its status.
struct CountRequests(Metrics);

#[rocket::async_trait]
impl Fairing for CountRequests {
    fn info(&self) -> Info {
        Info {
            name: "Request counter",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let route = req.route().map(|r| r.uri.path()).unwrap_or("none");
        self.0.request(route, res.status().code);
    }
}

/// Makes the app's registry (before the stages that record into it), counts requests,
/// and mounts `/metrics`.
pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Metrics", |rocket| async {
        match Metrics::new() {
            Ok(metrics) => Ok(rocket
                .attach(CountRequests(metrics.clone()))
                .manage(metrics)
                .mount("/", routes![metrics])),
            Err(e) => {
                tracing::error!("metrics could not be set up: {}", Report(&e));
                Err(rocket)
            }
        }
    })
}
