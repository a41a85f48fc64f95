//! Changing the account's address: a code mailed to the new address confirms it, the
//! old address is mailed an undo link (single use, 7 days) that puts it back and ends
//! every session. Tried as an attacker would: an address in use (no enumeration),
//! another account's code, a replayed undo link, a forged CSRF token. Real SMTP.

use std::time::{Duration, Instant};

use crate::support::*;
use rocket::http::{Method, Status};

const CODE_MAIL: &str = "Confirm your new";
const CHANGED_MAIL: &str = "was changed from";

/// Starts a change of the signed-in account of `b` to `new`.
async fn start_change(b: &Browser, new: &str) -> Page {
    b.submit(
        "/account/email",
        "/account/email",
        &[("new_email", new), ("current_password", PASSWORD)],
    )
    .await
}

async fn confirm_change(b: &Browser, code: &str) -> Page {
    b.submit(
        "/account/email",
        "/account/email/confirm",
        &[("code", code)],
    )
    .await
}

/// The mail in `dir` to `to` that says `words`, waited for.
async fn mail_to(dir: &std::path::Path, to: &str, words: &str) -> String {
    for _ in 0..100 {
        if let Some(m) = mails_saying(dir, words)
            .into_iter()
            .find(|m| m.contains(&format!("To: {to}")))
        {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no mail to {to} says {words:?}");
}

/// The undo link's path in a mail.
fn undo_path(mail: &str) -> String {
    let start = mail.find("/account/email/undo/").expect("an undo link");
    mail[start..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .next()
        .expect("the link")
        .to_string()
}

async fn a_new_address_is_confirmed_by_its_code_and_the_old_one_can_undo_it(db: Database) {
    let smtp = SmtpServer::start();
    let app = TestApp::on(db).await.set("smtp_url", smtp.url());
    let (laptop, old) = app.signed_in_browser().await;
    let phone = app.browser().await.with_agent(SAFARI_IOS);
    phone.login(&old, PASSWORD).await;
    let api = password_grant(&app.browser().await, &old, Some("backup")).await;
    let new = email();

    let started = start_change(&laptop, &new).await;
    assert_eq!(started.status, Status::SeeOther, "{}", started.body);
    let page = laptop.get("/account/email").await;
    assert!(
        page.body.contains(&new),
        "the page asks for the code sent to the new address"
    );
    let code_mail = mail_to(&smtp.received(), &new, CODE_MAIL).await;
    assert!(code_mail.contains("text/plain") && code_mail.contains("text/html"));
    assert!(code_mail.contains("Firefox on Linux") && code_mail.contains("203.0.113.5"));
    assert!(code_mail.contains("did not ask"));
    let code = code_in(&code_mail);
    assert!(
        app.user(&old).await.is_some(),
        "nothing changes before the code"
    );

    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(
        confirm_change(&laptop, wrong).await.status,
        Status::BadRequest
    );
    assert!(app.user(&new).await.is_none());

    let done = confirm_change(&laptop, &code).await;
    assert_eq!(done.status, Status::SeeOther, "{}", done.body);
    assert!(app.user(&old).await.is_none());
    let moved = app
        .user(&new)
        .await
        .expect("the account, at its new address");
    assert!(moved.email_verified(), "the code proved the new mailbox");
    // Sessions stay, under the new address.
    assert!(laptop.is_signed_in().await && phone.is_signed_in().await);
    assert!(laptop.get("/account/security").await.body.contains(&new));
    let me = bearer(&laptop, Method::Get, "/api/v1/me", &api.access).await;
    assert_eq!(me.status, Status::Ok);
    assert_eq!(me.json["email"], new.as_str());
    // The same code again does nothing.
    assert_eq!(
        confirm_change(&laptop, &code).await.status,
        Status::BadRequest
    );

    let notice = mail_to(&smtp.received(), &old, CHANGED_MAIL).await;
    assert!(notice.contains(&new) && notice.contains("Firefox on Linux"));
    assert!(notice.contains("203.0.113.5") && notice.contains("If this wasn't you"));
    assert!(notice.contains("text/html"));
    let undo = undo_path(&notice);

    let stranger = app.browser().await;
    let undone = stranger.get(&undo).await;
    assert_eq!(undone.status, Status::Ok, "{}", undone.body);
    assert!(undone.body.contains(&old));
    assert!(app.user(&old).await.is_some() && app.user(&new).await.is_none());
    // Every session ended: browsers, and the API's access and refresh tokens.
    assert!(!laptop.is_signed_in().await && !phone.is_signed_in().await);
    bearer(&laptop, Method::Get, "/api/v1/me", &api.access)
        .await
        .assert_refused_token();
    assert_eq!(
        refresh(&laptop, &api.refresh).await.status,
        Status::Unauthorized
    );
    wait_for_mail_saying(&smtp.received(), "again").await;

    // Single use: replaying the link changes nothing, even after another change.
    let b = app.browser().await;
    assert_eq!(b.login(&old, PASSWORD).await.status, Status::SeeOther);
    let replay = app.browser().await.get(&undo).await;
    assert_eq!(replay.status, Status::BadRequest);
    assert!(b.is_signed_in().await, "a replay ends nothing");
    assert!(app.user(&old).await.is_some());
}

async fn an_address_in_use_reads_like_any_other_and_changes_nothing(db: Database) {
    let smtp = SmtpServer::start();
    let app = TestApp::on(db).await.set("smtp_url", smtp.url());
    let (b, mine) = app.signed_in_browser().await;
    let theirs = app.account().await;
    let free = email();

    let mut in_use_times = Vec::new();
    let mut free_times = Vec::new();
    let mut answers = Vec::new();
    for _ in 0..2 {
        for (target, times) in [(&theirs, &mut in_use_times), (&free, &mut free_times)] {
            let started = Instant::now();
            let res = start_change(&b, target).await;
            times.push(started.elapsed());
            let flash = b
                .get("/account/email")
                .await
                .body
                .replace(target.as_str(), "ADDRESS");
            answers.push((res.status, res.location.clone(), flash));
        }
    }
    for pair in answers.windows(2) {
        assert_eq!(pair[0].0, pair[1].0);
        assert_eq!(pair[0].1, pair[1].1);
    }
    let notice = |page: &str| page.contains("We sent a 6-digit code to ADDRESS");
    assert!(answers.iter().all(|(_, _, page)| notice(page)));
    // The same work either way: the password's hash dominates both (a path that
    // skipped it for an address in use would be a hundred times faster). Loose, since
    // the machine may be busy.
    let fastest = |t: &Vec<Duration>| t.iter().min().copied().unwrap_or_default();
    let (a, f) = (fastest(&in_use_times), fastest(&free_times));
    assert!(a * 5 > f && f * 5 > a, "in use {a:?}, free {f:?}");

    // The code reached the free address only.
    mail_to(&smtp.received(), &free, CODE_MAIL).await;
    start_change(&b, &theirs).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let to_them: Vec<_> = mails_saying(&smtp.received(), CODE_MAIL)
        .into_iter()
        .filter(|m| m.contains(&format!("To: {theirs}")))
        .collect();
    assert!(
        to_them.is_empty(),
        "no code went to the other account's address"
    );
    // Guessing the code changes nothing: both accounts keep their addresses.
    for guess in ["123456", "654321"] {
        assert_eq!(confirm_change(&b, guess).await.status, Status::BadRequest);
    }
    let me = app.user(&mine).await.expect("mine");
    let them = app.user(&theirs).await.expect("theirs");
    assert_ne!(me.id, them.id);

    // Five changes an hour, whatever the address: the sixth is refused, and mails
    // nothing anywhere.
    let sent = mails_saying(&smtp.received(), CODE_MAIL).len();
    let sixth = start_change(&b, &email()).await;
    assert_eq!(sixth.status, Status::TooManyRequests);
    assert!(sixth.body.contains("too many codes"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(mails_saying(&smtp.received(), CODE_MAIL).len(), sent);
}

crate::on_both_databases!(
    a_new_address_is_confirmed_by_its_code_and_the_old_one_can_undo_it,
    an_address_in_use_reads_like_any_other_and_changes_nothing,
);

#[tokio::test]
async fn another_accounts_code_is_no_good_and_wrong_tries_end_the_change() {
    let app = TestApp::new();
    let (mallory, mallory_email) = app.signed_in_browser().await;
    let (alice, alice_email) = app.signed_in_browser().await;
    let (to_mallory, to_alice) = (email(), email());
    start_change(&mallory, &to_mallory).await;
    let mallory_code = code_in(&mail_to(&app.outbox(), &to_mallory, CODE_MAIL).await);
    start_change(&alice, &to_alice).await;
    let alice_code = code_in(&mail_to(&app.outbox(), &to_alice, CODE_MAIL).await);

    if mallory_code != alice_code {
        // Mallory's own code, on Alice's session (and Alice's on Mallory's).
        assert_eq!(
            confirm_change(&alice, &mallory_code).await.status,
            Status::BadRequest
        );
        assert_eq!(
            confirm_change(&mallory, &alice_code).await.status,
            Status::BadRequest
        );
    }
    assert!(app.user(&alice_email).await.is_some());
    assert!(app.user(&mallory_email).await.is_some());

    // Five wrong tries end Alice's change: her own code no longer works.
    let wrong = if alice_code == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        assert_eq!(
            confirm_change(&alice, wrong).await.status,
            Status::BadRequest
        );
    }
    let late = confirm_change(&alice, &alice_code).await;
    assert_eq!(late.status, Status::BadRequest);
    assert!(late.body.contains("No change of address is waiting"));
    assert!(app.user(&alice_email).await.is_some() && app.user(&to_alice).await.is_none());
}

#[tokio::test]
async fn a_forged_token_or_a_wrong_password_changes_nothing() {
    let app = TestApp::new();
    let (b, mine) = app.signed_in_browser().await;
    let new = email();
    let forged = b
        .post_form(
            "/account/email",
            "forged-token",
            &[("new_email", &new), ("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(forged.status, Status::Forbidden);
    let wrong = b
        .submit(
            "/account/email",
            "/account/email",
            &[
                ("new_email", &new),
                ("current_password", "not the password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, Status::Unauthorized);
    for bad in ["not an address", "Mallory <m@example.com>", mine.as_str()] {
        let res = start_change(&b, bad).await;
        assert_eq!(res.status, Status::BadRequest, "{bad}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(mails_saying(&app.outbox(), CODE_MAIL).is_empty());
    assert!(
        !b.get("/account/email").await.body.contains("email-confirm"),
        "no change waits for a code"
    );
    // Signed out: sent to sign in.
    let out = app.browser().await.get("/account/email").await;
    assert_eq!(out.status, Status::SeeOther);
}

#[tokio::test]
async fn a_second_factor_is_asked_for_when_it_is_on() {
    let app = TestApp::new();
    let (b, account) = app.two_step_account().await;
    let new = email();
    let without = start_change(&b, &new).await;
    assert_eq!(without.status, Status::BadRequest);
    assert!(without.body.contains("6-digit code"));
    let code = account.next_code();
    let with = b
        .submit(
            "/account/email",
            "/account/email",
            &[
                ("new_email", &new),
                ("current_password", PASSWORD),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(with.status, Status::SeeOther, "{}", with.body);
    mail_to(&app.outbox(), &new, CODE_MAIL).await;
}
