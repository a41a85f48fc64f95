//! The stylesheet, read once at start and served from memory under a URL that names
//! its content (`/static/style.<hash>.css`): browsers keep it for a year and never ask
//! again (`immutable`), and a changed stylesheet is a new URL. Every page links it
//! through the Tera function `stylesheet()`. The plain `/static/style.css` still
//! answers, with `no-cache`, for anything that kept the old address.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use rocket::http::{ContentType, Method};
use rocket::route::{Handler, Outcome, Route};
use rocket::{Data, Request, Response};
use rocket_dyn_templates::tera;
use sha2::{Digest, Sha256};

/// What a content-named asset may be cached for.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The plain address: revalidated every time, so it never serves a stale sheet.
const REVALIDATE: &str = "no-cache";

/// The stylesheet: its content-named URL and its bytes.
#[derive(Clone)]
pub struct Stylesheet {
    pub href: String,
    body: Arc<[u8]>,
}

impl Stylesheet {
    /// Reads `static/style.css` under `root`.
    pub fn load(root: &Path) -> Result<Stylesheet, String> {
        let path = root.join("static/style.css");
        let body = std::fs::read(&path)
            .map_err(|e| format!("cannot read the stylesheet {}: {e}", path.display()))?;
        let hash = hex::encode(Sha256::digest(&body));
        Ok(Stylesheet {
            href: format!("/static/style.{}.css", &hash[..16]),
            body: body.into(),
        })
    }

    /// The content-named route and the plain one.
    pub fn routes(&self) -> Vec<Route> {
        let serve = |cache_control| Serve {
            body: self.body.clone(),
            cache_control,
        };
        vec![
            Route::new(Method::Get, &self.href, serve(IMMUTABLE)),
            Route::new(Method::Get, "/static/style.css", serve(REVALIDATE)),
        ]
    }

    /// `stylesheet()` in every template: the content-named URL.
    pub fn register(&self, tera: &mut tera::Tera) {
        let href = tera::Value::String(self.href.clone());
        tera.register_function(
            "stylesheet",
            move |_: &std::collections::HashMap<String, tera::Value>| Ok(href.clone()),
        );
    }
}

/// Answers with the bytes in memory: no file is read per request.
#[derive(Clone)]
struct Serve {
    body: Arc<[u8]>,
    cache_control: &'static str,
}

#[rocket::async_trait]
impl Handler for Serve {
    async fn handle<'r>(&self, _: &'r Request<'_>, _: Data<'r>) -> Outcome<'r> {
        let body = self.body.clone();
        Outcome::Success(
            Response::build()
                .header(ContentType::CSS)
                .raw_header("Cache-Control", self.cache_control)
                .sized_body(body.len(), Cursor::new(body))
                .finalize(),
        )
    }
}
