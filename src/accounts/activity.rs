//! The `activity_events` table: each account's log of what happened to it. What the
//! events mean is in `crate::services::activity`; here are only the queries, each
//! written once for both databases.
//!
//! A grouped event (failed sign-ins, lock-outs) carries a `group_key` (type, address,
//! hour): writing it again adds to the row's count instead of a new row, so a flood of
//! failures stays one row per address and hour. A new row prunes the account's log to
//! its bounds in the same call.

use uuid::Uuid;

use super::database::on_pool;
use super::error::AccountError;
use super::users::Accounts;

/// An event to write.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub kind: &'a str,
    pub label: &'a str,
    pub ip: &'a str,
    pub session_id: Option<&'a str>,
    pub detail: &'a str,
    /// Same key, same row: its count goes up.
    pub group_key: Option<String>,
    /// How many it stands for (a new row's count).
    pub count: i64,
}

/// An event as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub at: i64,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub label: String,
    pub ip: String,
    pub session_id: Option<String>,
    pub detail: String,
    pub count: i64,
}

/// How much of the log an account keeps.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_events: u32,
    /// Events at or before this time (ms) go.
    pub oldest_ms: i64,
}

impl Accounts {
    /// Writes (or, for a grouped event seen before, counts) one event; a new row
    /// prunes the account's log to `bounds`.
    pub async fn record_event(
        &self,
        user_id: &Uuid,
        event: &NewEvent<'_>,
        now: i64,
        bounds: Bounds,
    ) -> Result<(), AccountError> {
        let id = user_id.to_string();
        let insert = "INSERT INTO activity_events \
                      (user_id, at, type, label, ip, session_id, detail, count, group_key) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $9, $8) \
                      ON CONFLICT (user_id, group_key) DO UPDATE \
                      SET count = activity_events.count + 1, at = excluded.at \
                      RETURNING count";
        let count: i64 = on_pool!(&self.pool, |p| sqlx::query_scalar(insert)
            .bind(&id)
            .bind(now)
            .bind(event.kind)
            .bind(event.label)
            .bind(event.ip)
            .bind(event.session_id)
            .bind(event.detail)
            .bind(event.group_key.as_deref())
            .bind(event.count)
            .fetch_one(p)
            .await)?;
        if count == event.count {
            self.prune_events(user_id, bounds).await?;
        }
        Ok(())
    }

    /// Deletes the account's events older than the bounds allow or past its count.
    pub async fn prune_events(&self, user_id: &Uuid, bounds: Bounds) -> Result<u64, AccountError> {
        let sql = "DELETE FROM activity_events WHERE user_id = $1 AND (at <= $2 OR id <= \
                   (SELECT id FROM activity_events WHERE user_id = $1 \
                    ORDER BY id DESC LIMIT 1 OFFSET $3))";
        let deleted = on_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(user_id.to_string())
            .bind(bounds.oldest_ms)
            .bind(i64::from(bounds.max_events))
            .execute(p)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(deleted)
    }

    /// Up to `limit` of the account's events with an id below `before`, newer than
    /// `since_ms`, newest first.
    pub async fn events(
        &self,
        user_id: &Uuid,
        before: Option<i64>,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<EventRow>, AccountError> {
        let sql = "SELECT id, at, type, label, ip, session_id, detail, count \
                   FROM activity_events WHERE user_id = $1 AND id < $2 AND at > $3 \
                   ORDER BY id DESC LIMIT $4";
        let rows: Vec<EventRow> = on_pool!(&self.pool, |p| sqlx::query_as(sql)
            .bind(user_id.to_string())
            .bind(before.unwrap_or(i64::MAX))
            .bind(since_ms)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)?;
        Ok(rows)
    }

    /// How many rows the account's log holds (for tests and the operator).
    pub async fn event_rows(&self, user_id: &Uuid) -> Result<u64, AccountError> {
        let sql = "SELECT COUNT(*) FROM activity_events WHERE user_id = $1";
        let n: i64 = on_pool!(&self.pool, |p| sqlx::query_scalar(sql)
            .bind(user_id.to_string())
            .fetch_one(p)
            .await)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
