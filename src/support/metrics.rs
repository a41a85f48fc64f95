//! What `GET /metrics` reports, in Prometheus text format: one `prometheus::Registry`
//! per app (never the crate's global default registry: the tests run many apps in one
//! process, and each must count only its own requests).
//!
//! Every metric is made and registered once, when the app is built; the hot path only
//! looks a label set up (requests) or bumps a counter or a histogram (atomics).

use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts,
    Registry, TextEncoder,
};

/// The app's metrics; cloning shares them (each metric is a handle).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `latchkey_http_requests_total{route, status}`.
    pub requests: IntCounterVec,
    /// `latchkey_sign_ins_total{outcome}`: `ok`, `wrong`, `throttled`.
    pub sign_ins: IntCounterVec,
    pub store: StoreMetrics,
    /// `latchkey_argon2_queue_wait_seconds`: how long a hash waited for a permit.
    pub argon2_wait: Histogram,
    /// `latchkey_activity_record_failures_total`: activity events that could not be
    /// written (the request they belong to went on).
    pub activity_failures: IntCounter,
}

/// What the store records of its own calls (the store holds a copy).
#[derive(Clone)]
pub struct StoreMetrics {
    /// `latchkey_store_call_seconds`: each store call, answer or error.
    pub call_seconds: Histogram,
    /// `latchkey_sessions_started_total`.
    pub sessions_started: IntCounter,
    /// `latchkey_sessions_ended_total`: ended by a sign-out, a revoke, a password
    /// change or reset, the session cap, a replayed refresh token or a closed account
    /// (not by expiring).
    pub sessions_ended: IntCounter,
}

/// Sign-in outcomes, as the `outcome` label.
#[derive(Clone, Copy)]
pub enum SignInOutcome {
    Ok,
    Wrong,
    Throttled,
}

impl SignInOutcome {
    fn label(self) -> &'static str {
        match self {
            SignInOutcome::Ok => "ok",
            SignInOutcome::Wrong => "wrong",
            SignInOutcome::Throttled => "throttled",
        }
    }
}

/// Seconds from 0.1 ms to about 1.6 s, doubling: a Redis round trip up to the call
/// budget (900 ms); an Argon2 wait from none to a queue of several hashes.
fn buckets() -> Vec<f64> {
    exponential_buckets(0.0001, 2.0, 15).unwrap_or_else(|_| prometheus::DEFAULT_BUCKETS.to_vec())
}

fn histogram(name: &str, help: &str) -> prometheus::Result<Histogram> {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets()))
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let metrics = Metrics {
            requests: IntCounterVec::new(
                Opts::new("latchkey_http_requests_total", "HTTP requests answered"),
                &["route", "status"],
            )?,
            sign_ins: IntCounterVec::new(
                Opts::new("latchkey_sign_ins_total", "Sign-in attempts by outcome"),
                &["outcome"],
            )?,
            store: StoreMetrics {
                call_seconds: histogram("latchkey_store_call_seconds", "Store call latency")?,
                sessions_started: IntCounter::new(
                    "latchkey_sessions_started_total",
                    "Sessions started (browser and API)",
                )?,
                sessions_ended: IntCounter::new(
                    "latchkey_sessions_ended_total",
                    "Sessions ended by the service (sign-out, revoke, password change, cap, account closed)",
                )?,
            },
            argon2_wait: histogram(
                "latchkey_argon2_queue_wait_seconds",
                "Time a password hash waited for an Argon2 permit",
            )?,
            activity_failures: IntCounter::new(
                "latchkey_activity_record_failures_total",
                "Account activity events that could not be written",
            )?,
            registry,
        };
        metrics.register()?;
        Ok(metrics)
    }

    fn register(&self) -> prometheus::Result<()> {
        let r = &self.registry;
        r.register(Box::new(self.requests.clone()))?;
        r.register(Box::new(self.sign_ins.clone()))?;
        r.register(Box::new(self.store.call_seconds.clone()))?;
        r.register(Box::new(self.store.sessions_started.clone()))?;
        r.register(Box::new(self.store.sessions_ended.clone()))?;
        r.register(Box::new(self.argon2_wait.clone()))?;
        r.register(Box::new(self.activity_failures.clone()))?;
        // Every outcome shows from the start, at 0, so a rate can be taken at once.
        for outcome in [
            SignInOutcome::Ok,
            SignInOutcome::Wrong,
            SignInOutcome::Throttled,
        ] {
            self.sign_ins.with_label_values(&[outcome.label()]);
        }
        Ok(())
    }

    pub fn sign_in(&self, outcome: SignInOutcome) {
        self.sign_ins.with_label_values(&[outcome.label()]).inc();
    }

    /// One answered request: `route` is the matched route's path pattern
    /// (`/devices/<id>/revoke`), or `none` when no route matched.
    pub fn request(&self, route: &str, status: u16) {
        self.requests
            .with_label_values(&[route, status_label(status)])
            .inc();
    }

    /// Everything in the registry, as Prometheus text.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut out = Vec::with_capacity(4096);
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

/// A status as a label without formatting a number per request.
fn status_label(code: u16) -> &'static str {
    const KNOWN: [(u16, &str); 24] = [
        (200, "200"),
        (201, "201"),
        (204, "204"),
        (301, "301"),
        (302, "302"),
        (303, "303"),
        (304, "304"),
        (307, "307"),
        (308, "308"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (406, "406"),
        (409, "409"),
        (413, "413"),
        (415, "415"),
        (422, "422"),
        (429, "429"),
        (431, "431"),
        (500, "500"),
        (502, "502"),
        (503, "503"),
    ];
    KNOWN
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, l)| *l)
        .unwrap_or(match code {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_a_label_and_known_ones_are_exact() {
        assert_eq!(status_label(404), "404");
        assert_eq!(status_label(503), "503");
        assert_eq!(status_label(418), "4xx");
        assert_eq!(status_label(599), "5xx");
    }

    #[test]
    fn two_apps_count_apart() {
        let (a, b) = (Metrics::new().unwrap(), Metrics::new().unwrap());
        a.request("/login", 200);
        a.sign_in(SignInOutcome::Wrong);
        let (ta, tb) = (a.render().unwrap(), b.render().unwrap());
        assert!(ta.contains("latchkey_http_requests_total{route=\"/login\",status=\"200\"} 1"));
        assert!(!tb.contains("route=\"/login\""), "{tb}");
        assert!(
            ta.contains("latchkey_sign_ins_total{outcome=\"wrong\"} 1"),
            "{ta}"
        );
        assert!(
            tb.contains("latchkey_sign_ins_total{outcome=\"wrong\"} 0"),
            "{tb}"
        );
    }
}
