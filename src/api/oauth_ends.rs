//! `POST /oauth2/revoke` (RFC 7009) and `POST /oauth2/introspect` (RFC 7662): an app
//! ends one of its tokens, or a resource server of the app asks whether one is good.
//! The client authenticates as at the token endpoint (`clients::authenticate`);
//! introspection takes confidential clients only. What a token is and whose it is is
//! decided in `oidc::revocation`; errors are the token endpoint's (`OAuthError`).
//! Also `GET /oauth2/openapi.json`, the OpenAPI description of every JSON endpoint of
//! the provider (discovery, JWKS, token, userinfo and these two).

use rocket::fairing::AdHoc;
use rocket::form::{Form, FromForm};
use rocket::http::{ContentType, Status};
use rocket::serde::json::Json;
use rocket::{get, post, routes, Route, State};

use super::oauth::{counted, credentials, issuer, named_client, one, OAuthError};
use crate::accounts::ClientRecord;
use crate::http::request::{AuthorizationHeader, ClientIp};
use crate::services::oidc::clients;
use crate::services::oidc::revocation::{self, Introspection, Revoked};
use crate::services::oidc::Keyring;
use crate::services::Services;

/// The body of both endpoints; every value of a field kept so a repeated one is
/// refused (RFC 6749 §3.2).
#[derive(FromForm)]
pub struct TokenQuestion {
    token: Vec<String>,
    token_type_hint: Vec<String>,
    client_id: Vec<String>,
    client_secret: Vec<String>,
}

/// The client (authenticated) and the token it asks about.
async fn read(
    s: &Services<'_>,
    header: &AuthorizationHeader,
    form: TokenQuestion,
) -> Result<(ClientRecord, String), OAuthError> {
    let token = one("token", form.token)?;
    // The hint is optional and never needed: a token is known by its shape. Any
    // value is accepted (RFC 7009 §2.1: the server may ignore it), once.
    one("token_type_hint", form.token_type_hint)?;
    let creds = credentials(header, form.client_id, form.client_secret)?;
    let client = clients::authenticate(s.accounts, &creds).await?;
    let token = token.ok_or_else(|| OAuthError::invalid_request("token is required."))?;
    Ok((client, token))
}

/// RFC 7009 §2.2: 200 with an empty body, whether or not the token was known.
#[post("/oauth2/revoke", data = "<form>")]
async fn revoke(
    s: Services<'_>,
    keyring: &State<Keyring>,
    header: AuthorizationHeader,
    form: Form<TokenQuestion>,
    ip: ClientIp,
) -> Result<(), OAuthError> {
    let named = named_client(&header, &form.client_id);
    let question = read(&s, &header, form.into_inner());
    let (client, token) = counted(&s, &ip, named.as_deref(), question).await?;
    let revoked =
        revocation::revoke(s.store, keyring, &issuer(s.settings), &client, &token).await?;
    if revoked != Revoked::Nothing {
        tracing::info!(client = %client.client_id, ?revoked, "a token was revoked by its app");
    }
    Ok(())
}

/// RFC 7662 §2.2: `{"active": false}` for anything that is not a good token of this
/// client, whatever the reason.
#[post("/oauth2/introspect", data = "<form>")]
async fn introspect(
    s: Services<'_>,
    keyring: &State<Keyring>,
    header: AuthorizationHeader,
    form: Form<TokenQuestion>,
    ip: ClientIp,
) -> Result<Json<Introspection>, OAuthError> {
    let named = named_client(&header, &form.client_id);
    let checked = counted(&s, &ip, named.as_deref(), async {
        let (client, token) = read(&s, &header, form.into_inner()).await?;
        if client.secret_hash.is_none() {
            // A public client holds no secret, so anyone can claim to be it.
            return Err(OAuthError {
                description: "Introspection is for confidential clients only.".into(),
                ..OAuthError::invalid_client()
            });
        }
        Ok((client, token))
    });
    let (client, token) = checked.await?;
    let answer =
        revocation::introspect(s.store, keyring, &issuer(s.settings), &client, &token).await?;
    Ok(Json(answer))
}

/// A body that is not a form.
#[post("/oauth2/revoke", rank = 2)]
fn revoke_not_form() -> OAuthError {
    not_form()
}

#[post("/oauth2/introspect", rank = 2)]
fn introspect_not_form() -> OAuthError {
    not_form()
}

fn not_form() -> OAuthError {
    OAuthError::new(
        Status::BadRequest,
        "invalid_request",
        "The body must be application/x-www-form-urlencoded.",
    )
}

/// The OpenAPI 3 description of the provider's JSON endpoints.
pub const OPENAPI: &str = include_str!("oauth2.openapi.json");

#[get("/oauth2/openapi.json")]
fn openapi() -> (ContentType, &'static str) {
    (ContentType::JSON, OPENAPI)
}

pub fn routes() -> Vec<Route> {
    routes![
        revoke,
        revoke_not_form,
        introspect,
        introspect_not_form,
        openapi
    ]
}

/// Mounts the endpoints; the keyring they check tokens with is `api::oauth::stage`'s.
pub fn stage() -> AdHoc {
    AdHoc::on_ignite("OAuth revocation and introspection", |rocket| async {
        rocket.mount("/", routes())
    })
}
