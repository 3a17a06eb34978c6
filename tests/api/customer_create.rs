//! Create: one customer per user, whatever the timing.

use std::time::Duration;

use stripe_sync::db::users;

use crate::helpers::{StripeSetup, TestApp, spawn_app, spawn_app_with};
use crate::stripe_fake::Fault;

#[tokio::test]
async fn create_makes_a_customer_with_name_email_and_user_id_and_links_it() {
    let app = spawn_app().await;
    let (browser, user_id) = app.signed_in_user("Ann Example", "ann@example.com").await;

    let html = browser.press("create").await;

    let customers = app.stripe.customers();
    assert_eq!(customers.len(), 1);
    let customer = &customers[0];
    assert_eq!(customer.name.as_deref(), Some("Ann Example"));
    assert_eq!(customer.email.as_deref(), Some("ann@example.com"));
    assert_eq!(customer.metadata.get("user_id"), Some(&user_id.to_string()));
    let user = app.user(user_id).await;
    assert_eq!(user.stripe_id.as_deref(), Some(customer.id.as_str()));
    assert!(
        user.stripe_create_key.is_none(),
        "a finished attempt leaves no key behind"
    );
    assert!(html.contains(&format!("Stripe customer {} created.", customer.id)));
    assert!(html.contains("Linked"));
}

#[tokio::test]
async fn a_user_who_has_a_customer_is_told_so_and_nothing_is_created() {
    let app = spawn_app().await;
    let (browser, _) = app.signed_in_user("Ann", "ann@example.com").await;
    browser.press("create").await;

    let html = browser.press("create").await;

    assert!(html.contains("You already have a Stripe customer; nothing was created."));
    assert_eq!(app.stripe.customers().len(), 1);
    assert_eq!(app.stripe.calls("POST", "/v1/customers"), 1);
}

#[tokio::test]
async fn twenty_concurrent_create_requests_make_exactly_one_customer() {
    let app = spawn_app().await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    // Slow answers keep the first attempt in flight while the others arrive.
    app.stripe
        .push_faults(1, Fault::SlowReply(Duration::from_millis(300)));

    let statuses = browser
        .post_form_at_once("/settings/stripe/create", &[], 20)
        .await;

    assert!(
        statuses
            .iter()
            .all(|s| *s == reqwest::StatusCode::SEE_OTHER),
        "{statuses:?}"
    );
    assert_eq!(app.stripe.customers().len(), 1);
    let user = app.user(user_id).await;
    assert_eq!(user.stripe_id, Some(app.stripe.customers()[0].id.clone()));
}

#[tokio::test]
async fn a_reply_lost_to_a_timeout_is_retried_with_the_same_key_and_makes_one_customer() {
    let app = spawn_app().await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    // Stripe creates the customer but the answer comes after the client gave up.
    app.stripe
        .push_faults(1, Fault::SlowReply(Duration::from_secs(2)));

    browser.press("create").await;

    assert!(
        app.stripe.calls("POST", "/v1/customers") >= 2,
        "the attempt was retried"
    );
    assert_eq!(
        app.stripe.customers().len(),
        1,
        "the retry got the first answer again"
    );
    let user = app.user(user_id).await;
    assert_eq!(user.stripe_id, Some(app.stripe.customers()[0].id.clone()));
}

#[tokio::test]
async fn a_crash_between_stripes_answer_and_the_database_write_is_repaired_by_a_retry() {
    let app = spawn_app().await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    // The state a crash leaves: the attempt's key and parameters were saved and its
    // claim has lapsed; Stripe made the customer, but stripe_id was never written.
    crashed_attempt(&app, user_id).await;
    let orphan = app
        .stripe
        .insert_customer("Ann", "ann@example.com", Some(user_id));

    let html = browser.press("create").await;

    assert_eq!(app.stripe.customers().len(), 1, "no second customer");
    assert_eq!(
        app.user(user_id).await.stripe_id.as_deref(),
        Some(orphan.as_str())
    );
    assert!(html.contains("which an earlier interrupted attempt had created"));
}

#[tokio::test]
async fn an_attempt_in_flight_makes_a_second_one_wait_instead_of_creating() {
    let app = spawn_app().await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    let now_ms = users::unix_ms(time::OffsetDateTime::now_utc());
    let params = r#"{"name":"Ann","email":"ann@example.com"}"#;
    let lease = users::Lease {
        holder: "another-living-process",
        now_ms,
        expires_ms: now_ms + 60_000,
    };
    users::claim_create(&app.db, user_id, "key-in-flight", params, lease)
        .await
        .unwrap()
        .expect("claimed");

    let html = browser.press("create").await;

    assert!(html.contains("being created right now"));
    assert!(html.contains("Being created"));
    assert_eq!(app.stripe.total_calls(), 0);
}

#[tokio::test]
async fn a_definite_refusal_from_stripe_frees_the_user_for_a_new_attempt() {
    let app = spawn_app().await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    app.stripe.push_faults(1, Fault::Status(400));

    let html = browser.press("create").await;

    assert!(html.contains("Stripe rejected the request"));
    let user = app.user(user_id).await;
    assert!(user.stripe_id.is_none());
    assert!(
        user.stripe_create_key.is_none(),
        "nothing was created, so the key is dropped"
    );
    assert!(user.stripe_lease_expires.is_none());
    browser.press("create").await;
    assert_eq!(app.stripe.customers().len(), 1);
}

#[tokio::test]
async fn stripe_unavailable_during_create_keeps_the_key_for_the_retry() {
    let app = spawn_app().await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    app.stripe.push_faults(4, Fault::Drop);

    let html = browser.press("create").await;

    assert!(html.contains("Stripe is unavailable, nothing was changed."));
    let user = app.user(user_id).await;
    let key = user
        .stripe_create_key
        .clone()
        .expect("the ambiguous attempt's key is kept");
    assert!(user.stripe_lease_expires.is_none(), "the claim is released");
    browser.press("create").await;
    let user = app.user(user_id).await;
    assert_eq!(app.stripe.customers().len(), 1);
    assert_eq!(user.stripe_id, Some(app.stripe.customers()[0].id.clone()));
    assert_ne!(user.stripe_create_key, Some(key));
}

#[tokio::test]
async fn without_stripe_keys_create_says_stripe_is_not_configured() {
    let app = spawn_app_with(StripeSetup::Unconfigured).await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;

    let html = browser.press("create").await;

    assert!(html.contains("Stripe is not configured"));
    assert!(app.user(user_id).await.stripe_create_key.is_none());
    assert_eq!(app.stripe.total_calls(), 0);
}

/// The state a crashed create leaves: its key and parameters saved, its claim lapsed
/// (the holder is dead), and no `stripe_id`.
async fn crashed_attempt(app: &TestApp, user_id: i64) {
    let lapsed = users::unix_ms(time::OffsetDateTime::now_utc()) - 3_600_000;
    let params = r#"{"name":"Ann","email":"ann@example.com"}"#;
    let lease = users::Lease {
        holder: "a-process-that-crashed",
        now_ms: lapsed,
        expires_ms: lapsed,
    };
    let claim = users::claim_create(
        &app.db,
        user_id,
        "key-of-the-crashed-attempt",
        params,
        lease,
    )
    .await
    .unwrap();
    assert!(claim.is_some());
}

#[tokio::test]
async fn a_resumed_create_keeps_its_key_when_the_look_up_fails() {
    let app = spawn_app().await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    crashed_attempt(&app, user_id).await;
    // The customer the crashed attempt made, and a key that is refused for a while
    // (rolled): the look-up cannot say whether a customer exists.
    let made = app
        .stripe
        .insert_customer("Ann", "ann@example.com", Some(user_id));
    app.stripe.push_faults(1, Fault::Status(401));

    let html = browser.press("create").await;

    assert!(
        html.contains("Stripe refused the app&#39;s API key"),
        "{html}"
    );
    assert_eq!(
        app.user(user_id).await.stripe_create_key.as_deref(),
        Some("key-of-the-crashed-attempt"),
        "nothing proved the customer absent"
    );
    browser.press("create").await;
    assert_eq!(app.stripe.customers().len(), 1, "no second customer");
    assert_eq!(app.user(user_id).await.stripe_id, Some(made));
}
