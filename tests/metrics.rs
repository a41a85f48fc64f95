//! `GET /metrics`: hidden without `metrics_token`, refused without the right bearer,
//! and counting exactly what happened (each app has its own registry).

use rocket::http::{Method, Status};

use crate::support::*;

const TOKEN: &str = "scrape-me-3f9a1c-0b7d2e94c5a8f613";

/// The value of the sample line `series` (`name{labels}` exactly as printed), 0 when
/// it is not there yet.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a number"))
        .unwrap_or(0.0)
}

/// A scrape from `b`'s own address (the API helpers all come from one).
async fn scrape_with(b: &Browser, token: &str) -> Page {
    let auth = format!("Bearer {token}");
    b.get_with("/metrics", &[("Authorization", &auth)]).await
}

async fn scrape(b: &Browser) -> String {
    let page = bearer(b, Method::Get, "/metrics", TOKEN).await;
    assert_eq!(page.status, Status::Ok, "{}", page.body);
    assert!(page
        .header("Content-Type")
        .is_some_and(|c| c.starts_with("text/plain")));
    page.body
}

#[tokio::test]
async fn without_a_token_setting_metrics_do_not_exist() {
    let b = TestApp::new().browser().await;
    assert_eq!(b.get("/metrics").await.status, Status::NotFound);
    let guessed = bearer(&b, Method::Get, "/metrics", "").await;
    assert_eq!(guessed.status, Status::NotFound);
}

#[tokio::test]
async fn a_missing_or_wrong_bearer_is_refused() {
    let b = TestApp::new().set("metrics_token", TOKEN).browser().await;
    assert_eq!(b.get("/metrics").await.status, Status::Unauthorized);
    for wrong in [
        "scrape-me",
        "scrape-me-3f9a1c-0b7d2e94c5a8f6130",
        "SCRAPE-ME-3F9A1C-0B7D2E94C5A8F613",
        "",
    ] {
        let page = bearer(&b, Method::Get, "/metrics", wrong).await;
        assert_eq!(page.status, Status::Unauthorized, "{wrong:?}");
        assert!(!page.body.contains("latchkey_"), "nothing leaks: {wrong:?}");
    }
    let basic = request(
        &b,
        Method::Get,
        "/metrics",
        Some(&format!("Basic {TOKEN}")),
        None,
    )
    .await;
    assert_eq!(basic.status, Status::Unauthorized);
}

#[tokio::test]
async fn counters_move_by_what_happened() {
    let b = TestApp::new()
        .set("metrics_token", TOKEN)
        .set("login_limit_account", 3)
        .browser()
        .await;
    let before = scrape(&b).await;
    let email = email();
    b.register(&email).await;
    b.sign_out().await;
    for _ in 0..2 {
        assert_eq!(
            b.login(&email, "wrong password!").await.status,
            Status::Unauthorized
        );
    }
    assert_eq!(b.login(&email, PASSWORD).await.status, Status::SeeOther);
    b.sign_out().await;
    // The two failures still count (a success takes back only its own attempt): a
    // third fills the quota of 3 and a fourth is throttled.
    assert_eq!(
        b.login(&email, "wrong password!").await.status,
        Status::Unauthorized
    );
    assert_eq!(
        b.login(&email, "wrong password!").await.status,
        Status::TooManyRequests
    );
    let after = scrape(&b).await;

    let moved = |series: &str| sample(&after, series) - sample(&before, series);
    assert_eq!(moved("latchkey_sign_ins_total{outcome=\"ok\"}"), 1.0);
    assert_eq!(moved("latchkey_sign_ins_total{outcome=\"wrong\"}"), 3.0);
    assert_eq!(moved("latchkey_sign_ins_total{outcome=\"throttled\"}"), 1.0);
    assert_eq!(
        moved("latchkey_sessions_started_total"),
        2.0,
        "register and sign-in"
    );
    assert_eq!(moved("latchkey_sessions_ended_total"), 2.0, "the sign-outs");
    assert_eq!(
        moved("latchkey_http_requests_total{route=\"/login\",status=\"401\"}"),
        3.0
    );
    assert_eq!(
        moved("latchkey_http_requests_total{route=\"/login\",status=\"429\"}"),
        1.0
    );
    assert_eq!(
        moved("latchkey_http_requests_total{route=\"/metrics\",status=\"200\"}"),
        1.0,
        "the first scrape (the second is counted after it answered)"
    );
    // One hash for the account, one verification per sign-in that got past the limiter.
    assert_eq!(moved("latchkey_argon2_queue_wait_seconds_count"), 5.0);
    // Every request here made store calls: the limiter, sessions, the session check.
    assert!(
        moved("latchkey_store_call_seconds_count") >= 10.0,
        "{after}"
    );
    assert!(after.contains("latchkey_store_call_seconds_bucket{le=\"0.0001\"}"));
}

#[tokio::test]
async fn each_app_counts_only_its_own_requests() {
    let app = TestApp::new().set("metrics_token", TOKEN);
    let (a, b) = (app.browser().await, app.browser().await);
    for _ in 0..3 {
        a.get("/login").await;
    }
    let (on_a, on_b) = (scrape(&a).await, scrape(&b).await);
    let series = "latchkey_http_requests_total{route=\"/login\",status=\"200\"}";
    assert_eq!(sample(&on_a, series), 3.0, "{on_a}");
    assert_eq!(sample(&on_b, series), 0.0);
}

/// Issue 22, also seen: a failed scrape is a guess at the token, counted against the
/// address like a failed sign-in (`login_limit_ip` per `login_limit_window`, 3 here):
/// past it the address is answered 429 with `Retry-After`, the right token included,
/// until the window has room; other addresses scrape as before.
#[tokio::test]
async fn failed_scrapes_are_counted_against_the_address() {
    let app = TestApp::new()
        .set("metrics_token", TOKEN)
        .set("login_limit_ip", 3);
    let guesser = app.browser().await.with_ip("203.0.113.99");
    let wrong = format!("{}x", &TOKEN[..TOKEN.len() - 1]);
    for _ in 0..3 {
        let page = scrape_with(&guesser, &wrong).await;
        assert_eq!(page.status, Status::Unauthorized);
    }
    let page = scrape_with(&guesser, &wrong).await;
    assert_eq!(page.status, Status::TooManyRequests, "{}", page.body);
    assert!(page
        .header("Retry-After")
        .and_then(|s| s.parse::<u64>().ok())
        .is_some_and(|s| s >= 1));
    let page = scrape_with(&guesser, TOKEN).await;
    assert_eq!(page.status, Status::TooManyRequests, "the address waits");
    assert!(!page.body.contains("latchkey_"));
    let prometheus = app.browser().await.with_ip("192.0.2.9");
    let page = scrape_with(&prometheus, TOKEN).await;
    assert_eq!(page.status, Status::Ok, "{}", page.body);
    assert!(page.body.contains("latchkey_"), "{}", page.body);
}

/// Issue 22, also seen: a token short enough to guess stops the start with one line
/// naming the setting, as any other wrong setting does (and so does a command).
#[test]
fn a_metrics_token_shorter_than_32_characters_stops_the_start_with_one_line() {
    let short = "a".repeat(31);
    let app = TestApp::new().set("metrics_token", &short);
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .envs(app.clone().served_at(spare_port()).env())
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let deadline = std::time::Instant::now() + ANSWER_WITHIN;
    let status = loop {
        if let Some(status) = server.try_wait().expect("its status") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = server.kill();
            let _ = server.wait();
            panic!("the server started with a 31-character metrics_token");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success(), "it must not start");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut server.stderr.take().expect("stderr"), &mut stderr)
        .expect("its stderr");
    // One line says what is wrong (as for every setting; the log lines and Rocket's
    // list of stages that did not start come besides).
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("latchkey: ") && l.contains("metrics_token"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(
        said[0].starts_with("latchkey: invalid setting `metrics_token`: "),
        "{stderr}"
    );
    assert!(said[0].contains("32"), "{stderr}");
    assert!(!stderr.contains(&short), "the token is never printed");
    let run = app.cli(&["users", "list"]);
    assert!(run.refused().contains("`metrics_token`"), "{}", run.stderr);
    let enough = TestApp::new().set("metrics_token", "a".repeat(32));
    assert!(Settings::from_figment(&enough.figment()).is_ok());
}
