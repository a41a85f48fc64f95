//! The embedded backend: the same operations as the Lua scripts, each one critical
//! section over in-process maps. Expired entries are dropped when touched and swept
//! every few thousand writes, so memory stays bounded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use uuid::Uuid;

use super::{
    field, Amr, Backend, CodeCheck, CodeState, Created, Keys, LiveSession, NewSession,
    PendingFailure, PendingSignIn, RateDecision, RateKey, Redeemed, Rotated, Rotation, SessionKind,
    SessionRecord, StoreError, StoreResult, PASSWORD_VERSION_TTL_MS, REFRESH_HISTORY,
    SEEN_REFRESH_MS, USED_CODE_TTL_MS,
};
use crate::support::metrics::StoreMetrics;

const SWEEP_EVERY: u64 = 4096;

/// What the user hash holds: each session's expiry, and the account's email.
#[derive(Default)]
struct UserEntry {
    email: Option<String>,
    /// SID -> expiry ms
    sessions: HashMap<String, i64>,
}

#[derive(Default)]
struct State {
    /// session key -> (fields, expiry ms)
    sessions: HashMap<String, (HashMap<String, String>, i64)>,
    /// user key -> its sessions and email
    users: HashMap<String, UserEntry>,
    /// authorization codes: key -> (value, expiry ms), as code_redeem.lua keeps them
    codes: HashMap<String, (String, i64)>,
    /// revoked tokens and password versions: key -> (value, expiry ms)
    strings: HashMap<String, (i64, i64)>,
    /// reset key -> (mac, wrong tries, expiry ms)
    resets: HashMap<String, (String, u32, i64)>,
    /// rate key -> attempts (time ms, member)
    rates: HashMap<String, Vec<(i64, String)>>,
    /// devices key -> nonce -> trusted until (ms)
    devices: HashMap<String, HashMap<String, i64>>,
    /// pending sign-in key -> the pending sign-in (its `expires_ms` is its expiry)
    pending: HashMap<String, PendingSignIn>,
    writes: u64,
}

impl State {
    fn sweep(&mut self, now: i64) {
        self.writes += 1;
        if !self.writes.is_multiple_of(SWEEP_EVERY) {
            return;
        }
        self.sessions.retain(|_, (_, exp)| *exp > now);
        for user in self.users.values_mut() {
            user.sessions.retain(|_, exp| *exp > now);
        }
        self.users.retain(|_, user| !user.sessions.is_empty());
        self.strings.retain(|_, (_, exp)| *exp > now);
        self.codes.retain(|_, (_, exp)| *exp > now);
        self.resets.retain(|_, (_, _, exp)| *exp > now);
        self.rates
            .retain(|_, log| log.iter().any(|(t, _)| *t > now - 24 * 3600 * 1000));
        for set in self.devices.values_mut() {
            set.retain(|_, until| *until > now);
        }
        self.devices.retain(|_, set| !set.is_empty());
        self.pending.retain(|_, p| p.expires_ms > now);
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

    /// The user's live SIDs, after dropping the expired ones.
    fn prune_user(&mut self, user_key: &str, now: i64) -> Vec<String> {
        let user = self.users.entry(user_key.to_string()).or_default();
        user.sessions.retain(|_, exp| *exp > now);
        user.sessions.keys().cloned().collect()
    }

    fn email(&self, user_key: &str) -> Option<String> {
        self.users.get(user_key).and_then(|u| u.email.clone())
    }

    fn slide(&mut self, session_key: &str, user_key: &str, sid: &str, expiry: i64) {
        if let Some((_, exp)) = self.sessions.get_mut(session_key) {
            *exp = expiry;
        }
        self.users
            .entry(user_key.to_string())
            .or_default()
            .sessions
            .insert(sid.to_string(), expiry);
    }

    fn end_session(&mut self, session_key: &str, user_key: &str, sid: &str) -> bool {
        if let Some(user) = self.users.get_mut(user_key) {
            user.sessions.remove(sid);
        }
        self.sessions.remove(session_key).is_some()
    }

    /// `list()` of list.lua.
    fn list(&mut self, user_key: &str, prefix: &str, now: i64) -> Vec<SessionRecord> {
        let mut out = Vec::new();
        for sid in self.prune_user(user_key, now) {
            let key = format!("{prefix}{sid}");
            match self.session(&key, now).cloned() {
                Some(f) => out.extend(SessionRecord::read(sid, |k| f.get(k).map(String::as_str))),
                None => {
                    self.end_session(&key, user_key, &sid);
                }
            }
        }
        out
    }
}

fn num(f: &HashMap<String, String>, k: &str) -> i64 {
    f.get(k).and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[derive(Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    keys: Keys,
    metrics: Option<StoreMetrics>,
}

impl MemoryStore {
    pub fn new(keys: Keys) -> Self {
        MemoryStore {
            state: Arc::new(Mutex::new(State::default())),
            keys,
            metrics: None,
        }
    }

    fn lock(&self) -> StoreResult<MutexGuard<'_, State>> {
        // A panic while holding the lock would leave the maps poisoned; refuse rather
        // than guess at a half-done change.
        self.state.lock().map_err(|_| StoreError::Poisoned)
    }

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
        if now >= abs {
            st.end_session(&skey, &ukey, sid);
            return None;
        }
        let jti_key = revoked_jti.map(|j| self.keys.revoked_jti(user_id, j));
        if jti_key.is_some_and(|k| st.string(&k, now).is_some()) {
            return None;
        }
        let email = st.email(&ukey)?;
        if !always_slide && !super::slide_due(now, seen, idle) {
            return Some(LiveSession { kind, email, amr });
        }
        if now - seen >= SEEN_REFRESH_MS {
            if let Some(f) = st.session(&skey, now) {
                f.insert(field::SEEN.into(), now.to_string());
            }
        }
        st.slide(&skey, &ukey, sid, (now + idle).min(abs));
        Some(LiveSession { kind, email, amr })
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
            // A new password: an outstanding reset code and the trusted devices end.
            st.resets.remove(&self.keys.reset(user_id));
            st.devices.remove(&self.keys.devices(user_id));
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
/// contract is on `Store`.
impl Backend for MemoryStore {
    fn keys(&self) -> &Keys {
        &self.keys
    }

    fn with_prefix(&self, prefix: &str) -> Self {
        MemoryStore {
            state: self.state.clone(),
            keys: Keys::new(prefix),
            metrics: self.metrics.clone(),
        }
    }

    fn metrics(&self) -> Option<&StoreMetrics> {
        self.metrics.as_ref()
    }

    fn set_metrics(&mut self, metrics: StoreMetrics) {
        self.metrics = Some(metrics);
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
        let mut evicted = Vec::new();
        if members.len() >= max_sessions as usize {
            let mut live = Vec::new();
            for sid in members {
                let key = format!("{prefix}{sid}");
                match st.session(&key, now).map(|f| num(f, field::SEEN)) {
                    Some(seen) => live.push((sid, seen)),
                    None => {
                        st.end_session(&key, &ukey, &sid);
                    }
                }
            }
            live.sort_by_key(|(_, seen)| *seen);
            let excess = (live.len() + 1).saturating_sub(max_sessions as usize);
            for (sid, _) in live.into_iter().take(excess) {
                st.end_session(&format!("{prefix}{sid}"), &ukey, &sid);
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
        let list = st.list(
            &self.keys.user(user_id),
            &self.keys.session_prefix(user_id),
            now,
        );
        Ok(Some((live, list)))
    }

    async fn list_sessions(&self, user_id: &Uuid, now: i64) -> StoreResult<Vec<SessionRecord>> {
        let (ukey, prefix) = (self.keys.user(user_id), self.keys.session_prefix(user_id));
        let mut st = self.lock()?;
        Ok(st.list(&ukey, &prefix, now))
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

    async fn rotate_refresh(
        &self,
        user_id: &Uuid,
        sid: &str,
        rotation: &Rotation<'_>,
        now: i64,
    ) -> StoreResult<Rotated> {
        let (skey, ukey) = (self.keys.session(user_id, sid), self.keys.user(user_id));
        let mut st = self.lock()?;
        let open = st.email(&ukey).is_some();
        let Some(f) = st.session(&skey, now) else {
            return Ok(Rotated::Invalid);
        };
        if !matches!(f.get(field::KIND).map(String::as_str), Some("a" | "o")) || !open {
            return Ok(Rotated::Invalid);
        }
        let (abs, idle) = (num(f, field::ABSOLUTE), num(f, field::IDLE));
        if now >= abs {
            st.end_session(&skey, &ukey, sid);
            return Ok(Rotated::Invalid);
        }
        let presented = rotation.presented_hash;
        let current = f.get(field::REFRESH).cloned().unwrap_or_default();
        let earlier: Vec<String> = (1..=REFRESH_HISTORY)
            .filter_map(|j| f.get(&format!("p{j}")).cloned())
            .collect();
        let expiry = (now + idle).min(abs);
        if current == presented {
            let history = std::iter::once(current).chain(earlier);
            for (j, h) in history.take(REFRESH_HISTORY).enumerate() {
                f.insert(format!("p{}", j + 1), h);
            }
            f.insert(field::REFRESH.into(), rotation.successor_hash.to_string());
            f.insert(field::ROTATED.into(), now.to_string());
            f.insert(field::SEEN.into(), now.to_string());
            st.slide(&skey, &ukey, sid, expiry);
            return Ok(Rotated::Yes);
        }
        let rotated_at = f.get(field::ROTATED).and_then(|v| v.parse::<i64>().ok());
        let in_window = rotated_at.is_some_and(|at| now - at < rotation.grace_ms);
        if in_window && earlier.first().map(String::as_str) == Some(presented) {
            if current != rotation.successor_hash {
                // Not the successor this secret derives (the key changed): refused,
                // but no sign of theft.
                return Ok(Rotated::Invalid);
            }
            f.insert(field::SEEN.into(), now.to_string());
            st.slide(&skey, &ukey, sid, expiry);
            return Ok(Rotated::Again);
        }
        if earlier.iter().any(|h| h == presented) {
            st.end_session(&skey, &ukey, sid);
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
        let (skey, ukey) = (self.keys.session(user_id, sid), self.keys.user(user_id));
        let mut st = self.lock()?;
        st.sweep(now);
        if token_ttl_ms > 0 {
            st.strings
                .insert(self.keys.revoked_jti(user_id, jti), (1, now + token_ttl_ms));
        }
        let existed = st.session(&skey, now).is_some();
        st.end_session(&skey, &ukey, sid);
        Ok(existed)
    }

    async fn revoke_access(
        &self,
        user_id: &Uuid,
        jti: &str,
        token_ttl_ms: i64,
        now: i64,
    ) -> StoreResult<()> {
        let mut st = self.lock()?;
        st.sweep(now);
        st.strings
            .insert(self.keys.revoked_jti(user_id, jti), (1, now + token_ttl_ms));
        Ok(())
    }

    async fn revoke_refresh(
        &self,
        user_id: &Uuid,
        sid: &str,
        presented_hash: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let (skey, ukey) = (self.keys.session(user_id, sid), self.keys.user(user_id));
        let mut st = self.lock()?;
        let Some(f) = st.session(&skey, now) else {
            return Ok(false);
        };
        let known = std::iter::once(field::REFRESH.to_string())
            .chain((1..=REFRESH_HISTORY).map(|j| format!("p{j}")))
            .any(|name| f.get(&name).map(String::as_str) == Some(presented_hash));
        if known {
            st.end_session(&skey, &ukey, sid);
        }
        Ok(known)
    }

    async fn refresh_status(
        &self,
        user_id: &Uuid,
        sid: &str,
        presented_hash: &str,
        now: i64,
    ) -> StoreResult<Option<i64>> {
        let (skey, ukey) = (self.keys.session(user_id, sid), self.keys.user(user_id));
        let mut st = self.lock()?;
        let open = st.email(&ukey).is_some();
        let Some(f) = st.session(&skey, now) else {
            return Ok(None);
        };
        let refreshes = matches!(f.get(field::KIND).map(String::as_str), Some("a" | "o"));
        let current = f.get(field::REFRESH).map(String::as_str) == Some(presented_hash);
        if !(open && refreshes && current) || now >= num(f, field::ABSOLUTE) {
            return Ok(None);
        }
        let issued = f.get(field::ROTATED).or_else(|| f.get(field::CREATED));
        Ok(issued.and_then(|v| v.parse().ok()))
    }

    async fn put_code(
        &self,
        user_id: &Uuid,
        id: &str,
        request: &str,
        ttl_ms: i64,
        now: i64,
    ) -> StoreResult<()> {
        let mut st = self.lock()?;
        st.sweep(now);
        st.codes.insert(
            self.keys.auth_code(user_id, id),
            (request.to_string(), now + ttl_ms),
        );
        Ok(())
    }

    async fn get_code(&self, user_id: &Uuid, id: &str, now: i64) -> StoreResult<Option<CodeState>> {
        let st = self.lock()?;
        Ok(match st.codes.get(&self.keys.auth_code(user_id, id)) {
            Some((v, exp)) if *exp > now => Some(code_state(v)),
            _ => None,
        })
    }

    async fn redeem_code(
        &self,
        user_id: &Uuid,
        id: &str,
        new_sid: Option<&str>,
        now: i64,
    ) -> StoreResult<Redeemed> {
        let (ckey, ukey) = (self.keys.auth_code(user_id, id), self.keys.user(user_id));
        let mut st = self.lock()?;
        let end = |st: &mut State, sid: &str| {
            st.end_session(&self.keys.session(user_id, sid), &ukey, sid);
        };
        let state = match st.codes.get(&ckey) {
            Some((v, exp)) if *exp > now => Some(code_state(v)),
            _ => None,
        };
        match state {
            None => {
                if let Some(sid) = new_sid {
                    end(&mut st, sid);
                }
                Ok(Redeemed::Gone)
            }
            Some(CodeState::Used(first)) => {
                end(&mut st, &first);
                if let Some(sid) = new_sid {
                    end(&mut st, sid);
                }
                Ok(Redeemed::Replayed)
            }
            Some(CodeState::Unused(_)) => match new_sid {
                None => Ok(Redeemed::Gone),
                Some(sid) => {
                    st.codes
                        .insert(ckey, (format!("u:{sid}"), now + USED_CODE_TTL_MS));
                    Ok(Redeemed::Yes)
                }
            },
        }
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
    async fn start_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        pending: &PendingSignIn,
        now: i64,
    ) -> StoreResult<()> {
        let mut st = self.lock()?;
        st.sweep(now);
        st.pending
            .insert(self.keys.pending(user_id, pid), pending.clone());
        Ok(())
    }

    async fn read_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        now: i64,
    ) -> StoreResult<Option<PendingSignIn>> {
        let st = self.lock()?;
        Ok(st
            .pending
            .get(&self.keys.pending(user_id, pid))
            .filter(|p| p.expires_ms > now)
            .cloned())
    }

    async fn fail_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        max_wrong: u32,
        now: i64,
    ) -> StoreResult<PendingFailure> {
        let key = self.keys.pending(user_id, pid);
        let mut st = self.lock()?;
        let Some(p) = st.pending.get_mut(&key) else {
            return Ok(PendingFailure::Missing);
        };
        if p.expires_ms <= now {
            st.pending.remove(&key);
            return Ok(PendingFailure::Missing);
        }
        p.wrong += 1;
        match max_wrong.checked_sub(p.wrong) {
            Some(left) if left > 0 => Ok(PendingFailure::Counted { left }),
            _ => {
                st.pending.remove(&key);
                Ok(PendingFailure::Ended)
            }
        }
    }

    async fn take_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        now: i64,
    ) -> StoreResult<Option<PendingSignIn>> {
        let mut st = self.lock()?;
        Ok(st
            .pending
            .remove(&self.keys.pending(user_id, pid))
            .filter(|p| p.expires_ms > now))
    }
}

/// A code's stored value as code_redeem.lua reads it: `u:SID` once used.
fn code_state(v: &str) -> CodeState {
    match v.strip_prefix("u:") {
        Some(sid) => CodeState::Used(sid.to_string()),
        None => CodeState::Unused(v.to_string()),
    }
}
