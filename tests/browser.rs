//! Real-browser tests: Debian's Chromium, headless, driven through chromedriver with
//! fantoccini, against the app served on a loopback port. Each browser profile has its
//! own `--user-data-dir`. Screenshots of every page at desktop and phone width go to
//! `target/screenshots/`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);

/// How long a Chromium test waits for a page, or for chromedriver or the app to listen:
/// generous, since on a loaded two-core machine (eight tests at a time, debug builds)
/// one sign-in's Argon2 hash, at nice 10, can take seconds. A wait ends as soon as the
/// page is there.
pub(crate) const PAGE_WITHIN: Duration = Duration::from_secs(30);

pub(crate) struct Chromedriver {
    port: u16,
    _child: Spawned,
}

impl Chromedriver {
    pub(crate) fn start() -> Chromedriver {
        let port = spare_port();
        let child = Spawned::start(
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            "chromedriver (scripts/test installs chromium-driver)",
        );
        wait_for_port(port, PAGE_WITHIN, "chromedriver did not start");
        Chromedriver {
            port,
            _child: child,
        }
    }

    pub(crate) async fn browser(&self, user_agent: Option<&str>) -> Client {
        let profile = test_dir().join("chromium-profile");
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--hide-scrollbars".into(),
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
        ];
        if let Some(ua) = user_agent {
            args.push(format!("--user-agent={ua}"));
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chromium_binary(), "args": args }),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

fn chromium_binary() -> &'static str {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("Chromium (scripts/test installs it)")
}

/// Serves the app in this process on a spare loopback port through the production
/// server loop (`latchkey::server`); returns its base URL. The loop watches no signals
/// here: a signal handler, once installed, would stay for the whole test binary, and
/// Ctrl-C would no longer stop `cargo test`.
pub(crate) async fn serve(cfg: &TestConfig) -> String {
    serve_behind(cfg, None).await
}

/// `serve`, with links and redirects pointing at `public_url` (a proxy in front) when
/// given.
pub(crate) async fn serve_behind(cfg: &TestConfig, public_url: Option<&str>) -> String {
    let port = spare_port();
    let mut cfg = cfg
        .clone()
        .served_at(port)
        .set("shutdown", json!({ "ctrlc": false, "signals": [] }));
    if let Some(url) = public_url {
        cfg = cfg.set("public_url", url);
    }
    let rocket = latchkey::app_with(cfg.figment());
    tokio::spawn(async move {
        latchkey::server::launch(rocket)
            .await
            .expect("the app starts")
    });
    // Polled without blocking: the app is served by this test's own runtime.
    let deadline = Instant::now() + PAGE_WITHIN;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the app did not listen");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    format!("http://127.0.0.1:{port}")
}

/// Saves the current page, its whole length, at desktop (1280 px) and phone (390 px)
/// width as `target/screenshots/NAME-desktop.png` and `NAME-phone.png`: the one
/// screenshot helper of every Chromium test (README, "Screenshots", says how the
/// committed copies in `docs/screenshots/` are refreshed from a run).
pub(crate) async fn shoot(c: &Client, name: &str) {
    for (suffix, (width, height)) in [("desktop", DESKTOP), ("phone", PHONE)] {
        c.set_window_size(width, height).await.expect("resize");
        tokio::time::sleep(Duration::from_millis(150)).await;
        // The window's height includes the browser's own bars: the page gets what
        // is left, so the window grows by the page's overflow.
        let overflow = c
            .execute(
                "return document.documentElement.scrollHeight - window.innerHeight",
                vec![],
            )
            .await
            .expect("the page's height")
            .as_i64()
            .unwrap_or(0);
        if overflow > 0 {
            let taller = (height as i64 + overflow).min(4000) as u32;
            c.set_window_size(width, taller).await.expect("resize");
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        let png = c.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(screenshots_dir().join(format!("{name}-{suffix}.png")), png)
            .expect("write screenshot");
    }
    c.set_window_size(DESKTOP.0, DESKTOP.1)
        .await
        .expect("resize");
}

pub(crate) async fn fill(c: &Client, field: &str, value: &str) {
    let input = c
        .find(Locator::Css(&format!("[name=\"{field}\"]")))
        .await
        .unwrap_or_else(|_| panic!("a {field} field"));
    input.clear().await.expect("clear");
    input.send_keys(value).await.expect("type");
}

pub(crate) async fn submit(c: &Client) {
    let button = c
        .find(Locator::Css("form.form button[type=submit]"))
        .await
        .expect("the form's button");
    navigate_by(c, button).await;
}

/// Clicks something that loads a new page and waits until the new page is there: a
/// click returns before the navigation has replaced the document (Chromium 156 at
/// least), and reading the page too early reads the old one or a stale element.
pub(crate) async fn navigate_by(c: &Client, target: fantoccini::elements::Element) {
    let old = c.find(Locator::Css("html")).await.expect("the page");
    let from = c.current_url().await.expect("url");
    target.click().await.expect("click");
    let deadline = Instant::now() + PAGE_WITHIN;
    loop {
        match old.tag_name().await {
            Err(e) if e.is_stale_element_reference() => break,
            _ => {
                if Instant::now() >= deadline {
                    panic!(
                        "a click on {from} loaded no new page in {PAGE_WITHIN:?}; the page says: {}",
                        text_or_why(c).await
                    );
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    }
    loop {
        let state = c.execute("return document.readyState", vec![]).await;
        if matches!(&state, Ok(s) if *s == json!("complete")) {
            break;
        }
        // An error here is a document still being replaced: asked again.
        assert!(
            Instant::now() < deadline,
            "the page after a click on {from} did not finish loading in {PAGE_WITHIN:?} \
             (readyState: {state:?})"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub(crate) async fn text(c: &Client) -> String {
    c.find(Locator::Css("body"))
        .await
        .expect("body")
        .text()
        .await
        .expect("text")
}

/// The page's text, or why there is none: for failure messages.
pub(crate) async fn text_or_why(c: &Client) -> String {
    match c.find(Locator::Css("body")).await {
        Ok(body) => body
            .text()
            .await
            .unwrap_or_else(|e| format!("(no text: {e})")),
        Err(e) => format!("(no body: {e})"),
    }
}

/// Waits (up to [`PAGE_WITHIN`]) until the browser's URL passes `wanted`: the URL then,
/// or the last one seen. A navigation, or a chain of redirects, may still be ending
/// when a click or a script returns, so a URL is waited for, never read once.
pub(crate) async fn arrive(
    c: &Client,
    wanted: impl Fn(&url::Url) -> bool,
) -> Result<url::Url, url::Url> {
    let deadline = Instant::now() + PAGE_WITHIN;
    loop {
        let url = c.current_url().await.expect("url");
        if wanted(&url) {
            return Ok(url);
        }
        if Instant::now() >= deadline {
            return Err(url);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the browser is at a URL whose path is `expected`; panics with the URL
/// and the page's text if it is not there within [`PAGE_WITHIN`].
pub(crate) async fn expect_path(c: &Client, expected: &str) {
    if let Err(url) = arrive(c, |u| u.path() == expected).await {
        panic!(
            "the browser is at {url}, not at the path {expected}; the page says: {}",
            text_or_why(c).await
        );
    }
}

pub(crate) async fn sign_in(c: &Client, base: &str, email: &str, password: &str) {
    c.goto(&format!("{base}/login")).await.expect("goto");
    fill(c, "email", email).await;
    fill(c, "password", password).await;
    submit(c).await;
}

#[tokio::test]
async fn two_browsers_see_each_other_sign_each_other_out_and_a_reset_signs_out_everyone() {
    let driver = Chromedriver::start();
    let cfg = TestConfig::new();
    let base = serve(&cfg).await;
    let email = email();

    // Register in the first browser.
    let laptop = driver.browser(None).await;
    laptop.goto(&format!("{base}/register")).await.unwrap();
    shoot(&laptop, "register").await;
    fill(&laptop, "email", &email).await;
    fill(&laptop, "password", PASSWORD).await;
    submit(&laptop).await;
    expect_path(&laptop, "/devices").await;

    // Sign in from a second profile (a phone) and a third (Firefox).
    let phone = driver.browser(Some(SAFARI_IOS)).await;
    phone.goto(&format!("{base}/login")).await.unwrap();
    shoot(&phone, "login").await;
    sign_in(&phone, &base, &email, PASSWORD).await;
    expect_path(&phone, "/devices").await;
    let firefox = driver.browser(Some(FIREFOX_LINUX)).await;
    sign_in(&firefox, &base, &email, PASSWORD).await;

    // All three on the devices page, "This device" on the right one.
    laptop.goto(&format!("{base}/devices")).await.unwrap();
    let page = text(&laptop).await;
    assert!(page.contains("Safari on iOS"), "{page}");
    assert!(page.contains("Firefox on Linux"));
    assert!(page.contains("Chrome on Linux"));
    let current = laptop
        .find(Locator::Css("li.device-current"))
        .await
        .expect("the current device's entry")
        .text()
        .await
        .unwrap();
    assert!(current.contains("Chrome on Linux"), "{current}");
    shoot(&laptop, "devices-three").await;
    let phone_page = text(&phone).await;
    assert!(phone_page.contains("This device"));

    // Sign the phone out from the laptop; the phone's next click lands on sign-in.
    let target = laptop
        .find(Locator::Css(
            "button[aria-label=\"Sign out Safari on iOS\"]",
        ))
        .await
        .expect("the phone's sign-out button");
    navigate_by(&laptop, target).await;
    expect_path(&laptop, "/devices").await;
    assert!(!text(&laptop).await.contains("Safari on iOS"));
    let target = phone
        .find(Locator::Css("a[href=\"/account/password\"]"))
        .await
        .expect("a link");
    navigate_by(&phone, target).await;
    expect_path(&phone, "/login").await;

    // Change-password page, then forgot → code from the outbox → reset.
    laptop
        .goto(&format!("{base}/account/password"))
        .await
        .unwrap();
    shoot(&laptop, "password-change").await;
    let helper = driver.browser(None).await;
    helper
        .goto(&format!("{base}/password/forgot"))
        .await
        .unwrap();
    shoot(&helper, "forgot").await;
    fill(&helper, "email", &email).await;
    submit(&helper).await;
    assert!(text(&helper).await.contains("If an account exists"));
    shoot(&helper, "forgot-sent").await;
    let mails = wait_for_mails(&cfg.outbox(), 1).await;
    let code = mails
        .iter()
        .rev()
        .find(|m| m.contains("reset code"))
        .map(|m| code_in(m))
        .expect("a reset mail in the outbox");
    let target = helper
        .find(Locator::Css("a.btn-primary"))
        .await
        .expect("Enter the code");
    navigate_by(&helper, target).await;
    expect_path(&helper, "/password/reset").await;
    shoot(&helper, "reset").await;
    fill(&helper, "code", "000000").await;
    fill(&helper, "new_password", "the new and better passphrase").await;
    submit(&helper).await;
    if !text(&helper)
        .await
        .contains("Sign in with your new password")
    {
        // 000000 was (one in a million) not the code: this is the wrong-code page.
        shoot(&helper, "reset-wrong-code").await;
        fill(&helper, "code", &code).await;
        fill(&helper, "new_password", "the new and better passphrase").await;
        submit(&helper).await;
    }
    expect_path(&helper, "/login").await;
    assert!(text(&helper)
        .await
        .contains("Sign in with your new password"));
    shoot(&helper, "login-after-reset").await;

    // Every window is signed out.
    for b in [&laptop, &firefox] {
        b.goto(&format!("{base}/devices")).await.unwrap();
        expect_path(b, "/login").await;
    }
    sign_in(&laptop, &base, &email, "the new and better passphrase").await;
    expect_path(&laptop, "/devices").await;
    shoot(&laptop, "devices-one").await;

    laptop.goto(&format!("{base}/no-such-page")).await.unwrap();
    shoot(&laptop, "error-404").await;

    for b in [laptop, phone, firefox, helper] {
        let _ = b.close().await;
    }
}

#[tokio::test]
async fn too_many_failures_show_the_wait_in_words() {
    let driver = Chromedriver::start();
    let cfg = TestConfig::new();
    let base = serve(&cfg).await;
    let email = email();
    let b = driver.browser(None).await;
    b.goto(&format!("{base}/register")).await.unwrap();
    fill(&b, "email", &email).await;
    // Too short is stopped by the browser itself (minlength); a common one by the server.
    fill(&b, "password", "password1").await;
    submit(&b).await;
    assert!(text(&b).await.contains("most common passwords"));
    shoot(&b, "register-error").await;

    let other = driver.browser(None).await;
    for _ in 0..5 {
        sign_in(&other, &base, "someone@example.com", "wrong password").await;
    }
    assert!(text(&other).await.contains("do not match"));
    sign_in(&other, &base, "someone@example.com", "wrong password").await;
    let page = text(&other).await;
    assert!(page.contains("Too many sign-in attempts"), "{page}");
    assert!(page.contains("15 minutes"));
    shoot(&other, "login-throttled").await;
    let _ = b.close().await;
    let _ = other.close().await;
}

/// The secure session cookie as the browser holds it.
async fn host_cookie(c: &Client) -> Option<String> {
    c.get_all_cookies()
        .await
        .expect("cookies")
        .into_iter()
        .find(|k| k.name() == "__Host-latchkey")
        .map(|k| k.value().to_string())
}

/// Posts a "sign out" of the session `sid` from the devices page, with the page's token,
/// as the devices page's own buttons do for the other devices.
pub(crate) async fn sign_out_device(c: &Client, sid: &str) {
    c.execute(
        "const f = document.createElement('form');
         f.method = 'post';
         f.action = '/devices/' + arguments[0] + '/revoke';
         const t = document.createElement('input');
         t.type = 'hidden';
         t.name = 'csrf_token';
         t.value = document.querySelector('input[name=csrf_token]').value;
         const b = document.createElement('button');
         b.type = 'submit';
         b.id = 'sign-out-this-device';
         b.textContent = 'Sign out this device';
         f.append(t, b);
         document.body.append(f);",
        vec![json!(sid)],
    )
    .await
    .expect("the form");
    let button = c
        .find(Locator::Id("sign-out-this-device"))
        .await
        .expect("the button");
    navigate_by(c, button).await;
}

#[tokio::test]
async fn in_secure_mode_signing_out_removes_the_cookie_from_the_browser() {
    let driver = Chromedriver::start();
    let cfg = TestConfig::new().set("cookie_secure", true);
    // Chromium treats http://localhost as a secure context: `__Host-` cookies work.
    let base = serve(&cfg).await.replace("127.0.0.1", "localhost");
    let email = email();
    let b = driver.browser(None).await;
    b.goto(&format!("{base}/register")).await.unwrap();
    fill(&b, "email", &email).await;
    fill(&b, "password", PASSWORD).await;
    submit(&b).await;
    expect_path(&b, "/devices").await;
    assert!(
        host_cookie(&b).await.is_some(),
        "signed in with __Host-latchkey"
    );

    // The header's "Sign out".
    let button = b
        .find(Locator::Css("form[action=\"/logout\"] button"))
        .await
        .expect("the sign-out button");
    navigate_by(&b, button).await;
    expect_path(&b, "/login").await;
    assert!(text(&b).await.contains("You have been signed out"));
    assert_eq!(
        host_cookie(&b).await,
        None,
        "the browser dropped the cookie"
    );
    // The notice was shown once: its cookie was removed too.
    b.refresh().await.expect("reload");
    assert!(!text(&b).await.contains("You have been signed out"));

    // "Keep me signed in" (a 30-day cookie), then sign this device out on /devices.
    b.goto(&format!("{base}/login")).await.unwrap();
    fill(&b, "email", &email).await;
    fill(&b, "password", PASSWORD).await;
    b.find(Locator::Css("[name=\"remember\"]"))
        .await
        .expect("the checkbox")
        .click()
        .await
        .expect("tick");
    submit(&b).await;
    expect_path(&b, "/devices").await;
    let cookie = host_cookie(&b).await.expect("signed in again");
    sign_out_device(&b, &sid_of(&cookie)).await;
    expect_path(&b, "/login").await;
    assert_eq!(
        host_cookie(&b).await,
        None,
        "the browser dropped the cookie"
    );
    b.goto(&format!("{base}/devices")).await.unwrap();
    expect_path(&b, "/login").await;
    let _ = b.close().await;
}
