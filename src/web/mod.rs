//! The browser pages: routes by area (`auth.rs` sign-in, registration and sign-out;
//! `two_step.rs` the code page; `devices.rs`; `activity.rs` the account's activity;
//! `password.rs` change, forgot and reset;
//! `security.rs` the second factor's pages; `passkeys.rs` the passkeys' JSON endpoints
//! and forms; `email_change.rs` a new address and its undo link; `account.rs` deleting
//! the account and downloading its data, after the owner's proof (`owner_check.rs`);
//! `oauth.rs` and `oauth_logout.rs` the OpenID
//! Connect authorize, consent and logout pages; `forward.rs` forward authentication
//! for reverse proxies; `verify.rs` verifying the address), the guards every page uses (`guards.rs`), the cookies beside
//! the session's (`browser_cookie.rs`, `pending_cookie.rs`, `flash.rs`), the page
//! renderer and security headers (`page.rs`), `?next=` (`next_path.rs`) and the
//! stylesheet and the passkey script (`assets.rs`). `stage()` mounts them all.

mod account;
mod activity;
mod assets;
mod auth;
mod browser_cookie;
mod devices;
mod email_change;
mod flash;
mod forward;
pub mod guards;
mod next_path;
pub(crate) mod oauth;
mod oauth_logout;
mod owner_check;
mod page;
mod passkey_cookie;
mod passkeys;
mod password;
mod pending_cookie;
mod security;
mod two_step;
mod verify;

use rocket::fairing::AdHoc;
use rocket::shield::{Frame, Hsts, NoSniff, Referrer, Shield};
use rocket_dyn_templates::Template;

use crate::config::Settings;

pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Pages", |rocket| async move {
        let secure = rocket
            .state::<Settings>()
            .map(|s| s.sessions.cookie_secure)
            .unwrap_or(false);
        let root = crate::config::asset_root();
        let loaded = assets::Asset::stylesheet(&root)
            .and_then(|css| assets::Asset::passkey_script(&root).map(|js| (css, js)));
        let (stylesheet, script) = match loaded {
            Ok(both) => both,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("latchkey: {e}");
                return Err(rocket);
            }
        };
        let mut shield = Shield::new()
            .enable(NoSniff::Enable)
            .enable(Frame::Deny)
            .enable(Referrer::StrictOriginWhenCrossOrigin);
        if secure {
            shield = shield.enable(Hsts::default());
        }
        let mut routes = stylesheet.routes();
        routes.extend(script.routes());
        Ok(rocket
            .attach(Template::custom(move |engines| {
                stylesheet.register(&mut engines.tera, "stylesheet");
                script.register(&mut engines.tera, "passkey_script");
            }))
            .attach(shield)
            .attach(page::security_headers())
            .mount("/", routes)
            .mount("/", auth::routes())
            .mount("/", devices::routes())
            .mount("/", activity::routes())
            .mount("/", password::routes())
            .mount("/", security::routes())
            .mount("/", email_change::routes())
            .mount("/", account::routes())
            .mount("/", two_step::routes())
            .mount("/", passkeys::routes())
            .mount("/", verify::routes())
            .mount("/", forward::routes())
            .mount("/", oauth::routes())
            .mount("/", oauth_logout::routes())
            .register("/", crate::http::error::catchers()))
    })
}
