//! The stylesheet and the passkey script, each read once at start and served from
//! memory under a URL that names its content (`/static/style.<hash>.css`,
//! `/static/passkeys.<hash>.js`): browsers keep them for a year and never ask again
//! (`immutable`), and a changed file is a new URL. Pages link them through the Tera
//! functions `stylesheet()` and `passkey_script()`. The plain addresses
//! (`/static/style.css`, `/static/passkeys.js`) still answer, with `no-cache`, for
//! anything that kept them.

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

/// A static file: its content-named URL, its plain one, its type and its bytes.
#[derive(Clone)]
pub struct Asset {
    pub href: String,
    plain: String,
    content_type: ContentType,
    body: Arc<[u8]>,
}

impl Asset {
    /// Reads `static/style.css` under `root`.
    pub fn stylesheet(root: &Path) -> Result<Asset, String> {
        Asset::load(root, "style", "css", ContentType::CSS)
    }

    /// Reads `static/passkeys.js` under `root`.
    pub fn passkey_script(root: &Path) -> Result<Asset, String> {
        Asset::load(root, "passkeys", "js", ContentType::JavaScript)
    }

    fn load(
        root: &Path,
        stem: &str,
        ext: &str,
        content_type: ContentType,
    ) -> Result<Asset, String> {
        let path = root.join(format!("static/{stem}.{ext}"));
        let body =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let hash = hex::encode(Sha256::digest(&body));
        Ok(Asset {
            href: format!("/static/{stem}.{}.{ext}", &hash[..16]),
            plain: format!("/static/{stem}.{ext}"),
            content_type,
            body: body.into(),
        })
    }

    /// The content-named route and the plain one.
    pub fn routes(&self) -> Vec<Route> {
        let serve = |cache_control| Serve {
            body: self.body.clone(),
            content_type: self.content_type.clone(),
            cache_control,
        };
        vec![
            Route::new(Method::Get, &self.href, serve(IMMUTABLE)),
            Route::new(Method::Get, &self.plain, serve(REVALIDATE)),
        ]
    }

    /// `name()` in every template: the content-named URL.
    pub fn register(&self, tera: &mut tera::Tera, name: &str) {
        let href = tera::Value::String(self.href.clone());
        tera.register_function(
            name,
            move |_: &std::collections::HashMap<String, tera::Value>| Ok(href.clone()),
        );
    }
}

/// Answers with the bytes in memory: no file is read per request.
#[derive(Clone)]
struct Serve {
    body: Arc<[u8]>,
    content_type: ContentType,
    cache_control: &'static str,
}

#[rocket::async_trait]
impl Handler for Serve {
    async fn handle<'r>(&self, _: &'r Request<'_>, _: Data<'r>) -> Outcome<'r> {
        let body = self.body.clone();
        Outcome::Success(
            Response::build()
                .header(self.content_type.clone())
                .raw_header("Cache-Control", self.cache_control)
                .sized_body(body.len(), Cursor::new(body))
                .finalize(),
        )
    }
}
