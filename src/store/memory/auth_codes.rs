//! Authorization codes in memory: `auth_code_redeem.lua` as one critical section.

use uuid::Uuid;

use super::state::State;
use super::MemoryStore;
use crate::store::auth_codes::{code_state, AuthCodeState, AuthCodes, Redeemed, USED_CODE_TTL_MS};
use crate::store::error::StoreResult;

/// The contract is on `AuthCodes`.
impl AuthCodes for MemoryStore {
    async fn put_auth_code(
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

    async fn get_auth_code(
        &self,
        user_id: &Uuid,
        id: &str,
        now: i64,
    ) -> StoreResult<Option<AuthCodeState>> {
        let st = self.lock()?;
        Ok(match st.codes.get(&self.keys.auth_code(user_id, id)) {
            Some((v, exp)) if *exp > now => Some(code_state(v)),
            _ => None,
        })
    }

    async fn redeem_auth_code(
        &self,
        user_id: &Uuid,
        id: &str,
        new_sid: Option<&str>,
        allowed_by: Option<&str>,
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
            Some(AuthCodeState::Used { sid: first, .. }) => {
                end(&mut st, &first);
                if let Some(sid) = new_sid {
                    end(&mut st, sid);
                }
                Ok(Redeemed::Replayed)
            }
            Some(AuthCodeState::Unused(request)) => match new_sid {
                None => Ok(Redeemed::Gone),
                Some(sid) => {
                    let allowing = allowed_by.map(|b| self.keys.session(user_id, b));
                    if allowing.is_some_and(|key| st.session(&key, now).is_none()) {
                        st.codes.remove(&ckey);
                        end(&mut st, sid);
                        return Ok(Redeemed::AllowedByEnded);
                    }
                    let used = format!("u:{sid}\n{request}");
                    st.codes.insert(ckey, (used, now + USED_CODE_TTL_MS));
                    Ok(Redeemed::Yes)
                }
            },
        }
    }
}
