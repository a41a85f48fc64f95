//! `Browser`: one browser profile on the app in this process (Rocket's tracking local
//! client: its own cookie jar, user agent and address), with what a person does on the
//! pages (register, sign in and out, reset, change the password, the two sign-in
//! steps); `Page`, an answer as the tests read it; and form encoding.

use std::sync::Arc;

use rocket::http::{ContentType, Cookie, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use serde_json::Value;

use super::{
    code_of_the_step_before, is_sid, recovery_codes_in, secret_on, services_of, Accounts, Services,
    SessionCookie, Settings, Store, CODE_PAGE, PASSWORD,
};

/// One browser profile; a clone is the same profile (the same client and cookies).
#[derive(Clone)]
pub struct Browser {
    pub client: Arc<Client>,
    pub user_agent: String,
    pub ip: String,
    /// Sent as `X-Forwarded-For` when set.
    pub forwarded_for: Option<String>,
}

/// An answer as the tests read it: status, headers, body, and the body as JSON (`Null`
/// when it is not JSON).
pub struct Page {
    pub status: Status,
    pub body: String,
    pub json: Value,
    pub location: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn csrf(&self) -> String {
        csrf_from(&self.body)
    }

    /// The `Retry-After` header's seconds (which must be there).
    pub fn retry_after(&self) -> u64 {
        self.header("Retry-After")
            .expect("a Retry-After header")
            .parse()
            .expect("seconds")
    }

    /// Every `Set-Cookie` header of the answer.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("Set-Cookie"))
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The session id a session cookie's value names.
pub fn sid_of(cookie: &str) -> String {
    SessionCookie::parse(cookie)
        .expect("a well-formed session cookie")
        .sid
}

pub fn csrf_from(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("the page has a CSRF token") + marker.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end].to_string()
}

/// Reads a local response: status, headers, `Location` and the body.
pub async fn page(res: LocalResponse<'_>) -> Page {
    let status = res.status();
    let headers = res
        .headers()
        .iter()
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect();
    let location = res.headers().get_one("Location").map(str::to_string);
    let body = res.into_string().await.unwrap_or_default();
    let json = serde_json::from_str(&body).unwrap_or(Value::Null);
    Page {
        status,
        body,
        json,
        location,
        headers,
    }
}

impl Browser {
    pub fn with_agent(mut self, ua: &str) -> Browser {
        self.user_agent = ua.into();
        self
    }

    pub fn with_ip(mut self, ip: &str) -> Browser {
        self.ip = ip.into();
        self
    }

    pub fn with_forwarded_for(mut self, xff: &str) -> Browser {
        self.forwarded_for = Some(xff.into());
        self
    }

    fn headers(&self) -> Vec<Header<'static>> {
        let mut h = vec![Header::new("User-Agent", self.user_agent.clone())];
        if let Some(x) = &self.forwarded_for {
            h.push(Header::new("X-Forwarded-For", x.clone()));
        }
        h
    }

    fn remote(&self) -> std::net::SocketAddr {
        format!("{}:40000", self.ip)
            .parse()
            .or_else(|_| format!("[{}]:40000", self.ip).parse())
            .expect("test IP")
    }

    pub async fn get(&self, path: &str) -> Page {
        self.get_with(path, &[]).await
    }

    /// A GET with headers of its own (a proxy's `X-Forwarded-*`, `Accept`,
    /// `Authorization`) besides the browser's.
    pub async fn get_with(&self, path: &str, extra: &[(&str, &str)]) -> Page {
        let mut req = self.client.get(path.to_string()).remote(self.remote());
        for h in self.headers() {
            req = req.header(h);
        }
        for (name, value) in extra {
            req = req.header(Header::new(name.to_string(), value.to_string()));
        }
        page(req.dispatch().await).await
    }

    /// A GET that presents the cookie `name` with `value` exactly as given (as a made-up
    /// or mangled cookie would arrive), besides the browser's own.
    pub async fn get_presenting(&self, path: &str, name: &str, value: &str) -> Page {
        let mut req = self
            .client
            .get(path.to_string())
            .remote(self.remote())
            .cookie(Cookie::new(name.to_string(), value.to_string()));
        for h in self.headers() {
            req = req.header(h);
        }
        page(req.dispatch().await).await
    }

    /// Posts a form as-is (no CSRF token added).
    pub async fn post_raw(&self, path: &str, body: &str) -> Page {
        self.post_body(path, Some(ContentType::Form), body.as_bytes().to_vec())
            .await
    }

    /// Posts `body` to `path` with the content type `ct` (or none at all), as this
    /// browser: its cookies, address and headers.
    pub async fn post_body(&self, path: &str, ct: Option<ContentType>, body: Vec<u8>) -> Page {
        let mut req = self
            .client
            .post(path.to_string())
            .remote(self.remote())
            .body(body);
        if let Some(ct) = ct {
            req = req.header(ct);
        }
        for h in self.headers() {
            req = req.header(h);
        }
        page(req.dispatch().await).await
    }

    /// Loads `form_page`, takes its CSRF token, and posts `fields` to `action`.
    pub async fn submit(&self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.get(form_page).await.csrf();
        self.post_form(action, &token, fields).await
    }

    pub async fn post_form(&self, action: &str, token: &str, fields: &[(&str, &str)]) -> Page {
        let mut pairs: Vec<(&str, &str)> = fields.to_vec();
        pairs.push(("csrf_token", token));
        self.post_raw(action, &encode(&pairs)).await
    }

    pub async fn register(&self, email: &str) -> Page {
        self.submit(
            "/register",
            "/register",
            &[("email", email), ("password", PASSWORD)],
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Page {
        self.submit(
            "/login",
            "/login",
            &[("email", email), ("password", password)],
        )
        .await
    }

    /// Signs out with the sign-out form (the devices page's token).
    pub async fn sign_out(&self) -> Page {
        let token = self.get("/devices").await.csrf();
        self.post_form("/logout", &token, &[]).await
    }

    /// Asks for a reset code for `email` on the forgot-password form.
    pub async fn ask_for_reset_code(&self, email: &str) -> Page {
        self.submit("/password/forgot", "/password/forgot", &[("email", email)])
            .await
    }

    /// Sets a new password for `email` with a mailed `code` on the reset form.
    pub async fn reset_password(&self, email: &str, code: &str, new_password: &str) -> Page {
        self.submit(
            "/password/reset",
            "/password/reset",
            &[
                ("email", email),
                ("code", code),
                ("new_password", new_password),
            ],
        )
        .await
    }

    /// Changes the signed-in account's password on its form.
    pub async fn change_password(&self, current: &str, new_password: &str) -> Page {
        let fields = [
            ("current_password", current),
            ("new_password", new_password),
        ];
        self.submit("/account/password", "/account/password", &fields)
            .await
    }

    /// The password step of a sign-in on `/login{query}`; answers the `POST /login`.
    pub async fn password_step(&self, email: &str, query: &str) -> Page {
        let path = format!("/login{query}");
        let token = self.get(&path).await.csrf();
        self.post_form(&path, &token, &[("email", email), ("password", PASSWORD)])
            .await
    }

    /// The code step of a two-step sign-in, from the code page's own form.
    pub async fn code_step(&self, code: &str) -> Page {
        let form = self.get(CODE_PAGE).await;
        assert_eq!(
            form.status,
            Status::Ok,
            "the code page: {:?}",
            form.location
        );
        self.post_form(CODE_PAGE, &form.csrf(), &[("code", code)])
            .await
    }

    /// Turns the authenticator app on for the account signed in here, through its
    /// pages, with the code of the step before now (so the current and the next stay
    /// unused); answers the secret and the ten recovery codes.
    pub async fn turn_on_two_step(&self) -> (Vec<u8>, Vec<String>) {
        let setup = self.get("/account/totp").await;
        assert_eq!(setup.status, Status::Ok, "{}", setup.body);
        let secret = secret_on(&setup.body);
        let code = code_of_the_step_before(&secret);
        let shown = self
            .post_form(
                "/account/totp",
                &setup.csrf(),
                &[("code", &code), ("current_password", PASSWORD)],
            )
            .await;
        assert_eq!(shown.status, Status::Ok, "{}", shown.body);
        let recovery = recovery_codes_in(&shown.body);
        assert_eq!(recovery.len(), 10, "{}", shown.body);
        (secret, recovery)
    }

    /// The session cookie's name as this instance names it (`latchkey`, or a `__Host-` /
    /// `__Secure-` name when `cookie_secure` is on).
    pub fn session_cookie_name(&self) -> &'static str {
        self.state::<Settings>().sessions.cookie_name()
    }

    pub fn session_cookie(&self) -> Option<String> {
        self.cookie(self.session_cookie_name())
    }

    /// The value of the cookie `name` this browser keeps.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.client
            .cookies()
            .get(name)
            .map(|c| c.value().to_string())
    }

    /// The session id this browser's session cookie names.
    pub fn sid(&self) -> String {
        sid_of(&self.session_cookie().expect("a session cookie"))
    }

    /// What this browser's instance of the app manages (its store, its hasher…).
    pub fn state<T: Send + Sync + 'static>(&self) -> &T {
        self.client
            .rocket()
            .state::<T>()
            .unwrap_or_else(|| panic!("the app manages a {}", std::any::type_name::<T>()))
    }

    /// The store and the accounts database of this browser's instance.
    pub fn store_and_accounts(&self) -> (Store, Accounts) {
        (
            self.state::<Store>().clone(),
            self.state::<Accounts>().clone(),
        )
    }

    /// The app's services, as a handler of this browser's instance gets them.
    pub fn services(&self) -> Services<'_> {
        services_of(self.client.rocket())
    }

    /// From now on this browser sends `value` as its session cookie.
    pub async fn set_session_cookie(&self, value: &str) {
        let cookie = Cookie::new(self.session_cookie_name(), value.to_string());
        self.change_jar(|jar| jar.add(cookie)).await;
        assert_eq!(self.session_cookie().as_deref(), Some(value), "cookie set");
    }

    /// From now on this browser sends `value` as its cookie `name`, as a client can
    /// (a made-up or copied cookie).
    pub async fn set_cookie(&self, name: &str, value: &str) {
        let cookie = Cookie::new(name.to_string(), value.to_string());
        self.change_jar(|jar| jar.add(cookie)).await;
    }

    /// From now on this browser sends no cookies (until the app sets new ones).
    pub async fn clear_cookies(&self) {
        let names: Vec<String> = self
            .client
            .cookies()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        self.change_jar(|jar| names.into_iter().for_each(|n| jar.remove(n)))
            .await;
        assert_eq!(self.client.cookies().iter().count(), 0, "cookies cleared");
    }

    /// Changes the cookies the client keeps. `Client::cookies()` is only a copy, so
    /// changing it changes nothing sent; instead the change is made in the jar of a
    /// request for a page that touches no cookies, Rocket answers it with the matching
    /// `Set-Cookie` headers, and the tracking client applies them like a browser.
    async fn change_jar(&self, change: impl FnOnce(&rocket::http::CookieJar<'_>)) {
        let req = self.client.get("/api/v1/openapi.json");
        change(req.inner().cookies());
        let status = req.dispatch().await.status();
        assert_eq!(
            status,
            Status::Ok,
            "the cookie-changing request is answered"
        );
    }

    /// True when `/devices` shows the signed-in page.
    pub async fn is_signed_in(&self) -> bool {
        let p = self.get("/devices").await;
        p.status == Status::Ok && p.body.contains("Your devices")
    }

    /// The revoke ids shown on the devices page, in page order.
    pub async fn device_ids(&self) -> Vec<String> {
        let body = self.get("/devices").await.body;
        body.match_indices("action=\"/devices/")
            .filter_map(|(i, m)| {
                let rest = &body[i + m.len()..];
                let id = rest.split('/').next()?;
                is_sid(id).then(|| id.to_string())
            })
            .collect()
    }
}

pub fn encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `encode` for owned pairs (hidden fields read off a page, say).
pub fn encode_owned(pairs: &[(String, String)]) -> String {
    encode(&borrowed(pairs))
}

/// Owned pairs as the borrowed pairs `encode` and the form helpers take.
pub fn borrowed(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
