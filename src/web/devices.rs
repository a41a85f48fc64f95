//! The devices page: every signed-in browser and app, and signing them out.

use rocket::response::Redirect;
use rocket::{get, post, routes, uri, Route};
use serde::Serialize;

use super::flash::{Flash, FlashMessage};
use super::guards::{CsrfForm, CurrentSession, NoFields, SessionCookieJar, SessionList};
use super::next_path::NextPath; // NextPath: for uri!(login_page(..))
use super::page::Page;
use crate::http::error::{AppError, AppResult};
use crate::http::request::RequestOrigin;
use crate::services::activity::{self, EndedBy, Event};
use crate::services::sessions::{self, SessionView};
use crate::services::Services;
use crate::store::SessionRecord;
use crate::support::clock::{exact_time, now_ms, relative_time};

pub fn routes() -> Vec<Route> {
    routes![
        devices,
        devices_signed_out,
        revoke,
        revoke_others,
        revoke_signed_out,
        revoke_others_signed_out
    ]
}

/// A session on the devices page: the API's view of it plus words for people.
#[derive(Serialize)]
pub struct DeviceView {
    #[serde(flatten)]
    session: SessionView,
    /// A phone or tablet browser: the page shows a phone icon.
    mobile: bool,
    created_at_text: String,
    last_seen_text: String,
    /// How it signed in, in words: "password", "password + authenticator".
    amr_text: &'static str,
}

impl DeviceView {
    pub fn new(s: &SessionRecord, current_sid: &str, now: i64) -> DeviceView {
        DeviceView {
            session: SessionView::new(s, current_sid),
            mobile: s.mobile,
            created_at_text: exact_time(s.created_ms),
            last_seen_text: relative_time(s.seen_ms, now),
            amr_text: s.amr.in_words(),
        }
    }
}

/// One store call: the session check returns the list and the account's email.
#[get("/devices")]
fn devices(list: SessionList, flash: Option<FlashMessage>) -> Page {
    let SessionList {
        session,
        mut sessions,
    } = list;
    sessions::most_recent_first(&mut sessions);
    let now = now_ms();
    let views: Vec<DeviceView> = sessions
        .iter()
        .map(|s| DeviceView::new(s, &session.sid, now))
        .collect();
    let other_count = views.iter().filter(|v| !v.session.current).count();
    Page::new("devices", &session.csrf)
        .with("signed_in", true)
        .with("user_email", &session.email)
        .with("sessions", views)
        .with("other_count", other_count)
        .flash(flash)
}

#[get("/devices", rank = 2)]
fn devices_signed_out() -> Redirect {
    super::next_path::sign_in_first(uri!(devices))
}

#[post("/devices/<id>/revoke", data = "<_form>")]
async fn revoke(
    id: &str,
    session: CurrentSession,
    _form: CsrfForm<NoFields>,
    app: Services<'_>,
    cookie: SessionCookieJar<'_>,
    origin: RequestOrigin,
) -> AppResult<Flash<Redirect>> {
    // Another user's session id answers 404, like any id that does not exist.
    if !sessions::end(app.store, &session.user_id, id).await? {
        return Err(AppError::NotFound);
    }
    let by = if id == session.sid {
        EndedBy::ThisDevice
    } else {
        EndedBy::AnotherDevice
    };
    let ended = Event::session_ended(Some(id), by).from(&origin.0);
    activity::record(app, &session.user_id, ended).await;
    if id == session.sid {
        cookie.clear();
        return Ok(Flash::success(
            Redirect::to(uri!(super::auth::login_page(_, _))),
            "You have been signed out.",
        ));
    }
    Ok(Flash::success(
        Redirect::to(uri!(devices)),
        "That device has been signed out.",
    ))
}

#[post("/devices/revoke-others", data = "<_form>")]
async fn revoke_others(
    session: CurrentSession,
    _form: CsrfForm<NoFields>,
    app: Services<'_>,
    origin: RequestOrigin,
) -> AppResult<Flash<Redirect>> {
    let n = sessions::end_others(app.store, &session.user_id, &session.sid).await?;
    let here = Event::session_ended(None, EndedBy::AnotherDevice).from(&origin.0);
    if let Some(ended) = here.ended(EndedBy::AnotherDevice, n) {
        activity::record(app, &session.user_id, ended).await;
    }
    let msg = match n {
        0 => "No other device was signed in.".to_string(),
        1 => "Signed out 1 other device.".to_string(),
        n => format!("Signed out {n} other devices."),
    };
    Ok(Flash::success(Redirect::to(uri!(devices)), msg))
}

/// A signed-out client posting a signed-in form (with its own token): its session has
/// ended, so it is sent to sign in and nothing changes.
fn signed_out_form() -> Redirect {
    Redirect::to(uri!(super::auth::login_page(_, _)))
}

#[post("/devices/<_>/revoke", rank = 2, data = "<_form>")]
fn revoke_signed_out(_form: CsrfForm<NoFields>) -> Redirect {
    signed_out_form()
}

#[post("/devices/revoke-others", rank = 2, data = "<_form>")]
fn revoke_others_signed_out(_form: CsrfForm<NoFields>) -> Redirect {
    signed_out_form()
}
