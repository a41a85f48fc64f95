//! Times as people read them: "5 minutes ago", "23 Nov 2026, 14:05 UTC".

use time::macros::format_description;
use time::OffsetDateTime;

fn datetime(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// "23 Nov 2026, 14:05 UTC"
pub fn exact_time(ms: i64) -> String {
    let fmt =
        format_description!("[day padding:none] [month repr:short] [year], [hour]:[minute] UTC");
    datetime(ms).format(&fmt).unwrap_or_default()
}

/// "2026-11-23T14:05:09Z", for `datetime` and `title` attributes.
pub fn iso_time(ms: i64) -> String {
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    datetime(ms).format(&fmt).unwrap_or_default()
}

/// "just now", "5 minutes ago", "3 hours ago", "2 days ago".
pub fn relative_time(ms: i64, now_ms: i64) -> String {
    let secs = (now_ms - ms).max(0) / 1000;
    let (n, unit) = match secs {
        0..=59 => return "just now".into(),
        60..=3599 => (secs / 60, "minute"),
        3600..=86_399 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_naturally() {
        let now = 1_795_000_000_000;
        assert_eq!(relative_time(now - 10_000, now), "just now");
        assert_eq!(relative_time(now - 60_000, now), "1 minute ago");
        assert_eq!(relative_time(now - 5 * 60_000, now), "5 minutes ago");
        assert_eq!(relative_time(now - 3 * 3_600_000, now), "3 hours ago");
        assert_eq!(relative_time(now - 2 * 86_400_000, now), "2 days ago");
        assert_eq!(exact_time(0), "1 Jan 1970, 00:00 UTC");
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
    }
}
