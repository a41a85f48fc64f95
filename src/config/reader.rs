//! Reading one setting at a time by its name (`Reader`), so the name that fails is the
//! name in the message (`SettingError`: "invalid setting `NAME`: problem").

use std::time::Duration;

use rocket::figment::Figment;
use serde::de::DeserializeOwned;

#[derive(Debug)]
pub struct SettingError {
    pub name: &'static str,
    pub problem: String,
}

impl std::fmt::Display for SettingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid setting `{}`: {}", self.name, self.problem)
    }
}

impl std::error::Error for SettingError {}

pub(super) fn bad(name: &'static str, problem: impl Into<String>) -> SettingError {
    SettingError {
        name,
        problem: problem.into(),
    }
}

/// Reads one setting at a time by its name, so the name that fails is the name in
/// the message.
pub(super) struct Reader<'a>(pub(super) &'a Figment);

impl Reader<'_> {
    pub(super) fn get<T: DeserializeOwned>(
        &self,
        name: &'static str,
    ) -> Result<Option<T>, SettingError> {
        match self.0.extract_inner::<T>(name) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.missing() => Ok(None),
            Err(e) => Err(bad(name, e.to_string())),
        }
    }

    pub(super) fn text(&self, name: &'static str, default: &str) -> Result<String, SettingError> {
        Ok(self.get(name)?.unwrap_or_else(|| default.to_string()))
    }

    /// A text setting where blank means unset.
    pub(super) fn optional_text(&self, name: &'static str) -> Result<Option<String>, SettingError> {
        Ok(self.get::<String>(name)?.filter(|s| !s.trim().is_empty()))
    }

    pub(super) fn flag(&self, name: &'static str, default: bool) -> Result<bool, SettingError> {
        Ok(self.get(name)?.unwrap_or(default))
    }

    pub(super) fn seconds(
        &self,
        name: &'static str,
        default: i64,
    ) -> Result<Duration, SettingError> {
        let v: i64 = self.get(name)?.unwrap_or(default);
        if v <= 0 {
            return Err(bad(
                name,
                format!("must be a positive number of seconds, got {v}"),
            ));
        }
        Ok(Duration::from_secs(v as u64))
    }

    /// Whole seconds from 0 (off) to `max`.
    pub(super) fn seconds_up_to(
        &self,
        name: &'static str,
        default: i64,
        max: i64,
    ) -> Result<Duration, SettingError> {
        let v: i64 = self.get(name)?.unwrap_or(default);
        if !(0..=max).contains(&v) {
            return Err(bad(
                name,
                format!("must be a whole number of seconds from 0 to {max}, got {v}"),
            ));
        }
        Ok(Duration::from_secs(v as u64))
    }

    pub(super) fn count(&self, name: &'static str, default: i64) -> Result<u32, SettingError> {
        let v: i64 = self.get(name)?.unwrap_or(default);
        u32::try_from(v)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| bad(name, format!("must be a whole number above 0, got {v}")))
    }
}
