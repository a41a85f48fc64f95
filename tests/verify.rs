//! Verified addresses, as an attacker would try them: registering someone else's
//! address (and the owner taking it back by a reset), another account's code or link,
//! a replayed link, guessing the code, resending as a way to learn about accounts;
//! `require_verified_email` at apps, forward authentication and the password grant
//! (on and off); `email_verified` in id_tokens, userinfo and `/api/v1/me`; the sweep
//! of unverified accounts nobody used; `latchkey users verify`. Mail goes over a real
//! SMTP server where its content matters, and accounts live in SQLite and PostgreSQL.

use std::path::Path;
use std::time::{Duration, Instant};

use rocket::http::Status;
use serde_json::Value;

use crate::support::*;

crate::on_both_databases!(
    a_squatter_is_told_nothing_new_and_the_owner_takes_the_address_over_by_a_reset,
    another_accounts_code_or_link_verifies_nothing_and_a_link_works_once,
    the_gate_keeps_unverified_accounts_from_apps_forward_auth_and_the_password_grant,
    email_verified_is_true_exactly_when_the_address_is,
    the_operator_verifies_one_account_or_all,
);

/// Words only the verification mail has.
const VERIFY_MAIL: &str = "verify the address with one click";

/// The newest verification mail `to` has in `dir`, waited for: `nth` counts them from 1.
async fn verification_mail(dir: &Path, to: &str, nth: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mails = verification_mails(dir, to);
        if mails.len() >= nth {
            return mails[nth - 1].clone();
        }
        assert!(
            Instant::now() < deadline,
            "no verification mail {nth} to {to}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The verification mails `to` has in `dir`, oldest first, unfolded.
fn verification_mails(dir: &Path, to: &str) -> Vec<String> {
    mails_saying(dir, VERIFY_MAIL)
        .into_iter()
        .filter(|m| m.contains(&format!("To: {to}")))
        .collect()
}

/// The path of the one-click link in a verification mail.
fn link_in(mail: &str) -> String {
    let start = mail.find("/account/verify/").expect("a link in the mail");
    mail[start..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .next()
        .expect("a link")
        .to_string()
}

/// A 6-digit code that is not `right`.
fn wrong_code(right: &str, n: u32) -> String {
    let right: u32 = right.parse().expect("digits");
    format!("{:06}", (right + 1 + n) % 1_000_000)
}

async fn enter_code(b: &Browser, code: &str) -> Page {
    b.submit("/account/verify", "/account/verify", &[("code", code)])
        .await
}

async fn resend(b: &Browser) -> Page {
    b.submit("/account/verify", "/account/verify/resend", &[])
        .await
}

async fn is_verified(app: &TestApp, email: &str) -> bool {
    app.user(email).await.expect("the account").email_verified()
}

async fn a_squatter_is_told_nothing_new_and_the_owner_takes_the_address_over_by_a_reset(
    db: Database,
) {
    let smtp = SmtpServer::start();
    let app = TestApp::on(db).await.set("smtp_url", smtp.url());
    // The squatter registers the owner's address and turns a second factor on, which
    // would keep the owner out after a reset if it stayed.
    let address = email();
    let squatter = app.browser().await.with_agent(CHROME_WINDOWS);
    assert_eq!(squatter.register(&address).await.status, Status::SeeOther);
    squatter.turn_on_two_step().await;
    let squatted = app.user(&address).await.expect("the squatter's account");
    // A verified account's address, for comparison.
    let (_, taken) = app.signed_in_browser().await;
    app.cli(&["users", "verify", &taken]).ok();

    // The owner cannot register it: told to reset instead, in the same words and
    // status as for a verified account's address (nothing about its state shows).
    let owner = app.browser().await;
    let refused = owner.register(&address).await;
    let refused_verified = app.browser().await.register(&taken).await;
    assert_eq!(refused.status, Status::BadRequest);
    assert_eq!(refused_verified.status, Status::BadRequest);
    assert!(
        refused.body.contains("reset the password instead"),
        "{}",
        refused.body
    );
    let said = banner_text(&refused.body, "alert");
    assert!(said.is_some());
    assert_eq!(said, banner_text(&refused_verified.body, "alert"));
    assert!(owner.session_cookie().is_none(), "no account, no session");
    assert_eq!(app.user(&address).await.expect("still one").id, squatted.id);

    // The owner resets the password with the code from the mailbox.
    owner.ask_for_reset_code(&address).await;
    let code = wait_for_reset_code(&smtp.received()).await;
    let reset = owner.reset_password(&address, &code, NEW_PASSWORD).await;
    assert_eq!(reset.status, Status::SeeOther, "{}", reset.body);

    // The account is the owner's: verified, the squatter signed out and locked out,
    // and the squatter's second factor gone.
    assert!(is_verified(&app, &address).await);
    assert!(
        !squatter.is_signed_in().await,
        "the squatter's session ended"
    );
    let squatter_again = squatter.login(&address, PASSWORD).await;
    assert_eq!(squatter_again.status, Status::Unauthorized);
    let signed_in = owner.login(&address, NEW_PASSWORD).await;
    assert_eq!(signed_in.status, Status::SeeOther);
    assert_eq!(
        signed_in.location.as_deref(),
        Some("/devices"),
        "no code step"
    );
    let devices = owner.get("/devices").await;
    assert!(
        !devices.body.contains("verify-banner"),
        "verified: no banner"
    );
}

async fn another_accounts_code_or_link_verifies_nothing_and_a_link_works_once(db: Database) {
    let app = TestApp::on(db).await;
    let (ada, ada_address) = app.signed_in_browser().await;
    let (bob, bob_address) = app.signed_in_browser().await;
    let ada_mail = verification_mail(&app.outbox(), &ada_address, 1).await;
    let bob_mail = verification_mail(&app.outbox(), &bob_address, 1).await;
    let (ada_code, bob_code) = (code_in(&ada_mail), code_in(&bob_mail));

    // Bob's code in Ada's session.
    if bob_code != ada_code {
        let wrong = enter_code(&ada, &bob_code).await;
        assert_eq!(wrong.status, Status::BadRequest);
        assert!(wrong.body.contains("not right"), "{}", wrong.body);
        assert!(!is_verified(&app, &ada_address).await);
    }
    // Bob's link's secret under Ada's id.
    let ada_id = app.user(&ada_address).await.expect("ada").id;
    let bob_link = link_in(&bob_mail);
    let bob_secret = bob_link.rsplit('.').next().expect("a secret");
    let forged = format!("/account/verify/{ada_id}.{bob_secret}");
    let refused = app.browser().await.get(&forged).await;
    assert_eq!(refused.status, Status::BadRequest);
    assert!(refused.body.contains("This link does not work"));
    for garbage in [
        "/account/verify/x",
        "/account/verify/..",
        "/account/verify/%00",
    ] {
        let page = app.browser().await.get(garbage).await;
        assert!(page.status.code < 500, "{garbage}: {}", page.status);
    }
    assert!(!is_verified(&app, &ada_address).await);

    // Bob's own code still works for Bob (Ada's wrong try was Ada's).
    let right = enter_code(&bob, &bob_code).await;
    assert_eq!(right.status, Status::SeeOther);
    assert_eq!(right.location.as_deref(), Some("/devices"));
    assert!(is_verified(&app, &bob_address).await);
    assert!(!is_verified(&app, &ada_address).await, "only bob");

    // Ada's link, opened signed out (another browser): verified; once.
    let ada_link = link_in(&ada_mail);
    let stranger = app.browser().await;
    let opened = stranger.get(&ada_link).await;
    assert_eq!(opened.status, Status::Ok, "{}", opened.body);
    assert!(opened.body.contains("is verified"));
    assert!(
        stranger.session_cookie().is_none(),
        "a link signs nobody in"
    );
    assert!(is_verified(&app, &ada_address).await);
    let replayed = app.browser().await.get(&ada_link).await;
    assert_eq!(replayed.status, Status::BadRequest);
    assert!(replayed.body.contains("This link does not work"));
    // Her code went with the link; her live session learned at once.
    assert!(!ada.get("/devices").await.body.contains("verify-banner"));
    let code_page = ada.get("/account/verify").await;
    assert!(code_page.body.contains("Your email address is verified"));
}

#[tokio::test]
async fn five_wrong_codes_burn_the_code_and_its_link() {
    let app = TestApp::new();
    let (b, address) = app.signed_in_browser().await;
    let mail = verification_mail(&app.outbox(), &address, 1).await;
    let code = code_in(&mail);
    // A forged form token: 403, and no try used (four wrong codes below still leave
    // the fifth to burn it).
    let forged = b
        .post_form("/account/verify", "forged-token", &[("code", &code)])
        .await;
    assert_eq!(forged.status, Status::Forbidden);
    assert!(!is_verified(&app, &address).await);
    for n in 0..4 {
        let wrong = enter_code(&b, &wrong_code(&code, n)).await;
        assert_eq!(wrong.status, Status::BadRequest);
        assert!(wrong.body.contains("not right"));
    }
    let fifth = enter_code(&b, &wrong_code(&code, 4)).await;
    assert_eq!(fifth.status, Status::BadRequest);
    assert!(
        fifth.body.contains("Too many wrong codes"),
        "{}",
        fifth.body
    );
    // The right code and the link are dead now.
    assert_eq!(enter_code(&b, &code).await.status, Status::BadRequest);
    let link = app.browser().await.get(&link_in(&mail)).await;
    assert_eq!(link.status, Status::BadRequest);
    assert!(!is_verified(&app, &address).await);
    // Not six digits is a wrong try too, and nothing breaks.
    let junk = enter_code(&b, "<script>").await;
    assert_eq!(junk.status, Status::BadRequest);

    // A new mail's code works.
    assert_eq!(resend(&b).await.status, Status::SeeOther);
    let fresh = verification_mail(&app.outbox(), &address, 2).await;
    let right = enter_code(&b, &code_in(&fresh)).await;
    assert_eq!(right.status, Status::SeeOther);
    assert!(is_verified(&app, &address).await);
}

#[tokio::test]
async fn resend_mails_three_times_an_hour_and_answers_the_same_whatever_happened() {
    let app = TestApp::new();
    let (b, address) = app.signed_in_browser().await;
    verification_mail(&app.outbox(), &address, 1).await;

    // Four resends: two more mails (three in the hour with registration's), and four
    // answers alike.
    let mut answers = vec![];
    for _ in 0..4 {
        let sent = resend(&b).await;
        let shown = b.get("/account/verify").await;
        answers.push((
            sent.status,
            sent.location,
            shown.status,
            notice(&shown.body),
        ));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(answers[0].0, Status::SeeOther);
    assert_eq!(answers[0].1.as_deref(), Some("/account/verify"));
    let third = verification_mail(&app.outbox(), &address, 3).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mails = verification_mails(&app.outbox(), &address);
    assert_eq!(mails.len(), 3, "at most 3 an hour");
    // Each replaced the one before: only the last code works.
    let first = code_in(&mails[0]);
    if first != code_in(&third) {
        assert_eq!(enter_code(&b, &first).await.status, Status::BadRequest);
    }
    assert_eq!(
        enter_code(&b, &code_in(&third)).await.status,
        Status::SeeOther
    );

    // Verified: the same answer again, and no mail.
    let after = resend(&b).await;
    let shown = b.get("/account/verify").await;
    assert_eq!(
        (after.status, after.location, notice(&shown.body)),
        (answers[0].0, answers[0].1.clone(), answers[0].3.clone())
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(verification_mails(&app.outbox(), &address).len(), 3);

    // Signed out, or with another page's forged token: nothing is sent.
    let stranger = app.browser().await;
    let signed_out = stranger
        .submit("/login", "/account/verify/resend", &[])
        .await;
    assert_eq!(signed_out.status, Status::SeeOther);
    assert!(signed_out
        .location
        .as_deref()
        .is_some_and(|l| l.starts_with("/login")));
    let forged = b
        .post_form("/account/verify/resend", "forged-token", &[])
        .await;
    assert_eq!(forged.status, Status::Forbidden);
}

#[tokio::test]
async fn resends_count_against_the_asking_address_across_accounts() {
    // One resend per address in the window (the reset quota per address).
    let app = TestApp::new().set("reset_limit_ip", 1);
    let (ada, ada_address) = app.signed_in_browser().await;
    let (bob, bob_address) = app.signed_in_browser().await;
    verification_mail(&app.outbox(), &ada_address, 1).await;
    verification_mail(&app.outbox(), &bob_address, 1).await;
    let first = resend(&ada).await;
    verification_mail(&app.outbox(), &ada_address, 2).await;
    let second = resend(&bob).await;
    assert_eq!(
        (first.status, first.location),
        (second.status, second.location)
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        verification_mails(&app.outbox(), &bob_address).len(),
        1,
        "the address's resend was used up by another account's"
    );
    // Another address may still ask for Bob.
    let elsewhere = app.browser().await.with_ip("198.51.100.90");
    assert_eq!(
        elsewhere.login(&bob_address, PASSWORD).await.status,
        Status::SeeOther
    );
    resend(&elsewhere).await;
    verification_mail(&app.outbox(), &bob_address, 2).await;
}

/// The notice a page shows (the text of its `role="status"` banner), if any.
fn notice(body: &str) -> Option<String> {
    banner_text(body, "status")
}

/// The text of the page's banner with this `role`, if it has one.
fn banner_text(body: &str, role: &str) -> Option<String> {
    let at = body.find(&format!("role=\"{role}\""))?;
    let p = body[at..].find("<p>")? + at + 3;
    let end = body[p..].find("</p>")? + p;
    Some(body[p..end].to_string())
}

#[tokio::test]
async fn the_mail_names_the_device_and_address_and_what_to_do_if_it_was_not_you() {
    let smtp = SmtpServer::start();
    let app = TestApp::new().set("smtp_url", smtp.url());
    let address = email();
    let b = app.browser().await.with_agent(CHROME_WINDOWS);
    assert_eq!(b.register(&address).await.status, Status::SeeOther);
    let mail = verification_mail(&smtp.received(), &address, 1).await;
    assert!(mail.contains("text/plain") && mail.contains("text/html"));
    assert!(mail.contains("Chrome on Windows"), "{mail}");
    assert!(mail.contains("203.0.113.5"));
    assert!(mail.contains(&format!("({address})")));
    assert!(mail.contains("If this was NOT you"));
    assert!(mail.contains("/password/forgot"));
    assert!(mail.contains("24 hours"));

    // The banner offers the code page and a resend form on every signed-in page.
    let devices = b.get("/devices").await;
    assert!(devices.body.contains("id=\"verify-banner\""));
    assert!(devices.body.contains("action=\"/account/verify/resend\""));
    let security = b.get("/account/security").await;
    assert!(security.body.contains("id=\"verify-banner\""));

    let opened = b.get(&link_in(&mail)).await;
    assert_eq!(opened.status, Status::Ok);
    assert!(opened.body.contains(&address));
    assert!(!b.get("/devices").await.body.contains("verify-banner"));
}

async fn the_gate_keeps_unverified_accounts_from_apps_forward_auth_and_the_password_grant(
    db: Database,
) {
    let p = Provider::start_with(db, |a| a.set("require_verified_email", true)).await;
    let app = p.registered_app("Wiki", &[]);
    let (mut jar, address) = p.signed_in_jar();

    // Apps: the page offering a new mail, and no code for the app.
    let query = auth_query(&app, "openid email", VERIFIER, "st4te");
    let authorize = p
        .server
        .send(&mut jar, "GET", &format!("/oauth2/authorize?{query}"), None);
    assert_eq!(authorize.status, 403, "{}", authorize.body);
    assert!(authorize.body.contains("Verify your email address first"));
    assert!(authorize.body.contains("action=\"/account/verify/resend\""));
    assert!(authorize.location().is_none());
    // prompt=none goes back to the app, which gets no code.
    let silent = format!("/oauth2/authorize?{query}&prompt=none");
    let silent = p.server.send(&mut jar, "GET", &silent, None);
    assert_eq!(silent.status, 303);
    let back = silent.location().expect("back to the app").to_string();
    assert_eq!(
        param(&back, "error").as_deref(),
        Some("interaction_required")
    );
    assert!(param(&back, "code").is_none());

    // Forward authentication: a page for the browser, 401 JSON for a JSON caller.
    let forward = p.server.send(&mut jar, "GET", "/auth/forward", None);
    assert_eq!(forward.status, 403);
    assert!(forward.header("Remote-User").is_none());
    assert!(forward.body.contains("action=\"/account/verify/resend\""));
    let cookie = jar.header();
    let json = p.server.request(
        "GET",
        "/auth/forward",
        &[("Cookie", &cookie), ("Accept", "application/json")],
        "",
    );
    assert_eq!(json.status, 401);
    assert_eq!(json.json()["error"], "email_not_verified");
    let nginx = p
        .server
        .request("GET", "/auth/nginx", &[("Cookie", &cookie)], "");
    assert_eq!(nginx.status, 403);

    // The password grant: 403 after the right password, 401 as ever before it.
    let grant = [
        ("grant_type", "password"),
        ("username", &address),
        ("password", PASSWORD),
    ];
    let (status, body) = p.server.token(&grant);
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "email_not_verified");
    let wrong = [
        ("grant_type", "password"),
        ("username", &address),
        ("password", "not the password"),
    ];
    assert_eq!(p.server.token(&wrong).0, 401, "nothing learned without it");

    // Verified: all of it works, with no new sign-in.
    p.instance.cli(&["users", "verify", &address]).ok();
    let tokens = tokens_for(&p, &mut jar, &app, "openid email");
    let id_token = field(&tokens, "id_token");
    assert_eq!(jwt_part(&id_token, 1)["email_verified"], true);
    assert_eq!(
        p.server.send(&mut jar, "GET", "/auth/forward", None).status,
        200
    );
    let (status, body) = p.server.token(&grant);
    assert_eq!(status, 200, "{body}");
}

async fn email_verified_is_true_exactly_when_the_address_is(db: Database) {
    // With the gate off (the harness's setting), an unverified account uses apps and
    // the API, and everything says it is unverified.
    let p = Provider::start(db).await;
    let app = p.registered_app("Wiki", &[]);
    let (mut jar, address) = p.signed_in_jar();
    let tokens = tokens_for(&p, &mut jar, &app, "openid email");
    let id_token = field(&tokens, "id_token");
    assert_eq!(jwt_part(&id_token, 1)["email_verified"], false);
    let access = field(&tokens, "access_token");
    assert_eq!(userinfo(&p, &access)["email_verified"], false);
    let (status, api) = p.server.token(&[
        ("grant_type", "password"),
        ("username", &address),
        ("password", PASSWORD),
    ]);
    assert_eq!(status, 200, "{api}");
    let api_access = field(&api, "access_token");
    assert_eq!(me(&p, &api_access)["email_verified"], false);
    assert_eq!(
        p.server.send(&mut jar, "GET", "/auth/forward", None).status,
        200,
        "the gate is off"
    );

    // Verified: the live tokens say so at once, and new id_tokens too.
    p.instance.cli(&["users", "verify", &address]).ok();
    assert_eq!(userinfo(&p, &access)["email_verified"], true);
    let me_now = me(&p, &api_access);
    assert_eq!(me_now["email_verified"], true);
    assert_eq!(me_now["email"], address.as_str());
    let again = tokens_for(&p, &mut jar, &app, "openid email");
    let claims = jwt_part(&field(&again, "id_token"), 1);
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["email"], address.as_str());
}

fn userinfo(p: &Provider, access: &str) -> Value {
    let reply = p.userinfo(access);
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

fn me(p: &Provider, access: &str) -> Value {
    let bearer = format!("Bearer {access}");
    let reply = p
        .server
        .request("GET", "/api/v1/me", &[("Authorization", &bearer)], "");
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

async fn the_operator_verifies_one_account_or_all(db: Database) {
    let app = TestApp::on(db).await;
    let (b, ada) = app.signed_in_browser().await;
    let (_, bob) = app.signed_in_browser().await;
    let (_, cy) = app.signed_in_browser().await;
    let shown = app.cli(&["users", "show", &ada, "--json"]).json_lines();
    assert_eq!(shown[0]["email_verified"], false);
    assert_eq!(shown[0]["email_verified_at"], Value::Null);

    let verified = app.cli(&["users", "verify", &ada.to_uppercase()]);
    assert!(
        verified.ok().contains("address verified"),
        "{}",
        verified.ok()
    );
    let shown = app.cli(&["users", "show", &ada, "--json"]).json_lines();
    assert_eq!(shown[0]["email_verified"], true);
    assert!(shown[0]["email_verified_at"].is_string());
    assert!(app
        .cli(&["users", "show", &ada])
        .ok()
        .contains("verified:         yes, since"));
    // Her signed-in browser learns it at its next page.
    assert!(!b.get("/devices").await.body.contains("verify-banner"));
    let again = app.cli(&["users", "verify", &ada]);
    assert!(again.ok().contains("was verified already"));

    let all = app
        .cli(&["users", "verify", "--all", "--json"])
        .json_lines();
    let changed: Vec<&str> = all.iter().filter_map(|l| l["email"].as_str()).collect();
    assert!(changed.contains(&bob.as_str()) && changed.contains(&cy.as_str()));
    assert!(!changed.contains(&ada.as_str()), "only the unverified ones");
    assert!(is_verified(&app, &bob).await && is_verified(&app, &cy).await);

    let nobody = app.cli(&["users", "verify", &email()]);
    assert!(
        nobody.refused().contains("no account"),
        "{}",
        nobody.refused()
    );
    // Neither an address nor --all, or both: the usage, exit 2.
    let neither = app.cli(&["users", "verify"]);
    assert_eq!(neither.code, Some(2));
    assert!(neither.stderr.contains("<EMAIL>"), "{}", neither.stderr);
    let both = app.cli(&["users", "verify", &ada, "--all"]);
    assert_eq!(both.code, Some(2), "{}", both.stderr);
}

#[tokio::test]
async fn the_sweep_deletes_only_never_verified_accounts_nobody_used() {
    let app = TestApp::new().set("unverified_account_ttl", 1);
    let (idle_browser, idle) = app.signed_in_browser().await;
    idle_browser.sign_out().await;
    let (_in_use, busy) = app.signed_in_browser().await;
    let (verified_browser, verified) = app.signed_in_browser().await;
    app.cli(&["users", "verify", &verified]).ok();
    verified_browser.sign_out().await;
    // An account from before addresses were verified (never signed in since): its
    // row as the upgrade left it, `last_seen_at` NULL.
    let old = email();
    let pool = sqlx::SqlitePool::connect(&app.database_url)
        .await
        .expect("the database");
    sqlx::query(
        "INSERT INTO users (id, email, email_normalized, password_hash, created_at, \
         password_changed_at) VALUES ($1, $2, $3, 'h', 1, 1)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(&old)
    .bind(old.to_lowercase())
    .execute(&pool)
    .await
    .expect("an account from before the upgrade");
    let idle_id = app.user(&idle).await.expect("idle").id;

    // The sweep of some instance of the app runs every second.
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.user(&idle).await.is_some() {
        assert!(
            Instant::now() < deadline,
            "the idle account was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(app.user(&busy).await.is_some(), "a live session is a use");
    assert!(app.user(&verified).await.is_some(), "verified");
    assert!(app.user(&old).await.is_some(), "not used since the upgrade");
    // Its Redis state went with it, and the address is free again.
    let mut redis = redis_conn().await;
    let left: i64 = redis::cmd("EXISTS")
        .arg(app.key_names().verification(&idle_id))
        .arg(app.key_names().user(&idle_id))
        .query_async(&mut redis)
        .await
        .expect("redis answers");
    assert_eq!(left, 0);
    let reclaimed = app.browser().await.register(&idle).await;
    assert_eq!(reclaimed.status, Status::SeeOther, "{}", reclaimed.body);
}

/// A SQLite database as the version before verified addresses left it (migrations 1
/// to 4), holding one account with a working password: at the upgrade it becomes
/// unverified, signs in as before, and is no candidate for the sweep until it does.
#[tokio::test]
async fn an_account_from_before_the_upgrade_is_unverified_and_kept_until_it_is_used() {
    // A real password hash, from an account registered on a current database.
    let donor = TestApp::new();
    let donor_address = donor.account().await;
    let hash = donor
        .user(&donor_address)
        .await
        .expect("donor")
        .password_hash;

    let app = TestApp::new().set("unverified_account_ttl", 1);
    let old_migrations = test_dir();
    for entry in std::fs::read_dir("migrations/sqlite").expect("the migrations") {
        let path = entry.expect("an entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name < "0005" {
            std::fs::copy(&path, old_migrations.join(name)).expect("copied");
        }
    }
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(app.database_url.trim_start_matches("sqlite://"))
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("the old database");
    sqlx::migrate::Migrator::new(old_migrations.as_path())
        .await
        .expect("migrations 1 to 4")
        .run(&pool)
        .await
        .expect("migrated to 4");
    let address = email();
    sqlx::query(
        "INSERT INTO users (id, email, email_normalized, password_hash, created_at, \
         password_changed_at) VALUES ($1, $2, $3, $4, 1, 1)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(&address)
    .bind(address.to_lowercase())
    .bind(&hash)
    .execute(&pool)
    .await
    .expect("an account of the old version");
    pool.close().await;

    // The upgraded app: unverified, not swept (its sweep runs every second).
    let b = app.browser().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let upgraded = app.user(&address).await.expect("kept by the sweep");
    assert!(!upgraded.email_verified());
    assert_eq!(upgraded.last_seen_at, None);
    // It signs in as before, with the banner; the sign-in is a use.
    assert_eq!(b.login(&address, PASSWORD).await.status, Status::SeeOther);
    assert!(b.get("/devices").await.body.contains("verify-banner"));
    assert!(app.user(&address).await.expect("it").last_seen_at.is_some());
    // Verified by the operator, as README "Upgrading" says.
    app.cli(&["users", "verify", "--all"]).ok();
    assert!(is_verified(&app, &address).await);
    assert!(!b.get("/devices").await.body.contains("verify-banner"));
}
