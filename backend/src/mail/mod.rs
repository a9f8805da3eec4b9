//! Outgoing mail: templates, the outbox and the transports.
//!
//! Every email is first a row in `email_outbox` (inserted in the same transaction as whatever caused it), then
//! delivered by a `send_email` job with retries and back-off (see [`delivery`]). Each message
//! has a deterministic `Message-ID` (`<email-{id}@{host}>`), so the rare resend after a crash between the SMTP
//! server's `250 OK` and our commit is recognisable as a duplicate.
//!
//! Transports (`MAIL_TRANSPORT`): `smtp` (lettre, STARTTLS/TLS per `SMTP_URL`), `file` (`.eml` files) and `log`
//! (development).

pub mod delivery;
pub mod outbox;
pub mod templates;

use std::time::Duration;

use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart, header::MessageId},
};
use secrecy::ExposeSecret;

use crate::settings::{MailTransport, Settings};

/// A fully rendered message ready to send.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub message_id: String,
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(AsyncFileTransport<Tokio1Executor>),
    Log,
}

/// Sends rendered messages through the configured transport.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    smtp_configured: bool,
}

impl Mailer {
    /// Builds the transport. lettre's 60 s default timeout is lowered to 10 s: retries belong to the job layer.
    ///
    /// # Errors
    /// When `SMTP_URL` is not a valid SMTP URL or `MAIL_FROM` is not a mailbox.
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let smtp = match &settings.smtp_url {
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())?
                    .timeout(Some(Duration::from_secs(10)))
                    .build(),
            ),
            None => None,
        };
        let transport = match settings.mail_transport {
            MailTransport::Smtp => match &smtp {
                Some(t) => Transport::Smtp(t.clone()),
                None => Transport::Log,
            },
            MailTransport::File => {
                std::fs::create_dir_all(&settings.mail_file_dir)?;
                Transport::File(AsyncFileTransport::new(&settings.mail_file_dir))
            }
            MailTransport::Log => Transport::Log,
        };
        Ok(Self {
            transport,
            from: settings.mail_from.parse()?,
            smtp_configured: smtp.is_some(),
        })
    }

    /// Whether an SMTP server is configured (for `check-config --verify-connections`).
    pub fn is_configured(&self) -> bool {
        self.smtp_configured
    }

    /// Connects and says `EHLO`/`NOOP`.
    ///
    /// # Errors
    /// A description of the failure (never the URL).
    pub async fn ping(&self) -> Result<(), String> {
        match &self.transport {
            Transport::Smtp(t) => match t.test_connection().await {
                Ok(true) => Ok(()),
                Ok(false) => Err("server did not accept the connection".into()),
                Err(e) => Err(format!("cannot connect: {e}")),
            },
            _ if !self.smtp_configured => Err("SMTP_URL is not set".into()),
            _ => Ok(()),
        }
    }

    /// The domain used in Message-IDs.
    pub fn message_id_domain(&self) -> String {
        self.from.email.domain().to_owned()
    }

    /// Sends one message.
    ///
    /// # Errors
    /// Building or delivery errors (the caller records them and retries).
    pub async fn send(&self, email: &OutgoingEmail) -> anyhow::Result<()> {
        let to: Mailbox = email.to.parse()?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .header(MessageId::from(email.message_id.clone()))
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))?;
        match &self.transport {
            Transport::Smtp(t) => {
                t.send(message).await?;
            }
            Transport::File(t) => {
                t.send(message).await?;
            }
            Transport::Log => {
                tracing::info!(to = %email.to, subject = %email.subject, text = %email.text, "email (MAIL_TRANSPORT=log)");
            }
        }
        Ok(())
    }
}
