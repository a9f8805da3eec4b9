//! Outgoing mail over SMTP (lettre). Templates and the notification outbox arrive with the accounts issue;
//! this module owns the transport so `check-config --verify-connections` can prove SMTP works.

use std::time::Duration;

use lettre::{AsyncSmtpTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::settings::Settings;

/// The SMTP transport, or `None` when `SMTP_URL` is unset (development without mail).
#[derive(Clone)]
pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
}

impl Mailer {
    /// Builds the transport from `SMTP_URL` (`smtp://host:port` plain/STARTTLS-opportunistic as given by
    /// lettre's URL rules, `smtps://` implicit TLS, credentials in the URL). lettre's 60 s default timeout is
    /// lowered to 10 s: retries belong to the job layer.
    ///
    /// # Errors
    /// When the URL is not a valid SMTP URL.
    pub fn new(settings: &Settings) -> Result<Self, lettre::transport::smtp::Error> {
        let transport = match &settings.smtp_url {
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())?
                    .timeout(Some(Duration::from_secs(10)))
                    .build(),
            ),
            None => None,
        };
        Ok(Self { transport })
    }

    pub fn is_configured(&self) -> bool {
        self.transport.is_some()
    }

    /// Connects and says `EHLO`/`NOOP`.
    ///
    /// # Errors
    /// A description of the failure (never the URL).
    pub async fn ping(&self) -> Result<(), String> {
        match &self.transport {
            None => Err("SMTP_URL is not set".into()),
            Some(t) => match t.test_connection().await {
                Ok(true) => Ok(()),
                Ok(false) => Err("server did not accept the connection".into()),
                Err(e) => Err(format!("cannot connect: {e}")),
            },
        }
    }
}
