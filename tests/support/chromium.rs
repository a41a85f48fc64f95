//! Real Chromium, headless, driven through chromedriver with fantoccini (scripts/test
//! installs Debian's `chromium` and `chromium-driver`): a profile per browser (its own
//! `--user-data-dir`), waits for pages that end as soon as the page is there, and the
//! one screenshot helper (`target/screenshots/`, at desktop and phone width), which also
//! checks each page it saves with axe-core (`accessibility`). The app is served to it
//! with `TestApp::serve`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

pub use super::accessibility::assert_accessible;
use super::accessibility::{fail_on, violations_in_both_schemes};
use super::{screenshots_dir, spare_port, test_dir, wait_for_port, Spawned, PASSWORD};

pub const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);
/// The widths every page is saved and checked at, with the name of each.
pub const WIDTHS: [(&str, (u32, u32)); 2] = [("desktop", DESKTOP), ("phone", PHONE)];

/// How long a Chromium test waits for a page, or for chromedriver or the app to listen:
/// generous, since on a loaded two-core machine (eight tests at a time, debug builds)
/// one sign-in's Argon2 hash, at nice 10, can take seconds. A wait ends as soon as the
/// page is there.
pub const PAGE_WITHIN: Duration = Duration::from_secs(30);

pub struct Chromedriver {
    port: u16,
    _child: Spawned,
}

impl Chromedriver {
    pub fn start() -> Chromedriver {
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

    pub async fn browser(&self, user_agent: Option<&str>) -> Client {
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

/// Saves the current page, its whole length, at desktop (1280 px) and phone (390 px)
/// width as `target/screenshots/NAME-desktop.png` and `NAME-phone.png` (light colour
/// scheme), and checks it at each width in both schemes as `assert_accessible` does,
/// failing on any violation once both are saved: the one screenshot helper of every
/// Chromium test (README,
/// "Screenshots", says how the committed copies in `docs/screenshots/` are refreshed
/// from a run).
pub async fn shoot(c: &Client, name: &str) {
    let mut found = Vec::new();
    for (suffix, size) in WIDTHS {
        resize_to(c, size).await;
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
            let taller = (size.1 as i64 + overflow).min(4000) as u32;
            resize_to(c, (size.0, taller)).await;
        }
        let png = c.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(screenshots_dir().join(format!("{name}-{suffix}.png")), png)
            .expect("write screenshot");
        found.extend(violations_in_both_schemes(c, name, suffix).await);
    }
    resize_to(c, DESKTOP).await;
    fail_on(&found);
}

/// Resizes the window and waits (up to [`PAGE_WITHIN`]) until the page has the new
/// width, its layout has run at it and the transitions it started have ended.
pub async fn resize_to(c: &Client, (width, height): (u32, u32)) {
    c.set_window_size(width, height).await.expect("resize");
    let deadline = Instant::now() + PAGE_WITHIN;
    loop {
        settle(c).await;
        let width_now = c.execute("return window.innerWidth", vec![]).await;
        if matches!(&width_now, Ok(w) if *w == json!(width)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the page did not take the width {width} px in {PAGE_WITHIN:?}: {width_now:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits two frames (styles and layout computed again after a change), then for the
/// transitions running on elements that are shown (the stylesheet's colour changes
/// take 0.15 s; a screenshot or a contrast check must not catch one halfway), at most
/// 2 s. Elements not shown, such as a closed `<details>`' content, are left out:
/// Chromium does not run their transitions, so those never end.
pub async fn settle(c: &Client) {
    c.execute_async(
        "const done = arguments[0];
         const shown = (a) => a.playState === 'running' &&
           !(a.effect && a.effect.target && !a.effect.target.checkVisibility());
         requestAnimationFrame(() => requestAnimationFrame(() => Promise.race([
           Promise.allSettled(document.getAnimations().filter(shown).map((a) => a.finished)),
           new Promise((r) => setTimeout(r, 2000)),
         ]).then(() => done(null))));",
        vec![],
    )
    .await
    .expect("the page settles");
}

pub async fn fill(c: &Client, field: &str, value: &str) {
    let input = c
        .find(Locator::Css(&format!("[name=\"{field}\"]")))
        .await
        .unwrap_or_else(|_| panic!("a {field} field"));
    input.clear().await.expect("clear");
    input.send_keys(value).await.expect("type");
}

pub async fn submit(c: &Client) {
    let button = c
        .find(Locator::Css("form.form button[type=submit]"))
        .await
        .expect("the form's button");
    navigate_by(c, button).await;
}

/// Clicks something that loads a new page and waits until the new page is there: a
/// click returns before the navigation has replaced the document (Chromium 156 at
/// least), and reading the page too early reads the old one or a stale element.
pub async fn navigate_by(c: &Client, target: fantoccini::elements::Element) {
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

pub async fn text(c: &Client) -> String {
    c.find(Locator::Css("body"))
        .await
        .expect("body")
        .text()
        .await
        .expect("text")
}

/// The page's text, or why there is none: for failure messages.
pub async fn text_or_why(c: &Client) -> String {
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
pub async fn arrive(c: &Client, wanted: impl Fn(&url::Url) -> bool) -> Result<url::Url, url::Url> {
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
pub async fn expect_path(c: &Client, expected: &str) {
    if let Err(url) = arrive(c, |u| u.path() == expected).await {
        panic!(
            "the browser is at {url}, not at the path {expected}; the page says: {}",
            text_or_why(c).await
        );
    }
}

/// Registers `email` (with [`PASSWORD`]) on the app at `base` through its page.
pub async fn register(c: &Client, base: &str, email: &str) {
    c.goto(&format!("{base}/register")).await.expect("goto");
    fill(c, "email", email).await;
    fill(c, "password", PASSWORD).await;
    submit(c).await;
}

/// Signs in on the sign-in page of the app at `base`.
pub async fn sign_in(c: &Client, base: &str, email: &str, password: &str) {
    c.goto(&format!("{base}/login")).await.expect("goto");
    fill(c, "email", email).await;
    fill(c, "password", password).await;
    submit(c).await;
}

pub async fn click(c: &Client, css: &str) {
    let el = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|_| panic!("{css}"));
    el.click().await.expect("click");
}

/// Waits (up to [`PAGE_WITHIN`]) until the browser is at the app's callback;
/// answers the URL.
pub async fn wait_for_app(c: &Client, rp: u16) -> url::Url {
    match arrive(c, |u| u.port() == Some(rp)).await {
        Ok(url) => url,
        Err(url) => panic!(
            "the browser stayed at {url}, not at the app on port {rp}: {}",
            text_or_why(c).await
        ),
    }
}

/// Posts a "sign out" of the session `sid` from the devices page, with the page's token,
/// as the devices page's own buttons do for the other devices.
pub async fn sign_out_device(c: &Client, sid: &str) {
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

/// The value of the cookie `name` as the browser holds it.
pub async fn chromium_cookie(c: &Client, name: &str) -> Option<String> {
    c.get_all_cookies()
        .await
        .expect("cookies")
        .into_iter()
        .find(|k| k.name() == name)
        .map(|k| k.value().to_string())
}

/// Gives the browser's current tab a virtual platform authenticator (DevTools'
/// `WebAuthn` domain): CTAP2, built in, with resident keys and user verification that
/// always succeeds and presence given without a touch, as a laptop's fingerprint reader
/// would. Answers its id.
pub async fn add_virtual_authenticator(c: &Client) -> String {
    super::accessibility::devtools(c, "WebAuthn.enable", json!({ "enableUI": false })).await;
    let options = json!({
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": true,
        "hasUserVerification": true,
        "isUserVerified": true,
        "automaticPresenceSimulation": true,
    });
    let added = super::accessibility::devtools(
        c,
        "WebAuthn.addVirtualAuthenticator",
        json!({ "options": options }),
    )
    .await;
    added["authenticatorId"]
        .as_str()
        .expect("an authenticator id")
        .to_string()
}

/// The credentials the virtual authenticator `id` holds.
pub async fn virtual_credentials(c: &Client, id: &str) -> Vec<serde_json::Value> {
    let got = super::accessibility::devtools(
        c,
        "WebAuthn.getCredentials",
        json!({ "authenticatorId": id }),
    )
    .await;
    got["credentials"].as_array().cloned().unwrap_or_default()
}

/// Waits (up to [`PAGE_WITHIN`]) until the page's text contains `words`.
pub async fn wait_for_text(c: &Client, words: &str) -> String {
    let deadline = Instant::now() + PAGE_WITHIN;
    loop {
        let now = text_or_why(c).await;
        if now.contains(words) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the page never said {words:?}: {now}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
