//! `latchkey clients add|list|remove`: the apps that may sign users in (OpenID
//! Connect), and `latchkey keys rotate`: a new token-signing key.

use clap::Subcommand;
use serde::Serialize;

use super::output::{Line, Output};
use super::parts::CliError;
use crate::accounts::{Accounts, ClientRecord};
use crate::config::Settings;
use crate::services::oidc::clients::{self, ClientError, NewClient};
use crate::services::oidc::keys;
use crate::store::Sessions;
use crate::support::clock::iso_time;

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Register an app; prints {"client_id": ..., "client_secret": ...} as one JSON
    /// line (the secret is shown only now and stored only hashed).
    Add {
        /// The app's name, shown on the consent and devices pages.
        #[arg(long)]
        name: String,
        /// Where the app may be sent back with a code (exact match; repeatable).
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// A public client (a single-page or native app): no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// Where the app may send users after signing out (repeatable).
        #[arg(long = "post-logout-uri")]
        post_logout_uris: Vec<String>,
        /// The algorithm of the app's id_tokens: RS256 (the default, which every OpenID
        /// Connect library accepts), ES256 or EdDSA (cheaper to sign; the app's library
        /// must support it).
        #[arg(long = "id-token-signed-response-alg", value_name = "ALG")]
        id_token_alg: Option<String>,
    },
    /// Every registered app, oldest first.
    List,
    /// Remove an app: it can no longer sign anyone in or refresh its tokens, and its
    /// app sessions end (its access tokens stop working at once).
    Remove {
        /// The app's client id as `clients add` or `clients list` printed it. One made
        /// before ids stopped starting with `-` may still do; it is taken as it is.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyAction {
    /// Make a new current signing key of each algorithm (RS256, ES256, EdDSA); the old
    /// ones stay published until every token they signed has expired. Running servers
    /// pick them up within a minute.
    Rotate,
}

impl Line for NewClient {
    fn text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[derive(Serialize)]
struct ClientLine {
    client_id: String,
    name: String,
    public: bool,
    redirect_uris: Vec<String>,
    post_logout_uris: Vec<String>,
    created_at: String,
    id_token_signed_response_alg: String,
}

impl ClientLine {
    fn new(c: &ClientRecord) -> ClientLine {
        ClientLine {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            public: c.secret_hash.is_none(),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_uris: c.post_logout_uris.clone(),
            created_at: iso_time(c.created_at),
            id_token_signed_response_alg: c.id_token_signed_response_alg.clone(),
        }
    }
}

impl Line for ClientLine {
    fn text(&self) -> String {
        format!(
            "{}  {}  {}  {}  {}  {}",
            self.client_id,
            self.created_at,
            if self.public {
                "public"
            } else {
                "confidential"
            },
            self.id_token_signed_response_alg,
            self.name,
            self.redirect_uris.join(" ")
        )
    }
}

#[derive(Serialize)]
struct Removed {
    client_id: String,
    removed: bool,
    /// The app sessions ended with it.
    sessions_ended: u32,
}

impl Line for Removed {
    fn text(&self) -> String {
        format!(
            "{} removed; {} app sessions ended",
            self.client_id, self.sessions_ended
        )
    }
}

#[derive(Serialize)]
struct Rotated {
    /// The new RS256 key's (what id_tokens are signed with by default).
    kid: String,
    /// Every new key's: RS256, ES256, EdDSA.
    kids: Vec<String>,
}

impl Line for Rotated {
    fn text(&self) -> String {
        format!("new signing keys {}", self.kids.join(" "))
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Invalid(m) => CliError::Start(m),
            ClientError::Accounts(e) => e.into(),
        }
    }
}

pub(super) async fn run(accounts: &Accounts, action: Action, out: Output) -> Result<(), CliError> {
    match action {
        Action::Add {
            name,
            redirect_uris,
            public,
            post_logout_uris,
            id_token_alg,
        } => {
            let new = clients::add(
                accounts,
                &name,
                &redirect_uris,
                public,
                &post_logout_uris,
                id_token_alg.as_deref(),
            )
            .await?;
            // Always one JSON line: a program reads the secret from it.
            Output { json: true }.print(&new);
            Ok(())
        }
        Action::List => {
            out.header("CLIENT_ID  CREATED  TYPE  ID_TOKEN_ALG  NAME  REDIRECT_URIS");
            for c in accounts.list_clients().await? {
                out.print(&ClientLine::new(&c));
            }
            Ok(())
        }
        Action::Remove { .. } => Err(CliError::Start(
            "removing an app ends its sessions: run through `remove`".into(),
        )),
    }
}

/// Removes an app and ends its app sessions: the users who allowed it are read
/// first (the consents go with the app), the app is deleted (no new tokens, no
/// refresh), then each user's sessions of that app are ended through the store.
pub(super) async fn remove(
    accounts: &Accounts,
    store: &crate::store::Store,
    client_id: String,
    out: Output,
) -> Result<(), CliError> {
    let users = accounts.consented_users(&client_id).await?;
    if !accounts.delete_client(&client_id).await? {
        return Err(CliError::Start(format!(
            "no app has the client id {client_id}"
        )));
    }
    let now = crate::support::clock::now_ms();
    let mut ended = 0u32;
    for user in users {
        let sessions = store.list_sessions(&user, now).await?;
        for s in sessions
            .iter()
            .filter(|s| s.client_id.as_deref() == Some(client_id.as_str()))
        {
            if store.revoke_session(&user, &s.sid, now).await? {
                ended += 1;
            }
        }
    }
    out.print(&Removed {
        client_id,
        removed: true,
        sessions_ended: ended,
    });
    Ok(())
}

pub(super) async fn rotate(
    accounts: &Accounts,
    settings: &Settings,
    out: Output,
) -> Result<(), CliError> {
    let kids = keys::rotate(accounts, settings).await.map_err(|e| {
        CliError::Start(format!(
            "rotating the signing key: {}",
            crate::support::report::Report(&e)
        ))
    })?;
    out.print(&Rotated {
        kid: kids.first().cloned().unwrap_or_default(),
        kids,
    });
    Ok(())
}
