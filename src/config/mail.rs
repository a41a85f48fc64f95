//! Outgoing mail: SMTP or the outbox directory, the sender, the new-device mail.

use secrecy::SecretString;

use super::reader::{bad, Reader, SettingError};

#[derive(Debug, Clone)]
pub struct MailSettings {
    pub outbox: String,
    /// `smtp://user:password@host`: a secret, since it may carry a password.
    pub smtp_url: Option<SecretString>,
    pub from: String,
    pub new_device_mail: bool,
}

impl MailSettings {
    pub(super) fn read(r: &Reader) -> Result<Self, SettingError> {
        let smtp_url = r.optional_text("smtp_url")?;
        if let Some(url) = &smtp_url {
            // Checked before it becomes a secret: the message never quotes it.
            if !url.starts_with("smtp://") && !url.starts_with("smtps://") {
                return Err(bad("smtp_url", "must start with smtp:// or smtps://"));
            }
        }
        let s = MailSettings {
            outbox: r.text("mail_outbox", "var/outbox")?,
            smtp_url: smtp_url.map(SecretString::from),
            from: r.text("mail_from", "Latchkey <no-reply@localhost>")?,
            new_device_mail: r.flag("new_device_mail", true)?,
        };
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), SettingError> {
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(bad(
                "mail_from",
                format!("is not a mail address: {:?}", self.from),
            ));
        }
        Ok(())
    }
}
