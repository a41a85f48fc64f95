//! The operator's command line: the built binary (`latchkey users …`) run with a test
//! instance's settings as `LATCHKEY_*` variables, against the same real Redis (the
//! test's key prefix) and database as the in-process app the people in the test use.
//! What it does is checked where it matters: in what that app answers them. The
//! account cases run on SQLite and on PostgreSQL.

use rocket::http::{Method, Status};
use serde_json::Value;

use crate::support::*;

crate::on_both_databases!(
    list_and_show_print_accounts_as_text_and_as_json_lines,
    disabling_signs_the_account_out_and_its_sign_in_answers_as_wrong_credentials,
    sessions_lists_the_devices_and_end_sessions_signs_them_all_out,
    reset_second_factor_turns_it_off_signs_the_account_out_and_mails_the_owner,
);

async fn list_and_show_print_accounts_as_text_and_as_json_lines(db: Database) {
    let app = TestApp::on(db).await;
    let (ada, bob) = (email(), email());
    app.browser().await.register(&ada).await;
    app.browser().await.register(&bob).await;

    let lines = app.cli(&["users", "list", "--json"]).json_lines();
    let emails: Vec<&str> = lines
        .iter()
        .map(|l| l["email"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(emails, [ada.as_str(), bob.as_str()], "oldest first");
    for line in &lines {
        assert_eq!(line["id"].as_str().map(str::len), Some(36), "{line}");
        assert!(line["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')));
        assert_eq!(line["disabled_at"], Value::Null);
    }
    let text = app.cli(&["users", "list"]);
    let text: Vec<&str> = text.ok().lines().collect();
    assert!(
        text[0].starts_with("ID") && text[0].ends_with("EMAIL"),
        "{text:?}"
    );
    assert_eq!(text.len(), 3);
    assert!(
        text[1].contains("active") && text[1].ends_with(&ada),
        "{text:?}"
    );

    // `--json` may come before the command too; `show` counts the live sessions.
    let show = app.cli(&["users", "--json", "show", &ada.to_uppercase()]);
    let show = show.json_lines();
    assert_eq!(show.len(), 1);
    assert_eq!(show[0]["email"], ada.as_str());
    assert_eq!(show[0]["id"], lines[0]["id"]);
    assert_eq!(show[0]["sessions"], 1, "registering signed her in");
    let text = app.cli(&["users", "show", &ada]);
    assert!(
        text.ok().contains(&format!("email:            {ada}")),
        "{}",
        text.stdout
    );
    assert!(
        text.ok().contains("status:           active"),
        "{}",
        text.stdout
    );
    assert!(text.ok().contains("sessions:         1"), "{}", text.stdout);
}

async fn disabling_signs_the_account_out_and_its_sign_in_answers_as_wrong_credentials(
    db: Database,
) {
    let app = TestApp::on(db).await;
    let (b, email) = app.signed_in_browser().await;
    let tokens = password_grant(&b, &email, Some("backup-script")).await;

    let disabled = app.cli(&["users", "disable", &email]);
    assert_eq!(
        disabled.ok().trim(),
        format!("{email} is disabled; 2 sessions ended")
    );
    assert!(!b.is_signed_in().await);
    bearer(&b, Method::Get, "/api/v1/me", &tokens.access)
        .await
        .assert_refused_token();
    // The right password gets exactly what a wrong one gets, on the page and the API.
    let other = app.browser().await;
    assert_the_right_password_answers_as_a_wrong_one(&other, &email).await;
    let shown = app.cli(&["users", "show", &email, "--json"]);
    let shown = shown.json_lines();
    let since = shown[0]["disabled_at"]
        .as_str()
        .expect("disabled_at")
        .to_string();
    assert_eq!(shown[0]["sessions"], 0);
    // Disabling again ends nothing more and keeps the time it was first disabled.
    let again = app.cli(&["users", "disable", &email, "--json"]);
    let again = again.json_lines();
    assert_eq!(again[0]["disabled"], true);
    assert_eq!(again[0]["sessions_ended"], 0);
    let shown = app.cli(&["users", "show", &email, "--json"]);
    assert_eq!(shown.json_lines()[0]["disabled_at"], since.as_str());

    let enabled = app.cli(&["users", "enable", &email, "--json"]);
    let enabled = enabled.json_lines();
    assert_eq!(enabled[0]["email"], email.as_str());
    assert_eq!(enabled[0]["disabled"], false);
    assert!(!b.is_signed_in().await, "nothing of before comes back");
    let again = app.browser().await;
    assert_eq!(again.login(&email, PASSWORD).await.status, Status::SeeOther);
}

async fn sessions_lists_the_devices_and_end_sessions_signs_them_all_out(db: Database) {
    let app = TestApp::on(db).await;
    let (laptop, email) = app.signed_in_browser().await;
    let phone = app
        .browser()
        .await
        .with_agent(SAFARI_IOS)
        .with_ip("192.0.2.44");
    phone.login(&email, PASSWORD).await;
    password_grant(&laptop, &email, Some("backup-script")).await;

    let lines = app.cli(&["users", "sessions", &email, "--json"]);
    let lines = lines.json_lines();
    let mut seen: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|l| {
            let field = |k: &str| l[k].as_str().unwrap_or("");
            (field("kind"), field("label"), field("ip"))
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("api", "backup-script", API_IP),
            ("browser", "Firefox on Linux", "203.0.113.5"),
            ("browser", "Safari on iOS", "192.0.2.44"),
        ]
    );
    // The same sessions as the devices page shows (its other devices have their ids).
    let ids: Vec<&str> = lines.iter().filter_map(|l| l["id"].as_str()).collect();
    let others = laptop.device_ids().await;
    assert_eq!(others.len(), 2);
    assert!(
        others.iter().all(|id| ids.contains(&id.as_str())),
        "{ids:?} / {others:?}"
    );
    let text = app.cli(&["users", "sessions", &email]);
    let text: Vec<&str> = text.ok().lines().collect();
    assert_eq!(text.len(), 4, "a header and three sessions: {text:?}");
    assert!(
        text[1..].iter().any(|l| l.ends_with("Safari on iOS")),
        "{text:?}"
    );

    let ended = app.cli(&["users", "end-sessions", &email]);
    assert_eq!(ended.ok().trim(), format!("{email}: 3 sessions ended"));
    assert!(!laptop.is_signed_in().await);
    assert!(!phone.is_signed_in().await);
    let none = app.cli(&["users", "sessions", &email, "--json"]);
    assert_eq!(none.ok(), "");
    // Not disabled: the account signs in again.
    assert_eq!(phone.login(&email, PASSWORD).await.status, Status::SeeOther);
}

/// An owner who lost both the authenticator and the recovery codes: the operator turns
/// the second factor off. Every session and API token ends, a pending sign-in cannot
/// be finished, the recovery codes are gone, the password alone signs in again, and
/// the owner gets a mail saying so. Run again, it changes nothing and says why.
async fn reset_second_factor_turns_it_off_signs_the_account_out_and_mails_the_owner(db: Database) {
    let app = TestApp::on(db).await;
    let (owner, account) = app.two_step_account().await;
    let email = account.email.clone();
    // A second browser signed in with a code, and one waiting at the code page.
    let laptop = app.browser().await.with_ip("192.0.2.44");
    laptop.password_step(&email, "").await;
    let signed = laptop.code_step(&account.next_code()).await;
    assert_eq!(
        signed.location.as_deref(),
        Some("/devices"),
        "{}",
        signed.body
    );
    let waiting = app.browser().await;
    let pending = waiting.password_step(&email, "").await;
    assert_eq!(pending.location.as_deref(), Some(CODE_PAGE));

    let reset = app.cli(&["users", "reset-second-factor", &email, "--json"]);
    let line = &reset.json_lines()[0];
    assert_eq!(line["email"], email.as_str());
    assert_eq!(line["second_factor"], false);
    assert_eq!(line["sessions_ended"], 2, "{line}");
    assert_eq!(line["owner_mailed"], true, "{}", reset.stderr);

    assert!(!owner.is_signed_in().await);
    assert!(!laptop.is_signed_in().await);
    // The pending sign-in cannot be finished, even with a recovery code.
    let late = waiting.code_step(&account.recovery[0]).await;
    assert_eq!(late.location.as_deref(), Some("/login"), "{}", late.body);
    assert!(waiting.session_cookie().is_none());
    // The password alone signs in; the security page offers to set it up again.
    let back = app.browser().await;
    let signed_in = back.login(&email, PASSWORD).await;
    assert_eq!(signed_in.status, Status::SeeOther);
    assert_eq!(signed_in.location.as_deref(), Some("/devices"));
    let setup = back.get("/account/totp").await;
    assert_eq!(setup.status, Status::Ok, "{}", setup.body);
    // The owner is told, in words that say who did it and what to do.
    // (Sent before the command answered: no waiting.)
    let told = mails_saying(&app.outbox(), "turned off by an administrator");
    assert_eq!(told.len(), 1, "one mail: {told:?}");
    let mail = &told[0];
    assert!(mail.contains(&email), "{mail}");
    assert!(mail.contains("2 devices were signed out"), "{mail}");
    assert!(mail.contains("/account/security"), "{mail}");

    // Again: nothing to reset, nothing changes (the new session stays).
    let again = app.cli(&["users", "reset-second-factor", &email]);
    assert_eq!(
        again.refused().trim(),
        format!("latchkey: {email} has no second factor turned on; nothing changed")
    );
    assert!(back.is_signed_in().await);
    // The text form, on an account of its own.
    let other = app.two_step_account().await.1;
    let text = app.cli(&["users", "reset-second-factor", &other.email]);
    assert_eq!(
        text.ok().trim(),
        format!(
            "{}: second factor turned off; 1 session ended; owner mailed",
            other.email
        )
    );
}

/// A mail server that does not answer does not undo the reset: the command still turns
/// the factor off and ends the sessions, says on stderr that the owner could not be
/// mailed, prints `owner_mailed: false`, and exits 0.
#[tokio::test]
async fn reset_second_factor_stands_when_the_owner_cannot_be_mailed() {
    let app = TestApp::new();
    let (owner, account) = app.two_step_account().await;
    let dead = app
        .clone()
        .set("smtp_url", format!("smtp://127.0.0.1:{}", spare_port()));
    let run = dead.cli(&["users", "reset-second-factor", &account.email, "--json"]);
    let line = &run.json_lines()[0];
    assert_eq!(line["second_factor"], false);
    assert_eq!(line["sessions_ended"], 1);
    assert_eq!(line["owner_mailed"], false);
    assert!(
        run.stderr
            .starts_with("latchkey: warning: the owner could not be mailed"),
        "{}",
        run.stderr
    );
    assert!(!owner.is_signed_in().await);
    let back = app.browser().await;
    let signed_in = back.login(&account.email, PASSWORD).await;
    assert_eq!(signed_in.location.as_deref(), Some("/devices"));
}

/// Unknown addresses, non-addresses, wrong arguments and wrong settings: a clear line
/// on stderr and a non-zero exit, never a panic; the database and Redis unchanged.
#[tokio::test]
async fn mistakes_are_named_on_stderr_with_a_failing_exit_code() {
    let app = TestApp::new();
    let (b, known) = app.signed_in_browser().await;
    let nobody = email();
    for command in [
        "show",
        "disable",
        "enable",
        "sessions",
        "end-sessions",
        "reset-second-factor",
    ] {
        let run = app.cli(&["users", command, &nobody]);
        assert_eq!(
            run.refused().trim(),
            format!("latchkey: no account has the address {nobody}")
        );
        let run = app.cli(&["users", command, "not-an-address"]);
        assert!(
            run.refused()
                .contains("\"not-an-address\" is not an email address"),
            "{}",
            run.stderr
        );
    }
    // clap's own usage errors: exit 2, and the usage on stderr.
    let run = app.cli(&["users", "frobnicate"]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("unrecognized subcommand 'frobnicate'"),
        "{}",
        run.stderr
    );
    let run = app.cli(&["users", "show"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("<EMAIL>"), "{}", run.stderr);
    // A setting the server would refuse stops the command the same way.
    let wrong = app.clone().set("session_idle_timeout", -5);
    let run = wrong.cli(&["users", "list"]);
    assert!(
        run.refused()
            .contains("invalid setting `session_idle_timeout`"),
        "{}",
        run.stderr
    );
    let memory = app.clone().set("redis_url", "memory");
    let run = memory.cli(&["users", "list"]);
    assert!(
        run.refused().contains("`redis_url` is `memory`"),
        "{}",
        run.stderr
    );
    let no_redis = app
        .clone()
        .set("redis_url", format!("redis://127.0.0.1:{}", spare_port()));
    let run = no_redis.cli(&["users", "end-sessions", &known]);
    assert!(
        run.refused().contains("cannot reach Redis"),
        "{}",
        run.stderr
    );
    assert!(b.is_signed_in().await, "nothing was ended");
}

#[tokio::test]
async fn help_names_every_users_command() {
    let app = TestApp::new();
    let help = app.cli(&["users", "--help"]);
    for command in [
        "list",
        "show",
        "disable",
        "enable",
        "sessions",
        "end-sessions",
        "reset-second-factor",
        "--json",
    ] {
        assert!(help.ok().contains(command), "{command}: {}", help.stdout);
    }
    let top = app.cli(&["--help"]);
    assert!(
        top.ok().contains("Without a command, serves"),
        "{}",
        top.stdout
    );
}
