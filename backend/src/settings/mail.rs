//! Outgoing mail: transport, SMTP relay (TLS required in production) and sender.

use std::{path::PathBuf, str::FromStr};

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::reader::Reader;

/// How email leaves the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailTransport {
    /// Send through `SMTP_URL` (the only choice in production).
    Smtp,
    /// Write each message as an `.eml` file into `MAIL_FILE_DIR` (development).
    File,
    /// Log recipient, subject and the text part (development only; links in mail are secrets).
    Log,
}

impl FromStr for MailTransport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "smtp" => Ok(Self::Smtp),
            "file" => Ok(Self::File),
            "log" => Ok(Self::Log),
            _ => Err("must be smtp, file or log".into()),
        }
    }
}

pub(super) struct Mail {
    pub smtp_url: Option<SecretString>,
    pub mail_from: String,
    pub mail_from_notifications: Option<String>,
    pub mail_transport: MailTransport,
    pub mail_file_dir: PathBuf,
}

/// `SMTP_URL`, `MAIL_FROM`, `MAIL_FROM_NOTIFICATIONS`, `MAIL_TRANSPORT`, `MAIL_FILE_DIR`.
pub(super) fn parse(r: &mut Reader<'_>, prod: bool) -> Mail {
    let smtp_url = r.secret("SMTP_URL");
    if let Some(u) = &smtp_url {
        match Url::parse(u.expose_secret()) {
            Ok(parsed) if matches!(parsed.scheme(), "smtp" | "smtps") => {
                // Plain SMTP only to a relay on this host; otherwise TLS (smtps://) or STARTTLS required.
                let local = matches!(
                    parsed.host_str(),
                    Some("localhost" | "127.0.0.1" | "::1" | "[::1]")
                );
                let tls = parsed.scheme() == "smtps"
                    || parsed
                        .query_pairs()
                        .any(|(k, v)| k == "tls" && v == "required");
                if prod && !tls && !local {
                    r.problem("SMTP_URL", "must use smtps:// or ?tls=required in production (credentials would travel in clear text)");
                }
            }
            _ => r.problem("SMTP_URL", "must be an smtp:// or smtps:// URL"),
        }
    } else if prod {
        r.problem(
            "SMTP_URL",
            "is required in production (smtps://user:password@host:465)",
        );
    }
    let mail_from = r.string("MAIL_FROM", "Vortex <no-reply@localhost>");
    if mail_from.parse::<lettre::message::Mailbox>().is_err() {
        r.problem(
            "MAIL_FROM",
            "is not a valid mailbox (e.g. `Vortex <no-reply@example.org>`)",
        );
    }
    let mail_from_notifications = r.raw("MAIL_FROM_NOTIFICATIONS");
    if let Some(f) = &mail_from_notifications
        && f.parse::<lettre::message::Mailbox>().is_err()
    {
        r.problem(
            "MAIL_FROM_NOTIFICATIONS",
            "is not a valid mailbox (e.g. `Vortex alerts <alerts@alerts.example.org>`)",
        );
    }
    let default_transport = if smtp_url.is_some() || prod {
        MailTransport::Smtp
    } else {
        MailTransport::Log
    };
    let mail_transport = r.parsed("MAIL_TRANSPORT", default_transport);
    if prod && mail_transport != MailTransport::Smtp {
        r.problem("MAIL_TRANSPORT", "must be smtp in production");
    }
    if mail_transport == MailTransport::Smtp && smtp_url.is_none() && !prod {
        r.problem("SMTP_URL", "is required when MAIL_TRANSPORT=smtp");
    }
    let mail_file_dir = PathBuf::from(r.string("MAIL_FILE_DIR", "target/mail"));
    Mail {
        smtp_url,
        mail_from,
        mail_from_notifications,
        mail_transport,
        mail_file_dir,
    }
}
