//! Hardening III (issue 22), the OpenID Connect provider as an attacker tried it, over
//! real sockets against the server binary.

use serde_json::Value;

use crate::support::*;

fn assert_invalid_grant(status: u16, v: &Value) {
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
}

/// Issue 22, item 1: anyone can make an app redeem codes of their choosing (its own
/// callback with `?code=junk`), and refreshes of app sessions a user ended answer
/// invalid_grant. Those answers used to count against the app server's address, so 20
/// of them gave every app on that host 429 for 15 minutes. A code or refresh token is
/// 256 bits: nothing is gained by throttling them.
#[tokio::test]
async fn bogus_codes_an_app_is_made_to_redeem_never_lock_any_app_out() {
    let p = Provider::start(Database::Sqlite).await;
    let wiki = p.registered_app("Wiki", &[]);
    let blog = p.registered_app("Blog", &[]);
    let (mut jar, _) = p.signed_in_jar();
    let ended = tokens_for(&p, &mut jar, &wiki, "openid offline_access");
    let (status, _, _) = revoke(&p, As::Basic(&wiki), &field(&ended, "refresh_token"));
    assert_eq!(status, 200);
    for i in 0..30 {
        let junk = format!("{}.{}", uuid::Uuid::now_v7(), "A".repeat(43));
        let (status, v) = if i % 3 == 0 {
            let (s, v, _) = p.token(
                Some(&wiki),
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &field(&ended, "refresh_token")),
                ],
            );
            (s, v)
        } else {
            exchange(&p, &wiki, if i % 3 == 1 { "junk" } else { &junk }, VERIFIER)
        };
        assert_invalid_grant(status, &v);
    }
    // Both apps still redeem their users' codes from that address.
    for app in [&wiki, &blog] {
        let code = code_for(&p, &mut jar, app, "openid");
        let (status, v) = exchange(&p, app, &code, VERIFIER);
        assert_eq!(status, 200, "{v}");
    }
}

/// A failed client authentication is what can be guessed: it counts per client id and
/// per address (`login_limit_ip` in `login_limit_window`, 3 here). Past either quota a
/// failing call answers 429 with `Retry-After`; a client that proves itself is never
/// counted or refused, so one app's failures (or an attacker's) never stop another app,
/// nor the app itself.
#[tokio::test]
async fn failed_client_authentication_counts_per_client_and_address_and_never_refuses_a_client_that_proves_itself(
) {
    let p = Provider::start_with(Database::Sqlite, |app| app.set("login_limit_ip", 3)).await;
    let wiki = p.registered_app("Wiki", &[]);
    let blog = p.registered_app("Blog", &[]);
    let wrong = |app: &RegisteredApp| RegisteredApp {
        secret: Some("x".repeat(43)),
        ..app.clone()
    };
    let revoke_from = |from: &str, app: &RegisteredApp| {
        let basic = basic_credentials(app);
        let r = p.server.request_from(
            from,
            "POST",
            "/oauth2/revoke",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Authorization", &basic),
            ],
            "token=t",
        );
        let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        (r.status, v, r)
    };
    for _ in 0..3 {
        let (status, v, _) = revoke_from("127.0.0.1", &wrong(&wiki));
        assert_eq!((status, v["error"].as_str()), (401, Some("invalid_client")));
    }
    let (status, v, r) = revoke_from("127.0.0.1", &wrong(&wiki));
    assert_eq!(
        (status, v["error"].as_str()),
        (429, Some("too_many_requests")),
        "{v}"
    );
    let wait: u64 = r
        .header("retry-after")
        .and_then(|h| h.parse().ok())
        .expect("Retry-After in seconds");
    assert!(wait >= 1, "{wait}");
    // From that address, both apps with their own secrets are served.
    for app in [&wiki, &blog] {
        let (status, _, r) = revoke_from("127.0.0.1", app);
        assert_eq!(status, 200, "{}", r.body);
    }
    // Per client: Wiki's failures are counted wherever they come from...
    let (status, v, _) = revoke_from("127.0.0.2", &wrong(&wiki));
    assert_eq!(
        (status, v["error"].as_str()),
        (429, Some("too_many_requests")),
        "{v}"
    );
    // ...and Blog's are its own.
    let (status, v, _) = revoke_from("127.0.0.2", &wrong(&blog));
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("invalid_client")),
        "{v}"
    );
    // Per address: made-up clients from one address fill its quota.
    for _ in 0..2 {
        let made_up = RegisteredApp {
            id: unique("nobody"),
            secret: Some("y".repeat(43)),
        };
        let (status, _, _) = revoke_from("127.0.0.3", &made_up);
        assert_eq!(status, 401);
    }
    let (status, _, _) = revoke_from("127.0.0.3", &wrong(&blog));
    assert_eq!(status, 401, "Blog's second failure, the address's third");
    let (status, v, _) = revoke_from("127.0.0.3", &wrong(&blog));
    assert_eq!(
        (status, v["error"].as_str()),
        (429, Some("too_many_requests")),
        "{v}"
    );
    let (status, _, r) = revoke_from("127.0.0.3", &blog);
    assert_eq!(status, 200, "{}", r.body);
}
