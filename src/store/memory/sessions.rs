//! The sessions aggregate in memory: `session_*.lua`, each as one critical section.

use uuid::Uuid;

use super::state::{num, State};
use super::MemoryStore;
use crate::store::error::StoreResult;
use crate::store::sessions::{
    field, Amr, Created, LiveSession, NewSession, SessionCaps, SessionKind, SessionRecord,
    Sessions, PASSWORD_VERSION_TTL_MS, SEEN_REFRESH_MS,
};

/// `list()` of list.lua: the user's live sessions, dropping the entries whose
/// session is gone.
fn list(st: &mut State, user_key: &str, prefix: &str, now: i64) -> Vec<SessionRecord> {
    let mut out = Vec::new();
    for sid in st.prune_user(user_key, now) {
        let key = format!("{prefix}{sid}");
        match st.session(&key, now).cloned() {
            Some(f) => out.extend(SessionRecord::read(sid, |k| f.get(k).map(String::as_str))),
            None => {
                st.end_session(&key, user_key, &sid);
            }
        }
    }
    out
}

/// session_create.lua's eviction, before a new session of `app` (an app's client id;
/// `None` for a browser or API session) joins the user's live `members`: an app
/// session counts with that app's own (the oldest ends first, past `caps.per_app`), a
/// browser or API session with the browser and API sessions (the least recently seen
/// ends first, past `caps.per_user`). Answers the SIDs ended.
fn make_room(
    st: &mut State,
    members: Vec<String>,
    app: Option<&str>,
    caps: SessionCaps,
    (prefix, user_key): (&str, &str),
    now: i64,
) -> Vec<String> {
    let cap = match app {
        Some(_) => caps.per_app,
        None => caps.per_user,
    } as usize;
    if members.len() < cap {
        return Vec::new();
    }
    let mut rivals = Vec::new();
    for sid in members {
        let key = format!("{prefix}{sid}");
        let Some(f) = st.session(&key, now) else {
            st.end_session(&key, user_key, &sid);
            continue;
        };
        let its_app = f.get(field::CLIENT).map(String::as_str);
        let kind = f.get(field::KIND).map(String::as_str);
        match app {
            Some(_) if its_app == app => rivals.push((sid, num(f, field::CREATED))),
            None if kind != SessionKind::App.field_value() => {
                rivals.push((sid, num(f, field::SEEN)))
            }
            _ => {}
        }
    }
    rivals.sort_by_key(|(_, rank)| *rank);
    let excess = (rivals.len() + 1).saturating_sub(cap);
    let mut evicted = Vec::new();
    for (sid, _) in rivals.into_iter().take(excess) {
        st.end_session(&format!("{prefix}{sid}"), user_key, &sid);
        evicted.push(sid);
    }
    evicted
}

impl MemoryStore {
    /// session_touch.lua without the list. `always_slide` false is the Redis store's
    /// read-first `touch_session`: the expiry slides (and `seen` is written) only when
    /// `slide_due`; the devices page's call (the script itself) always slides.
    fn touch(
        &self,
        st: &mut State,
        user_id: &Uuid,
        sid: &str,
        revoked_jti: Option<&str>,
        now: i64,
        always_slide: bool,
    ) -> Option<LiveSession> {
        let (skey, ukey) = (self.keys.session(user_id, sid), self.keys.user(user_id));
        let f = st.session(&skey, now)?;
        let (abs, idle, seen) = (
            num(f, field::ABSOLUTE),
            num(f, field::IDLE),
            num(f, field::SEEN),
        );
        let kind = SessionKind::from_field(f.get(field::KIND).map(String::as_str))?;
        let amr = Amr::from_field(f.get(field::AMR).map(String::as_str));
        let created_ms = num(f, field::CREATED);
        if now >= abs {
            st.end_session(&skey, &ukey, sid);
            return None;
        }
        let jti_key = revoked_jti.map(|j| self.keys.revoked_jti(user_id, j));
        if jti_key.is_some_and(|k| st.string(&k, now).is_some()) {
            return None;
        }
        let email = st.email(&ukey)?;
        if !always_slide && !crate::store::sessions::slide_due(now, seen, idle) {
            return Some(LiveSession::from_fields(kind, email, amr, created_ms));
        }
        if now - seen >= SEEN_REFRESH_MS {
            if let Some(f) = st.session(&skey, now) {
                f.insert(field::SEEN.into(), now.to_string());
            }
        }
        st.slide(&skey, &ukey, sid, (now + idle).min(abs));
        Some(LiveSession::from_fields(kind, email, amr, created_ms))
    }

    /// session_revoke_all.lua without closing the account.
    fn revoke_all(
        &self,
        st: &mut State,
        user_id: &Uuid,
        keep: Option<&str>,
        password_version: Option<i64>,
        now: i64,
    ) -> u32 {
        let ukey = self.keys.user(user_id);
        let prefix = self.keys.session_prefix(user_id);
        if let Some(v) = password_version {
            // A new password: an outstanding reset code and the trusted browsers end.
            st.resets.remove(&self.keys.reset(user_id));
            st.browsers.remove(&self.keys.trusted_browsers(user_id));
            let pkey = self.keys.password_version(user_id);
            if st.string(&pkey, now).is_none_or(|cur| cur < v) {
                st.strings.insert(pkey, (v, now + PASSWORD_VERSION_TTL_MS));
            }
        }
        let members: Vec<String> = st
            .users
            .get(&ukey)
            .map(|u| u.sessions.keys().cloned().collect())
            .unwrap_or_default();
        let mut n = 0;
        for sid in members.into_iter().filter(|s| Some(s.as_str()) != keep) {
            let key = format!("{prefix}{sid}");
            let live = st.session(&key, now).is_some();
            st.end_session(&key, &ukey, &sid);
            n += u32::from(live);
        }
        if st.users.get(&ukey).is_some_and(|u| u.sessions.is_empty()) {
            st.users.remove(&ukey);
        }
        n
    }
}

/// Each method is the Lua script of the same name, as one critical section; the
/// contract is on `Sessions`.
impl Sessions for MemoryStore {
    async fn create_session(
        &self,
        new: &NewSession,
        caps: SessionCaps,
        password_version: i64,
        now: i64,
    ) -> StoreResult<Created> {
        let uid = &new.user_id;
        let (skey, ukey, pkey) = (
            self.keys.session(uid, &new.sid),
            self.keys.user(uid),
            self.keys.password_version(uid),
        );
        let prefix = self.keys.session_prefix(uid);
        let mut st = self.lock()?;
        st.sweep(now);
        if st.string(&pkey, now).is_some_and(|v| v > password_version) {
            return Ok(Created::Stale);
        }
        let members = st.prune_user(&ukey, now);
        let app = new.client_id.as_deref();
        let evicted = make_room(&mut st, members, app, caps, (&prefix, &ukey), now);
        let fields = new
            .fields(now)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let expiry = new.expiry(now);
        st.sessions.insert(skey.clone(), (fields, expiry));
        st.users.entry(ukey.clone()).or_default().email = Some(new.email.clone());
        st.slide(&skey, &ukey, &new.sid, expiry);
        Ok(Created::Yes { evicted })
    }

    async fn touch_session(
        &self,
        user_id: &Uuid,
        sid: &str,
        revoked_jti: Option<&str>,
        now: i64,
    ) -> StoreResult<Option<LiveSession>> {
        let mut st = self.lock()?;
        Ok(self.touch(&mut st, user_id, sid, revoked_jti, now, false))
    }

    async fn touch_and_list(
        &self,
        user_id: &Uuid,
        sid: &str,
        revoked_jti: Option<&str>,
        now: i64,
    ) -> StoreResult<Option<(LiveSession, Vec<SessionRecord>)>> {
        let mut st = self.lock()?;
        let Some(live) = self.touch(&mut st, user_id, sid, revoked_jti, now, true) else {
            return Ok(None);
        };
        let list = list(
            &mut st,
            &self.keys.user(user_id),
            &self.keys.session_prefix(user_id),
            now,
        );
        Ok(Some((live, list)))
    }

    async fn list_sessions(&self, user_id: &Uuid, now: i64) -> StoreResult<Vec<SessionRecord>> {
        let (ukey, prefix) = (self.keys.user(user_id), self.keys.session_prefix(user_id));
        let mut st = self.lock()?;
        Ok(list(&mut st, &ukey, &prefix, now))
    }

    async fn revoke_session(&self, user_id: &Uuid, sid: &str, now: i64) -> StoreResult<bool> {
        let (skey, ukey) = (self.keys.session(user_id, sid), self.keys.user(user_id));
        let mut st = self.lock()?;
        let existed = st.session(&skey, now).is_some();
        st.end_session(&skey, &ukey, sid);
        Ok(existed)
    }

    async fn revoke_sessions(
        &self,
        user_id: &Uuid,
        keep: Option<&str>,
        password_version: Option<i64>,
        now: i64,
    ) -> StoreResult<u32> {
        let mut st = self.lock()?;
        Ok(self.revoke_all(&mut st, user_id, keep, password_version, now))
    }

    async fn close_account(&self, user_id: &Uuid, version: i64, now: i64) -> StoreResult<u32> {
        let mut st = self.lock()?;
        let n = self.revoke_all(&mut st, user_id, None, Some(version), now);
        st.users.remove(&self.keys.user(user_id));
        Ok(n)
    }

    async fn set_account_email(&self, user_id: &Uuid, email_field: &str) -> StoreResult<()> {
        let mut st = self.lock()?;
        if let Some(user) = st.users.get_mut(&self.keys.user(user_id)) {
            if user.email.is_some() {
                user.email = Some(email_field.to_string());
            }
        }
        Ok(())
    }
}
