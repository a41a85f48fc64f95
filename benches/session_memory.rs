//! Redis memory per browser session: creates N sessions (default 100,000; four per
//! user, as people have a few devices) through the real `session_create` script under
//! the default key prefix (`lk`), and measures them two ways:
//!
//! - `INFO memory` before and after: everything the sessions cost, the hashes, their
//!   expiry entries and their share of each user hash (the SID entries and the email);
//!   other clients writing to the same Redis meanwhile would show up here too;
//! - `MEMORY USAGE` of every key made (session hashes and user hashes, summed): the
//!   same cost without the expiry entries, and unaffected by other clients.
//!
//! It also prints `OBJECT ENCODING` of a session hash and a user hash, then deletes
//! exactly the keys it made. Run by `scripts/bench`; prints numbers, asserts nothing.
//! `AMR=otp` makes every session one that signed in with a second factor (its hash
//! has the `am` field); by default they signed in with a password alone.

use std::time::Instant;

use latchkey::store::{
    Amr, KeyNames, NewSession, RedisStore, SessionCaps, SessionKind, Sessions, Store,
};
use latchkey::support::clock::now_ms;
use redis::aio::MultiplexedConnection;
use uuid::Uuid;

/// The default caps (`max_sessions_per_user`, `app_sessions_per_client`).
const CAPS: SessionCaps = SessionCaps {
    per_user: 50,
    per_app: 10,
};

const SESSIONS_PER_USER: usize = 4;

/// `used_memory`, less what client connections hold (query and reply buffers, which
/// the bench's own bursts inflate for a while).
fn used_memory(info: &str) -> i64 {
    let field = |name: &str| -> i64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    field("used_memory") - field("mem_clients_normal")
}

async fn info(conn: &MultiplexedConnection) -> i64 {
    let s: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn.clone())
        .await
        .expect("INFO");
    used_memory(&s)
}

/// How the sessions signed in: `AMR=otp` for a password and a second factor.
fn amr() -> Amr {
    match std::env::var("AMR").as_deref() {
        Ok("otp") => Amr::PasswordAndOtp,
        _ => Amr::Password,
    }
}

/// A browser session as a desktop Firefox starts it.
fn browser_session(user: Uuid, n: usize) -> NewSession {
    let secret = latchkey::support::crypto::random_token();
    NewSession {
        user_id: user,
        email: format!("person{n}@example.com"),
        sid: latchkey::services::sessions::sid_for(&secret),
        kind: SessionKind::Browser,
        label: "Firefox on Linux".into(),
        mobile: false,
        ip: "203.0.113.5".into(),
        refresh_hash: None,
        client_id: None,
        amr: amr(),
        idle_ms: 1_800_000,
        absolute_expiry_ms: now_ms() + 86_400_000,
    }
}

/// `MEMORY USAGE` (every element counted) of each key, summed; 1,000 keys a pipeline.
async fn memory_usage(conn: &MultiplexedConnection, keys: &[String]) -> i64 {
    let mut total = 0;
    for chunk in keys.chunks(1000) {
        let mut pipe = redis::pipe();
        for key in chunk {
            pipe.cmd("MEMORY")
                .arg("USAGE")
                .arg(key)
                .arg("SAMPLES")
                .arg(0);
        }
        let sizes: Vec<Option<i64>> = pipe
            .query_async(&mut conn.clone())
            .await
            .expect("MEMORY USAGE");
        total += sizes.into_iter().flatten().sum::<i64>();
    }
    total
}

async fn encoding(conn: &MultiplexedConnection, key: &str) -> String {
    redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(key)
        .query_async(&mut conn.clone())
        .await
        .unwrap_or_default()
}

/// Creates the sessions, 256 at a time; answers every key made, user hashes first.
async fn create_all(store: &Store, n: usize) -> Vec<String> {
    let users: Vec<Uuid> = (0..n.div_ceil(SESSIONS_PER_USER))
        .map(|_| Uuid::now_v7())
        .collect();
    let mut keys: Vec<String> = users.iter().map(|u| store.key_names().user(u)).collect();
    for batch in (0..n).collect::<Vec<_>>().chunks(256) {
        let tasks: Vec<_> = batch
            .iter()
            .map(|&i| {
                let store = store.clone();
                let s = browser_session(users[i / SESSIONS_PER_USER], i / SESSIONS_PER_USER);
                tokio::spawn(async move {
                    store
                        .create_session(&s, CAPS, 0, now_ms())
                        .await
                        .expect("create");
                    store.key_names().session(&s.user_id, &s.sid)
                })
            })
            .collect();
        for t in tasks {
            keys.push(t.await.expect("task"));
        }
    }
    keys
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without
    // it, and must not create 100,000 sessions.
    if !std::env::args().any(|a| a == "--bench") {
        println!("session_memory: run by scripts/bench (cargo bench --bench session_memory)");
        return;
    }
    let url = std::env::var("LATCHKEY_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let n: usize = std::env::var("SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let store = Store::Redis(RedisStore::connect(&url, KeyNames::new("lk")).expect("redis url"));
    let conn = redis::Client::open(url.as_str())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let before = info(&conn).await;
    let started = Instant::now();
    let keys = create_all(&store, n).await;
    let elapsed = started.elapsed();
    let after = info(&conn).await;
    let one = keys.last().expect("a session key");
    let hash_bytes = memory_usage(&conn, std::slice::from_ref(one)).await;
    let summed = memory_usage(&conn, &keys).await;
    println!("sessions_created {n}");
    println!("create_rate_per_s {:.0}", n as f64 / elapsed.as_secs_f64());
    println!("used_memory_delta_bytes {}", after - before);
    println!(
        "bytes_per_session {:.0}",
        (after - before) as f64 / n as f64
    );
    println!(
        "memory_usage_per_session_bytes {:.0}",
        summed as f64 / n as f64
    );
    println!("memory_usage_one_hash_bytes {hash_bytes}");
    println!("encoding_one_hash {}", encoding(&conn, one).await);
    println!("encoding_user_hash {}", encoding(&conn, &keys[0]).await);

    // Clean up: exactly the keys made (the prefix is the default one).
    for chunk in keys.chunks(1000) {
        let _: i64 = redis::cmd("UNLINK")
            .arg(chunk)
            .query_async(&mut conn.clone())
            .await
            .expect("UNLINK");
    }
}
