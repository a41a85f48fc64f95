//! Request guards of the pages: who is asking (`CurrentSession`), whether a form is
//! genuine (`CsrfToken`, `CsrfForm`), and the session cookie (`SessionCookieJar`).
//! Where a request comes from (`ClientIp`, `RequestOrigin`) is `crate::http::request`'s.

use std::sync::Arc;

use rocket::data::{self, Data, FromData};
use rocket::form::{self, DataField, Form, FromForm, ValueField};
use rocket::http::{Cookie, SameSite, Status};
use rocket::outcome::Outcome;
use rocket::request::{self, FromRequest, Request};
use rocket::State;
use uuid::Uuid;

use crate::config::Settings;
use crate::http::error::AppError;
use crate::services::sessions::{csrf_token, SessionCookie};
use crate::store::{Amr, SessionKind, SessionRecord, Sessions, Store, StoreError};
use crate::support::clock::now_ms;
use crate::support::crypto::{constant_time_eq, random_token};
use crate::support::report::Report;

/// A signed-in browser session. A route that takes one cannot run without it: a
/// signed-out request is forwarded (401), a store outage answers 503.
#[derive(Debug, Clone)]
pub struct CurrentSession {
    pub user_id: Uuid,
    pub sid: String,
    /// The token this session's forms carry (`sessions::csrf_token`).
    pub csrf: String,
    /// The account's email, from the session check itself (no database read).
    pub email: String,
    /// Whether the account's address is verified, from the same check.
    pub email_verified: bool,
    /// How this session signed in (`pwd`, or `pwd` and `otp`), from the same check.
    pub amr: Amr,
    /// When it signed in (unix ms), from the same check.
    pub signed_in_ms: i64,
}

/// A signed-in browser session and every session of its account: the devices page,
/// from one store call (`Store::touch_and_list`). Take it as the route's first guard,
/// so it is the one that checks the session; otherwise the list costs a second call.
pub struct SessionList {
    pub session: CurrentSession,
    pub sessions: Vec<SessionRecord>,
}

/// Why the session could not be looked up: the store (its cause kept, shared by the
/// guards that ask), or missing state (a bug).
#[derive(Clone)]
enum LookupError {
    Store(Arc<StoreError>),
    NotConfigured,
}

impl From<&LookupError> for AppError {
    fn from(e: &LookupError) -> Self {
        match e {
            LookupError::Store(e) => AppError::Store(e.clone()),
            LookupError::NotConfigured => AppError::Internal("the store is not managed"),
        }
    }
}

/// A signed-in session, with the account's sessions when the first guard asked for
/// them.
struct SignedIn {
    session: CurrentSession,
    list: Option<Vec<SessionRecord>>,
}

/// The per-request result of reading the cookie, computed once, by whichever guard
/// asks first.
struct Lookup(Result<Option<SignedIn>, LookupError>);

fn failed_lookup(req: &Request<'_>, e: StoreError) -> Lookup {
    // Logged once here, however many guards ask for the session.
    tracing::warn!(error = %Report(&e), path = %req.uri().path(), "session lookup failed");
    Lookup(Err(LookupError::Store(Arc::new(e))))
}

async fn lookup<'r>(req: &'r Request<'_>, with_list: bool) -> &'r Lookup {
    req.local_cache_async(async {
        let (Some(settings), Some(store)) = (
            req.rocket().state::<Settings>(),
            req.rocket().state::<Store>(),
        ) else {
            return Lookup(Err(LookupError::NotConfigured));
        };
        let Some(cookie) = req
            .cookies()
            .get(settings.sessions.cookie_name())
            .and_then(|c| SessionCookie::parse(c.value()))
        else {
            return Lookup(Ok(None));
        };
        let (user_id, sid, now) = (&cookie.user_id, &cookie.sid, now_ms());
        let found = if with_list {
            let touched = store.touch_and_list(user_id, sid, None, now).await;
            touched.map(|found| found.map(|(live, list)| (live, Some(list))))
        } else {
            let touched = store.touch_session(user_id, sid, None, now).await;
            touched.map(|found| found.map(|live| (live, None)))
        };
        match found {
            Ok(Some((live, list))) if live.kind == SessionKind::Browser => {
                Lookup(Ok(Some(SignedIn {
                    session: CurrentSession {
                        csrf: csrf_token(settings, &cookie.sid),
                        user_id: cookie.user_id,
                        sid: cookie.sid,
                        email: live.email,
                        email_verified: live.email_verified,
                        amr: live.amr,
                        signed_in_ms: live.created_ms,
                    },
                    list,
                })))
            }
            Ok(_) => Lookup(Ok(None)),
            Err(e) => failed_lookup(req, e),
        }
    })
    .await
}

/// The status a failed lookup answers with: 503 for the store, 500 for a bug.
fn failed(e: &LookupError) -> (Status, AppError) {
    let status = match e {
        LookupError::Store(_) => Status::ServiceUnavailable,
        LookupError::NotConfigured => Status::InternalServerError,
    };
    (status, e.into())
}

/// The session a guard of this request found, if one looked (a page reads it to show
/// an unverified account's banner); never a new lookup.
pub(super) fn looked_up_session<'r>(req: &'r Request<'_>) -> Option<&'r CurrentSession> {
    match &req.local_cache(|| Lookup(Ok(None))).0 {
        Ok(Some(s)) => Some(&s.session),
        _ => None,
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CurrentSession {
    type Error = AppError;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, AppError> {
        match &lookup(req, false).await.0 {
            Ok(Some(s)) => Outcome::Success(s.session.clone()),
            Ok(None) => Outcome::Forward(Status::Unauthorized),
            Err(e) => Outcome::Error(failed(e)),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SessionList {
    type Error = AppError;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, AppError> {
        let signed_in = match &lookup(req, true).await.0 {
            Ok(Some(s)) => s,
            Ok(None) => return Outcome::Forward(Status::Unauthorized),
            Err(e) => return Outcome::Error(failed(e)),
        };
        let session = signed_in.session.clone();
        if let Some(list) = &signed_in.list {
            return Outcome::Success(SessionList {
                session,
                sessions: list.clone(),
            });
        }
        // Another guard checked the session first, without the list.
        let Some(store) = req.rocket().state::<Store>() else {
            return Outcome::Error(failed(&LookupError::NotConfigured));
        };
        match store.list_sessions(&session.user_id, now_ms()).await {
            Ok(sessions) => Outcome::Success(SessionList { session, sessions }),
            Err(e) => Outcome::Error(failed(&LookupError::Store(Arc::new(e)))),
        }
    }
}

/// The CSRF token this client's forms must carry: the session's own secret when
/// signed in, else a random token kept in a private (encrypted) cookie.
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

fn presession_cookie_name(settings: &Settings) -> &'static str {
    if settings.sessions.cookie_secure {
        "__Host-latchkey_csrf"
    } else {
        "latchkey_csrf"
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CsrfToken {
    type Error = AppError;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, AppError> {
        match &lookup(req, false).await.0 {
            Ok(Some(s)) => return Outcome::Success(CsrfToken(s.session.csrf.clone())),
            Ok(None) => {}
            Err(e) => return Outcome::Error(failed(e)),
        }
        let Some(settings) = req.rocket().state::<Settings>() else {
            return Outcome::Error((
                Status::InternalServerError,
                AppError::Internal("the settings are not managed"),
            ));
        };
        let name = presession_cookie_name(settings);
        if let Some(c) = req.cookies().get_private(name) {
            if c.value().len() == 43 {
                return Outcome::Success(CsrfToken(c.value().to_string()));
            }
        }
        let token = random_token();
        req.cookies().add_private(site_cookie(
            name,
            token.clone(),
            settings.sessions.cookie_secure,
        ));
        Outcome::Success(CsrfToken(token))
    }
}

/// The name of the hidden field every form carries.
const CSRF_FIELD: &str = "csrf_token";

/// A form's fields plus its `csrf_token`: the token is taken out before `T` sees the
/// fields, so no form type declares it.
pub struct WithCsrf<T> {
    token: String,
    fields: T,
}

/// What `WithCsrf` collects: the token, `T`'s own context, and the errors of the body
/// itself (a multipart stream over the `data-form` limit, a broken part), which would
/// otherwise leave `T` with the fields read before the error.
pub struct CsrfContext<'r, T: FromForm<'r>> {
    token: Option<String>,
    fields: T::Context,
    body_errors: form::Errors<'r>,
}

#[rocket::async_trait]
impl<'r, T: FromForm<'r>> FromForm<'r> for WithCsrf<T> {
    type Context = CsrfContext<'r, T>;

    fn init(opts: form::Options) -> Self::Context {
        CsrfContext {
            token: None,
            fields: T::init(opts),
            body_errors: form::Errors::new(),
        }
    }

    fn push_value(ctxt: &mut Self::Context, field: ValueField<'r>) {
        if field.name.key_lossy().as_str() == CSRF_FIELD {
            // The first value counts, as for any single-valued field.
            ctxt.token.get_or_insert_with(|| field.value.to_string());
        } else {
            T::push_value(&mut ctxt.fields, field);
        }
    }

    async fn push_data(ctxt: &mut Self::Context, field: DataField<'r, '_>) {
        T::push_data(&mut ctxt.fields, field).await
    }

    fn push_error(ctxt: &mut Self::Context, error: form::Error<'r>) {
        ctxt.body_errors.push(error);
    }

    fn finalize(ctxt: Self::Context) -> form::Result<'r, Self> {
        if !ctxt.body_errors.is_empty() {
            return Err(ctxt.body_errors);
        }
        Ok(WithCsrf {
            token: ctxt.token.unwrap_or_default(),
            fields: T::finalize(ctxt.fields)?,
        })
    }
}

/// A form with no fields of its own (sign out, end a session): only the token.
pub struct NoFields;

#[rocket::async_trait]
impl<'r> FromForm<'r> for NoFields {
    type Context = ();

    fn init(_: form::Options) {}

    fn push_value(_: &mut (), _: ValueField<'r>) {}

    async fn push_data(_: &mut (), _: DataField<'r, '_>) {}

    fn finalize(_: ()) -> form::Result<'r, Self> {
        Ok(NoFields)
    }
}

/// A submitted form whose CSRF token matched; anything else answers 403 before the
/// route runs, so nothing changes. "Anything else" includes a body that is not a form
/// at all (`text/plain`, JSON, no content type): it is refused, never forwarded to a
/// route that would run without the check.
pub struct CsrfForm<T>(pub T);

/// A form as a browser sends it: url-encoded or multipart.
fn is_form(req: &Request<'_>) -> bool {
    req.content_type()
        .is_some_and(|ct| ct.is_form() || ct.is_form_data())
}

#[rocket::async_trait]
impl<'r, T: FromForm<'r> + Send + 'r> FromData<'r> for CsrfForm<T> {
    type Error = AppError;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let refused = || {
            tracing::info!(path = %req.uri().path(), content_type = ?req.content_type(), "refused a body that is not a form");
            Outcome::Error((Status::Forbidden, AppError::Csrf))
        };
        if !is_form(req) {
            return refused();
        }
        let form = match Form::<WithCsrf<T>>::from_data(req, data).await {
            Outcome::Success(f) => f.into_inner(),
            Outcome::Forward(_) => return refused(),
            Outcome::Error((s, errors)) => {
                tracing::debug!(?errors, "unreadable form");
                return Outcome::Error((
                    s,
                    AppError::BadRequest("The form could not be read.".into()),
                ));
            }
        };
        let expected = match req.guard::<CsrfToken>().await {
            Outcome::Success(t) => t,
            Outcome::Error((s, e)) => return Outcome::Error((s, e)),
            Outcome::Forward(_) => return Outcome::Error((Status::Forbidden, AppError::Csrf)),
        };
        if constant_time_eq(&form.token, &expected.0) {
            Outcome::Success(CsrfForm(form.fields))
        } else {
            tracing::info!(path = %req.uri().path(), "refused a form with a missing or wrong CSRF token");
            Outcome::Error((Status::Forbidden, AppError::Csrf))
        }
    }
}

/// A cookie of this site as every one of Latchkey's is set: `HttpOnly`, `SameSite=Lax`,
/// `Path=/`, no `Domain`, and `Secure` in secure mode (which the `__Host-` names need).
pub(super) fn site_cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .path("/")
        .build()
}

/// The cookie that removes `name`, with the attributes it was set with: a browser
/// ignores a `__Host-` cookie, its removal included, that lacks `Secure`.
pub(super) fn cookie_removal(name: &'static str, secure: bool) -> Cookie<'static> {
    site_cookie(name, String::new(), secure)
}

/// The session cookie itself, for routes that set or clear it.
pub struct SessionCookieJar<'r> {
    pub jar: &'r rocket::http::CookieJar<'r>,
    pub settings: &'r Settings,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SessionCookieJar<'r> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ()> {
        match req.guard::<&State<Settings>>().await {
            Outcome::Success(settings) => Outcome::Success(SessionCookieJar {
                jar: req.cookies(),
                settings: settings.inner(),
            }),
            _ => Outcome::Error((Status::InternalServerError, ())),
        }
    }
}

impl SessionCookieJar<'_> {
    /// The session cookie with `value`: a site cookie, shared with `cookie_domain`'s
    /// sub-domains (`Domain`) when that is set.
    fn session_cookie(&self, value: String) -> Cookie<'static> {
        let sessions = &self.settings.sessions;
        let mut cookie = site_cookie(sessions.cookie_name(), value, sessions.cookie_secure);
        if let Some(domain) = &sessions.cookie_domain {
            cookie.set_domain(domain.clone());
        }
        cookie
    }

    pub fn set(&self, value: String, persistent_for: Option<std::time::Duration>) {
        let mut cookie = self.session_cookie(value);
        if let Some(d) = persistent_for {
            cookie.set_max_age(rocket::time::Duration::seconds(d.as_secs() as i64));
        }
        self.jar.add(cookie);
    }

    /// Removes the cookie with the attributes it was set with (`Domain`, `Secure`): a
    /// browser keeps a cookie whose removal names another domain.
    pub fn clear(&self) {
        self.jar.remove(self.session_cookie(String::new()));
    }
}
