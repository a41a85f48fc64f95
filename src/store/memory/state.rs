//! The embedded store's maps, and what several aggregates do with them: expiry,
//! sweeping, a session's read, slide and end.

use std::collections::HashMap;

const SWEEP_EVERY: u64 = 4096;

/// What the user hash holds: each session's expiry, and the account's email.
#[derive(Default)]
pub(super) struct UserEntry {
    pub email: Option<String>,
    /// SID -> expiry ms
    pub sessions: HashMap<String, i64>,
}

/// A pending address verification, as verify_store.lua writes it.
pub(super) struct Verification {
    pub code_mac: String,
    pub link_mac: String,
    pub tries: u32,
    pub expires: i64,
}

#[derive(Default)]
pub(super) struct State {
    /// session key -> (fields, expiry ms)
    pub sessions: HashMap<String, (HashMap<String, String>, i64)>,
    /// user key -> its sessions and email
    pub users: HashMap<String, UserEntry>,
    /// authorization codes: key -> (value, expiry ms), as auth_code_redeem.lua keeps them
    pub codes: HashMap<String, (String, i64)>,
    /// revoked tokens and password versions: key -> (value, expiry ms)
    pub strings: HashMap<String, (i64, i64)>,
    /// reset key -> (mac, wrong tries, expiry ms)
    pub resets: HashMap<String, (String, u32, i64)>,
    /// verification key -> the pending verification
    pub verifications: HashMap<String, Verification>,
    /// rate key -> attempts (time ms, member)
    pub rates: HashMap<String, Vec<(i64, String)>>,
    /// trusted-browsers key -> nonce -> trusted until (ms)
    pub browsers: HashMap<String, HashMap<String, i64>>,
    /// pending sign-in key -> (its hash's fields, as pending_start.lua writes them;
    /// expiry ms)
    pub pending: HashMap<String, (HashMap<String, String>, i64)>,
    /// ceremony key -> (state, expiry ms)
    pub ceremonies: HashMap<String, (String, i64)>,
    /// waiting address change key -> (new address, mac, wrong tries, expiry ms)
    pub email_changes: HashMap<String, (String, String, u32, i64)>,
    /// undo-links key -> token hash -> (the address to put back, expiry ms)
    pub email_undos: HashMap<String, HashMap<String, (String, i64)>>,
    pub writes: u64,
}

impl State {
    pub fn sweep(&mut self, now: i64) {
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
        self.verifications.retain(|_, v| v.expires > now);
        self.rates
            .retain(|_, log| log.iter().any(|(t, _)| *t > now - 24 * 3600 * 1000));
        for set in self.browsers.values_mut() {
            set.retain(|_, until| *until > now);
        }
        self.browsers.retain(|_, set| !set.is_empty());
        self.pending.retain(|_, (_, exp)| *exp > now);
        self.ceremonies.retain(|_, (_, exp)| *exp > now);
        self.email_changes.retain(|_, (_, _, _, exp)| *exp > now);
        for links in self.email_undos.values_mut() {
            links.retain(|_, (_, exp)| *exp > now);
        }
        self.email_undos.retain(|_, links| !links.is_empty());
    }

    pub fn session(&mut self, key: &str, now: i64) -> Option<&mut HashMap<String, String>> {
        match self.sessions.get(key) {
            Some((_, exp)) if *exp <= now => {
                self.sessions.remove(key);
                None
            }
            _ => self.sessions.get_mut(key).map(|(f, _)| f),
        }
    }

    pub fn string(&mut self, key: &str, now: i64) -> Option<i64> {
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
    pub fn prune_user(&mut self, user_key: &str, now: i64) -> Vec<String> {
        let user = self.users.entry(user_key.to_string()).or_default();
        user.sessions.retain(|_, exp| *exp > now);
        user.sessions.keys().cloned().collect()
    }

    pub fn email(&self, user_key: &str) -> Option<String> {
        self.users.get(user_key).and_then(|u| u.email.clone())
    }

    pub fn slide(&mut self, session_key: &str, user_key: &str, sid: &str, expiry: i64) {
        if let Some((_, exp)) = self.sessions.get_mut(session_key) {
            *exp = expiry;
        }
        self.users
            .entry(user_key.to_string())
            .or_default()
            .sessions
            .insert(sid.to_string(), expiry);
    }

    pub fn end_session(&mut self, session_key: &str, user_key: &str, sid: &str) -> bool {
        if let Some(user) = self.users.get_mut(user_key) {
            user.sessions.remove(sid);
        }
        self.sessions.remove(session_key).is_some()
    }
}

pub(super) fn num(f: &HashMap<String, String>, k: &str) -> i64 {
    f.get(k).and_then(|v| v.parse().ok()).unwrap_or(0)
}
