//! Outgoing mail. Pages hand a message to the `Mailer` and go on: delivery runs in a
//! background task with retries, so a slow or dead mail server never slows or breaks
//! a page. Two transports: SMTP (lettre; `smtp://` with opportunistic STARTTLS,
//! `?tls=required` to insist, `smtps://` for implicit TLS) when `smtp_url` is set,
//! otherwise `.eml` files in `mail_outbox`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rocket::fairing::AdHoc;
use rocket_dyn_templates::tera::{Context, Tera};
use serde::Serialize;

use secrecy::ExposeSecret;

use crate::config::{MailSettings, Settings};
use crate::support::input::Email;
use crate::support::report::Report;

/// Delivery attempts before a message is given up (with a log line).
const ATTEMPTS: u32 = 4;
const FIRST_RETRY: Duration = Duration::from_secs(2);

enum Transport {
    Outbox(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    from: Mailbox,
    transport: Transport,
    templates: Tera,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("the mail template could not be rendered")]
    Template(#[from] rocket_dyn_templates::tera::Error),
    #[error("not a mail address")]
    Address(#[from] lettre::address::AddressError),
    #[error("the recipient is not an address Latchkey mails to")]
    Recipient,
    #[error("the message could not be built")]
    Message(#[from] lettre::error::Error),
    #[error("not a usable SMTP URL")]
    SmtpUrl(#[source] lettre::transport::smtp::Error),
    #[error("the SMTP server refused or did not answer")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("the outbox could not be written")]
    Outbox(#[from] std::io::Error),
}

fn smtp_transport(url: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    // Plain smtp:// upgrades with STARTTLS when the server offers it, unless the URL
    // says otherwise.
    let url = if url.starts_with("smtp://") && !url.contains("tls=") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}tls=opportunistic")
    } else {
        url.to_string()
    };
    Ok(AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
        .map_err(MailError::SmtpUrl)?
        .timeout(Some(Duration::from_secs(10)))
        .build())
}

impl Mailer {
    pub fn new(settings: &MailSettings) -> Result<Mailer, String> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| format!("invalid setting `mail_from`: {e}"))?;
        let transport = match &settings.smtp_url {
            // The URL may hold a password: the message names the setting, not the value.
            Some(url) => Transport::Smtp(
                smtp_transport(url.expose_secret())
                    .map_err(|e| format!("invalid setting `smtp_url`: {}", Report(&e)))?,
            ),
            None => {
                let dir = PathBuf::from(&settings.outbox);
                std::fs::create_dir_all(&dir).map_err(|e| {
                    format!(
                        "setting `mail_outbox`: cannot create {}: {e}",
                        dir.display()
                    )
                })?;
                Transport::Outbox(dir)
            }
        };
        let mut templates = Tera::new(&format!(
            "{}/templates/mail/**/*.tera",
            crate::config::asset_root().display()
        ))
        .map_err(|e| format!("mail templates: {e}"))?;
        templates.autoescape_on(vec![".html.tera"]);
        Ok(Mailer {
            inner: Arc::new(Inner {
                from,
                transport,
                templates,
            }),
        })
    }

    pub fn transport_name(&self) -> &'static str {
        match self.inner.transport {
            Transport::Outbox(_) => "outbox",
            Transport::Smtp(_) => "smtp",
        }
    }

    /// Renders `templates/mail/NAME.txt.tera` (and `NAME.html.tera`) into a message.
    pub fn compose(
        &self,
        to: &str,
        subject: &str,
        template: &str,
        ctx: &impl Serialize,
    ) -> Result<Message, MailError> {
        let ctx = Context::from_serialize(ctx)?;
        let render = |ext: &str| {
            self.inner
                .templates
                .render(&format!("{template}.{ext}.tera"), &ctx)
        };
        let text = render("txt")?;
        // The one parser of addresses; never a mailbox string with a display name.
        let to = Email::parse(to).map_err(|_| MailError::Recipient)?;
        let to = Mailbox::new(None, to.address().clone());
        let builder = Message::builder()
            .message_id(None)
            .from(self.inner.from.clone())
            .to(to)
            .subject(subject);
        let message = match render("html") {
            Ok(html) => builder.multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(text),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(html),
                    ),
            ),
            Err(_) => builder.header(ContentType::TEXT_PLAIN).body(text),
        };
        Ok(message?)
    }

    /// Delivers in the background; returns at once.
    pub fn send(&self, message: Message) {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let mut wait = FIRST_RETRY;
            for attempt in 1..=ATTEMPTS {
                match inner.deliver(&message).await {
                    Ok(()) => return,
                    Err(e) if attempt == ATTEMPTS => {
                        tracing::error!(error = %Report(&e), attempts = ATTEMPTS, "mail could not be delivered; giving up");
                    }
                    Err(e) => {
                        tracing::warn!(error = %Report(&e), attempt, "mail delivery failed; will retry");
                        tokio::time::sleep(wait).await;
                        wait *= 3;
                    }
                }
            }
        });
    }

    /// Delivers now, once, and says how it went: for a command that ends right after
    /// (the operator's command line), where a background task would not finish.
    pub async fn deliver_now(&self, message: &Message) -> Result<(), MailError> {
        self.inner.deliver(message).await
    }

    /// Composes and sends; a message that cannot be composed is logged, not raised:
    /// no page answer depends on mail.
    pub fn compose_and_send(&self, to: &str, subject: &str, template: &str, ctx: &impl Serialize) {
        match self.compose(to, subject, template, ctx) {
            Ok(m) => self.send(m),
            Err(e) => tracing::error!(error = %Report(&e), template, "mail not sent"),
        }
    }
}

impl Inner {
    async fn deliver(&self, message: &Message) -> Result<(), MailError> {
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message.clone()).await?;
                Ok(())
            }
            Transport::Outbox(dir) => {
                let name = format!(
                    "{}-{}.eml",
                    crate::support::clock::now_ms(),
                    uuid::Uuid::now_v7().simple()
                );
                let tmp = dir.join(format!(".{name}.tmp"));
                // Written under a temporary name, then renamed: readers never see half a file.
                tokio::fs::write(&tmp, message.formatted()).await?;
                Ok(tokio::fs::rename(&tmp, dir.join(&name)).await?)
            }
        }
    }
}

pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Mail", |rocket| async move {
        let Some(settings) = rocket.state::<Settings>() else {
            return Err(rocket);
        };
        match Mailer::new(&settings.mail) {
            Ok(mailer) => {
                tracing::info!(transport = mailer.transport_name(), "mail ready");
                Ok(rocket.manage(mailer))
            }
            Err(msg) => {
                tracing::error!("{msg}");
                eprintln!("latchkey: {msg}");
                Err(rocket)
            }
        }
    })
}
