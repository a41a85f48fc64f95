//! The sessions aggregate on Redis: `session_create`, `session_touch` (with the
//! devices page's list), `session_list`, `session_revoke` and `session_revoke_all`,
//! and the session check's read, which needs no script (`touch_session`).

use redis::{ScriptInvocation, Value};
use uuid::Uuid;

use super::{unexpected, RedisStore, Resend};
use crate::store::error::StoreResult;
use crate::store::sessions::{
    field, Amr, Created, LiveSession, NewSession, SessionCaps, SessionKind, SessionRecord,
    Sessions, PASSWORD_VERSION_TTL_MS, SEEN_REFRESH_MS,
};

impl RedisStore {
    /// The touch script's invocation; `list` asks for the user's sessions too.
    fn touch_invocation(
        &self,
        user_id: &Uuid,
        sid: &str,
        revoked_jti: Option<&str>,
        now_ms: i64,
        list: bool,
    ) -> ScriptInvocation<'_> {
        let session_key = self.keys.session(user_id, sid);
        let jti_key = match revoked_jti {
            Some(j) => self.keys.revoked_jti(user_id, j),
            None => session_key.clone(),
        };
        let mut inv = self.scripts.touch.prepare_invoke();
        inv.key(session_key)
            .key(self.keys.user(user_id))
            .key(jti_key)
            .arg(sid)
            .arg(now_ms)
            .arg(SEEN_REFRESH_MS)
            .arg(if revoked_jti.is_some() { "1" } else { "0" })
            .arg(if list { "1" } else { "0" });
        if list {
            inv.arg(self.keys.session_prefix(user_id));
        }
        inv
    }
}

/// The session hash's fields `touch_session` reads, in this order.
const TOUCH_READ: [&str; 6] = [
    field::ABSOLUTE,
    field::IDLE,
    field::SEEN,
    field::KIND,
    field::AMR,
    field::CREATED,
];

/// The user hash's field holding the account's email (absent once it is closed).
const USER_EMAIL: &str = "@";

/// What the read of a session says.
enum Read {
    /// No live session: gone, revoked token, closed account.
    Ended,
    Live(LiveSession),
    /// A write is due, or the session is past its absolute expiry: the script decides.
    Due,
}

/// `touch_session`'s read: `[HMGET a i s k o t, HGET @, EXISTS jti?]`.
fn read_touch(replies: Vec<Value>, now_ms: i64) -> StoreResult<Read> {
    let mut replies = replies.into_iter();
    let (Some(fields), Some(email)) = (replies.next(), replies.next()) else {
        return Err(unexpected("session read", "a short reply"));
    };
    let fields: Vec<Option<String>> = redis::from_redis_value(fields)?;
    let email: Option<String> = redis::from_redis_value(email)?;
    let revoked = match replies.next() {
        Some(v) => redis::from_redis_value::<i64>(v)? > 0,
        None => false,
    };
    let num = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.as_deref()?.parse::<i64>().ok())
    };
    let (Some(absolute), Some(idle), Some(seen)) = (num(0), num(1), num(2)) else {
        return Ok(Read::Ended);
    };
    if now_ms >= absolute || crate::store::sessions::slide_due(now_ms, seen, idle) {
        return Ok(Read::Due);
    }
    let text = |i: usize| fields.get(i).and_then(|v| v.as_deref());
    let (Some(email), false) = (email, revoked) else {
        return Ok(Read::Ended);
    };
    let kind =
        SessionKind::from_field(text(3)).ok_or_else(|| unexpected("session read", "kind"))?;
    Ok(Read::Live(LiveSession::from_fields(
        kind,
        email,
        Amr::from_field(text(4)),
        num(5).unwrap_or(0),
    )))
}

/// `session_touch`'s reply: nothing (no live session), or `{kind, email, amr, t}` and,
/// when asked, the list.
fn parse_touch(reply: Value) -> StoreResult<Option<(LiveSession, Option<Vec<SessionRecord>>)>> {
    let items = match reply {
        Value::Nil => return Ok(None),
        Value::Array(items) => items,
        other => return Err(unexpected("session_touch", other)),
    };
    let mut it = items.into_iter();
    let (Some(kind), Some(email), Some(amr), Some(created)) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(unexpected("session_touch", "a short reply"));
    };
    let created: Option<String> = redis::from_redis_value(created)?;
    let kind: String = redis::from_redis_value(kind)?;
    let amr: String = redis::from_redis_value(amr)?;
    let live = LiveSession::from_fields(
        SessionKind::from_field(Some(&kind)).ok_or_else(|| unexpected("session_touch", &kind))?,
        redis::from_redis_value(email)?,
        Amr::from_field(Some(&amr)),
        created.and_then(|t| t.parse().ok()).unwrap_or(0),
    );
    let list = it.next().map(parse_list).transpose()?;
    Ok(Some((live, list)))
}

/// The fields `list()` (list.lua) reads of each session, in its order.
const LISTED: [&str; 8] = [
    field::KIND,
    field::LABEL,
    field::MOBILE,
    field::IP,
    field::CREATED,
    field::SEEN,
    field::AMR,
    field::CLIENT,
];

/// `list()`'s reply: `{sid, {k, l, m, ip, t, s, o, c}, ...}`.
fn parse_list(reply: Value) -> StoreResult<Vec<SessionRecord>> {
    let items: Vec<Value> = redis::from_redis_value(reply)?;
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(sid), Some(values)) = (it.next(), it.next()) {
        let sid: String = redis::from_redis_value(sid)?;
        let values: Vec<Option<String>> = redis::from_redis_value(values)?;
        let get = |name: &str| {
            let i = LISTED.iter().position(|n| *n == name)?;
            values.get(i)?.as_deref()
        };
        out.extend(SessionRecord::read(sid, get));
    }
    Ok(out)
}

/// Each method is one script call (`lua/session_*.lua`), but the session check, which
/// reads first; the contract is on `Sessions`. Redis keeps TTLs on its own clock, so the
/// methods whose script only sets or reads TTLs take `now` for the embedded store's
/// sake and do not send it.
impl Sessions for RedisStore {
    async fn create_session(
        &self,
        new: &NewSession,
        caps: SessionCaps,
        password_version: i64,
        now_ms: i64,
    ) -> StoreResult<Created> {
        let uid = &new.user_id;
        let mut inv = self.scripts.create.prepare_invoke();
        inv.key(self.keys.session(uid, &new.sid))
            .key(self.keys.user(uid))
            .key(self.keys.password_version(uid))
            .arg(&new.sid)
            .arg(now_ms)
            .arg(new.expiry(now_ms))
            .arg(caps.per_user)
            .arg(password_version)
            .arg(self.keys.session_prefix(uid))
            .arg(&new.email)
            .arg(SEEN_REFRESH_MS)
            .arg(new.absolute_expiry_ms)
            .arg(new.client_id.as_deref().unwrap_or(""))
            .arg(caps.per_app);
        for (k, v) in new.fields(now_ms) {
            inv.arg(k).arg(v);
        }
        let v: Value = self.run(&inv, Resend::IfNotSent).await?;
        match v {
            Value::Int(-1) => Ok(Created::Stale),
            Value::Array(items) => Ok(Created::Yes {
                evicted: items
                    .into_iter()
                    .filter_map(|i| redis::from_redis_value(i).ok())
                    .collect(),
            }),
            other => Err(unexpected("session_create", other)),
        }
    }

    async fn touch_session(
        &self,
        user_id: &Uuid,
        sid: &str,
        revoked_jti: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<Option<LiveSession>> {
        // Most uses only read: three plain commands in one round trip, which cost Redis
        // a seventh of the script's time (BENCHMARKS.md). The script runs instead when
        // the session is due a write (`slide_due`: its idle timeout slid, `seen`) or is
        // past its absolute expiry (the script ends it); then its answer is the one given.
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET")
            .arg(self.keys.session(user_id, sid))
            .arg(&TOUCH_READ[..])
            .cmd("HGET")
            .arg(self.keys.user(user_id))
            .arg(USER_EMAIL);
        if let Some(jti) = revoked_jti {
            pipe.cmd("EXISTS").arg(self.keys.revoked_jti(user_id, jti));
        }
        let replies: Vec<Value> = self.query(&pipe, Resend::Idempotent).await?;
        match read_touch(replies, now_ms)? {
            Read::Ended => Ok(None),
            Read::Live(live) => Ok(Some(live)),
            Read::Due => {
                let inv = self.touch_invocation(user_id, sid, revoked_jti, now_ms, false);
                let reply = self.run(&inv, Resend::Idempotent).await?;
                Ok(parse_touch(reply)?.map(|(live, _)| live))
            }
        }
    }

    async fn touch_and_list(
        &self,
        user_id: &Uuid,
        sid: &str,
        revoked_jti: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<Option<(LiveSession, Vec<SessionRecord>)>> {
        let inv = self.touch_invocation(user_id, sid, revoked_jti, now_ms, true);
        match parse_touch(self.run(&inv, Resend::Idempotent).await?)? {
            None => Ok(None),
            Some((live, Some(list))) => Ok(Some((live, list))),
            Some((_, None)) => Err(unexpected("session_touch", "no list")),
        }
    }

    async fn list_sessions(&self, user_id: &Uuid, now_ms: i64) -> StoreResult<Vec<SessionRecord>> {
        let mut inv = self.scripts.list.prepare_invoke();
        inv.key(self.keys.user(user_id))
            .arg(now_ms)
            .arg(self.keys.session_prefix(user_id));
        parse_list(self.run(&inv, Resend::Idempotent).await?)
    }

    async fn revoke_session(&self, user_id: &Uuid, sid: &str, _now: i64) -> StoreResult<bool> {
        let mut inv = self.scripts.revoke.prepare_invoke();
        inv.key(self.keys.session(user_id, sid))
            .key(self.keys.user(user_id))
            .arg(sid);
        let n: i64 = self.run(&inv, Resend::Idempotent).await?;
        Ok(n > 0)
    }

    async fn revoke_sessions(
        &self,
        user_id: &Uuid,
        keep: Option<&str>,
        password_version: Option<i64>,
        _now: i64,
    ) -> StoreResult<u32> {
        let mut inv = self.scripts.revoke_all.prepare_invoke();
        inv.key(self.keys.user(user_id))
            .key(self.keys.password_version(user_id))
            .key(self.keys.reset(user_id))
            .key(self.keys.trusted_browsers(user_id))
            .arg(keep.unwrap_or(""))
            .arg(self.keys.session_prefix(user_id))
            .arg(password_version.map(|v| v.to_string()).unwrap_or_default())
            .arg(PASSWORD_VERSION_TTL_MS)
            .arg("0");
        self.run(&inv, Resend::Idempotent).await
    }

    async fn close_account(&self, user_id: &Uuid, version: i64, _now: i64) -> StoreResult<u32> {
        let mut inv = self.scripts.revoke_all.prepare_invoke();
        inv.key(self.keys.user(user_id))
            .key(self.keys.password_version(user_id))
            .key(self.keys.reset(user_id))
            .key(self.keys.trusted_browsers(user_id))
            .arg("")
            .arg(self.keys.session_prefix(user_id))
            .arg(version)
            .arg(PASSWORD_VERSION_TTL_MS)
            .arg("1");
        self.run(&inv, Resend::Idempotent).await
    }

    async fn set_account_email(&self, user_id: &Uuid, email_field: &str) -> StoreResult<()> {
        let mut inv = self.scripts.account_email.prepare_invoke();
        inv.key(self.keys.user(user_id)).arg(email_field);
        let _: i64 = self.run(&inv, Resend::Idempotent).await?;
        Ok(())
    }
}
