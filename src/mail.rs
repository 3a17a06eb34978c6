//! Mail through SMTP (lettre): the messages an account is sent. `MAIL_URL` takes
//! the forms lettre's `from_url` reads: `smtps://user:pass@host:465`,
//! `smtp://user:pass@host:587?tls=required`, `smtp://host:25` for a local relay.
//!
//! Invariant: whatever a user's name holds (a host app may write line breaks or
//! other control characters into it), a message is built or its failure is
//! logged with the user's id: headers take only folded text, and a send runs in
//! a task of its own whose panic is caught and logged, never lost.

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use secrecy::{ExposeSecret as _, SecretString};

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

/// Who a message goes to: a user's name (as stored, any text) and address.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub user_id: i64,
    pub name: String,
    pub email: String,
}

/// What a message says. Links that carry a token are secrets: they reach the
/// message and nothing else.
pub enum Letter {
    /// A single-use link that sets a new password.
    PasswordReset {
        link: SecretString,
        valid_minutes: u64,
    },
    /// Sent to the old address when the login email changes; no link in it
    /// signs anyone in.
    EmailChanged { new_email: String },
    /// Someone tried to register with an address that has an account: a reset
    /// link, in case its owner forgot the password.
    RegisteredAlready {
        link: SecretString,
        valid_minutes: u64,
    },
    /// A new account, made where the page does not say whether one existed.
    Welcome { login_url: String },
}

impl Letter {
    /// For log lines: which letter, never its contents.
    pub fn kind(&self) -> &'static str {
        match self {
            Letter::PasswordReset { .. } => "password reset",
            Letter::EmailChanged { .. } => "email changed notice",
            Letter::RegisteredAlready { .. } => "registered already notice",
            Letter::Welcome { .. } => "welcome",
        }
    }

    /// Subject, plain text and HTML; `name` is folded already.
    fn compose(&self, name: &str) -> (String, String, String) {
        let hello = format!("Hello {name},");
        let (subject, paragraphs, link): (String, Vec<String>, Option<(&str, String)>) = match self
        {
            Letter::PasswordReset {
                link,
                valid_minutes,
            } => (
                format!("Reset your {APP_NAME} password"),
                vec![
                    format!(
                        "Someone (we hope you) asked to reset the password of your {APP_NAME} \
                         account. Open this link to choose a new one:"
                    ),
                    format!(
                        "It works once, for {valid_minutes} minutes. If you did not ask, \
                         ignore this message: your password stays as it is."
                    ),
                ],
                Some(("Choose a new password", link.expose_secret().to_string())),
            ),
            Letter::EmailChanged { new_email } => (
                format!("Your {APP_NAME} login email was changed"),
                vec![
                    format!(
                        "The login email of your {APP_NAME} account was changed to {}.",
                        mask_email(new_email)
                    ),
                    "If this wasn't you, someone has your session or your password: ask an \
                     operator to restore your email and set a new password \
                     (stripe-sync user:password), and sign out everywhere."
                        .to_string(),
                ],
                None,
            ),
            Letter::RegisteredAlready {
                link,
                valid_minutes,
            } => (
                format!("Someone tried to register with your {APP_NAME} address"),
                vec![
                    format!(
                        "Someone (perhaps you) tried to register a new {APP_NAME} account with \
                         this address. You have an account already: sign in with it. If you \
                         forgot its password, this link sets a new one:"
                    ),
                    format!(
                        "It works once, for {valid_minutes} minutes. If it wasn't you, ignore \
                         this message: nothing changed."
                    ),
                ],
                Some(("Choose a new password", link.expose_secret().to_string())),
            ),
            Letter::Welcome { login_url } => (
                format!("Your {APP_NAME} account is ready"),
                vec![
                    format!(
                        "Your {APP_NAME} account is ready. Sign in with this address and the \
                         password you chose:"
                    ),
                    "If you did not register, ignore this message.".to_string(),
                ],
                Some(("Sign in", login_url.clone())),
            ),
        };
        let mut text = format!("{hello}\n\n{}\n\n", paragraphs[0]);
        let mut html = format!(
            "<p>{}</p><p>{}</p>",
            escape_html(&hello),
            escape_html(&paragraphs[0])
        );
        if let Some((label, url)) = &link {
            text.push_str(&format!("{url}\n\n"));
            html.push_str(&format!(
                "<p><a href=\"{}\">{}</a></p>",
                escape_html(url),
                escape_html(label)
            ));
        }
        for paragraph in &paragraphs[1..] {
            text.push_str(&format!("{paragraph}\n\n"));
            html.push_str(&format!("<p>{}</p>", escape_html(paragraph)));
        }
        text.push_str(&format!("-- {APP_NAME}\n"));
        html.push_str(&format!("<p>&mdash; {APP_NAME}</p>"));
        (subject, text, html)
    }
}

impl Mailer {
    pub fn new(config: &MailConfig) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(config.url.expose_secret())
            .map_err(|_| MailError::BadUrl)?
            .build();
        let from = config.from.parse().map_err(|_| MailError::BadFrom)?;
        Ok(Mailer { transport, from })
    }

    /// Builds and sends the letter now.
    pub async fn send(&self, to: &Recipient, letter: &Letter) -> Result<(), MailError> {
        let message = self.message(to, letter)?;
        self.transport.send(message).await?;
        Ok(())
    }

    fn message(&self, to: &Recipient, letter: &Letter) -> Result<Message, MailError> {
        let address = to.email.parse().map_err(|_| MailError::BadRecipient)?;
        let name = display_name(&to.name);
        let (subject, text, html) = letter.compose(name.as_deref().unwrap_or("there"));
        Ok(Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(name, address))
            .subject(subject)
            .multipart(MultiPart::alternative_plain_html(text, html))?)
    }

    /// Sends the letter after the caller has answered: an INFO line when it
    /// went, an ERROR line with the user's id when it did not (a refused
    /// message, a server down, even a panic while building it).
    pub fn send_later(&self, to: Recipient, letter: Letter) {
        let mailer = self.clone();
        let (user_id, kind) = (to.user_id, letter.kind());
        let sending = tokio::spawn(async move { mailer.send(&to, &letter).await });
        tokio::spawn(async move {
            match sending.await {
                Ok(Ok(())) => tracing::info!(user_id, kind, "mail sent"),
                Ok(Err(err)) => tracing::error!(user_id, kind, error = %err, "mail not sent"),
                Err(failed) => tracing::error!(
                    user_id,
                    kind,
                    panicked = failed.is_panic(),
                    "mail not sent: building or sending it failed"
                ),
            }
        });
    }
}

/// A name as a header can carry it: control characters (line breaks, tabs,
/// NUL) folded to spaces, runs of spaces to one; `None` when nothing is left.
pub fn display_name(name: &str) -> Option<String> {
    let folded: String = name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let folded = folded.split_whitespace().collect::<Vec<_>>().join(" ");
    (!folded.is_empty()).then_some(folded)
}

/// An address shown in a notice without spelling it out: `n…@example.com`.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}…@{domain}")
        }
        None => "…".to_string(),
    }
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailer() -> Mailer {
        Mailer::new(&MailConfig {
            url: "smtp://127.0.0.1:1".into(),
            from: "stripe-sync <noreply@example.com>".into(),
        })
        .unwrap()
    }

    #[test]
    fn a_name_with_line_breaks_and_control_characters_builds_a_message() {
        let to = Recipient {
            user_id: 7,
            name: "Ann\r\nBcc: eve@example.com\u{0}\t Smith".into(),
            email: "ann@example.com".into(),
        };
        let letter = Letter::EmailChanged {
            new_email: "new@example.com".into(),
        };

        let message = mailer().message(&to, &letter).expect("builds");

        let raw = String::from_utf8(message.formatted()).unwrap();
        let to_header = raw.lines().find(|l| l.starts_with("To:")).unwrap();
        assert!(to_header.contains("ann@example.com"), "{to_header}");
        assert!(!raw.contains("\r\nBcc:"), "no header injected: {raw}");
    }

    #[test]
    fn names_fold_to_one_line_or_none() {
        assert_eq!(display_name("Ann\nB"), Some("Ann B".into()));
        assert_eq!(display_name(" \r\n\t"), None);
        assert_eq!(mask_email("new@example.com"), "n…@example.com");
    }
}
