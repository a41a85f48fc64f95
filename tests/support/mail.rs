//! The mail a test's app sent, as its owner would read it: the messages in the app's
//! outbox directory or in a real SMTP server's maildir (`SmtpServer::received`), waited
//! for (bounded: the mailer sends in the background), and what is in them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a test waits for a mail that must come: generous, since on a loaded
/// machine a mail can follow its request by seconds. A wait ends as soon as it is there.
const MAIL_WITHIN: Duration = Duration::from_secs(20);

/// The messages in an outbox directory (or a maildir's `new/`), oldest first.
pub fn mails_in(dir: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| !n.starts_with('.'))
    });
    files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}

/// Polls `found` until it answers (or [`MAIL_WITHIN`] passes: then its last answer).
async fn waited<T>(mut found: impl FnMut() -> Result<T, T>) -> T {
    let deadline = Instant::now() + MAIL_WITHIN;
    loop {
        match found() {
            Ok(t) => return t,
            Err(t) if Instant::now() > deadline => return t,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Waits (bounded) until `dir` holds at least `n` messages; answers them.
pub async fn wait_for_mails(dir: &Path, n: usize) -> Vec<String> {
    waited(|| {
        let mails = mails_in(dir);
        if mails.len() >= n {
            Ok(mails)
        } else {
            Err(mails)
        }
    })
    .await
}

/// The reset-code mails in `dir`, as sent.
pub fn reset_mails(dir: &Path) -> Vec<String> {
    mails_in(dir)
        .into_iter()
        .filter(|m| m.contains("reset code"))
        .collect()
}

/// Waits (bounded) until `dir` holds at least `n` reset-code mails; answers them.
pub async fn wait_for_reset_mails(dir: &Path, n: usize) -> Vec<String> {
    waited(|| {
        let mails = reset_mails(dir);
        if mails.len() >= n {
            Ok(mails)
        } else {
            Err(mails)
        }
    })
    .await
}

/// The code of the first reset mail in `dir`, waited for: other mails (a new-device
/// notice, the notice of a password change) may be there before it.
pub async fn wait_for_reset_code(dir: &Path) -> String {
    let mail = wait_for_reset_mails(dir, 1).await;
    code_in(mail.first().expect("a reset mail arrived"))
}

/// The mails in `dir` whose text says `words`, unfolded.
pub fn mails_saying(dir: &Path, words: &str) -> Vec<String> {
    mails_in(dir)
        .iter()
        .map(|m| unfold(m))
        .filter(|m| m.contains(words))
        .collect()
}

/// Waits (bounded) for a mail in `dir` whose text says `words`; answers it unfolded.
pub async fn wait_for_mail_saying(dir: &Path, words: &str) -> String {
    let first = waited(|| match mails_saying(dir, words).into_iter().next() {
        Some(mail) => Ok(Some(mail)),
        None => Err(None),
    })
    .await;
    first.unwrap_or_else(|| panic!("no mail says {words:?}: {:?}", mails_in(dir)))
}

/// A mail's text with quoted-printable soft line breaks and `=3D` undone, enough
/// to search it for what a reader sees.
pub fn unfold(mail: &str) -> String {
    mail.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// The 6-digit code in a reset mail's text, if it has one.
pub fn try_code_in(mail: &str) -> Option<String> {
    unfold(mail)
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
}

/// The 6-digit code in a reset mail's text.
pub fn code_in(mail: &str) -> String {
    try_code_in(mail).expect("a 6-digit code in the mail")
}
