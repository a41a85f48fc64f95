//! The devices page: several browsers, signing one out from another.

use crate::support::*;
use rocket::http::Status;

#[tokio::test]
async fn every_signed_in_browser_is_listed_newest_activity_first() {
    let app = TestApp::new();
    // Signed in on Firefox (the harness's user agent) when it registered.
    let email = app.account().await;
    let iphone = app
        .browser()
        .await
        .with_agent(SAFARI_IOS)
        .with_ip("198.51.100.7");
    iphone.login(&email, PASSWORD).await;

    let page = iphone.get("/devices").await;

    assert_eq!(page.status, Status::Ok);
    let safari = page
        .body
        .find("Safari on iOS")
        .expect("the iPhone is listed");
    let ff = page
        .body
        .find("Firefox on Linux")
        .expect("Firefox is listed");
    assert!(safari < ff, "the most recently active device comes first");
    assert!(page.body.contains("198.51.100.7"));
    assert!(page.body.contains("This device"));
    assert!(page.body.contains("just now"));
    assert!(page.body.contains("Sign out all other devices"));
    // The current device has no sign-out button of its own: one revoke form.
    assert_eq!(iphone.device_ids().await.len(), 1);
}

#[tokio::test]
async fn signing_out_another_device_ends_it_at_once() {
    let app = TestApp::new();
    let (laptop, email) = app.signed_in_browser().await;
    let phone = app.browser().await.with_agent(SAFARI_IOS);
    phone.login(&email, PASSWORD).await;
    assert!(phone.is_signed_in().await);

    let ids = laptop.device_ids().await;
    assert_eq!(ids.len(), 1);
    let token = laptop.get("/devices").await.csrf();
    let res = laptop
        .post_form(&format!("/devices/{}/revoke", ids[0]), &token, &[])
        .await;

    assert_eq!(res.status, Status::SeeOther);
    assert_eq!(res.location.as_deref(), Some("/devices"));
    assert!(
        !phone.is_signed_in().await,
        "the phone's next request is signed out"
    );
    assert_eq!(
        phone.get("/devices").await.location.as_deref(),
        Some("/login?next=/devices")
    );
    // The notice shows once, on the next page.
    assert!(laptop
        .get("/devices")
        .await
        .body
        .contains("has been signed out"));
    assert!(laptop.is_signed_in().await);
}

#[tokio::test]
async fn someone_elses_session_id_is_not_found_and_ends_nothing() {
    let app = TestApp::new();
    let (alice, _) = app.signed_in_browser().await;
    let (bob, alice_phone_email) = app.signed_in_browser().await;
    let bob_phone = app.browser().await.with_agent(SAFARI_IOS);
    bob_phone.login(&alice_phone_email, PASSWORD).await;
    let bobs_ids = bob.device_ids().await;
    assert_eq!(bobs_ids.len(), 1);

    let token = alice.get("/devices").await.csrf();
    let res = alice
        .post_form(&format!("/devices/{}/revoke", bobs_ids[0]), &token, &[])
        .await;

    assert_eq!(res.status, Status::NotFound);
    assert!(bob_phone.is_signed_in().await);
    assert!(bob.is_signed_in().await);
    // Made-up and malformed ids are just as unknown.
    for id in [
        "0123456789abcdef0123456789abcdef",
        "nope",
        "..%2F..%2Fetc",
        &"f".repeat(500),
    ] {
        let res = alice
            .post_form(&format!("/devices/{id}/revoke"), &token, &[])
            .await;
        assert_eq!(res.status, Status::NotFound, "{id}");
    }
    assert!(alice.is_signed_in().await);
}

#[tokio::test]
async fn signing_out_all_other_devices_keeps_this_one() {
    let app = TestApp::new();
    let (me, email) = app.signed_in_browser().await;
    let mut others = Vec::new();
    for ua in [SAFARI_IOS, CHROME_WINDOWS, FIREFOX_LINUX] {
        let b = app.browser().await.with_agent(ua);
        b.login(&email, PASSWORD).await;
        others.push(b);
    }
    assert_eq!(me.device_ids().await.len(), 3);

    let token = me.get("/devices").await.csrf();
    let res = me.post_form("/devices/revoke-others", &token, &[]).await;

    assert_eq!(res.status, Status::SeeOther);
    assert!(me
        .get("/devices")
        .await
        .body
        .contains("Signed out 3 other devices"));
    for b in &others {
        assert!(!b.is_signed_in().await);
    }
    assert!(me.is_signed_in().await);
    assert!(me.device_ids().await.is_empty());
}

#[tokio::test]
async fn a_signed_out_browser_posting_a_devices_form_goes_to_sign_in() {
    let app = TestApp::new();
    let b = app.browser().await;
    let token = b.get("/login").await.csrf();
    let res = b.post_form("/devices/revoke-others", &token, &[]).await;
    assert_eq!(res.status, Status::SeeOther);
    assert_eq!(res.location.as_deref(), Some("/login"));
}

#[tokio::test]
async fn the_oldest_idle_session_ends_past_the_cap() {
    let app = TestApp::new().set("max_sessions_per_user", 3);
    let (first, email) = app.signed_in_browser().await;
    // Make the first session the least recently used by a clear margin.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut rest = Vec::new();
    for _ in 0..3 {
        let b = app.browser().await;
        b.login(&email, PASSWORD).await;
        rest.push(b);
    }

    assert!(
        !first.is_signed_in().await,
        "the least recently used session was ended"
    );
    for b in &rest {
        assert!(b.is_signed_in().await);
    }
    assert_eq!(rest[0].device_ids().await.len(), 2);
}

#[tokio::test]
async fn the_store_never_holds_the_cookie_secret() {
    let app = TestApp::new();
    let (b, _) = app.signed_in_browser().await;
    let cookie = b.session_cookie().expect("cookie");
    let secret = cookie.split_once('.').expect("UID.TOKEN").1.to_string();

    let mut conn = redis_conn().await;
    let keys = keys_under(&app.prefix).await;
    assert!(!keys.is_empty());
    for key in keys {
        assert!(!key.contains(&secret));
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let dump: Vec<String> = match kind.as_str() {
            "hash" => redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "zset" => redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "string" => vec![redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap()],
            _ => vec![],
        };
        for v in dump {
            assert!(!v.contains(&secret), "{key} holds the cookie secret");
        }
    }
}

/// A user agent that is not a known browser gives its program's name as the label;
/// this one hides a right-to-left override and a zero-width joiner in it.
const SPOOFING_AGENT: &str = "invoice\u{202E}fdp.exe\u{200D}/1.0 (\u{2066}x)";
/// Invisible characters that change how the text around them reads.
const INVISIBLE: [char; 6] = [
    '\u{202E}', '\u{200D}', '\u{200B}', '\u{2066}', '\u{2069}', '\u{FEFF}',
];

fn assert_no_invisible(text: &str, place: &str) {
    for c in INVISIBLE {
        assert!(
            !text.contains(c),
            "{place} shows U+{:04X}: {text:?}",
            c as u32
        );
        let utf8 = c.to_string();
        let qp: String = utf8.bytes().map(|b| format!("={b:02X}")).collect();
        assert!(!text.contains(&qp), "{place} carries {qp}");
    }
}

/// Issue 22, item 3: the rule `client_name` follows (no bidi, zero-width or other
/// control or format characters, at most 64 printable characters) holds for every
/// label a client supplies, the User-Agent included: on `/devices`, in
/// `GET /api/v1/sessions`, in `latchkey users sessions` and in the new-device mail.
#[tokio::test]
async fn a_user_agent_cannot_spoof_the_device_label_anywhere_it_is_shown() {
    let smtp = SmtpServer::start();
    let app = TestApp::new().set("smtp_url", smtp.url());
    let email = app.account().await;
    let spoofer = app
        .browser()
        .await
        .with_agent(SPOOFING_AGENT)
        .with_ip("198.51.100.66");
    assert_eq!(
        spoofer.login(&email, PASSWORD).await.status,
        Status::SeeOther
    );
    let long = app
        .browser()
        .await
        .with_agent(&format!("{}/2.0", "\u{200B}w".repeat(50)))
        .with_ip("198.51.100.67");
    assert_eq!(long.login(&email, PASSWORD).await.status, Status::SeeOther);

    let page = spoofer.get("/devices").await;
    assert!(page.body.contains("invoicefdp.exe"), "{}", page.body);
    assert_no_invisible(&page.body, "/devices");

    let tokens = password_grant(&spoofer, &email, None).await;
    let listed = bearer(
        &spoofer,
        rocket::http::Method::Get,
        "/api/v1/sessions",
        &tokens.access,
    )
    .await;
    assert_eq!(listed.status, Status::Ok, "{}", listed.body);
    let labels: Vec<String> = listed
        .json
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["label"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(labels.iter().any(|l| l == "invoicefdp.exe"), "{labels:?}");
    assert!(labels.iter().all(|l| l.chars().count() <= 64), "{labels:?}");
    assert_no_invisible(&listed.body, "GET /api/v1/sessions");

    let run = app.cli(&["users", "sessions", &email]);
    let out = run.ok();
    assert!(out.contains("invoicefdp.exe"), "{out}");
    assert_no_invisible(out, "latchkey users sessions");

    let mail = wait_for_mail_saying(&smtp.received(), "198.51.100.66").await;
    assert!(mail.contains("invoicefdp.exe"), "{mail}");
    assert_no_invisible(&mail, "the new-device mail");
}
