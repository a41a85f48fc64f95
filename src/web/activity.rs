//! The activity page: what happened to the account, newest first, a page at a time,
//! with "Sign out this device" on each sign-in whose session is still live.

use rocket::response::Redirect;
use rocket::{get, routes, uri, Route};
use serde::Serialize;

use super::guards::SessionList;
use super::page::Page;
use crate::http::error::{AppError, AppResult};
use crate::services::activity::{self, EventView};
use crate::services::Services;

pub fn routes() -> Vec<Route> {
    routes![activity_page, activity_signed_out]
}

/// An event with words for people.
#[derive(Serialize)]
struct EventLine {
    #[serde(flatten)]
    event: EventView,
    summary: String,
    when: String,
    /// A sign-in whose session is still live: the page offers to end it.
    live: bool,
    /// This very browser's sign-in.
    current: bool,
}

#[get("/account/activity?<before>")]
async fn activity_page(
    list: SessionList,
    before: Option<&str>,
    app: Services<'_>,
) -> AppResult<Page> {
    let SessionList { session, sessions } = list;
    let before = match before.filter(|b| !b.is_empty()) {
        None => None,
        Some(raw) => Some(activity::parse_cursor(raw).ok_or_else(|| {
            AppError::BadRequest("That page of your activity does not exist.".into())
        })?),
    };
    let page = activity::page(
        app.accounts,
        &app.settings.activity,
        &session.user_id,
        before,
        activity::PAGE_SIZE,
    )
    .await?;
    let live: Vec<String> = activity::live_sign_ins(&page.events, &sessions)
        .into_iter()
        .map(str::to_string)
        .collect();
    let lines: Vec<EventLine> = page
        .events
        .into_iter()
        .map(|e| {
            let is_live =
                e.kind == "sign_in" && e.session_id.as_ref().is_some_and(|sid| live.contains(sid));
            EventLine {
                summary: e.summary(),
                when: e.when(),
                current: is_live && e.session_id.as_deref() == Some(session.sid.as_str()),
                live: is_live,
                event: e,
            }
        })
        .collect();
    Ok(Page::new("activity", &session.csrf)
        .with("signed_in", true)
        .with("user_email", &session.email)
        .with("events", lines)
        .with("next", page.next)
        .with("first_page", before.is_none()))
}

#[get("/account/activity", rank = 2)]
fn activity_signed_out() -> Redirect {
    super::next_path::sign_in_first(uri!(activity_page(_)))
}
