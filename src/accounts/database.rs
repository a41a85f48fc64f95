//! The account database: a SQLite file (the default, for one instance) or PostgreSQL
//! (shared by any number of instances), chosen by the scheme of `database_url`. Each
//! is opened and migrated here; the queries, written once for both, are in `mod.rs`.
//!
//! Two typed pools behind one enum rather than `sqlx::Any`: each query is type-checked
//! against its own driver, the pools keep their own options (SQLite's WAL and busy
//! timeout, PostgreSQL's connect timeout), and no value passes through `Any`'s reduced
//! set of types. The placeholders are `$1, $2, …`, which PostgreSQL requires and
//! SQLite (and sqlx's SQLite driver) reads as the same numbered parameters.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// The SQLite history (`migrations/sqlite/`): versions and contents never change once
/// shipped, since sqlx refuses a database whose applied migration differs.
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
/// The PostgreSQL history (`migrations/postgres/`), in step with SQLite's.
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections one instance holds to PostgreSQL at most (the server's default
/// `max_connections` is 100, so a handful of instances fit).
const POSTGRES_CONNECTIONS: u32 = 16;
/// How long a query waits for a connection (or PostgreSQL for a new connection)
/// before the request answers 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub(super) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to the pool, whichever backend it is. The body is
/// expanded once per backend, so each expansion is checked against its own driver.
macro_rules! on_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            $crate::accounts::database::Pool::Sqlite($p) => $body,
            $crate::accounts::database::Pool::Postgres($p) => $body,
        }
    };
}
pub(super) use on_pool;

impl Pool {
    /// Opens (a SQLite file: creating it if needed) the database at `url` and brings
    /// its tables up to date. The message of an error names the setting; it never
    /// shows a password from the URL.
    pub(super) async fn open(url: &str) -> Result<Pool, String> {
        if url.starts_with("sqlite:") {
            open_sqlite(url).await.map(Pool::Sqlite)
        } else {
            open_postgres(url).await.map(Pool::Postgres)
        }
    }

    pub(super) fn backend_name(&self) -> &'static str {
        match self {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }
}

async fn open_sqlite(url: &str) -> Result<SqlitePool, String> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| format!("invalid setting `database_url`: {e}"))?;
    if let Some(dir) = options.get_filename().parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| {
                format!(
                    "setting `database_url`: cannot create {}: {e}",
                    dir.display()
                )
            })?;
        }
    }
    let options = options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| format!("setting `database_url`: cannot open {url}: {e}"))?;
    if let Err(e) = SQLITE_MIGRATIONS.run(&pool).await {
        // A read-only database that is already up to date still signs people in;
        // writes then answer with a clear message.
        let read_only = e.to_string().to_lowercase().contains("readonly");
        let usable = sqlx::query("SELECT 1 FROM users LIMIT 1")
            .execute(&pool)
            .await
            .is_ok();
        if !(read_only && usable) {
            return Err(format!("setting `database_url`: cannot migrate {url}: {e}"));
        }
        tracing::warn!(database_url = %url, "the account database is read-only: sign-in works, new accounts and password changes will fail");
    }
    Ok(pool)
}

/// Several instances may start at once: sqlx's PostgreSQL migrator holds an advisory
/// lock while it runs, so one migrates and the others then find nothing to do.
async fn open_postgres(url: &str) -> Result<PgPool, String> {
    let shown = without_password(url);
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| format!("invalid setting `database_url` ({shown}): {e}"))?;
    let pool = PgPoolOptions::new()
        .max_connections(POSTGRES_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| format!("setting `database_url`: cannot connect to {shown}: {e}"))?;
    POSTGRES_MIGRATIONS
        .run(&pool)
        .await
        .map_err(|e| format!("setting `database_url`: cannot migrate {shown}: {e}"))?;
    Ok(pool)
}

/// `url` with the password of its user part (if any) replaced by `***`, for messages.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split_once(':').map_or(user_info, |(u, _)| u);
            let hidden = if user.len() < user_info.len() {
                ":***"
            } else {
                ""
            };
            format!("{scheme}://{user}{hidden}@{host}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sqlx refuses to open a database whose applied migrations changed (checksum) or
    /// went missing (version). These are the migrations as shipped; a change here
    /// means existing SQLite databases would no longer start.
    const SHIPPED_SQLITE: [(i64, &str); 8] = [
        (
            1,
            "dbf9aace7c53281886ce5ea51e85cb89d4ae92b80f5d6f0384d50b4fd4750e5f356c25eda4210d76d7c9e43b94d95d7b",
        ),
        (
            2,
            "e720b8c9158ad424a0458ed6e12e8d773a4445231961d53ecc3d336e34ca3f87738834c7c6c41bfcb05854e40f9577b5",
        ),
        (
            3,
            "4481ac19bb375595f56aae999face0f4ff0d7b87c7a65ba1bf71be5d4f3afa478220b7f344e47f12a66f561253f51ab8",
        ),
        (
            4,
            "2058a130e315832171a7d93714a8ff22500ea715987d883faeb35bb60ed7356688d26ad8fb36e1c5e9584b4bbb9b8bd6",
        ),
        (
            5,
            "68ab42e222006b1ca38cb84d9c94d708356a49fcedfb336541a91bb644c9de2ec991bdd525c10851b70bcda0ebf3597e",
        ),
        (
            6,
            "1606bd9a28da1c1891354681032216e7ee326532e7dc51257cfd99cc2a13858faa3f674f29a7eaeb92e8bbe5eb008418",
        ),
        (
            7,
            "191a4639216c24691bfc0e9a6ebe8e479482edb88c11d078a1039a58b06c755e4cfd30096951932911e8668b3741a303",
        ),
        (
            8,
            "f694a33003598a601ab67dc76e831424050de7aaa178c8a73d7a1a33e372bbe0c9901c49eb05f47ea25b50f955c77e12",
        ),
    ];

    #[test]
    fn shipped_sqlite_migrations_keep_their_versions_and_checksums() {
        let current: Vec<(i64, String)> = SQLITE_MIGRATIONS
            .iter()
            .map(|m| (m.version, hex::encode(&m.checksum)))
            .collect();
        for (version, checksum) in SHIPPED_SQLITE {
            assert!(
                current.contains(&(version, checksum.to_string())),
                "migration {version} changed or went missing: {current:?}"
            );
        }
    }

    #[test]
    fn both_backends_have_the_same_migration_versions() {
        let versions = |m: &Migrator| m.iter().map(|m| m.version).collect::<Vec<_>>();
        assert_eq!(versions(&SQLITE_MIGRATIONS), versions(&POSTGRES_MIGRATIONS));
    }

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        for (url, shown) in [
            (
                "postgres://latchkey:s3cret@db.internal:5432/accounts",
                "postgres://latchkey:***@db.internal:5432/accounts",
            ),
            (
                "postgresql://u:p@ss:w@rd@host/db?sslmode=require",
                "postgresql://u:***@host/db?sslmode=require",
            ),
            (
                "postgres://postgres@127.0.0.1/db",
                "postgres://postgres@127.0.0.1/db",
            ),
            ("postgres://host/db", "postgres://host/db"),
        ] {
            assert_eq!(without_password(url), shown);
        }
    }
}
