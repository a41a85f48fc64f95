//! The account activity log: how many events each account keeps and for how long.

use super::reader::{Reader, SettingError};

#[derive(Debug, Clone)]
pub struct ActivitySettings {
    /// Events kept per account; past it the oldest go.
    pub max_events: u32,
    /// Days an event is kept.
    pub retention_days: u32,
}

impl ActivitySettings {
    pub(super) fn read(r: &Reader) -> Result<Self, SettingError> {
        Ok(ActivitySettings {
            max_events: r.count("activity_max_events", 1000)?,
            retention_days: r.count("activity_retention_days", 90)?,
        })
    }

    /// The retention in milliseconds.
    pub fn retention_ms(&self) -> i64 {
        i64::from(self.retention_days) * 86_400_000
    }
}
