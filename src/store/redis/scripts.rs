//! The Lua scripts (`lua/`, each with a KEYS/ARGV header), loaded once per store:
//! `EVALSHA` by their hash, sent whole only when Redis does not have them yet.

use redis::Script;

/// A script with shared Lua functions (`slide.lua`, `list.lua`) in front of it.
macro_rules! script_with {
    ($($file:literal),+) => {
        Script::new(concat!($(include_str!(concat!("lua/", $file))),+))
    };
}

pub(super) struct Scripts {
    pub create: Script,
    pub touch: Script,
    pub list: Script,
    pub revoke: Script,
    pub revoke_all: Script,
    pub rotate: Script,
    pub api_logout: Script,
    pub refresh_revoke: Script,
    pub refresh_status: Script,
    pub rate_acquire: Script,
    pub reset_store: Script,
    pub reset_check: Script,
    pub verify_store: Script,
    pub verify_link: Script,
    pub account_email: Script,
    pub browser_trust: Script,
    pub auth_code_redeem: Script,
    pub pending_start: Script,
    pub pending_fail: Script,
    pub pending_take: Script,
    pub email_change_start: Script,
    pub email_change_confirm: Script,
    pub email_undo_keep: Script,
    pub email_undo_take: Script,
}

impl Scripts {
    pub fn load() -> Scripts {
        Scripts {
            create: script_with!("slide.lua", "session_create.lua"),
            touch: script_with!("slide.lua", "list.lua", "session_touch.lua"),
            list: script_with!("list.lua", "session_list.lua"),
            revoke: script_with!("session_revoke.lua"),
            revoke_all: script_with!("session_revoke_all.lua"),
            rotate: script_with!("slide.lua", "refresh_rotate.lua"),
            api_logout: script_with!("api_logout.lua"),
            refresh_revoke: script_with!("refresh_revoke.lua"),
            refresh_status: script_with!("refresh_status.lua"),
            rate_acquire: script_with!("rate_acquire.lua"),
            reset_store: script_with!("reset_store.lua"),
            reset_check: script_with!("reset_check.lua"),
            verify_store: script_with!("verify_store.lua"),
            verify_link: script_with!("verify_link.lua"),
            account_email: script_with!("account_email.lua"),
            browser_trust: script_with!("browser_trust.lua"),
            auth_code_redeem: script_with!("auth_code_redeem.lua"),
            pending_start: script_with!("pending_start.lua"),
            pending_fail: script_with!("pending_fail.lua"),
            pending_take: script_with!("pending_take.lua"),
            email_change_start: script_with!("email_change_start.lua"),
            email_change_confirm: script_with!("email_change_confirm.lua"),
            email_undo_keep: script_with!("email_undo_keep.lua"),
            email_undo_take: script_with!("email_undo_take.lua"),
        }
    }
}
