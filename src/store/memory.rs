//! The embedded backend: the same operations as the Lua scripts, each one critical
//! section over in-process maps. Expired entries are dropped when touched and swept
//! every few thousand writes, so memory stays bounded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use uuid::Uuid;

use super::{
    Backend, CodeCheck, Created, Keys, LiveSession, NewSession, RateDecision, RateKey, Rotated,
    SessionKind, SessionRecord, StoreError, StoreResult, PASSWORD_VERSION_TTL_MS, REFRESH_HISTORY,
    SEEN_REFRESH_MS,
};

const SWEEP_EVERY: u64 = 4096;

#[derive(Default)]
struct State {
    /// session key -> (fields, expiry ms)
    sessions: HashMap<String, (HashMap<String, String>, i64)>,
    /// index key -> SID -> expiry ms
    indexes: HashMap<String, HashMap<String, i64>>,
    /// revoked tokens and password versions: key -> (value, expiry ms)
    strings: HashMap<String, (i64, i64)>,
    /// reset key -> (mac, wrong tries, expiry ms)
    resets: HashMap<String, (String, u32, i64)>,
    /// rate key -> attempts (time ms, member)
    rates: HashMap<String, Vec<(i64, String)>>,
    /// devices key -> nonce -> trusted until (ms)
    devices: HashMap<String, HashMap<String, i64>>,
    writes: u64,
}

impl State {
    fn sweep(&mut self, now: i64) {
        self.writes += 1;
        if !self.writes.is_multiple_of(SWEEP_EVERY) {
            return;
        }
        self.sessions.retain(|_, (_, exp)| *exp > now);
        for idx in self.indexes.values_mut() {
            idx.retain(|_, exp| *exp > now);
        }
        self.indexes.retain(|_, idx| !idx.is_empty());
        self.strings.retain(|_, (_, exp)| *exp > now);
        self.resets.retain(|_, (_, _, exp)| *exp > now);
        self.rates
            .retain(|_, log| log.iter().any(|(t, _)| *t > now - 24 * 3600 * 1000));
        for set in self.devices.values_mut() {
            set.retain(|_, until| *until > now);
        }
        self.devices.retain(|_, set| !set.is_empty());
    }

    fn session(&mut self, key: &str, now: i64) -> Option<&mut HashMap<String, String>> {
        match self.sessions.get(key) {
            Some((_, exp)) if *exp <= now => {
                self.sessions.remove(key);
                None
            }
            _ => self.sessions.get_mut(key).map(|(f, _)| f),
        }
    }

    fn string(&mut self, key: &str, now: i64) -> Option<i64> {
        match self.strings.get(key) {
            Some((v, exp)) if *exp > now => Some(*v),
            Some(_) => {
                self.strings.remove(key);
                None
            }
            None => None,
        }
    }

    fn prune_index(&mut self, index_key: &str, now: i64) -> &mut HashMap<String, i64> {
        let idx = self.indexes.entry(index_key.to_string()).or_default();
        idx.retain(|_, exp| *exp > now);
        idx
    }

    fn slide(&mut self, session_key: &str, index_key: &str, sid: &str, expiry: i64) {
        if let Some((_, exp)) = self.sessions.get_mut(session_key) {
            *exp = expiry;
        }
        self.indexes
            .entry(index_key.to_string())
            .or_default()
            .insert(sid.to_string(), expiry);
    }

    fn end_session(&mut self, session_key: &str, index_key: &str, sid: &str) -> bool {
        if let Some(idx) = self.indexes.get_mut(index_key) {
            idx.remove(sid);
        }
        self.sessions.remove(session_key).is_some()
    }
}

fn num(f: &HashMap<String, String>, k: &str) -> i64 {
    f.get(k).and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[derive(Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    keys: Keys,
}

impl MemoryStore {
    pub fn new(keys: Keys) -> Self {
        MemoryStore {
            state: Arc::new(Mutex::new(State::default())),
            keys,
        }
    }

    fn lock(&self) -> StoreResult<MutexGuard<'_, State>> {
        // A panic while holding the lock would leave the maps poisoned; refuse rather
        // than guess at a half-done change.
        self.state.lock().map_err(|_| StoreError::Poisoned)
    }
}

/// Each method is the Lua script of the same name, as one critical section; the
/// contract is on `Store`.
impl Backend for MemoryStore {
    fn keys(&self) -> &Keys {
        &self.keys
    }

    fn with_prefix(&self, prefix: &str) -> Self {
        MemoryStore {
            state: self.state.clone(),
            keys: Keys::new(prefix),
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        self.lock().map(|_| ())
    }

    async fn create_session(
        &self,
        new: &NewSession,
        max_sessions: u32,
        password_version: i64,
        now: i64,
    ) -> StoreResult<Created> {
        let uid = &new.user_id;
        let (skey, ikey, pkey) = (
            self.keys.session(uid, &new.sid),
            self.keys.index(uid),
            self.keys.password_version(uid),
        );
        let prefix = self.keys.session_prefix(uid);
        let mut st = self.lock()?;
        st.sweep(now);
        if st.string(&pkey, now).is_some_and(|v| v > password_version) {
            return Ok(Created::Stale);
        }
        let members: Vec<String> = st.prune_index(&ikey, now).keys().cloned().collect();
        let mut evicted = Vec::new();
        if members.len() >= max_sessions as usize {
            let mut live = Vec::new();
            for sid in members {
                let key = format!("{prefix}{sid}");
                match st.session(&key, now).map(|f| num(f, "seen")) {
                    Some(seen) => live.push((sid, seen)),
                    None => {
                        st.end_session(&key, &ikey, &sid);
                    }
                }
            }
            live.sort_by_key(|(_, seen)| *seen);
            let excess = (live.len() + 1).saturating_sub(max_sessions as usize);
            for (sid, _) in live.into_iter().take(excess) {
                st.end_session(&format!("{prefix}{sid}"), &ikey, &sid);
                evicted.push(sid);
            }
        }
        let fields = new
            .fields(now)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let expiry = new.expiry(now);
        st.sessions.insert(skey.clone(), (fields, expiry));
        st.slide(&skey, &ikey, &new.sid, expiry);
        Ok(Created::Yes { evicted })
    }

    async fn touch_session(
        &self,
        user_id: &Uuid,
        sid: &str,
        revoked_jti: Option<&str>,
        now: i64,
    ) -> StoreResult<Option<LiveSession>> {
        let (skey, ikey) = (self.keys.session(user_id, sid), self.keys.index(user_id));
        let jti_key = revoked_jti.map(|j| self.keys.revoked_jti(user_id, j));
        let mut st = self.lock()?;
        let Some(f) = st.session(&skey, now) else {
            return Ok(None);
        };
        let (abs, idle, seen) = (num(f, "abs"), num(f, "idle"), num(f, "seen"));
        let live = LiveSession {
            user_id: f.get("uid").cloned().unwrap_or_default(),
            kind: f
                .get("kind")
                .and_then(|k| SessionKind::parse(k))
                .unwrap_or(SessionKind::Browser),
            csrf: f.get("csrf").cloned().unwrap_or_default(),
        };
        if now >= abs {
            st.end_session(&skey, &ikey, sid);
            return Ok(None);
        }
        if let Some(jk) = jti_key {
            if st.string(&jk, now).is_some() {
                return Ok(None);
            }
        }
        if now - seen >= SEEN_REFRESH_MS {
            if let Some(f) = st.session(&skey, now) {
                f.insert("seen".into(), now.to_string());
            }
        }
        st.slide(&skey, &ikey, sid, (now + idle).min(abs));
        Ok(Some(live))
    }

    async fn list_sessions(&self, user_id: &Uuid, now: i64) -> StoreResult<Vec<SessionRecord>> {
        let ikey = self.keys.index(user_id);
        let prefix = self.keys.session_prefix(user_id);
        let mut st = self.lock()?;
        let members: Vec<String> = st.prune_index(&ikey, now).keys().cloned().collect();
        let mut out = Vec::new();
        for sid in members {
            let key = format!("{prefix}{sid}");
            match st.session(&key, now).cloned() {
                Some(f) => out.extend(SessionRecord::from_fields(sid, &f)),
                None => {
                    st.end_session(&key, &ikey, &sid);
                }
            }
        }
        Ok(out)
    }

    async fn revoke_session(&self, user_id: &Uuid, sid: &str, now: i64) -> StoreResult<bool> {
        let (skey, ikey) = (self.keys.session(user_id, sid), self.keys.index(user_id));
        let mut st = self.lock()?;
        let existed = st.session(&skey, now).is_some();
        st.end_session(&skey, &ikey, sid);
        Ok(existed)
    }

    async fn revoke_sessions(
        &self,
        user_id: &Uuid,
        keep: Option<&str>,
        password_version: Option<i64>,
        now: i64,
    ) -> StoreResult<u32> {
        let ikey = self.keys.index(user_id);
        let prefix = self.keys.session_prefix(user_id);
        let mut st = self.lock()?;
        if let Some(v) = password_version {
            st.resets.remove(&self.keys.reset(user_id));
            st.devices.remove(&self.keys.devices(user_id));
            let pkey = self.keys.password_version(user_id);
            if st.string(&pkey, now).is_none_or(|cur| cur < v) {
                st.strings.insert(pkey, (v, now + PASSWORD_VERSION_TTL_MS));
            }
        }
        let members: Vec<String> = st
            .indexes
            .get(&ikey)
            .map(|idx| idx.keys().cloned().collect())
            .unwrap_or_default();
        let mut n = 0;
        for sid in members.into_iter().filter(|s| Some(s.as_str()) != keep) {
            let key = format!("{prefix}{sid}");
            let live = st.session(&key, now).is_some();
            st.end_session(&key, &ikey, &sid);
            n += u32::from(live);
        }
        Ok(n)
    }

    async fn rotate_refresh(
        &self,
        user_id: &Uuid,
        sid: &str,
        presented_hash: &str,
        new_hash: &str,
        now: i64,
    ) -> StoreResult<Rotated> {
        let (skey, ikey) = (self.keys.session(user_id, sid), self.keys.index(user_id));
        let mut st = self.lock()?;
        let Some(f) = st.session(&skey, now) else {
            return Ok(Rotated::Invalid);
        };
        if f.get("kind").map(String::as_str) != Some("api") {
            return Ok(Rotated::Invalid);
        }
        let (abs, idle) = (num(f, "abs"), num(f, "idle"));
        if now >= abs {
            st.end_session(&skey, &ikey, sid);
            return Ok(Rotated::Invalid);
        }
        let current = f.get("rth").cloned().unwrap_or_default();
        let earlier: Vec<String> = f
            .get("rtp")
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        if current == presented_hash {
            let mut history = vec![current];
            history.extend(earlier.into_iter().take(REFRESH_HISTORY - 1));
            let uid = f.get("uid").cloned().unwrap_or_default();
            f.insert("rth".into(), new_hash.to_string());
            f.insert("rtp".into(), history.join(" "));
            f.insert("seen".into(), now.to_string());
            st.slide(&skey, &ikey, sid, (now + idle).min(abs));
            return Ok(Rotated::Yes { user_id: uid });
        }
        if earlier.iter().any(|h| h == presented_hash) {
            st.end_session(&skey, &ikey, sid);
            return Ok(Rotated::Reused);
        }
        Ok(Rotated::Invalid)
    }

    async fn api_logout(
        &self,
        user_id: &Uuid,
        sid: &str,
        jti: &str,
        token_ttl_ms: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let (skey, ikey) = (self.keys.session(user_id, sid), self.keys.index(user_id));
        let mut st = self.lock()?;
        st.sweep(now);
        if token_ttl_ms > 0 {
            st.strings
                .insert(self.keys.revoked_jti(user_id, jti), (1, now + token_ttl_ms));
        }
        let existed = st.session(&skey, now).is_some();
        st.end_session(&skey, &ikey, sid);
        Ok(existed)
    }

    async fn rate_acquire(
        &self,
        quotas: &[RateKey],
        member: &str,
        now: i64,
    ) -> StoreResult<RateDecision> {
        let mut st = self.lock()?;
        st.sweep(now);
        let mut wait = 0;
        for q in quotas {
            let log = st.rates.entry(q.key.clone()).or_default();
            log.retain(|(t, _)| *t > now - q.window_ms);
            log.sort_by_key(|(t, _)| *t);
            if log.len() >= q.limit as usize {
                let oldest = log[log.len() - q.limit as usize].0;
                wait = wait.max(oldest + q.window_ms - now);
            }
        }
        if wait > 0 {
            return Ok(RateDecision::Limited {
                retry_after: Duration::from_millis(wait as u64),
            });
        }
        for q in quotas {
            st.rates
                .entry(q.key.clone())
                .or_default()
                .push((now, member.to_string()));
        }
        Ok(RateDecision::Allowed)
    }

    async fn rate_release(&self, quotas: &[RateKey], member: &str) -> StoreResult<()> {
        let mut st = self.lock()?;
        for q in quotas {
            if let Some(log) = st.rates.get_mut(&q.key) {
                log.retain(|(_, m)| m != member);
            }
        }
        Ok(())
    }

    async fn store_reset_code(
        &self,
        user_id: &Uuid,
        mac: &str,
        ttl_ms: i64,
        now: i64,
    ) -> StoreResult<()> {
        let mut st = self.lock()?;
        st.sweep(now);
        st.resets
            .insert(self.keys.reset(user_id), (mac.to_string(), 0, now + ttl_ms));
        Ok(())
    }

    async fn check_reset_code(
        &self,
        user_id: &Uuid,
        mac: &str,
        max_tries: u32,
        now: i64,
    ) -> StoreResult<CodeCheck> {
        use subtle::ConstantTimeEq;
        let key = self.keys.reset(user_id);
        let mut st = self.lock()?;
        let Some((stored, tries, exp)) = st.resets.get_mut(&key) else {
            return Ok(CodeCheck::Missing);
        };
        if *exp <= now {
            st.resets.remove(&key);
            return Ok(CodeCheck::Missing);
        }
        if bool::from(stored.as_bytes().ct_eq(mac.as_bytes())) {
            st.resets.remove(&key);
            return Ok(CodeCheck::Right);
        }
        *tries += 1;
        if *tries >= max_tries {
            st.resets.remove(&key);
            return Ok(CodeCheck::Burned);
        }
        Ok(CodeCheck::Wrong)
    }

    async fn trust_device(
        &self,
        user_id: &Uuid,
        nonce: &str,
        max_devices: u32,
        ttl_ms: i64,
        now: i64,
    ) -> StoreResult<()> {
        let key = self.keys.devices(user_id);
        let mut st = self.lock()?;
        st.sweep(now);
        let set = st.devices.entry(key).or_default();
        set.insert(nonce.to_string(), now + ttl_ms);
        set.retain(|_, until| *until > now);
        let mut by_age: Vec<(i64, String)> = set.iter().map(|(n, t)| (*t, n.clone())).collect();
        by_age.sort();
        let excess = by_age.len().saturating_sub(max_devices as usize);
        for (_, nonce) in by_age.into_iter().take(excess) {
            set.remove(&nonce);
        }
        Ok(())
    }

    async fn device_trusted(&self, user_id: &Uuid, nonce: &str, now: i64) -> StoreResult<bool> {
        let st = self.lock()?;
        Ok(st
            .devices
            .get(&self.keys.devices(user_id))
            .and_then(|set| set.get(nonce))
            .is_some_and(|until| *until > now))
    }
}
