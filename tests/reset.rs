//! Getting back in with an emailed code, changing a password, and the mail itself:
//! over a real SMTP server and through the outbox.

use std::time::{Duration, Instant};

use crate::support::*;
use rocket::http::Status;

#[tokio::test]
async fn a_code_sent_over_smtp_works_once_and_signs_out_every_device() {
    let smtp = SmtpServer::start();
    let app = TestApp::new().set("smtp_url", smtp.url());
    let (laptop, email) = app.signed_in_browser().await;
    let phone = app.browser().await.with_agent(SAFARI_IOS);
    phone.login(&email, PASSWORD).await;
    let b = app.browser().await.with_agent(CHROME_WINDOWS);

    let asked = b.ask_for_reset_code(&email).await;
    assert_eq!(asked.status, Status::Ok);
    assert!(asked.body.contains("If an account exists for that address"));

    let mails = wait_for_reset_mails(&smtp.received(), 1).await;
    assert_eq!(mails.len(), 1, "one mail arrived at the SMTP server");
    let mail = &mails[0];
    assert!(mail.contains(&format!("To: {email}")));
    assert!(mail.contains("From: Latchkey <no-reply@localhost>"));
    assert!(mail.contains("text/plain"));
    assert!(mail.contains("text/html"));
    assert!(mail.contains("10 minutes"));
    assert!(mail.contains("did not ask"));
    let code = code_in(mail);

    let done = b.reset_password(&email, &code, NEW_PASSWORD).await;
    assert_eq!(done.status, Status::SeeOther);
    assert_eq!(done.location.as_deref(), Some("/login"));
    assert!(b
        .get("/login")
        .await
        .body
        .contains("Sign in with your new password"));

    assert!(!laptop.is_signed_in().await);
    assert!(!phone.is_signed_in().await);
    assert_eq!(b.login(&email, PASSWORD).await.status, Status::Unauthorized);
    assert_eq!(b.login(&email, NEW_PASSWORD).await.status, Status::SeeOther);

    // The same code a second time.
    let again = app
        .browser()
        .await
        .reset_password(&email, &code, "yet another passphrase")
        .await;
    assert_eq!(again.status, Status::BadRequest);
}

#[tokio::test]
async fn the_outbox_holds_a_message_a_mail_client_can_open() {
    let app = TestApp::new();
    let email = app.account().await;
    app.browser().await.ask_for_reset_code(&email).await;

    let mails = wait_for_reset_mails(&app.outbox(), 1).await;
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    for header in [
        "From: ",
        "To: ",
        "Subject: ",
        "Date: ",
        "MIME-Version: 1.0",
        "Message-ID: ",
    ] {
        assert!(m.contains(header), "missing {header}");
    }
    assert!(m.contains("multipart/alternative"));
    let files: Vec<_> = std::fs::read_dir(app.outbox())
        .unwrap()
        .filter_map(|e| e.ok())
        .collect();
    assert!(files
        .iter()
        .all(|f| f.path().extension().is_some_and(|e| e == "eml")));
    assert!(code_in(m).len() == 6);
}

#[tokio::test]
async fn five_wrong_codes_burn_it() {
    let app = TestApp::new();
    let email = app.account().await;
    let b = app.browser().await;
    b.ask_for_reset_code(&email).await;
    let code = code_in(&wait_for_reset_mails(&app.outbox(), 1).await[0]);
    let wrong = if code == "000000" { "111111" } else { "000000" };

    for _ in 0..4 {
        let res = b.reset_password(&email, wrong, NEW_PASSWORD).await;
        assert_eq!(res.status, Status::BadRequest);
        assert!(res.body.contains("not right"));
    }
    let fifth = b.reset_password(&email, wrong, NEW_PASSWORD).await;
    assert!(fifth.body.contains("5 wrong tries end it"));
    let right_too_late = b.reset_password(&email, &code, NEW_PASSWORD).await;
    assert_eq!(right_too_late.status, Status::BadRequest);
    assert_eq!(
        b.login(&email, PASSWORD).await.status,
        Status::SeeOther,
        "the password did not change"
    );
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = TestApp::new().set("reset_code_ttl", 1);
    let email = app.account().await;
    let b = app.browser().await;
    b.ask_for_reset_code(&email).await;
    let code = code_in(&wait_for_reset_mails(&app.outbox(), 1).await[0]);
    tokio::time::sleep(Duration::from_millis(1300)).await;

    let res = b.reset_password(&email, &code, NEW_PASSWORD).await;

    assert_eq!(res.status, Status::BadRequest);
    assert!(res.body.contains("expired"));
}

#[tokio::test]
async fn a_new_request_replaces_the_old_code() {
    let app = TestApp::new();
    let email = app.account().await;
    let b = app.browser().await;
    b.ask_for_reset_code(&email).await;
    let first = code_in(&wait_for_reset_mails(&app.outbox(), 1).await[0]);
    b.ask_for_reset_code(&email).await;
    let second = code_in(&wait_for_reset_mails(&app.outbox(), 2).await[1]);
    if first != second {
        assert_eq!(
            b.reset_password(&email, &first, NEW_PASSWORD).await.status,
            Status::BadRequest
        );
    }
    assert_eq!(
        b.reset_password(&email, &second, NEW_PASSWORD).await.status,
        Status::SeeOther
    );
}

#[tokio::test]
async fn a_code_mailed_before_a_password_change_stops_working() {
    let app = TestApp::new();
    let (owner, email) = app.signed_in_browser().await;
    let b = app.browser().await.with_ip("198.51.100.90");
    b.ask_for_reset_code(&email).await;
    let code = code_in(&wait_for_reset_mails(&app.outbox(), 1).await[0]);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let changed = owner.change_password(PASSWORD, NEW_PASSWORD).await;
    assert_eq!(changed.status, Status::SeeOther);

    let old_code = b
        .reset_password(&email, &code, "an attackers passphrase")
        .await;
    let wrong_code = b
        .reset_password(&email, wrong, "an attackers passphrase")
        .await;

    assert_eq!(old_code.status, Status::BadRequest);
    assert_eq!(
        old_code.body.replace(&old_code.csrf(), ""),
        wrong_code.body.replace(&wrong_code.csrf(), ""),
        "the old code reads like any wrong code"
    );
    assert!(owner.is_signed_in().await, "the owner was not signed out");
    assert_eq!(
        app.browser().await.login(&email, NEW_PASSWORD).await.status,
        Status::SeeOther
    );
}

#[tokio::test]
async fn known_and_unknown_addresses_get_the_same_answer() {
    let app = TestApp::new();
    let email = app.account().await;
    let b = app.browser().await;

    let known = b.ask_for_reset_code(&email).await;
    let unknown = b.ask_for_reset_code("nobody-at-all@example.com").await;

    assert_eq!(known.status, unknown.status);
    let strip = |p: &Page, e: &str| p.body.replace(&urlencode(e), "EMAIL").replace(e, "EMAIL");
    assert_eq!(
        strip(&known, &email),
        strip(&unknown, "nobody-at-all@example.com")
    );
    // And a reset attempt for an unknown address reads like a wrong code.
    let res = b
        .reset_password("nobody-at-all@example.com", "123456", NEW_PASSWORD)
        .await;
    assert_eq!(res.status, Status::BadRequest);
    assert!(res.body.contains("not right or has expired"));
    assert_eq!(wait_for_reset_mails(&app.outbox(), 1).await.len(), 1);
}

/// An answer as an onlooker compares it: status, headers and body, with this form's
/// CSRF token and the typed address taken out.
fn comparable(p: &Page, token: &str, address: &str) -> String {
    let mut headers: Vec<String> = p.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    headers.sort();
    format!(
        "{}\n{}\n{}",
        p.status,
        headers.join("\n"),
        p.body.replace(token, "TOKEN").replace(address, "EMAIL")
    )
}

/// Equal, or a panic naming the first line that differs.
fn assert_same(a: &str, b: &str, what: &str) {
    if let Some((x, y)) = a.lines().zip(b.lines()).find(|(x, y)| x != y) {
        panic!("{what}:\n  {x}\n  {y}");
    }
    assert_eq!(a, b, "{what}");
}

#[tokio::test]
async fn wrong_codes_read_the_same_whether_or_not_the_account_or_a_code_exists() {
    let app = TestApp::new();
    let (with_code, without_code, unknown) = (email(), email(), email());
    app.browser().await.register(&with_code).await;
    app.browser().await.register(&without_code).await;
    app.browser().await.ask_for_reset_code(&with_code).await;
    let code = code_in(&wait_for_reset_mails(&app.outbox(), 1).await[0]);
    let wrong = if code == "000000" { "111111" } else { "000000" };

    // Seven wrong tries at each address, past the five that burn a code; each address
    // from its own client IP, so the per-IP budget is the same for all three.
    let mut answers = Vec::new();
    for (i, address) in [&with_code, &without_code, &unknown]
        .into_iter()
        .enumerate()
    {
        let b = app
            .browser()
            .await
            .with_ip(&format!("198.51.100.{}", 60 + i));
        let mut tries = Vec::new();
        for _ in 0..7 {
            let token = b.get("/password/reset").await.csrf();
            let fields = [
                ("email", address.as_str()),
                ("code", wrong),
                ("new_password", NEW_PASSWORD),
            ];
            let res = b.post_form("/password/reset", &token, &fields).await;
            assert_eq!(res.status, Status::BadRequest);
            tries.push(comparable(&res, &token, address));
        }
        answers.push(tries);
    }
    for (i, (a, b)) in answers[0].iter().zip(&answers[2]).enumerate() {
        assert_same(
            a,
            b,
            &format!("try {i}: an account with a code reads like no account"),
        );
    }
    for (i, (a, b)) in answers[1].iter().zip(&answers[2]).enumerate() {
        assert_same(
            a,
            b,
            &format!("try {i}: an account without a code reads like no account"),
        );
    }
    // The code was burned all the same.
    assert_eq!(
        app.browser()
            .await
            .reset_password(&with_code, &code, NEW_PASSWORD)
            .await
            .status,
        Status::BadRequest
    );
}

#[tokio::test]
async fn reset_requests_are_limited_per_account_and_per_ip_without_a_different_page() {
    let app = TestApp::new();
    let address = app.account().await;
    let b = app.browser().await.with_ip("198.51.100.31");
    let mut bodies = Vec::new();
    for _ in 0..5 {
        let p = b.ask_for_reset_code(&address).await;
        assert_eq!(p.status, Status::Ok);
        bodies.push(p.body);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "the page looks the same past the limit"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        wait_for_reset_mails(&app.outbox(), 3).await.len(),
        3,
        "3 per account per hour"
    );

    // Per IP: 10 per hour across accounts.
    let app = TestApp::new().set("register_limit_ip", 12);
    let accounts: Vec<String> = (0..12).map(|_| email()).collect();
    // One app registers them all (twelve app starts were twelve SQLite pools on one file).
    let registrar = app.browser().await;
    for a in &accounts {
        registrar.clear_cookies().await;
        assert_eq!(registrar.register(a).await.status, Status::SeeOther);
    }
    let b = app.browser().await.with_ip("198.51.100.32");
    for a in &accounts {
        assert_eq!(b.ask_for_reset_code(a).await.status, Status::Ok);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(wait_for_reset_mails(&app.outbox(), 10).await.len(), 10);
}

#[tokio::test]
async fn a_dead_mail_server_changes_nothing_a_person_sees() {
    let dead = spare_port();
    let app = TestApp::new().set("smtp_url", format!("smtp://127.0.0.1:{dead}"));
    let email = app.account().await;
    let b = app.browser().await;
    let started = Instant::now();
    let res = b.ask_for_reset_code(&email).await;
    assert_eq!(res.status, Status::Ok);
    assert!(res.body.contains("If an account exists for that address"));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Sign-in (which may send a new-device notice) is not held up either.
    let started = Instant::now();
    assert_eq!(
        app.browser()
            .await
            .with_agent(SAFARI_IOS)
            .login(&email, PASSWORD)
            .await
            .status,
        Status::SeeOther
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn changing_the_password_keeps_this_device_and_ends_the_others() {
    let app = TestApp::new();
    let (me, email) = app.signed_in_browser().await;
    let other = app.browser().await.with_agent(SAFARI_IOS);
    other.login(&email, PASSWORD).await;

    let wrong = me.change_password("not it at all", NEW_PASSWORD).await;
    assert_eq!(wrong.status, Status::Unauthorized);
    assert!(other.is_signed_in().await);
    let weak = me.change_password(PASSWORD, "password1").await;
    assert_eq!(weak.status, Status::BadRequest);

    let done = me.change_password(PASSWORD, NEW_PASSWORD).await;
    assert_eq!(done.status, Status::SeeOther);
    assert_eq!(done.location.as_deref(), Some("/devices"));
    assert!(me
        .get("/devices")
        .await
        .body
        .contains("1 other device was signed out"));
    assert!(me.is_signed_in().await);
    assert!(!other.is_signed_in().await);
    assert_eq!(
        app.browser().await.login(&email, NEW_PASSWORD).await.status,
        Status::SeeOther
    );
}

#[tokio::test]
async fn no_session_survives_a_password_change_it_raced() {
    let app = TestApp::new();
    let (me, email) = app.signed_in_browser().await;
    let mut password = PASSWORD.to_string();
    for round in 0..4 {
        let next = format!("{NEW_PASSWORD} {round}");
        let racer = app.browser().await.with_agent(SAFARI_IOS);
        let busy = app.browser().await.with_agent(CHROME_WINDOWS);
        busy.login(&email, &password).await;
        let token = me.get("/account/password").await.csrf();
        let fields = [
            ("current_password", password.as_str()),
            ("new_password", next.as_str()),
        ];
        // A sign-in with the old password and a signed-in device in use, both in
        // flight while the password changes.
        let (changed, _signin, _) = tokio::join!(
            me.post_form("/account/password", &token, &fields),
            racer.login(&email, &password),
            async {
                for _ in 0..10 {
                    busy.get("/devices").await;
                }
            }
        );
        assert_eq!(changed.status, Status::SeeOther, "round {round}");
        assert!(
            !racer.is_signed_in().await,
            "round {round}: a sign-in with the old password survived"
        );
        assert!(
            !busy.is_signed_in().await,
            "round {round}: a busy session survived"
        );
        assert!(me.is_signed_in().await);
        password = next;
    }
}

#[tokio::test]
async fn the_new_device_notice_is_sent_once_per_new_device() {
    let smtp = SmtpServer::start();
    let app = TestApp::new().set("smtp_url", smtp.url());
    let email = app.account().await;
    let notices = || mails_saying(&smtp.received(), "New sign-in");

    // The device that registered is known: signing in from it again sends nothing.
    app.browser().await.login(&email, PASSWORD).await;
    let phone = || async {
        app.browser()
            .await
            .with_agent(SAFARI_IOS)
            .with_ip("198.51.100.70")
    };
    phone().await.login(&email, PASSWORD).await;
    phone().await.login(&email, PASSWORD).await;
    phone().await.login(&email, PASSWORD).await;
    tokio::time::sleep(Duration::from_millis(800)).await;

    let sent = notices();
    assert_eq!(
        sent.len(),
        1,
        "one notice for the new phone, none for repeats"
    );
    assert!(sent[0].contains("Safari on iOS"));
    assert!(sent[0].contains("198.51.100.70"));
    assert!(sent[0].contains("/password/forgot"));
}

#[tokio::test]
async fn the_new_device_notice_can_be_turned_off() {
    let app = TestApp::new().set("new_device_mail", false);
    let email = app.account().await;
    app.browser()
        .await
        .with_agent(SAFARI_IOS)
        .login(&email, PASSWORD)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(mails_in(&app.outbox())
        .iter()
        .all(|m| !m.contains("New sign-in")));
}

#[tokio::test]
async fn new_device_mail_is_bounded_and_names_an_app_as_its_own_claim() {
    let smtp = SmtpServer::start();
    let app = TestApp::new().set("smtp_url", smtp.url());
    let (b, email) = app.signed_in_browser().await;
    let spam = "Call +1-555-0100 or visit evil.example/fix";
    let mut sessions = Vec::new();
    for i in 0..6 {
        let name = format!("{spam} {i}");
        sessions.push(password_grant(&b, &email, Some(&name)).await.session_id);
    }
    tokio::time::sleep(Duration::from_millis(800)).await;

    let sent = mails_saying(&smtp.received(), "New sign-in");
    assert_eq!(sent.len(), 3, "at most 3 an hour");
    let text = sent[0]
        .split("Content-Type: text/html")
        .next()
        .unwrap_or("");
    assert!(
        text.contains(&format!("an app that calls itself \"{spam} 0\"")),
        "{text}"
    );
    assert!(text.contains("the name the app gave itself"), "{text}");
    // Every sign-in is still listed on the devices page.
    let ids = b.device_ids().await;
    for sid in &sessions {
        assert!(ids.contains(sid), "{sid} listed");
    }
}
