//! Sessions of every kind (browser, API, app): the secrets that name them and what is
//! derived from them (`ids`), starting, listing and ending them (`lifecycle`), the
//! API's access tokens and the refresh-token format (`access_tokens`), and refreshing
//! a refresh token with reuse detection (`refresh`).

pub mod access_tokens;
pub mod ids;
pub mod lifecycle;
pub mod refresh;

pub use self::ids::{app_secret_hash, csrf_token, is_sid, secret_hash, sid_for, SessionCookie};
pub use self::lifecycle::{
    end, end_all, end_others, list, most_recent_first, start, Origin, SessionSpec, SessionView,
    Started,
};
