//! The account database, on SQLite and on PostgreSQL: each case below runs on both
//! (`on_both_databases!`: `name::sqlite` and `name::postgres`), through `Accounts`
//! itself and through the pages. The server binary on PostgreSQL, and PostgreSQL going
//! away under a running app, are tested once.

use std::time::{Duration, Instant};

use rocket::http::Status;
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

use crate::support::*;

crate::on_both_databases!(
    an_account_is_found_by_its_address_in_any_case_and_by_its_id,
    one_address_has_one_account,
    a_new_password_replaces_the_old_one_and_moves_the_version_on,
    a_device_is_new_once_per_window,
    accounts_are_listed_page_by_page_in_the_order_they_were_made,
    disabling_enabling_and_deleting_change_only_that_account,
    an_address_is_verified_once_and_only_while_it_is_the_accounts,
    only_unverified_accounts_unused_since_the_cutoff_are_found_and_deleted,
);

fn address(s: &str) -> Email {
    Email::parse(s).expect("an address")
}

async fn an_account_is_found_by_its_address_in_any_case_and_by_its_id(db: Database) {
    let app = TestApp::on(db).await;
    let accounts = app.accounts().await;
    let expected = match db {
        Database::Sqlite => "sqlite",
        Database::Postgres => "postgres",
    };
    assert_eq!(accounts.backend_name(), expected);
    let typed = format!("Ada.{}", email());

    let made = accounts
        .create(&address(&typed), "$argon2id$hash")
        .await
        .expect("created");

    let found = accounts
        .find_by_email(&address(&typed.to_lowercase()))
        .await
        .expect("the database answers")
        .expect("found by address");
    assert_eq!(found.id, made.id);
    assert_eq!(found.email, typed, "kept as typed");
    assert_eq!(found.password_hash, "$argon2id$hash");
    assert_eq!(found.created_at, made.created_at);
    assert_eq!(found.password_changed_at, made.password_changed_at);
    let by_id = accounts.find_by_id(&made.id).await.expect("answers");
    assert_eq!(by_id.map(|u| u.email), Some(typed));
    let nobody = accounts.find_by_email(&address(&email())).await;
    assert!(matches!(nobody, Ok(None)));
    let no_id = accounts.find_by_id(&uuid::Uuid::now_v7()).await;
    assert!(matches!(no_id, Ok(None)));
}

async fn one_address_has_one_account(db: Database) {
    let app = TestApp::on(db).await;
    let accounts = app.accounts().await;
    let taken = email();
    accounts
        .create(&address(&taken), "$argon2id$first")
        .await
        .expect("created");

    let again = accounts
        .create(&address(&taken.to_uppercase()), "$argon2id$second")
        .await;
    assert!(matches!(again, Err(AccountError::Duplicate)), "{again:?}");
    let kept = accounts.find_by_email(&address(&taken)).await;
    let kept = kept.expect("answers").expect("the first account");
    assert_eq!(kept.password_hash, "$argon2id$first");

    // Through the page: 400 with the message, and the first account still signs in.
    let page_made = app.account().await;
    let twice = app
        .browser()
        .await
        .register(&page_made.to_uppercase())
        .await;
    assert_eq!(twice.status, Status::BadRequest);
    assert!(twice.body.contains("already exists"), "{}", twice.body);
    let b = app.browser().await;
    assert_eq!(b.login(&page_made, PASSWORD).await.status, Status::SeeOther);
}

async fn a_new_password_replaces_the_old_one_and_moves_the_version_on(db: Database) {
    const NEW_PASSWORD: &str = "a different passphrase entirely";
    let app = TestApp::on(db).await;
    let accounts = app.accounts().await;
    let (me, email) = app.signed_in_browser().await;
    let before = accounts.find_by_email(&address(&email)).await;
    let before = before.expect("answers").expect("registered");

    let changed = me.change_password(PASSWORD, NEW_PASSWORD).await;
    assert_eq!(changed.status, Status::SeeOther);

    let after = accounts.find_by_email(&address(&email)).await;
    let after = after.expect("answers").expect("still there");
    assert!(after.password_changed_at > before.password_changed_at);
    assert_ne!(after.password_hash, before.password_hash);
    let b = app.browser().await;
    assert_eq!(b.login(&email, PASSWORD).await.status, Status::Unauthorized);
    assert_eq!(b.login(&email, NEW_PASSWORD).await.status, Status::SeeOther);
    // `set_password` itself: each version is above the one before, even within one ms.
    let v1 = accounts
        .set_password(&after, "$argon2id$x")
        .await
        .expect("set");
    assert!(v1 > after.password_changed_at);
    let again = accounts.find_by_id(&after.id).await.expect("answers");
    let again = again.expect("there");
    assert_eq!(
        (again.password_changed_at, again.password_hash.as_str()),
        (v1, "$argon2id$x")
    );
}

async fn a_device_is_new_once_per_window(db: Database) {
    let app = TestApp::on(db).await;
    let accounts = app.accounts().await;
    let ada = accounts.create(&address(&email()), "h").await.expect("ada");
    let bob = accounts.create(&address(&email()), "h").await.expect("bob");
    let day = 24 * 3600 * 1000;

    assert!(accounts
        .note_device(&ada.id, "laptop", day)
        .await
        .expect("noted"));
    assert!(!accounts
        .note_device(&ada.id, "laptop", day)
        .await
        .expect("noted"));
    // Seen before, but longer ago than a (tiny) window: new again.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(accounts
        .note_device(&ada.id, "laptop", 1)
        .await
        .expect("noted"));
    // Another device of hers, and her device's fingerprint for someone else, are new.
    assert!(accounts
        .note_device(&ada.id, "phone", day)
        .await
        .expect("noted"));
    assert!(accounts
        .note_device(&bob.id, "laptop", day)
        .await
        .expect("noted"));
    // A device of an account that does not exist is refused by the database.
    let ghost = accounts.note_device(&uuid::Uuid::now_v7(), "x", day).await;
    assert!(ghost.is_err(), "{ghost:?}");
}

async fn accounts_are_listed_page_by_page_in_the_order_they_were_made(db: Database) {
    let app = TestApp::on(db).await;
    let accounts = app.accounts().await;
    let mut made = vec![];
    for _ in 0..5 {
        let user = accounts
            .create(&address(&email()), "h")
            .await
            .expect("made");
        made.push(user.email);
    }

    let mut listed = vec![];
    let mut after = String::new();
    loop {
        let page = accounts.list_after(&after, 2).await.expect("a page");
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = last.id.to_string();
        listed.extend(page.into_iter().map(|u| u.email));
    }
    assert_eq!(listed, made);
}

async fn disabling_enabling_and_deleting_change_only_that_account(db: Database) {
    let app = TestApp::on(db).await;
    let accounts = app.accounts().await;
    let ada = accounts.create(&address(&email()), "h").await.expect("ada");
    let bob = accounts.create(&address(&email()), "h").await.expect("bob");
    let find = |id| {
        let accounts = accounts.clone();
        async move { accounts.find_by_id(&id).await.expect("answers") }
    };

    let version = accounts.set_disabled(&ada, true).await.expect("disabled");
    let version = version.expect("ada exists");
    let disabled = find(ada.id).await.expect("ada");
    assert!(disabled.disabled_at.is_some());
    assert_eq!(disabled.password_changed_at, version);
    assert!(
        version > ada.password_changed_at,
        "sign-ins checked before lose"
    );
    assert_eq!(find(bob.id).await.expect("bob").disabled_at, None);
    let enabled = accounts
        .set_disabled(&disabled, false)
        .await
        .expect("enabled");
    assert!(enabled.expect("ada exists") > version);
    assert_eq!(find(ada.id).await.expect("ada").disabled_at, None);

    accounts
        .note_device(&ada.id, "laptop", 1000)
        .await
        .expect("noted");
    assert!(accounts.delete(&ada.id).await.expect("deleted"));
    assert!(find(ada.id).await.is_none());
    assert!(
        !accounts.delete(&ada.id).await.expect("answers"),
        "gone already"
    );
    assert_eq!(
        accounts.set_disabled(&ada, true).await.expect("answers"),
        None
    );
    assert!(find(bob.id).await.is_some());
}

async fn an_address_is_verified_once_and_only_while_it_is_the_accounts(db: Database) {
    let app = TestApp::on(db).await;
    let accounts = app.accounts().await;
    let typed = email();
    let ada = accounts.create(&address(&typed), "h").await.expect("ada");
    let bob = accounts.create(&address(&email()), "h").await.expect("bob");
    assert!(!ada.email_verified(), "a new account is unverified");
    assert!(ada.last_seen_at.is_some(), "registering is a use");
    let find = |id| {
        let accounts = accounts.clone();
        async move { accounts.find_by_id(&id).await.expect("answers") }
    };

    // A code mailed to another address verifies nothing.
    let other = address(&email()).normalized();
    let elsewhere = accounts.mark_verified(&ada.id, Some(&other));
    assert!(!elsewhere.await.expect("answers"));
    assert!(!find(ada.id).await.expect("ada").email_verified());

    let own = address(&typed.to_uppercase()).normalized();
    let first = accounts.mark_verified(&ada.id, Some(&own));
    assert!(
        first.await.expect("verified"),
        "the first verification counts"
    );
    let verified = find(ada.id).await.expect("ada");
    let at = verified.email_verified_at.expect("verified");
    assert!(!accounts
        .mark_verified(&ada.id, None)
        .await
        .expect("answers"));
    assert_eq!(
        find(ada.id).await.expect("ada").email_verified_at,
        Some(at),
        "a second verification keeps the first time"
    );
    assert!(
        !find(bob.id).await.expect("bob").email_verified(),
        "only ada"
    );
    let nobody = accounts.mark_verified(&uuid::Uuid::now_v7(), None).await;
    assert!(!nobody.expect("answers"));
}

async fn only_unverified_accounts_unused_since_the_cutoff_are_found_and_deleted(db: Database) {
    let app = TestApp::on(db).await;
    let accounts = app.accounts().await;
    let idle = accounts
        .create(&address(&email()), "h")
        .await
        .expect("idle");
    let verified = accounts.create(&address(&email()), "h").await.expect("v");
    accounts.mark_verified(&verified.id, None).await.expect("v");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cutoff = now_ms();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let fresh = accounts
        .create(&address(&email()), "h")
        .await
        .expect("fresh");
    let used = accounts
        .create(&address(&email()), "h")
        .await
        .expect("used");

    let found: Vec<_> = accounts
        .unverified_unused(cutoff, 100)
        .await
        .expect("answers")
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert!(found.contains(&idle.id), "never verified and unused");
    for kept in [&verified.id, &fresh.id, &used.id] {
        assert!(!found.contains(kept), "verified or used since the cutoff");
    }

    // A sign-in between the search and the delete keeps the account.
    let late = accounts
        .create(&address(&email()), "h")
        .await
        .expect("late");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let listed_at = now_ms();
    tokio::time::sleep(Duration::from_millis(5)).await;
    accounts.note_used(&late.id).await.expect("noted");
    let keeps = accounts.delete_if_unverified_unused(&late.id, listed_at);
    assert!(!keeps.await.expect("answers"), "used after the cutoff");
    let gone = accounts.delete_if_unverified_unused(&idle.id, cutoff);
    assert!(gone.await.expect("deleted"));
    assert!(accounts
        .find_by_id(&idle.id)
        .await
        .expect("answers")
        .is_none());
    let kept = accounts.delete_if_unverified_unused(&verified.id, now_ms() + 1);
    assert!(!kept.await.expect("answers"), "a verified account stays");
    assert!(accounts
        .find_by_id(&used.id)
        .await
        .expect("answers")
        .is_some());
}

/// The built server, started on its own PostgreSQL database as an operator would
/// start it: migrations run at start, and a person registers, signs in from a second
/// browser and sees both on the devices page.
#[test]
fn the_server_binary_runs_on_postgres() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let app = runtime.block_on(TestApp::on(Database::Postgres));
    let server = app.spawn_server();
    let email = email();
    let fields = [("email", email.as_str()), ("password", PASSWORD)];

    let made = server.submit(&mut Jar::default(), "/register", "/register", &fields);
    assert_eq!((made.status, made.location()), (303, Some("/devices")));
    let mut second = Jar::default();
    let signed_in = server.submit(&mut second, "/login", "/login", &fields);
    assert_eq!(
        (signed_in.status, signed_in.location()),
        (303, Some("/devices"))
    );

    let devices = server.send(&mut second, "GET", "/devices", None);
    assert_eq!(devices.status, 200);
    assert!(devices.body.contains(&email), "{}", devices.body);
    assert_eq!(devices.body.matches("class=\"device-label\"").count(), 2);
    assert_eq!(devices.body.matches("badge-current").count(), 1);
    let wrong = server.submit(
        &mut Jar::default(),
        "/login",
        "/login",
        &[("email", &email), ("password", "not the password at all")],
    );
    assert_eq!(wrong.status, 401);
    drop(server);
    drop(app);
}

/// Runs one statement on the test server's own database (`postgres`), as an operator.
async fn as_operator(sql: String) {
    let mut conn = PgConnection::connect(&postgres_url())
        .await
        .expect("PostgreSQL");
    conn.execute(AssertSqlSafe(sql.clone())).await.expect(&sql);
    let _ = conn.close().await;
}

/// PostgreSQL refusing connections (a restart, a failover): every request that needs
/// an account answers 503 within seconds, never 500, and nobody is signed out by it;
/// once it takes connections again, service resumes by itself.
#[tokio::test]
async fn postgres_going_away_answers_503_and_service_resumes() {
    let app = TestApp::on(Database::Postgres).await;
    let name = app
        .database_url
        .rsplit('/')
        .next()
        .expect("a name")
        .to_string();
    let (signed_in, email) = app.signed_in_browser().await;
    let b = app.browser().await;

    as_operator(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await;
    as_operator(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .await;
    let started = Instant::now();
    assert_eq!(b.get("/health").await.status, Status::ServiceUnavailable);
    let refused = b.login(&email, PASSWORD).await;
    assert_eq!(
        refused.status,
        Status::ServiceUnavailable,
        "{}",
        refused.body
    );
    let register = b.register(&crate::support::email()).await;
    assert_eq!(register.status, Status::ServiceUnavailable);
    let devices = signed_in.get("/devices").await.status;
    assert!(
        [Status::Ok, Status::ServiceUnavailable].contains(&devices),
        "{devices}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    as_operator(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await;
    assert_eq!(b.get("/health").await.status, Status::Ok);
    assert_eq!(b.login(&email, PASSWORD).await.status, Status::SeeOther);
    assert!(
        signed_in.is_signed_in().await,
        "the outage signed nobody out"
    );
}

/// A PostgreSQL that takes only reads (a replica promoted late, a full disk, an
/// operator's `default_transaction_read_only`): registering answers 503 with a clear
/// page, and people already registered still sign in, as on a read-only SQLite file.
#[tokio::test]
async fn a_read_only_postgres_refuses_registration_clearly_and_still_signs_people_in() {
    let app = TestApp::on(Database::Postgres).await;
    let name = app
        .database_url
        .rsplit('/')
        .next()
        .expect("a name")
        .to_string();
    let email = app.account().await;
    let b = app.browser().await.with_agent(SAFARI_IOS);

    as_operator(format!(
        "ALTER DATABASE {name} SET default_transaction_read_only = on"
    ))
    .await;
    as_operator(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .await;
    let refused = b.register(&crate::support::email()).await;
    assert_eq!(
        refused.status,
        Status::ServiceUnavailable,
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("cannot be saved right now"),
        "{}",
        refused.body
    );
    assert_eq!(b.login(&email, PASSWORD).await.status, Status::SeeOther);
    assert!(b.is_signed_in().await);
}

/// A PostgreSQL that does not answer stops the start with a line naming the setting,
/// and the password in the URL is never printed.
#[test]
fn an_unreachable_postgres_stops_the_start_without_printing_its_password() {
    let url = format!(
        "postgres://latchkey:never-printed-pw@127.0.0.1:{}/accounts",
        spare_port()
    );
    let app = TestApp::new().set("database_url", &url);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .envs(app.served_at(spare_port()).env())
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("setting `database_url`"), "{stderr}");
    assert!(stderr.contains("latchkey:***@127.0.0.1"), "{stderr}");
    assert!(!stderr.contains("never-printed-pw"), "{stderr}");
}
