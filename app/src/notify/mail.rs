//! Mail through the municipality's SMTP relay (`[notifications.smtp]`), with `lettre`.
//!
//! Every mail has the same text in the person's language: "you have something to do in
//! Fiktiv", and the one link `[notifications] public_url`. No name, no number, no case
//! id, not even what kind of thing is waiting: a mailbox is read on phones and shared
//! screens, and is kept for years. The connection is always encrypted: STARTTLS that
//! must succeed, or TLS from the first byte; the relay's certificate is checked against
//! the public roots or the configured CA only.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{read_secret_file, NotificationsConfig, SmtpTls, SMTP_PASSWORD_ENV};
use crate::i18n::{Catalog, Lang};

/// A configured relay and the texts of the mail.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    link: String,
    catalog: Arc<Catalog>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mailer(..)")
    }
}

/// Why one mail was not sent. Never holds the address or the relay's words (a relay's
/// refusal often quotes the address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the stored address is not a valid mail address")]
    BadAddress,
    #[error("the relay refused the mail for this recipient for good (a 550 to 553 reply)")]
    Refused,
    #[error("the relay could not take the mail now (a 4xx reply, a refused login, a timeout, a lost connection or a TLS failure)")]
    Transient,
}

/// A work address: `local@domain`, at most 254 characters, no spaces or control
/// characters, parsed by lettre, and one a mail can be written to: an address lettre
/// parses but cannot put in a `To` header (a quoted local part such as `"a(b"@c.example`,
/// found by the `notify` fuzz target) is refused here, when it is stored, rather than
/// failing every mail later.
pub fn check_address(s: &str) -> Result<Mailbox, SendError> {
    if s.len() > 254 || s.chars().any(|c| c.is_control() || c.is_whitespace()) || !s.contains('@') {
        return Err(SendError::BadAddress);
    }
    let mailbox = s
        .parse::<lettre::Address>()
        .map(|a| Mailbox::new(None, a))
        .map_err(|_| SendError::BadAddress)?;
    let sender: Mailbox = "check@fiktiv.invalid"
        .parse()
        .map_err(|_| SendError::BadAddress)?;
    Message::builder()
        .from(sender)
        .to(mailbox.clone())
        .subject("")
        .body(String::new())
        .map_err(|_| SendError::BadAddress)?;
    Ok(mailbox)
}

impl Mailer {
    /// The mailer of `[notifications.smtp]`, or `None` when mail is not configured. Each
    /// problem is one line naming the setting.
    pub fn from_config(cfg: &NotificationsConfig) -> Result<Option<Self>, String> {
        if cfg.interval_secs == 0 || cfg.interval_secs > 3600 {
            return Err("[notifications] interval_secs must be 1 to 3600".into());
        }
        let Some(smtp) = &cfg.smtp else {
            return Ok(None);
        };
        let link = match &cfg.public_url {
            Some(u) => {
                let parsed = url::Url::parse(u).map_err(|e| {
                    format!("[notifications] public_url {u:?} is not a URL: {e}")
                })?;
                if !matches!(parsed.scheme(), "https" | "http") || parsed.host().is_none() {
                    return Err(format!(
                        "[notifications] public_url {u:?} must be an http(s) address with a host"
                    ));
                }
                parsed.to_string()
            }
            None => {
                return Err(
                    "[notifications] public_url is needed with [notifications.smtp]: it is the link every mail holds"
                        .into(),
                )
            }
        };
        if smtp.host.trim().is_empty() {
            return Err("[notifications.smtp] host is empty".into());
        }
        let from: Mailbox = smtp.from.parse().map_err(|_| {
            format!(
                "[notifications.smtp] from {:?} is not a mail address (\"Fiktiv <noreply@kommun.example>\" or a bare address)",
                smtp.from
            )
        })?;
        let mut tls = TlsParameters::builder(smtp.host.clone());
        if let Some(ca) = &smtp.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| format!("[notifications.smtp] ca_file {}: {e}", ca.display()))?;
            // An empty or non-PEM file would give an empty trust store, and every mail
            // would fail its TLS handshake: refused here instead.
            const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
            if !pem.windows(BEGIN.len()).any(|w| w == BEGIN) {
                return Err(format!(
                    "[notifications.smtp] ca_file {} holds no PEM certificate",
                    ca.display()
                ));
            }
            let cert = Certificate::from_pem(&pem).map_err(|_| {
                format!(
                    "[notifications.smtp] ca_file {} holds no PEM certificate",
                    ca.display()
                )
            })?;
            tls = tls
                .certificate_store(CertificateStore::None)
                .add_root_certificate(cert);
        }
        let tls = tls
            .build()
            .map_err(|e| format!("[notifications.smtp] TLS settings: {e}"))?;
        let (tls, default_port) = match smtp.tls {
            SmtpTls::Starttls => (Tls::Required(tls), 587),
            SmtpTls::Tls => (Tls::Wrapper(tls), 465),
        };
        let timeout = smtp.timeout_secs.unwrap_or(30);
        if timeout == 0 || timeout > 600 {
            return Err("[notifications.smtp] timeout_secs must be 1 to 600".into());
        }
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
            .port(smtp.port.unwrap_or(default_port))
            .tls(tls)
            .timeout(Some(Duration::from_secs(timeout)));
        match &smtp.username {
            Some(user) => {
                let env = std::env::var(SMTP_PASSWORD_ENV)
                    .ok()
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| zeroize::Zeroizing::new(v.trim().to_owned()));
                let password = match (env, &smtp.password_file) {
                    (Some(p), _) => p,
                    (None, Some(f)) => read_secret_file("[notifications.smtp] password_file", f)?,
                    (None, None) => {
                        return Err(format!(
                            "[notifications.smtp] username is set: the password comes from {SMTP_PASSWORD_ENV} or password_file"
                        ))
                    }
                };
                b = b.credentials(Credentials::new(user.clone(), password.as_str().to_owned()));
            }
            None if smtp.password_file.is_some() => {
                return Err("[notifications.smtp] password_file is set without username".into())
            }
            None => {}
        }
        Ok(Some(Self {
            transport: b.build(),
            from,
            link,
            catalog: Catalog::shared()?,
        }))
    }

    /// The mail's subject and text in `lang` (the same for everyone).
    pub fn text(&self, lang: Lang) -> (String, String) {
        let tr = self.catalog.tr(lang);
        (
            tr.t("mail.subject").to_owned(),
            tr.t("mail.body").replace("{link}", &self.link),
        )
    }

    /// The mail to `to` in `lang`, as it goes to the relay: the fixed subject and text,
    /// the one link; the address checked first (`check_address`).
    pub fn compose(&self, to: &str, lang: Lang) -> Result<Message, SendError> {
        let to = check_address(to)?;
        let (subject, body) = self.text(lang);
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|_| SendError::BadAddress)
    }

    /// Sends the mail to `to` in `lang`.
    pub async fn send(&self, to: &str, lang: Lang) -> Result<(), SendError> {
        let message = self.compose(to, lang)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            // Only a refusal of the recipient (550 to 553) is final. Any other 5xx (a
            // refused login, 530/535) is the relay's settings, which an operator fixes:
            // the mail waits for that.
            Err(e)
                if e.is_permanent()
                    && e.status().is_some_and(|c| {
                        matches!(c.to_string().as_str(), "550" | "551" | "552" | "553")
                    }) =>
            {
                Err(SendError::Refused)
            }
            Err(_) => Err(SendError::Transient),
        }
    }
}
