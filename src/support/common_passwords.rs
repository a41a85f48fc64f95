//! The list of common and breached passwords new passwords are refused against:
//! `common_passwords.txt`, lowercased, deduplicated and sorted by bytes, one per line
//! (rebuilt from its sources by `scripts/common-passwords`; `COMMON_PASSWORDS_SOURCE.md`
//! names them and their licences).
//!
//! It is embedded as bytes and searched in place: a binary search over the lines,
//! about 17 probes, each reading one line. Nothing is built at start and nothing is
//! allocated per check; the 1.1 MB sit in the binary's read-only data, and only the
//! pages a search touches are ever read into memory.

use std::cmp::Ordering;

static LIST: &[u8] = include_bytes!("common_passwords.txt");

/// Whether `password`, lowercased, is on the list.
pub fn contains(password: &str) -> bool {
    contains_line(LIST, password.to_lowercase().as_bytes())
}

/// How many passwords the list holds.
pub fn count() -> usize {
    LIST.iter().filter(|&&b| b == b'\n').count()
}

/// Binary search for `needle` among the newline-separated lines of `sorted` (sorted by
/// bytes). `lo` is always the start of a line, `hi` the end of the searched bytes.
fn contains_line(sorted: &[u8], needle: &[u8]) -> bool {
    if needle.contains(&b'\n') {
        return false;
    }
    let (mut lo, mut hi) = (0, sorted.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let start = sorted[lo..mid]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(lo, |i| lo + i + 1);
        let end = sorted[start..hi]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(hi, |i| start + i);
        match sorted[start..end].cmp(needle) {
            Ordering::Equal => return true,
            Ordering::Less => lo = end + 1,
            Ordering::Greater => hi = start,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_lowercase_unique_and_ends_with_a_newline() {
        assert_eq!(LIST.last(), Some(&b'\n'));
        let text = std::str::from_utf8(LIST).expect("UTF-8");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() >= 100_000, "{} entries", lines.len());
        for pair in lines.windows(2) {
            assert!(pair[0].as_bytes() < pair[1].as_bytes(), "{pair:?}");
        }
        for line in &lines {
            assert!(!line.is_empty());
            assert_eq!(*line, line.to_lowercase(), "the check lowercases first");
        }
        assert_eq!(count(), lines.len());
    }

    #[test]
    fn every_entry_is_found_and_nothing_else() {
        let text = std::str::from_utf8(LIST).expect("UTF-8");
        for line in text.lines() {
            assert!(contains(line), "{line:?}");
        }
        for absent in [
            "",
            "correct horse battery staple",
            "\n",
            "zzzzzzzzzzzzzzzzzzzzzzzz",
        ] {
            assert!(!contains(absent), "{absent:?}");
        }
        assert!(contains("PassWord1"), "case does not matter");
    }

    #[test]
    fn the_search_handles_edges() {
        let list = b"b\nd\nf\n";
        for (needle, found) in [
            ("a", false),
            ("b", true),
            ("c", false),
            ("d", true),
            ("e", false),
            ("f", true),
            ("g", false),
            ("", false),
            ("b\nd", false),
        ] {
            assert_eq!(contains_line(list, needle.as_bytes()), found, "{needle:?}");
        }
        assert!(!contains_line(b"", b"a"));
        assert!(contains_line(b"only", b"only"), "no final newline");
    }
}
