//! The account databases a test runs on: a SQLite file in the test's directory (the
//! default), or a PostgreSQL database of its own, made on the server at
//! `LATCHKEY_TEST_DATABASE_URL` (scripts/test starts one) and dropped when the test
//! ends. `on_both_databases!` runs one test body on each.

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

/// Which database a test's accounts live in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Database {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the tests make their databases on (a database there they
/// may connect to for `CREATE DATABASE`).
pub fn postgres_url() -> String {
    std::env::var("LATCHKEY_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A PostgreSQL database of one test's own (its name carries a UUIDv7, so the time it
/// was made, for scripts/test's sweep), dropped (with any connection still
/// open to it) when the last `TestApp` holding it goes.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        let server = postgres_url();
        let name = format!("latchkey_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = PgConnection::connect(&server).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {server} (scripts/test starts one; LATCHKEY_TEST_DATABASE_URL): {e}"
            )
        });
        conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("CREATE DATABASE");
        let _ = conn.close().await;
        TestDatabase {
            url: with_database(&server, &name),
            name,
        }
    }
}

impl Drop for TestDatabase {
    /// On a thread of its own: `Drop` cannot await, and the test's runtime may be the
    /// one dropping it. scripts/test also drops leftovers of runs that were killed.
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(drop_database(&name));
            }
        })
        .join();
    }
}

/// Drops the database `name` (ending its connections first); a failure only leaves
/// it for scripts/test to drop next time.
pub async fn drop_database(name: &str) {
    let Ok(mut conn) = PgConnection::connect(&postgres_url()).await else {
        return;
    };
    let _ = conn
        .execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await;
    let _ = conn.close().await;
}

/// `url` with its database (the path) replaced by `name`, options kept.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (host, tail) = rest.split_at(host_end);
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{scheme}://{host}/{name}{query}")
}

/// Runs each named test body (`async fn name(db: Database)`) once on SQLite and once
/// on PostgreSQL, as `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name($crate::support::Database::Sqlite).await
                }

                #[tokio::test]
                async fn postgres() {
                    super::$name($crate::support::Database::Postgres).await
                }
            }
        )+
    };
}
