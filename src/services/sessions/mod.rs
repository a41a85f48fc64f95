//! Sessions of every kind (browser, API, app): starting, listing and ending them and
//! the ids derived from their secrets (`lifecycle`), the API's access tokens and the
//! refresh-token format (`access_tokens`), and refreshing a refresh token with reuse
//! detection (`refresh`).

pub mod access_tokens;
pub mod lifecycle;
pub mod refresh;

pub use self::lifecycle::{
    app_secret_hash, csrf_token, end, end_all, end_others, is_sid, list, most_recent_first,
    secret_hash, sid_for, start, Origin, SessionCookie, SessionSpec, SessionView, Started,
};
