//! A forgotten password, through a real SMTP server (aiosmtpd, which
//! `scripts/test` starts): the mail, the single-use link, its 60 minutes.

use reqwest::StatusCode;

use crate::helpers::mail::{
    app_with_mail, app_with_mail_and, ask_for_link, link_path, message_to, messages_to,
    set_password,
};
use crate::helpers::{Needs, PASSWORD, location, logs_hold, skip_without, spawn_app, unique_email};

/// In the log check's list of secrets (`scripts/test`).
const NEW_PASSWORD: &str = "a-long-password";

#[tokio::test]
async fn a_mailed_link_sets_a_new_password_once_and_signs_out_every_other_session() {
    if skip_without(Needs::Smtp) {
        return;
    }
    let app = app_with_mail().await;
    let email = unique_email("ann");
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
            !logs_hold(secret).await,
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
    let email = unique_email("ann");
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
    let known = unique_email("ann");
    app.signed_in_user("Ann", &known).await;
    let unknown = unique_email("ann");

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
    let email = unique_email("ann");
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
        let response = ask_for_link(&browser, &unique_email("ann")).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let email = unique_email("ann");
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
