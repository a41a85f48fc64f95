//! `GET /metrics` (Prometheus text, behind `metrics_token`: compared in constant time,
//! failed scrapes counted against the address) and the fairing that counts every
//! answered request by route and status. The metrics themselves are
//! `crate::support::metrics`; this stage makes the app's registry and manages it before the
//! store and accounts stages, which record into it.

use rocket::fairing::{AdHoc, Fairing, Info, Kind};
use rocket::http::{ContentType, Status};
use rocket::request::Request;
use rocket::response::{self, Responder};
use rocket::{get, routes, Response, State};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::AppError;
use super::request::{AuthorizationHeader, ClientIp};
use crate::services::signin::limits;
use crate::services::Services;
use crate::support::metrics::Metrics;
use crate::support::report::Report;

/// Whether `presented` is the metrics token, in constant time whatever the lengths:
/// SHA-256 of both, then compared (`ct_eq` of the raw strings returns at once when the
/// lengths differ, which would tell a guesser the token's length).
fn token_matches(presented: &str, expected: &str) -> bool {
    let presented = Sha256::digest(presented.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    bool::from(presented.ct_eq(&expected))
}

/// What `/metrics` answers instead of the metrics: a bare status (404, 401, 500,
/// through the catcher as before), or an error that carries more (429 with
/// `Retry-After`, 503).
enum Refused {
    Status(Status),
    App(AppError),
}

impl<'r> Responder<'r, 'static> for Refused {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        match self {
            Refused::Status(status) => Err(status),
            Refused::App(e) => e.respond_to(req),
        }
    }
}

/// `GET /metrics`: unset `metrics_token` → 404 (the route does not exist); else the
/// scrape counts against the address's failure quota (`limits::metrics_scrape`,
/// as a sign-in does: a full one answers 429 with `Retry-After`, the right token
/// included), and a missing or wrong `Authorization: Bearer` answers 401 and stays
/// counted. A right one is taken back.
#[get("/metrics")]
async fn metrics(
    s: Services<'_>,
    ip: ClientIp,
    authorization: AuthorizationHeader,
    metrics: &State<Metrics>,
) -> Result<(ContentType, String), Refused> {
    let Some(token) = s.settings.server.metrics_token.as_ref() else {
        return Err(Refused::Status(Status::NotFound));
    };
    let attempt = limits::metrics_scrape(s.store, &s.settings.limits, &ip.text())
        .await
        .map_err(|e| Refused::App(e.into()))?
        .map_err(|t| Refused::App(t.into()))?;
    let presented = authorization
        .0
        .as_deref()
        .and_then(|h| h.strip_prefix("Bearer "));
    if !presented.is_some_and(|p| token_matches(p, token.expose_secret())) {
        return Err(Refused::Status(Status::Unauthorized));
    }
    attempt.succeeded(s.store).await;
    match metrics.render() {
        Ok(text) => Ok((
            ContentType::new("text", "plain").with_params(("version", "0.0.4")),
            text,
        )),
        Err(e) => {
            tracing::error!("metrics could not be rendered: {}", Report(&e));
            Err(Refused::Status(Status::InternalServerError))
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

#[cfg(test)]
mod tests {
    use super::token_matches;

    #[test]
    fn only_the_token_itself_matches() {
        let token = "0123456789abcdef0123456789abcdef";
        assert!(token_matches(token, token));
        for other in [
            "",
            "0123456789abcdef",
            &format!("{token}0"),
            &token.to_uppercase(),
        ] {
            assert!(!token_matches(other, token), "{other}");
        }
    }
}
