//! The account's activity log (issue 26): what is recorded from each flow, grouped
//! failures, the bounds, the page, the API and the operator's command, on both
//! databases, and what another account can reach of it (nothing).

use std::time::Duration;

use crate::support::*;
use rocket::http::{Method, Status};
use serde_json::Value;

/// The account's events through the API, newest first (all pages).
async fn events_of(b: &Browser, access: &str) -> Vec<Value> {
    let mut out = vec![];
    let mut path = "/api/v1/activity?limit=100".to_string();
    loop {
        let r = bearer(b, Method::Get, &path, access).await;
        assert_eq!(r.status, Status::Ok, "{}", r.body);
        out.extend(r.json["events"].as_array().cloned().unwrap_or_default());
        match r.json["next"].as_str() {
            Some(next) => path = format!("/api/v1/activity?limit=100&before={next}"),
            None => return out,
        }
    }
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Waits until `cond` holds for the account's events (failures are written after
/// the answer).
async fn wait_for_events(b: &Browser, access: &str, cond: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..100 {
        let events = events_of(b, access).await;
        if cond(&events) {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    events_of(b, access).await
}

/// Sign-ins (browser, API with its own name), a wrong password, a device signed out
/// from another, a password change: each recorded, newest first, in the API's shape.
async fn the_flows_are_recorded_on(db: Database) {
    let app = TestApp::on(db).await;
    let (laptop, email) = app.signed_in_browser().await;
    let laptop_sid = laptop.sid();
    let phone = app.browser().await.with_agent(SAFARI_IOS);
    assert_eq!(phone.login(&email, PASSWORD).await.status, Status::SeeOther);
    let phone_sid = phone.sid();
    let api = app.browser().await;
    let wrong = password_attempt(&api, &email, "not the password").await;
    assert_eq!(wrong.status, Status::Unauthorized);
    let tokens = password_grant(&api, &email, Some("Backup script")).await;

    // The phone is signed out from the laptop's devices page, then the password changes.
    let devices = laptop.get("/devices").await;
    let out = laptop
        .post_form(
            &format!("/devices/{phone_sid}/revoke"),
            &devices.csrf(),
            &[],
        )
        .await;
    assert_eq!(out.status, Status::SeeOther);
    let changed = laptop.change_password(PASSWORD, NEW_PASSWORD).await;
    assert_eq!(changed.status, Status::SeeOther, "{}", changed.body);

    // The API session ended with the password change: read as the laptop's API.
    let api2 = app.browser().await;
    let t2 = Tokens::from(
        &token_form(
            &api2,
            &[
                ("grant_type", "password"),
                ("username", &email),
                ("password", NEW_PASSWORD),
            ],
        )
        .await,
    );
    let events = wait_for_events(&api2, &t2.access, |e| {
        types(e).contains(&"sign_in_failed".to_string())
    })
    .await;
    let kinds = types(&events);
    for expected in [
        "sign_in",
        "sign_in_failed",
        "session_ended",
        "password_changed",
    ] {
        assert!(
            kinds.contains(&expected.to_string()),
            "{expected} in {kinds:?}"
        );
    }
    // Newest first: ids go down.
    let ids: Vec<i64> = events
        .iter()
        .map(|e| e["id"].as_str().unwrap_or("0").parse().unwrap_or(0))
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted);
    // The exact shape.
    for e in &events {
        let keys: Vec<&str> = e.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        let mut keys = keys;
        keys.sort();
        assert_eq!(
            keys,
            ["at", "detail", "id", "ip", "label", "session_id", "type"]
        );
    }
    let find = |kind: &str, detail: &str| {
        events
            .iter()
            .find(|e| e["type"] == kind && e["detail"] == detail)
            .cloned()
            .unwrap_or_else(|| panic!("{kind} {detail} in {events:#?}"))
    };
    let laptop_in = events
        .iter()
        .find(|e| e["type"] == "sign_in" && e["session_id"] == laptop_sid.as_str())
        .expect("the laptop's sign-in");
    assert_eq!(laptop_in["detail"], "password");
    let app_in = events
        .iter()
        .find(|e| e["type"] == "sign_in" && e["session_id"] == tokens.session_id.as_str())
        .expect("the API sign-in");
    assert_eq!(app_in["detail"], "app");
    assert_eq!(app_in["label"], "Backup script");
    let phone_out = find("session_ended", "another_device");
    assert_eq!(phone_out["session_id"], phone_sid.as_str());
    find("session_ended", "password_change");
    assert!(find("sign_in_failed", "password")["ip"]
        .as_str()
        .is_some_and(|ip| !ip.is_empty()));
}

crate::on_both_databases!(the_flows_are_recorded_on);

#[tokio::test]
async fn a_flood_of_wrong_passwords_stays_a_few_rows() {
    let app = TestApp::new();
    let email = app.account().await;
    let attacker = app.browser().await;
    for _ in 0..40 {
        let r = password_attempt(&attacker, &email, "guess guess guess").await;
        assert!(
            r.status == Status::Unauthorized || r.status == Status::TooManyRequests,
            "{}",
            r.status
        );
    }
    let user = app.user(&email).await.expect("the account");
    let accounts = app.accounts().await;
    // Written after each answer: wait for all 40 to land.
    let mut counted = 0;
    for _ in 0..100 {
        let page = activity_page(&accounts, &user).await;
        counted = page
            .iter()
            .filter(|e| e.kind == "sign_in_failed" || e.kind == "locked_out")
            .map(|e| e.count)
            .sum::<i64>();
        if counted >= 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(counted, 40, "every attempt counted");
    let rows = accounts.event_rows(&user.id).await.expect("rows");
    // The registration's sign-in, one row of failures, one of lock-outs (two of each
    // when the hour turned during the test).
    assert!(rows <= 5, "{rows} rows for 40 attempts");
}

#[tokio::test]
async fn the_log_keeps_at_most_its_count_and_nothing_older_than_its_days() {
    let app = TestApp::new().set("activity_max_events", 5);
    let (b, email) = app.signed_in_browser().await;
    let user = app.user(&email).await.expect("the account");
    let accounts = app.accounts().await;
    // An event from 100 days ago (written directly: the clock cannot be turned back).
    let old = activity_event("password_changed");
    accounts
        .record_event(
            &user.id,
            &old,
            now_ms() - 100 * 86_400_000,
            activity_bounds(1000, 0),
        )
        .await
        .expect("written");
    for _ in 0..6 {
        b.sign_out().await;
        assert_eq!(b.login(&email, PASSWORD).await.status, Status::SeeOther);
    }
    let rows = accounts.event_rows(&user.id).await.expect("rows");
    assert_eq!(rows, 5);
    let page = activity_page(&accounts, &user).await;
    assert!(
        page.iter().all(|e| e.kind != "password_changed"),
        "{page:?}"
    );
}

#[tokio::test]
async fn the_api_pages_with_a_cursor_and_refuses_what_is_not_one() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;
    for _ in 0..3 {
        b.sign_out().await;
        b.login(&email, PASSWORD).await;
    }
    let api = app.browser().await;
    let t = password_grant(&api, &email, None).await;
    let first = bearer(&api, Method::Get, "/api/v1/activity?limit=2", &t.access).await;
    assert_eq!(first.status, Status::Ok, "{}", first.body);
    assert_eq!(first.json["events"].as_array().map(Vec::len), Some(2));
    let next = first.json["next"]
        .as_str()
        .expect("a next page")
        .to_string();
    let second = bearer(
        &api,
        Method::Get,
        &format!("/api/v1/activity?limit=2&before={next}"),
        &t.access,
    )
    .await;
    assert_eq!(second.status, Status::Ok);
    let a: Vec<&Value> = first.json["events"].as_array().unwrap().iter().collect();
    let c: Vec<&Value> = second.json["events"].as_array().unwrap().iter().collect();
    assert!(c.iter().all(|e| !a.contains(e)), "pages do not overlap");
    let all = events_of(&api, &t.access).await;
    assert!(all.len() >= 8, "{}", all.len());
    for bad in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "before=abc",
        "before=-3",
        "before=99999999999999999999",
    ] {
        let r = bearer(
            &api,
            Method::Get,
            &format!("/api/v1/activity?{bad}"),
            &t.access,
        )
        .await;
        assert_eq!(r.status, Status::BadRequest, "{bad}: {}", r.body);
    }
    // No token, no activity.
    let r = api.get("/api/v1/activity").await;
    assert_eq!(r.status, Status::Unauthorized);
}

#[tokio::test]
async fn another_account_sees_none_of_the_events_and_cannot_end_the_sessions() {
    let app = TestApp::new();
    let (victim, victim_email) = app.signed_in_browser().await;
    let victim_sid = victim.sid();
    let (mallory, mallory_email) = app.signed_in_browser().await;
    let api = app.browser().await;
    let t = password_grant(&api, &mallory_email, None).await;
    let victim_user = app.user(&victim_email).await.expect("victim");
    let victim_events = activity_page(&app.accounts().await, &victim_user).await;
    let victim_first = victim_events.last().expect("an event").id.clone();

    let mine = events_of(&api, &t.access).await;
    assert!(mine.iter().all(|e| e["session_id"] != victim_sid.as_str()));
    // A cursor above the victim's ids still lists only Mallory's.
    let r = bearer(
        &api,
        Method::Get,
        &format!(
            "/api/v1/activity?before={}",
            victim_first.parse::<i64>().unwrap() + 1
        ),
        &t.access,
    )
    .await;
    assert_eq!(r.status, Status::Ok);
    assert!(r.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["session_id"] != victim_sid.as_str()));

    // The page's sign-out button, aimed at the victim's session: 404, it lives on.
    let page = mallory.get("/account/activity").await;
    assert_eq!(page.status, Status::Ok);
    assert!(!page.body.contains(&victim_sid));
    let r = mallory
        .post_form(&format!("/devices/{victim_sid}/revoke"), &page.csrf(), &[])
        .await;
    assert_eq!(r.status, Status::NotFound);
    assert!(victim.is_signed_in().await);
}

#[tokio::test]
async fn the_page_offers_to_sign_out_each_live_sign_in_and_pages_back() {
    let app = TestApp::new();
    let (laptop, email) = app.signed_in_browser().await;
    let phone = app.browser().await.with_agent(SAFARI_IOS);
    phone.login(&email, PASSWORD).await;
    let phone_sid = phone.sid();
    let page = laptop.get("/account/activity").await;
    assert_eq!(page.status, Status::Ok, "{}", page.body);
    assert!(page.body.contains("Your activity"));
    let action = format!("/devices/{phone_sid}/revoke");
    assert!(page.body.contains(&action), "{}", page.body);
    assert!(page.body.contains("Sign out this device"));
    // Signing the phone out from here ends it and the button goes.
    let r = laptop.post_form(&action, &page.csrf(), &[]).await;
    assert_eq!(r.status, Status::SeeOther);
    assert!(!phone.is_signed_in().await);
    let page = laptop.get("/account/activity").await;
    assert!(!page.body.contains(&action));
    assert!(page.body.contains("Signed out from another device"));
    // A cursor that is not one: 400, not a 500.
    assert_eq!(
        laptop.get("/account/activity?before=nope").await.status,
        Status::BadRequest
    );
    // Signed out: sent to sign in first.
    let stranger = app.browser().await;
    let r = stranger.get("/account/activity").await;
    assert_eq!(r.status, Status::SeeOther);
    assert!(r.location.unwrap_or_default().starts_with("/login"));
}

#[tokio::test]
async fn the_operator_reads_the_log_and_their_sign_outs_are_in_it() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;
    let ended = app.cli(&["users", "end-sessions", &email]);
    ended.ok();
    assert!(!b.is_signed_in().await);
    let lines = app
        .cli(&["users", "--json", "activity", &email])
        .json_lines();
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"session_ended"), "{lines:?}");
    assert_eq!(lines[0]["detail"], "operator");
    assert!(kinds.contains(&"sign_in"));
    let text = app.cli(&["users", "activity", &email]);
    assert!(
        text.ok().contains("Signed out by the operator"),
        "{}",
        text.ok()
    );
    let missing = app.cli(&["users", "activity", "nobody@example.com"]);
    assert!(missing.refused().contains("no account"));
}

#[tokio::test]
async fn two_step_sign_ins_wrong_codes_and_recovery_codes_are_recorded() {
    let app = TestApp::new();
    let (_b, account) = app.two_step_account().await;
    let b = app.browser().await;
    let r = b.password_step(&account.email, "").await;
    assert_eq!(r.status, Status::SeeOther, "{}", r.body);
    let wrong = b.code_step("000000").await;
    assert_ne!(wrong.status, Status::SeeOther);
    let right = b.code_step(&account.recovery[0]).await;
    assert_eq!(right.status, Status::SeeOther, "{}", right.body);
    let user = app.user(&account.email).await.expect("the account");
    let accounts = app.accounts().await;
    let mut kinds = vec![];
    for _ in 0..100 {
        let page = activity_page(&accounts, &user).await;
        kinds = page
            .iter()
            .map(|e| (e.kind.clone(), e.detail.clone()))
            .collect();
        if kinds.iter().any(|(k, _)| k == "sign_in_failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let has = |k: &str, d: &str| kinds.iter().any(|(a, b)| a == k && b == d);
    assert!(has("second_factor_on", ""), "{kinds:?}");
    assert!(has("sign_in_failed", "code"), "{kinds:?}");
    assert!(has("recovery_code_used", "9 left"), "{kinds:?}");
    assert!(has("sign_in", "two_step"), "{kinds:?}");
}

#[tokio::test]
async fn an_address_verified_by_its_mailed_link_or_by_the_operator_is_recorded() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;
    // The registration's mail: its one-click link.
    let mut link = None;
    for _ in 0..200 {
        link = mails_saying(&app.outbox(), "/account/verify/")
            .into_iter()
            .find(|m| m.contains(&format!("To: {email}")))
            .map(|m| {
                let start = m.find("/account/verify/").expect("a link");
                m[start..]
                    .split(|c: char| c.is_whitespace() || c == '"' || c == '<')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            });
        if link.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let link = link.expect("the verification mail");
    b.get(&link).await;
    let user = app.user(&email).await.expect("the account");
    let page = activity_page(&app.accounts().await, &user).await;
    assert!(
        page.iter()
            .any(|e| e.kind == "email_verified" && e.detail == "link"),
        "{page:?}"
    );
    // Already verified: the operator's verify changes nothing and records nothing.
    app.cli(&["users", "verify", &email]).ok();
    let again = activity_page(&app.accounts().await, &user).await;
    assert_eq!(
        again.iter().filter(|e| e.kind == "email_verified").count(),
        1
    );
    // Another account verified by the operator.
    let other = app.account().await;
    app.cli(&["users", "verify", &other]).ok();
    let other_user = app.user(&other).await.expect("the account");
    let page = activity_page(&app.accounts().await, &other_user).await;
    assert!(page
        .iter()
        .any(|e| e.kind == "email_verified" && e.detail == "operator"));
}

/// Chromium: the activity page after a sign-in elsewhere, a wrong password and a
/// sign-out, at desktop and phone width (screenshots), axe-core at 0 violations.
#[tokio::test]
async fn chromium_the_activity_page_passes_axe_and_signs_a_device_out() {
    use crate::support::chromium::{self, Chromedriver};
    use fantoccini::Locator;
    let driver = Chromedriver::start();
    let app = TestApp::new();
    let base = app.serve().await;
    let c = driver.browser(None).await;
    let email = email();
    chromium::register(&c, &base, &email).await;
    // A phone signs in, someone tries a wrong password.
    let phone = app.browser().await.with_agent(SAFARI_IOS);
    assert_eq!(phone.login(&email, PASSWORD).await.status, Status::SeeOther);
    let stranger = app.browser().await;
    stranger.login(&email, "not the password").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    c.goto(&format!("{base}/account/activity"))
        .await
        .expect("goto");
    let body = chromium::text(&c).await;
    assert!(body.contains("Your activity"), "{body}");
    assert!(body.contains("Failed sign-in: wrong password"), "{body}");
    chromium::shoot(&c, "activity").await;
    let button = c
        .find(Locator::Css(".activity-event form button"))
        .await
        .expect("a sign-out button for the phone");
    button.click().await.expect("click");
    // The click navigates: wait for the answer before asking the phone.
    let mut signed_in = true;
    for _ in 0..100 {
        signed_in = phone.is_signed_in().await;
        if !signed_in {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !signed_in,
        "the phone was signed out from the activity page"
    );
}

/// The account's events straight from the database, newest first.
async fn rows_of(app: &TestApp, email: &str) -> Vec<(String, String, String)> {
    let user = app.user(email).await.expect("the account");
    app.accounts()
        .await
        .events(&user.id, None, 0, 1000)
        .await
        .expect("the database answers")
        .into_iter()
        .map(|r| (r.kind, r.detail, r.label))
        .collect()
}

fn has(rows: &[(String, String, String)], kind: &str, detail: &str) -> bool {
    rows.iter().any(|(k, d, _)| k == kind && d == detail)
}

#[tokio::test]
async fn passkeys_added_removed_and_signed_in_with_are_recorded() {
    let app = TestApp::new().set("public_url", PASSKEY_ORIGIN);
    let (b, email) = app.signed_in_browser().await;
    let mut key = SoftPasskey::new();
    let added = b.add_passkey(&mut key, "Laptop").await;
    assert_eq!(added.status, Status::Created, "{}", added.body);
    assert!(has(&rows_of(&app, &email).await, "passkey_added", "Laptop"));

    // Alone: a sign-in with detail `passkey`.
    let other = app.browser().await;
    let signed = other.passkey_sign_in(&mut key).await;
    assert_eq!(signed.status, Status::Ok, "{}", signed.body);
    let rows = rows_of(&app, &email).await;
    assert_eq!(rows[0].0, "sign_in");
    assert_eq!(rows[0].1, "passkey", "{rows:?}");

    // A failed assertion by someone else's key records no sign-in for this account.
    let before = rows_of(&app, &email).await.len();
    let mut stranger = SoftPasskey::new();
    let refused = app.browser().await.passkey_sign_in(&mut stranger).await;
    assert_eq!(refused.status, Status::Unauthorized);
    assert_eq!(rows_of(&app, &email).await.len(), before);

    // Removed: one event naming it.
    let user = app.user(&email).await.expect("the account");
    let id = app
        .accounts()
        .await
        .passkeys(&user.id)
        .await
        .expect("the database answers")
        .into_iter()
        .next()
        .expect("the passkey")
        .id;
    let path = format!("/account/passkeys/{id}/remove");
    let removed = b
        .submit(
            "/account/security",
            &path,
            &[("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(removed.status, Status::SeeOther, "{}", removed.body);
    let rows = rows_of(&app, &email).await;
    assert_eq!(rows[0].0, "passkey_removed");
    assert_eq!(rows[0].1, "Laptop");
    assert_eq!(
        rows.iter().filter(|r| r.0 == "passkey_added").count(),
        1,
        "one record call each"
    );
}

#[tokio::test]
async fn an_address_change_and_its_undo_are_recorded() {
    let smtp = SmtpServer::start();
    let app = TestApp::new().set("smtp_url", smtp.url());
    let (laptop, old) = app.signed_in_browser().await;
    let new = email();
    let started = laptop
        .submit(
            "/account/email",
            "/account/email",
            &[("new_email", &new), ("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(started.status, Status::SeeOther, "{}", started.body);
    // Started only: nothing recorded yet.
    assert!(!has(&rows_of(&app, &old).await, "email_changed", ""));
    let code_mail = wait_for_mail_saying(&smtp.received(), "Confirm your new").await;
    let code = code_in(&code_mail);
    let done = laptop
        .submit(
            "/account/email",
            "/account/email/confirm",
            &[("code", &code)],
        )
        .await;
    assert_eq!(done.status, Status::SeeOther, "{}", done.body);
    let rows = rows_of(&app, &new).await;
    assert_eq!(rows[0].0, "email_changed");
    assert_eq!(rows[0].1, "");
    assert_eq!(
        rows[0].2, "Firefox on Linux",
        "from the device that changed it"
    );

    let notice = wait_for_mail_saying(&smtp.received(), "was changed from").await;
    let start = notice.find("/account/email/undo/").expect("an undo link");
    let undo: String = notice[start..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .next()
        .expect("the link")
        .to_string();
    let undone = app.browser().await.get(&undo).await;
    assert_eq!(undone.status, Status::Ok, "{}", undone.body);
    let rows = rows_of(&app, &old).await;
    assert_eq!(rows[0].0, "email_changed");
    assert_eq!(rows[0].1, "undo");
    assert_eq!(rows.iter().filter(|r| r.0 == "email_changed").count(), 2);
    // A replayed link records nothing more.
    app.browser().await.get(&undo).await;
    let again = rows_of(&app, &old).await;
    assert_eq!(again.iter().filter(|r| r.0 == "email_changed").count(), 2);
}

#[tokio::test]
async fn the_export_holds_the_log_newest_first_and_bounded() {
    let app = TestApp::new().set("activity_max_events", 3);
    let (b, email) = app.signed_in_browser().await;
    for _ in 0..3 {
        let other = app.browser().await;
        assert_eq!(other.login(&email, PASSWORD).await.status, Status::SeeOther);
    }
    let changed = b.change_password(PASSWORD, NEW_PASSWORD).await;
    assert_eq!(changed.status, Status::SeeOther, "{}", changed.body);
    let res = b.get("/account/export").await;
    assert_eq!(res.status, Status::Ok, "{}", res.body);
    let events = res.json["activity"]
        .as_array()
        .expect("an activity section");
    assert!(!events.is_empty() && events.len() <= 3, "{events:?}");
    let rows = rows_of(&app, &email).await;
    assert_eq!(events.len(), rows.len());
    assert_eq!(types(events)[0], rows[0].0, "newest first, as the log");
    let ats: Vec<&str> = events.iter().filter_map(|e| e["at"].as_str()).collect();
    assert!(ats.windows(2).all(|w| w[0] >= w[1]), "{ats:?}");
    assert!(events.iter().all(|e| e.get("session_id").is_none()));
    assert!(!res.body.contains(&b.sid()));
}

#[tokio::test]
async fn deleting_the_account_deletes_its_log() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;
    let (other, other_email) = app.signed_in_browser().await;
    let user = app.user(&email).await.expect("the account");
    assert!(!rows_of(&app, &email).await.is_empty());
    let res = b
        .submit(
            "/account/delete",
            "/account/delete",
            &[
                ("current_password", PASSWORD),
                ("confirm", "delete my account"),
            ],
        )
        .await;
    assert_eq!(res.status, Status::SeeOther, "{}", res.body);
    let left = app
        .accounts()
        .await
        .events(&user.id, None, 0, 1000)
        .await
        .expect("the database answers");
    assert!(left.is_empty(), "{left:?}");
    // Another account's log is untouched.
    assert!(other.is_signed_in().await);
    assert!(!rows_of(&app, &other_email).await.is_empty());
}
