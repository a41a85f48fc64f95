//! Rate-limit quotas.

use std::time::Duration;

use super::reader::{Reader, SettingError};

/// One rate-limit quota: `limit` events per `window`.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub limit: u32,
    pub window: Duration,
}

/// Rate-limit quotas.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// Failed sign-ins per account (and per trusted-browser cookie).
    pub login_account: Quota,
    pub login_ip: Quota,
    /// Failed sign-ins per network (IPv4 /24, IPv6 /64).
    pub login_network: Quota,
    /// Password verifications, right or wrong, per client IP.
    pub hash_ip: Quota,
    /// Reset requests per account (and per trusted-browser cookie).
    pub reset_account: Quota,
    pub reset_ip: Quota,
    /// New accounts per client IP.
    pub register_ip: Quota,
}

impl LimitSettings {
    pub(super) fn read(r: &Reader) -> Result<Self, SettingError> {
        let login_window = r.seconds("login_limit_window", 900)?;
        let network_window = r.seconds("login_limit_network_window", 60)?;
        let hash_window = r.seconds("hash_limit_window", 60)?;
        let reset_window = r.seconds("reset_limit_window", 3600)?;
        let register_window = r.seconds("register_limit_window", 3600)?;
        let quota = |name, default, window| -> Result<Quota, SettingError> {
            Ok(Quota {
                limit: r.count(name, default)?,
                window,
            })
        };
        Ok(LimitSettings {
            login_account: quota("login_limit_account", 5, login_window)?,
            login_ip: quota("login_limit_ip", 20, login_window)?,
            login_network: quota("login_limit_network", 60, network_window)?,
            hash_ip: quota("hash_limit_ip", 60, hash_window)?,
            reset_account: quota("reset_limit_account", 3, reset_window)?,
            reset_ip: quota("reset_limit_ip", 10, reset_window)?,
            register_ip: quota("register_limit_ip", 10, register_window)?,
        })
    }
}
