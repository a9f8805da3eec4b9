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
pub mod suppression;
pub mod templates;

use std::time::Duration;

use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{
        Attachment, Mailbox, MultiPart, SinglePart,
        header::{ContentType, HeaderName, HeaderValue, MessageId},
    },
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
    /// Subscription mail (notifications one can unsubscribe from) goes out from `MAIL_FROM_NOTIFICATIONS`;
    /// transactional mail (account flows, security) from `MAIL_FROM`.
    pub subscription: bool,
    /// Extra headers (`List-Id`, `List-Unsubscribe`, …), name and value.
    pub headers: Vec<(String, String)>,
    /// Images the HTML part shows by `cid:` (sent as a `multipart/related` part with it).
    pub inline: Vec<InlinePart>,
}

/// An image inside a message, referred to from the HTML as `cid:{content_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlinePart {
    pub content_id: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// Why a message was not delivered.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub kind: SendErrorKind,
    /// The SMTP reply code, when the server gave one.
    pub smtp_code: Option<u16>,
    pub message: String,
}

/// How a delivery failure is handled (docs/design/notifications.md §5, "SMTP results").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendErrorKind {
    /// The server refused the recipient address for good (550, 551, 553, enhanced `5.1.x`, `5.2.1`): the address
    /// is marked undeliverable.
    RejectedAddress,
    /// Another permanent (5xx) refusal of this message: no retry.
    Permanent,
    /// 4xx, timeouts, connection errors, a message that could not be built: retried with back-off.
    Transient,
}

impl SendError {
    fn transient(e: impl std::fmt::Display) -> Self {
        Self {
            kind: SendErrorKind::Transient,
            smtp_code: None,
            message: e.to_string(),
        }
    }
}

/// Classifies a permanent SMTP reply by its code and text.
pub fn classify(code: Option<u16>, permanent: bool, message: &str) -> SendErrorKind {
    if !permanent {
        return SendErrorKind::Transient;
    }
    let enhanced_address = message.contains(" 5.1.") || message.contains(" 5.2.1");
    match code {
        Some(550 | 551 | 553) => SendErrorKind::RejectedAddress,
        _ if enhanced_address => SendErrorKind::RejectedAddress,
        _ => SendErrorKind::Permanent,
    }
}

impl From<lettre::transport::smtp::Error> for SendError {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        let smtp_code = e.status().and_then(|c| c.to_string().parse::<u16>().ok());
        let message = format!("{e}");
        let kind = classify(smtp_code, e.is_permanent(), &message);
        Self {
            kind,
            smtp_code,
            message,
        }
    }
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
    from_notifications: Mailbox,
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
            from_notifications: settings
                .mail_from_notifications
                .as_deref()
                .unwrap_or(&settings.mail_from)
                .parse()?,
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

    /// Sends one message. `lettre` adds the `Date` header (send time).
    ///
    /// # Errors
    /// Building or delivery errors, classified ([`SendErrorKind`]): the caller records them and retries
    /// transient ones.
    pub async fn send(&self, email: &OutgoingEmail) -> Result<(), SendError> {
        let to: Mailbox = email.to.parse().map_err(|e| SendError {
            kind: SendErrorKind::Permanent,
            smtp_code: None,
            message: format!("bad recipient address: {e}"),
        })?;
        let from = if email.subscription {
            &self.from_notifications
        } else {
            &self.from
        };
        let mut builder = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(email.subject.clone())
            .header(MessageId::from(email.message_id.clone()));
        for (name, value) in &email.headers {
            let name = HeaderName::new_from_ascii(name.clone()).map_err(SendError::transient)?;
            builder = builder.raw_header(HeaderValue::new(name, value.clone()));
        }
        let body = if email.inline.is_empty() {
            MultiPart::alternative_plain_html(email.text.clone(), email.html.clone())
        } else {
            let mut related = MultiPart::related().singlepart(SinglePart::html(email.html.clone()));
            for part in &email.inline {
                let content_type =
                    ContentType::parse(part.content_type).map_err(SendError::transient)?;
                related = related.singlepart(
                    Attachment::new_inline(part.content_id.clone())
                        .body(part.bytes.clone(), content_type),
                );
            }
            MultiPart::alternative()
                .singlepart(SinglePart::plain(email.text.clone()))
                .multipart(related)
        };
        let message = builder.multipart(body).map_err(SendError::transient)?;
        match &self.transport {
            Transport::Smtp(t) => {
                t.send(message).await?;
            }
            Transport::File(t) => {
                t.send(message).await.map_err(SendError::transient)?;
            }
            Transport::Log => {
                tracing::info!(to = %email.to, subject = %email.subject, text = %email.text, "email (MAIL_TRANSPORT=log)");
            }
        }
        Ok(())
    }
}
