//! The OpenID Connect provider's tables (`migrations/*/0003_oidc.sql`): registered apps,
//! remembered consent and signing keys. Queries written once for both databases.

use super::database::on_pool;
use super::error::AccountError;
use super::users::Accounts;
use crate::support::clock::now_ms;
use uuid::Uuid;

/// A registered app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub client_id: String,
    pub name: String,
    /// SHA-256 (hex) of the secret; `None` for a public client.
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_uris: Vec<String>,
    pub created_at: i64,
    /// The JWS `alg` of the app's id_tokens (`RS256`, `ES256` or `EdDSA`; migration 0007).
    pub id_token_signed_response_alg: String,
}

#[derive(sqlx::FromRow)]
struct ClientRow {
    client_id: String,
    name: String,
    secret_hash: Option<String>,
    redirect_uris: String,
    post_logout_uris: String,
    created_at: i64,
    id_token_signed_response_alg: String,
}

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

impl From<ClientRow> for ClientRecord {
    fn from(r: ClientRow) -> ClientRecord {
        ClientRecord {
            redirect_uris: lines(&r.redirect_uris),
            post_logout_uris: lines(&r.post_logout_uris),
            client_id: r.client_id,
            name: r.name,
            secret_hash: r.secret_hash,
            created_at: r.created_at,
            id_token_signed_response_alg: r.id_token_signed_response_alg,
        }
    }
}

/// A signing key as stored: the public JWK in clear, the private key encrypted.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    pub public_jwk: String,
    pub private_key: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

macro_rules! client_columns {
    () => {
        "client_id, name, secret_hash, redirect_uris, post_logout_uris, created_at, id_token_signed_response_alg"
    };
}

impl Accounts {
    pub async fn insert_client(&self, c: &ClientRecord) -> Result<(), AccountError> {
        let sql = "INSERT INTO oauth_clients (client_id, name, secret_hash, redirect_uris, post_logout_uris, created_at, id_token_signed_response_alg) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(&c.client_id)
            .bind(&c.name)
            .bind(&c.secret_hash)
            .bind(c.redirect_uris.join("\n"))
            .bind(c.post_logout_uris.join("\n"))
            .bind(c.created_at)
            .bind(&c.id_token_signed_response_alg)
            .execute(p)
            .await
            .map(drop))?;
        Ok(())
    }

    pub async fn find_client(&self, client_id: &str) -> Result<Option<ClientRecord>, AccountError> {
        let sql = concat!(
            "SELECT ",
            client_columns!(),
            " FROM oauth_clients WHERE client_id = $1"
        );
        let row: Option<ClientRow> = on_pool!(&self.pool, |p| sqlx::query_as(sql)
            .bind(client_id)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(ClientRecord::from))
    }

    pub async fn list_clients(&self) -> Result<Vec<ClientRecord>, AccountError> {
        let sql = concat!(
            "SELECT ",
            client_columns!(),
            " FROM oauth_clients ORDER BY created_at, client_id"
        );
        let rows: Vec<ClientRow> =
            on_pool!(&self.pool, |p| sqlx::query_as(sql).fetch_all(p).await)?;
        Ok(rows.into_iter().map(ClientRecord::from).collect())
    }

    /// Removes an app and the consent users gave it; false when there was none.
    pub async fn delete_client(&self, client_id: &str) -> Result<bool, AccountError> {
        let n = on_pool!(&self.pool, |p| sqlx::query(
            "DELETE FROM oauth_clients WHERE client_id = $1"
        )
        .bind(client_id)
        .execute(p)
        .await
        .map(|d| d.rows_affected()))?;
        Ok(n > 0)
    }

    /// The users who allowed the app (an app session exists only after consent): whose
    /// sessions to look through when the app is removed.
    pub async fn consented_users(&self, client_id: &str) -> Result<Vec<Uuid>, AccountError> {
        let sql = "SELECT user_id FROM oauth_consents WHERE client_id = $1";
        let ids: Vec<String> = on_pool!(&self.pool, |p| sqlx::query_scalar(sql)
            .bind(client_id)
            .fetch_all(p)
            .await)?;
        Ok(ids.iter().filter_map(|i| Uuid::parse_str(i).ok()).collect())
    }

    /// Every app the user allowed: its client id, name, the scopes and when (ms),
    /// oldest first.
    pub async fn consents_of(
        &self,
        user_id: &Uuid,
    ) -> Result<Vec<(String, String, String, i64)>, AccountError> {
        let sql = "SELECT c.client_id, c.name, o.scopes, o.granted_at FROM oauth_consents o \
                   JOIN oauth_clients c ON c.client_id = o.client_id \
                   WHERE o.user_id = $1 ORDER BY o.granted_at, c.client_id";
        let rows: Vec<(String, String, String, i64)> =
            on_pool!(&self.pool, |p| sqlx::query_as(sql)
                .bind(user_id.to_string())
                .fetch_all(p)
                .await)?;
        Ok(rows)
    }

    /// The scopes the user allowed the app, when they did.
    pub async fn consent(
        &self,
        user_id: &Uuid,
        client_id: &str,
    ) -> Result<Option<String>, AccountError> {
        let sql = "SELECT scopes FROM oauth_consents WHERE user_id = $1 AND client_id = $2";
        let scopes: Option<String> = on_pool!(&self.pool, |p| sqlx::query_scalar(sql)
            .bind(user_id.to_string())
            .bind(client_id)
            .fetch_optional(p)
            .await)?;
        Ok(scopes)
    }

    /// Remembers that the user allowed the app `scopes` (replacing what was allowed).
    pub async fn save_consent(
        &self,
        user_id: &Uuid,
        client_id: &str,
        scopes: &str,
    ) -> Result<(), AccountError> {
        let sql = "INSERT INTO oauth_consents (user_id, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at";
        on_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(user_id.to_string())
            .bind(client_id)
            .bind(scopes)
            .bind(now_ms())
            .execute(p)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Every stored signing key, newest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, AccountError> {
        let sql =
            "SELECT kid, alg, public_jwk, private_key, created_at, retired_at FROM signing_keys \
                   ORDER BY created_at DESC, kid";
        let rows: Vec<SigningKeyRow> =
            on_pool!(&self.pool, |p| sqlx::query_as(sql).fetch_all(p).await)?;
        Ok(rows)
    }

    /// Makes `key` the current key of its algorithm in one transaction: the current one
    /// of that algorithm (if any) is retired now, and keys retired before
    /// `forget_before` are deleted. With `only_if_none`, nothing happens when a current
    /// key of the algorithm exists already (two servers starting at once make one key,
    /// not two); answers whether `key` was stored.
    pub async fn add_signing_key(
        &self,
        key: &SigningKeyRow,
        only_if_none: bool,
        forget_before: i64,
    ) -> Result<bool, AccountError> {
        let now = now_ms();
        let stored = on_pool!(&self.pool, |p| {
            async {
            let mut tx = p.begin().await?;
            let current: Option<String> = sqlx::query_scalar(
                "SELECT kid FROM signing_keys WHERE retired_at IS NULL AND alg = $1 LIMIT 1",
            )
            .bind(&key.alg)
            .fetch_optional(&mut *tx)
            .await?;
            if only_if_none && current.is_some() {
                return Ok::<bool, sqlx::Error>(false);
            }
            sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND alg = $2")
                .bind(now)
                .bind(&key.alg)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1")
                .bind(forget_before)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO signing_keys (kid, alg, public_jwk, private_key, created_at, retired_at) \
                 VALUES ($1, $2, $3, $4, $5, NULL)",
            )
            .bind(&key.kid)
            .bind(&key.alg)
            .bind(&key.public_jwk)
            .bind(&key.private_key)
            .bind(key.created_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        }
        .await
        })?;
        Ok(stored)
    }
}
