//! Redis memory per session: creates N sessions (default 100,000) through the real
//! `session_create` script under a throwaway prefix, reads `INFO memory` before and
//! after and `MEMORY USAGE` of one session hash, prints the figures, then deletes them.
//! Run by `scripts/bench`; prints numbers, asserts nothing about them.

use std::time::Instant;

use latchkey::clock::now_ms;
use latchkey::store::{Keys, NewSession, RedisStore, SessionKind, Store};
use uuid::Uuid;

fn used_memory(info: &str) -> i64 {
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
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
    let prefix = format!("benchmem-{}", Uuid::now_v7().simple());
    let store = Store::Redis(RedisStore::connect(&url, Keys::new(&prefix)).expect("redis url"));
    let mut conn = redis::Client::open(url.as_str())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let info = |c: &mut redis::aio::MultiplexedConnection| {
        let mut c = c.clone();
        async move {
            let s: String = redis::cmd("INFO")
                .arg("memory")
                .query_async(&mut c)
                .await
                .expect("INFO");
            used_memory(&s)
        }
    };
    let before = info(&mut conn).await;
    let started = Instant::now();
    // Realistic shape: users with a few devices each.
    let users: Vec<Uuid> = (0..n / 4).map(|_| Uuid::now_v7()).collect();
    let mut first_key = String::new();
    let chunk = 256;
    for (i, batch) in (0..n).collect::<Vec<_>>().chunks(chunk).enumerate() {
        let tasks: Vec<_> = batch
            .iter()
            .map(|j| {
                let store = store.clone();
                let user = users[j % users.len()];
                let secret = latchkey::crypto::random_token();
                tokio::spawn(async move {
                    let s = NewSession {
                        user_id: user,
                        sid: latchkey::sessions::sid_for(&secret),
                        kind: SessionKind::Browser,
                        label: "Firefox on Linux".into(),
                        user_agent:
                            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
                                .into(),
                        ip: "203.0.113.5".into(),
                        csrf: latchkey::crypto::random_token(),
                        refresh_hash: None,
                        client_name: None,
                        idle_ms: 1_800_000,
                        absolute_expiry_ms: now_ms() + 86_400_000,
                    };
                    store
                        .create_session(&s, 50, 0, now_ms())
                        .await
                        .expect("create");
                    (user, s.sid)
                })
            })
            .collect();
        for t in tasks {
            let (user, sid) = t.await.expect("task");
            if i == 0 && first_key.is_empty() {
                first_key = store.keys().session(&user, &sid);
            }
        }
    }
    let elapsed = started.elapsed();
    let after = info(&mut conn).await;
    let hash_bytes: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(&first_key)
        .query_async(&mut conn)
        .await
        .unwrap_or(0);
    println!("sessions_created {n}");
    println!("create_rate_per_s {:.0}", n as f64 / elapsed.as_secs_f64());
    println!("used_memory_delta_bytes {}", after - before);
    println!(
        "bytes_per_session {:.0}",
        (after - before) as f64 / n as f64
    );
    println!("memory_usage_one_hash_bytes {hash_bytes}");

    // Clean up: SCAN and UNLINK everything under the prefix.
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(5000)
            .query_async(&mut conn)
            .await
            .expect("SCAN");
        if !keys.is_empty() {
            let _: i64 = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .expect("UNLINK");
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
}
