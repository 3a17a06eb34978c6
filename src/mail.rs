//! Mail through SMTP (lettre): the password-reset message. `MAIL_URL` takes the
//! forms lettre's `from_url` reads: `smtps://user:pass@host:465`,
//! `smtp://user:pass@host:587?tls=required`, `smtp://host:25` for a local relay.

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use secrecy::ExposeSecret as _;

use crate::config::MailConfig;

/// The app's name in the messages it sends.
pub const APP_NAME: &str = "stripe-sync";

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// The transport holds the URL's password: it never reaches a log line.
impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("MAIL_URL is not an SMTP URL lettre can use (smtp://, smtps://)")]
    BadUrl,
    #[error("MAIL_FROM is not an address such as \"Shop <noreply@shop.example>\"")]
    BadFrom,
    #[error("the recipient's address cannot take mail")]
    BadRecipient,
    #[error("could not build the message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("the mail server refused or could not be reached: {0}")]
    Send(#[from] lettre::transport::smtp::Error),
}

impl Mailer {
    pub fn new(config: &MailConfig) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(config.url.expose_secret())
            .map_err(|_| MailError::BadUrl)?
            .build();
        let from = config.from.parse().map_err(|_| MailError::BadFrom)?;
        Ok(Mailer { transport, from })
    }

    /// The message with a link that resets `to`'s password.
    pub async fn send_password_reset(
        &self,
        to_name: &str,
        to_email: &str,
        link: &str,
        valid_minutes: u64,
    ) -> Result<(), MailError> {
        let to = Mailbox::new(
            Some(to_name.to_string()),
            to_email.parse().map_err(|_| MailError::BadRecipient)?,
        );
        let text = format!(
            "Hello {to_name},\n\nSomeone (we hope you) asked to reset the password of your \
             {APP_NAME} account. Open this link to choose a new one:\n\n{link}\n\nIt works once, \
             for {valid_minutes} minutes. If you did not ask, ignore this message: your \
             password stays as it is.\n\n-- {APP_NAME}\n"
        );
        let html = format!(
            "<p>Hello {name},</p><p>Someone (we hope you) asked to reset the password of your \
             {APP_NAME} account.</p><p><a href=\"{link}\">Choose a new password</a></p><p>The \
             link works once, for {valid_minutes} minutes. If you did not ask, ignore this \
             message: your password stays as it is.</p><p>&mdash; {APP_NAME}</p>",
            name = escape_html(to_name),
            link = escape_html(link),
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(format!("Reset your {APP_NAME} password"))
            .multipart(MultiPart::alternative_plain_html(text, html))?;
        self.transport.send(message).await?;
        Ok(())
    }
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
