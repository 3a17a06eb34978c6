//! Mail through a real SMTP server (aiosmtpd, which `scripts/test` starts): the
//! messages it kept, and the reset links in them.

use std::path::PathBuf;

use super::{Browser, StripeSetup, TestApp, spawn_app_customized};

pub async fn app_with_mail() -> TestApp {
    app_with_mail_and(|_| {}).await
}

pub async fn app_with_mail_and(
    customize: impl FnOnce(&mut stripe_sync::config::Config),
) -> TestApp {
    let url = std::env::var("SMTP_TEST_URL").unwrap();
    spawn_app_customized(StripeSetup::Fake, |config| {
        customize(config);
        config.mail = Some(stripe_sync::config::MailConfig {
            url: url.into(),
            from: "stripe-sync <noreply@example.com>".into(),
        });
        config.app_url = "http://127.0.0.1:3000".into();
    })
    .await
}

/// The raw messages aiosmtpd received for `to`.
pub fn messages_to(to: &str) -> Vec<String> {
    let maildir = PathBuf::from(std::env::var("SMTP_TEST_MAILDIR").unwrap()).join("new");
    std::fs::read_dir(maildir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .filter(|message| message.contains(to))
        .collect()
}

/// Waits (a few seconds at most) for the message to `to`.
pub async fn message_to(to: &str) -> String {
    for _ in 0..100 {
        if let Some(message) = messages_to(to).pop() {
            return message;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no mail for {to}");
}

/// Undoes quoted-printable (soft line breaks, `=XX`), as a mail reader does.
pub fn unquote(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The reset link's path in a message (`/reset-password/TOKEN`).
pub fn link_path(message: &str) -> String {
    let text = unquote(message);
    let start = text
        .find("http://127.0.0.1:3000/reset-password/")
        .unwrap_or_else(|| panic!("no link in {text}"));
    let link: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || ":/._-".contains(*c))
        .collect();
    link.trim_start_matches("http://127.0.0.1:3000").to_string()
}

pub async fn ask_for_link(browser: &Browser, email: &str) -> reqwest::Response {
    browser.page("/forgot-password").await;
    browser
        .post_form("/forgot-password", &[("email", email)])
        .await
}

pub async fn set_password(browser: &Browser, path: &str, password: &str) -> reqwest::Response {
    browser.page(path).await;
    browser
        .post_form(
            path,
            &[("password", password), ("password_confirmation", password)],
        )
        .await
}
