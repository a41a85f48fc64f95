//! What an email address is, decided once for every form, the API and the mailer: an
//! address the mailer cannot deliver to, or one carrying a name or angle brackets that
//! would send its mail elsewhere, is refused with 400 and a message wherever it is typed.

use crate::support::*;
use rocket::http::Status;

/// Addresses a mail server would refuse, or would deliver somewhere else.
const REFUSED: &[&str] = &[
    "a..b@x.com",
    ".a@x.com",
    "a.@x.com",
    "a@x..com",
    "a@-x-.com",
    "a@x.com.",
    "ac@x.com>",
    "<ac@x.com>",
    "x<attacker@evil.com>",
    "Mallory <attacker@evil.com>",
    "\"Mallory\" <attacker@evil.com>",
    "\"a b\"@x.com",
    "a b@x.com",
    "a@x.com, b@y.com",
    "a@x.com\r\nBcc: b@y.com",
    "a@@x.com",
    "@x.com",
    "a@",
    "a@[127.0.0.1]",
    "a@127.0.0.1",
    "a(comment)@x.com",
];

/// Addresses people have, which keep working.
const ACCEPTED: &[&str] = &[
    "first.last+tag@mail.sub.example.com",
    "o'brien_99@example.ie",
    "UPPER.Case@Example.COM",
    "user@bücher.example",
];

fn unique_variant(address: &str) -> String {
    // A fresh local part per test run, so accounts never collide between runs.
    let tag = unique("t");
    match address.split_once('@') {
        Some((local, domain)) => format!("{local}.{tag}@{domain}"),
        None => format!("{address}{tag}"),
    }
}

#[tokio::test]
async fn an_address_the_mailer_cannot_use_is_refused_everywhere() {
    let app = TestApp::new();
    // An account exists: what is refused below is refused for its form alone.
    app.account().await;
    let b = app.browser().await;

    for address in REFUSED {
        let register = b
            .submit(
                "/register",
                "/register",
                &[("email", address), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(register.status, Status::BadRequest, "register {address:?}");
        assert!(register.body.contains("role=\"alert\""), "{address:?}");
        assert!(
            register.body.contains("name@example.com"),
            "{address:?}: a clear message"
        );
        assert!(b.session_cookie().is_none(), "{address:?}");

        let login = b.login(address, PASSWORD).await;
        assert_eq!(login.status, Status::BadRequest, "login {address:?}");
        assert!(login.body.contains("name@example.com"), "{address:?}");

        let forgot = b.ask_for_reset_code(address).await;
        assert_eq!(forgot.status, Status::BadRequest, "forgot {address:?}");

        let reset = b
            .reset_password(address, "123456", "a new passphrase")
            .await;
        assert_eq!(reset.status, Status::BadRequest, "reset {address:?}");
        assert!(reset.body.contains("name@example.com"), "{address:?}");

        let api = password_attempt(&b, address, PASSWORD).await;
        api.assert_json_error(Status::BadRequest, "invalid_request");
    }
    // Nothing was mailed to any of them: the one mail is the account's own
    // verification mail.
    wait_for_mails(&app.outbox(), 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mails = mails_in(&app.outbox());
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(unfold(&mails[0]).contains("verify the address"));
}

#[tokio::test]
async fn ordinary_addresses_register_sign_in_and_get_their_mail() {
    let app = TestApp::new();
    for (n, address) in ACCEPTED.iter().enumerate() {
        let address = unique_variant(address);
        let b = app.browser().await;
        let res = b.register(&address).await;
        assert_eq!(res.status, Status::SeeOther, "{address}: {}", res.body);
        assert_eq!(
            app.browser().await.login(&address, PASSWORD).await.status,
            Status::SeeOther,
            "{address}"
        );
        let api = password_attempt(&b, &address, PASSWORD).await;
        assert_eq!(api.status, Status::Ok, "{address}: {}", api.body);
        app.browser().await.ask_for_reset_code(&address).await;
        assert_eq!(
            wait_for_reset_mails(&app.outbox(), n + 1).await.len(),
            n + 1,
            "{address}: its code was mailed"
        );
    }
    // An internationalised domain is mailed in its ASCII (punycode) form, which every
    // mail server accepts, and signs in typed either way.
    let mails = mails_in(&app.outbox());
    let idn = mails.iter().find(|m| m.contains("xn--bcher-kva.example"));
    assert!(
        idn.is_some(),
        "the IDN address was mailed as xn--bcher-kva.example"
    );
    let ascii = unique_variant("user@xn--bcher-kva.example");
    app.browser().await.register(&ascii).await;
    let typed = ascii.replace("xn--bcher-kva", "bücher");
    assert_eq!(
        app.browser().await.login(&typed, PASSWORD).await.status,
        Status::SeeOther
    );
}
