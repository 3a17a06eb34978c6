//! A forgotten password, through a real SMTP server (aiosmtpd, which
//! `scripts/test` starts): the mail, the single-use link, its 60 minutes.

use std::path::PathBuf;

use reqwest::StatusCode;

use crate::helpers::{
    Browser, Needs, PASSWORD, StripeSetup, TestApp, location, logs_hold, skip_without, spawn_app,
    spawn_app_customized,
};

/// In the log check's list of secrets (`scripts/test`).
const NEW_PASSWORD: &str = "a-long-password";

pub(crate) async fn app_with_mail() -> TestApp {
    app_with_mail_and(|_| {}).await
}

pub(crate) async fn app_with_mail_and(
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

/// An address no other test mails to.
pub(crate) fn unique_email() -> String {
    format!("ann-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// The raw messages aiosmtpd received for `to`.
pub(crate) fn messages_to(to: &str) -> Vec<String> {
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
pub(crate) async fn message_to(to: &str) -> String {
    for _ in 0..100 {
        if let Some(message) = messages_to(to).pop() {
            return message;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no mail for {to}");
}

/// Undoes quoted-printable (soft line breaks, `=XX`), as a mail reader does.
pub(crate) fn unquote(text: &str) -> String {
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
pub(crate) fn link_path(message: &str) -> String {
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

pub(crate) async fn ask_for_link(browser: &Browser, email: &str) -> reqwest::Response {
    browser.page("/forgot-password").await;
    browser
        .post_form("/forgot-password", &[("email", email)])
        .await
}

pub(crate) async fn set_password(
    browser: &Browser,
    path: &str,
    password: &str,
) -> reqwest::Response {
    browser.page(path).await;
    browser
        .post_form(
            path,
            &[("password", password), ("password_confirmation", password)],
        )
        .await
}

#[tokio::test]
async fn a_mailed_link_sets_a_new_password_once_and_signs_out_every_other_session() {
    if skip_without(Needs::Smtp) {
        return;
    }
    let app = app_with_mail().await;
    let email = unique_email();
    let (other, user_id) = app.signed_in_user("Ann", &email).await;

    let visitor = app.browser();
    let response = ask_for_link(&visitor, &email).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("on its way"));
    let message = message_to(&email).await;
    assert!(
        message.contains("Subject: Reset your stripe-sync password"),
        "{message}"
    );
    assert!(message.contains("text/plain") && message.contains("text/html"));
    assert!(message.contains("From: stripe-sync <noreply@example.com>"));
    let path = link_path(&message);
    let token = path.trim_start_matches("/reset-password/");
    assert!(token.len() >= 43, "256 random bits: {token}");
    let stored = crate::helpers::text_rows(
        &app.db,
        "SELECT token_hash FROM stripe_sync_password_resets",
    )
    .await;
    assert!(
        stored.iter().all(|row| row[0].as_deref() != Some(token)),
        "only a hash is stored"
    );

    let response = set_password(&visitor, &path, NEW_PASSWORD).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/settings/stripe");
    assert!(
        visitor
            .page("/settings/stripe")
            .await
            .contains("new password is set")
    );
    let response = other.get("/settings/stripe").await;
    assert!(
        location(&response).starts_with("/login"),
        "other session signed out"
    );
    assert_eq!(
        app.browser().login(&email, NEW_PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.browser().login(&email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // The link works once.
    let again = app.browser();
    let page = again.get(&path).await;
    assert_eq!(page.status(), StatusCode::GONE);
    let html = page.text().await.unwrap();
    assert!(html.contains("used already") && html.contains("/forgot-password"));
    let hash = app.user(user_id).await.password_hash;
    again
        .post_form(
            &path,
            &[
                ("password", "yet-another-one"),
                ("password_confirmation", "yet-another-one"),
            ],
        )
        .await;
    assert_eq!(
        app.user(user_id).await.password_hash,
        hash,
        "nothing changed"
    );
    for secret in [token, NEW_PASSWORD] {
        assert!(
            !logs_hold(secret),
            "no log line holds the token or the password"
        );
    }
}

#[tokio::test]
async fn a_link_older_than_60_minutes_says_so_and_changes_nothing() {
    if skip_without(Needs::Smtp) {
        return;
    }
    let app = app_with_mail().await;
    let email = unique_email();
    let (_, user_id) = app.signed_in_user("Ann", &email).await;
    ask_for_link(&app.browser(), &email).await;
    let path = link_path(&message_to(&email).await);
    let hash = app.user(user_id).await.password_hash;

    app.execute(&format!(
        "UPDATE stripe_sync_password_resets SET expires_at = expires_at - 3601 \
         WHERE user_id = {user_id}"
    ))
    .await;

    let browser = app.browser();
    let page = browser.get(&path).await;
    assert_eq!(page.status(), StatusCode::GONE);
    assert!(page.text().await.unwrap().contains("expired"));
    browser.page("/login").await;
    let response = browser
        .post_form(
            &path,
            &[
                ("password", NEW_PASSWORD),
                ("password_confirmation", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::GONE);
    assert_eq!(app.user(user_id).await.password_hash, hash);
}

#[tokio::test]
async fn an_unknown_email_gets_the_same_answer_and_no_mail() {
    if skip_without(Needs::Smtp) {
        return;
    }
    let app = app_with_mail().await;
    let known = unique_email();
    app.signed_in_user("Ann", &known).await;
    let unknown = unique_email();

    let started = std::time::Instant::now();
    let for_unknown = ask_for_link(&app.browser(), &unknown).await;
    let unknown_took = started.elapsed();
    let started = std::time::Instant::now();
    let for_known = ask_for_link(&app.browser(), &known).await;
    let known_took = started.elapsed();

    assert_eq!(for_unknown.status(), for_known.status());
    let strip = |html: String| html.split("authenticity_token").next().unwrap().to_string();
    assert_eq!(
        strip(for_unknown.text().await.unwrap()),
        strip(for_known.text().await.unwrap()),
        "the same page"
    );
    message_to(&known).await;
    assert!(
        messages_to(&unknown).is_empty(),
        "no mail for an unknown email"
    );
    // Neither waits for the look-up or the mail (both happen after the answer).
    assert!(unknown_took.as_secs_f64() < 2.0 && known_took.as_secs_f64() < 2.0);
}

#[tokio::test]
async fn requests_are_limited_per_email() {
    if skip_without(Needs::Smtp) {
        return;
    }
    let app = app_with_mail().await;
    let email = unique_email();
    let browser = app.browser();
    for _ in 0..5 {
        assert_eq!(
            ask_for_link(&browser, &email).await.status(),
            StatusCode::OK
        );
    }
    let refused = ask_for_link(&browser, &email).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn requests_are_limited_per_client_address_whatever_the_email() {
    if skip_without(Needs::Smtp) {
        return;
    }
    let app = app_with_mail_and(|config| {
        config.limits.sign_in_per_address = stripe_sync::config::Limit {
            max: 2,
            window: std::time::Duration::from_secs(60),
        };
    })
    .await;
    let browser = app.browser();
    for _ in 0..2 {
        let response = ask_for_link(&browser, &unique_email()).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let email = unique_email();
    let refused = ask_for_link(&browser, &email).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.text().await.unwrap().contains("Too many requests"));
}

#[tokio::test]
async fn without_mail_the_form_says_to_ask_an_operator() {
    let app = spawn_app().await;
    let browser = app.browser();
    let html = browser.page("/forgot-password").await;
    assert!(html.contains("Mail is not configured"), "{html}");
    assert!(html.contains("stripe-sync user:password"));
    let response = browser
        .post_form("/forgot-password", &[("email", "ann@example.com")])
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.text().await.unwrap().contains("Ask an operator"));
    assert!(browser.page("/login").await.contains("/forgot-password"));
}
