//! Job postings paid through Stripe Checkout, recorded from signed events only.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::webhooks::{app_with_webhooks, deliver, event, now};
use crate::helpers::{Browser, TestApp, location};
use crate::stripe_fake::Fault;

const FORM_TOKEN: &str = "6f1c4c7e-2a55-4c7b-9a56-0e4f8f5d2b11";

fn job_fields(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("form_token", token.to_string()),
        ("title", "Senior Rust Engineer".to_string()),
        ("company", "Ferris Inc.".to_string()),
        (
            "description",
            "Build the payments platform in Rust, with tests.".to_string(),
        ),
    ]
}

async fn post_job(browser: &Browser, token: &str) -> reqwest::Response {
    let fields = job_fields(token);
    let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    browser.post_form("/jobs/new", &borrowed).await
}

fn session_event(id: &str, type_: &str, session: &Value) -> String {
    event(id, type_, now(), session.clone())
}

/// A signed-in user who has posted a job and been sent to Checkout.
async fn posted_job(app: &TestApp) -> (Browser, i64, Value) {
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    let response = post_job(&browser, FORM_TOKEN).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let sessions = app.stripe.checkout_sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        location(&response),
        sessions[0]["url"].as_str().unwrap(),
        "sent to Checkout"
    );
    (browser, user_id, sessions[0].clone())
}

#[tokio::test]
async fn the_whole_job_flow_from_posting_to_a_published_job_in_the_billing_history() {
    let app = app_with_webhooks().await;
    let (browser, user_id, session) = posted_job(&app).await;
    let customer = app
        .user(user_id)
        .await
        .stripe_id
        .expect("a customer was created for checkout");
    assert_eq!(session["customer"], customer.as_str());
    assert_eq!(session["mode"], "payment");
    assert_eq!(
        (
            session["amount_total"].as_i64(),
            session["currency"].as_str()
        ),
        (Some(4900), Some("usd"))
    );
    let job_id = session["metadata"]["job_id"].as_str().unwrap().to_string();
    assert_eq!(session["metadata"]["user_id"], user_id.to_string());
    assert_eq!(session["client_reference_id"], format!("job-{job_id}"));
    assert!(
        session["success_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/jobs/{job_id}/success"))
    );
    let paid = app
        .stripe
        .complete_checkout_session(session["id"].as_str().unwrap());

    let response = deliver(
        &app,
        &session_event("evt_paid", "checkout.session.completed", &paid),
    )
    .await;

    assert_eq!(response.status(), StatusCode::OK);
    let page = browser.page(&format!("/jobs/{job_id}/success")).await;
    assert!(page.contains("Status: <strong>Published</strong>"));
    let settings = browser.page("/settings/stripe").await;
    assert!(settings.contains("Senior Rust Engineer"));
    assert!(settings.contains("49.00 USD"));
    assert!(settings.contains("<td>paid</td>"));
}

#[tokio::test]
async fn opening_the_success_page_without_paying_records_nothing() {
    let app = app_with_webhooks().await;
    let (browser, _, session) = posted_job(&app).await;
    let job_id = session["metadata"]["job_id"].as_str().unwrap();

    let page = browser
        .page(&format!(
            "/jobs/{job_id}/success?session_id={}",
            session["id"].as_str().unwrap()
        ))
        .await;

    assert!(page.contains("Awaiting payment"));
    assert!(
        !browser
            .page("/settings/stripe")
            .await
            .contains("<td>paid</td>")
    );
}

#[tokio::test]
async fn a_double_submit_makes_one_job_and_one_checkout_session() {
    let app = app_with_webhooks().await;
    let (browser, _) = app.signed_in_user("Ann", "ann@example.com").await;
    // The user has no customer yet: both submits race to create it, slowly.
    app.stripe
        .push_faults(1, Fault::SlowReply(std::time::Duration::from_millis(300)));

    let (first, second) = tokio::join!(
        post_job(&browser, FORM_TOKEN),
        post_job(&browser, FORM_TOKEN)
    );

    assert_eq!(app.stripe.customers().len(), 1);
    assert_eq!(app.stripe.checkout_sessions().len(), 1);
    assert_eq!(
        location(&first),
        location(&second),
        "both go to the same Checkout page"
    );
    assert!(
        location(&first).contains("/pay/cs_"),
        "{}",
        location(&first)
    );
}

#[tokio::test]
async fn a_job_with_bad_fields_says_why_and_makes_nothing() {
    let app = app_with_webhooks().await;
    let (browser, _) = app.signed_in_user("Ann", "ann@example.com").await;
    let fields = [
        ("form_token", FORM_TOKEN),
        ("title", "X"),
        ("company", ""),
        ("description", "too short"),
    ];

    let response = browser.post_form("/jobs/new", &fields).await;

    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    for message in [
        "Title must be 3 to 120",
        "Company must be 1 to 120",
        "Description must be 20 to 5000",
    ] {
        assert!(html.contains(message), "{message}");
    }
    assert_eq!(app.stripe.total_calls(), 0);
}

#[tokio::test]
async fn an_asynchronous_payment_is_processing_until_it_succeeds_and_never_goes_back() {
    let app = app_with_webhooks().await;
    let (browser, _, session) = posted_job(&app).await;
    let job_id = session["metadata"]["job_id"].as_str().unwrap().to_string();
    let mut pending = session.clone();
    pending["status"] = json!("complete");
    pending["payment_status"] = json!("unpaid");

    deliver(
        &app,
        &session_event("evt_async_1", "checkout.session.completed", &pending),
    )
    .await;

    assert!(
        browser
            .page("/settings/stripe")
            .await
            .contains("<td>processing</td>")
    );
    assert!(
        browser
            .page(&format!("/jobs/{job_id}"))
            .await
            .contains("Awaiting payment")
    );
    deliver(
        &app,
        &session_event(
            "evt_async_2",
            "checkout.session.async_payment_succeeded",
            &pending,
        ),
    )
    .await;
    // A late copy of the first stage must not undo the final one.
    deliver(
        &app,
        &session_event("evt_async_3", "checkout.session.completed", &pending),
    )
    .await;

    assert!(
        browser
            .page("/settings/stripe")
            .await
            .contains("<td>paid</td>")
    );
    assert!(
        browser
            .page(&format!("/jobs/{job_id}"))
            .await
            .contains("Published")
    );
}

#[tokio::test]
async fn a_failed_asynchronous_payment_leaves_the_job_unpublished() {
    let app = app_with_webhooks().await;
    let (browser, _, session) = posted_job(&app).await;
    let job_id = session["metadata"]["job_id"].as_str().unwrap().to_string();

    deliver(
        &app,
        &session_event(
            "evt_failed",
            "checkout.session.async_payment_failed",
            &session,
        ),
    )
    .await;

    assert!(
        browser
            .page("/settings/stripe")
            .await
            .contains("<td>failed</td>")
    );
    assert!(
        browser
            .page(&format!("/jobs/{job_id}"))
            .await
            .contains("Awaiting payment")
    );
}

#[tokio::test]
async fn an_expired_session_is_replaced_by_a_new_one_when_the_user_pays_again() {
    let app = app_with_webhooks().await;
    let (browser, _, session) = posted_job(&app).await;
    let job_id = session["metadata"]["job_id"].as_str().unwrap().to_string();

    deliver(
        &app,
        &session_event("evt_expired", "checkout.session.expired", &session),
    )
    .await;
    let response = browser.post_form(&format!("/jobs/{job_id}/pay"), &[]).await;

    let sessions = app.stripe.checkout_sessions();
    assert_eq!(sessions.len(), 2, "a new session after expiry");
    assert_eq!(location(&response), sessions[1]["url"].as_str().unwrap());
}

#[tokio::test]
async fn stripe_down_at_checkout_keeps_the_job_and_offers_to_pay_later() {
    let app = app_with_webhooks().await;
    let (browser, _) = app.signed_in_user("Ann", "ann@example.com").await;
    browser.press("create").await;
    app.stripe.push_faults(4, Fault::Status(503));

    let response = post_job(&browser, FORM_TOKEN).await;

    let job_page = location(&response);
    assert!(job_page.starts_with("/jobs/"), "{job_page}");
    let html = browser.page(&job_page).await;
    assert!(html.contains("Stripe is unavailable, nothing was changed"));
    assert!(html.contains("Pay 49.00 USD with Stripe"));
}

#[tokio::test]
async fn another_users_job_is_not_found() {
    let app = app_with_webhooks().await;
    let (_, _, session) = posted_job(&app).await;
    let job_id = session["metadata"]["job_id"].as_str().unwrap().to_string();
    let (bob, _) = app.signed_in_user("Bob", "bob@example.com").await;

    assert_eq!(
        bob.get(&format!("/jobs/{job_id}")).await.status(),
        StatusCode::NOT_FOUND
    );
    let pay = bob.post_form(&format!("/jobs/{job_id}/pay"), &[]).await;
    assert_eq!(pay.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.stripe.checkout_sessions().len(), 1);
}

#[tokio::test]
async fn manage_billing_opens_a_portal_session_that_returns_to_the_settings_page() {
    let app = app_with_webhooks().await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    browser.press("create").await;

    let response = browser.post_form("/settings/stripe/portal", &[]).await;

    let portal = app.stripe.portal_sessions();
    assert_eq!(portal.len(), 1);
    assert_eq!(location(&response), portal[0]["url"].as_str().unwrap());
    assert_eq!(
        portal[0]["customer"],
        app.user(user_id).await.stripe_id.unwrap().as_str()
    );
    assert!(
        portal[0]["return_url"]
            .as_str()
            .unwrap()
            .ends_with("/settings/stripe")
    );
}

#[tokio::test]
async fn manage_billing_without_a_customer_says_no_stripe_customer_found() {
    let app = app_with_webhooks().await;
    let (browser, _) = app.signed_in_user("Ann", "ann@example.com").await;

    let html = browser.press("portal").await;

    assert!(html.contains("No Stripe customer found"));
    assert!(app.stripe.portal_sessions().is_empty());
}

#[tokio::test]
async fn a_paid_event_for_a_session_the_job_never_had_publishes_nothing() {
    let app = app_with_webhooks().await;
    let (browser, _, session) = posted_job(&app).await;
    let job_id = session["metadata"]["job_id"].as_str().unwrap().to_string();
    // Another session carrying this job's metadata (anyone with the key can write it).
    let mut foreign = app
        .stripe
        .complete_checkout_session(session["id"].as_str().unwrap());
    foreign["id"] = json!("cs_test_not_made_for_this_job");

    let response = deliver(
        &app,
        &session_event("evt_foreign", "checkout.session.completed", &foreign),
    )
    .await;

    assert_eq!(
        response.status(),
        StatusCode::OK,
        "acknowledged, not retried"
    );
    assert_unpaid(&browser, &job_id).await;
}

#[tokio::test]
async fn a_paid_event_for_less_than_the_fee_publishes_nothing() {
    let app = app_with_webhooks().await;
    let (browser, _, session) = posted_job(&app).await;
    let job_id = session["metadata"]["job_id"].as_str().unwrap().to_string();
    let mut cheap = app
        .stripe
        .complete_checkout_session(session["id"].as_str().unwrap());
    cheap["amount_total"] = json!(1);
    let mut other_currency = cheap.clone();
    other_currency["amount_total"] = json!(4900);
    other_currency["currency"] = json!("jpy");

    for (id, payload) in [("evt_cheap", &cheap), ("evt_yen", &other_currency)] {
        deliver(
            &app,
            &session_event(id, "checkout.session.completed", payload),
        )
        .await;
    }

    assert_unpaid(&browser, &job_id).await;
}

async fn assert_unpaid(browser: &Browser, job_id: &str) {
    assert!(
        browser
            .page(&format!("/jobs/{job_id}"))
            .await
            .contains("Awaiting payment")
    );
    assert!(
        !browser
            .page("/settings/stripe")
            .await
            .contains("<td>paid</td>")
    );
}

#[tokio::test]
async fn after_a_failed_payment_paying_again_makes_a_new_session() {
    let app = app_with_webhooks().await;
    let (browser, _, session) = posted_job(&app).await;
    let job_id = session["metadata"]["job_id"].as_str().unwrap().to_string();
    deliver(
        &app,
        &session_event(
            "evt_failed_then_pay",
            "checkout.session.async_payment_failed",
            &session,
        ),
    )
    .await;

    let response = browser.post_form(&format!("/jobs/{job_id}/pay"), &[]).await;

    let sessions = app.stripe.checkout_sessions();
    assert_eq!(sessions.len(), 2, "not the dead session's URL");
    assert_eq!(location(&response), sessions[1]["url"].as_str().unwrap());
}

#[tokio::test]
async fn a_session_of_an_attempt_that_moved_on_is_never_stored_again() {
    let app = app_with_webhooks().await;
    let (_, user_id, session) = posted_job(&app).await;
    let job_id: i64 = session["metadata"]["job_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // The expiry moved the job to attempt 1 while a Pay for attempt 0 waited.
    deliver(
        &app,
        &session_event("evt_expired_race", "checkout.session.expired", &session),
    )
    .await;

    let stored = stripe_sync::db::jobs::store_checkout(
        &app.db,
        job_id,
        0,
        session["id"].as_str().unwrap(),
        "https://checkout.stripe.test/old",
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();

    assert!(!stored);
    let job = stripe_sync::db::jobs::find_for_user(&app.db, job_id, user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.checkout_session_id, None);
}

#[tokio::test]
async fn the_success_page_asks_stripe_and_publishes_a_paid_job_without_waiting_for_the_webhook() {
    let app = app_with_webhooks().await;
    let (browser, _, session) = posted_job(&app).await;
    let job_id = session["metadata"]["job_id"].as_str().unwrap().to_string();
    let paid = app
        .stripe
        .complete_checkout_session(session["id"].as_str().unwrap());

    let page = browser.page(&format!("/jobs/{job_id}/success")).await;

    assert!(page.contains("Paid — your job is live"), "{page}");
    assert!(page.contains("Status: <strong>Published</strong>"));
    // The webhook arrives afterwards: it changes nothing and adds no second payment.
    let response = deliver(
        &app,
        &session_event("evt_after_success", "checkout.session.completed", &paid),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let settings = browser.page("/settings/stripe").await;
    assert_eq!(settings.matches("<td>paid</td>").count(), 1, "{settings}");
}

/// A job paid through its own session, as the webhook records it; returns the
/// paid session.
async fn paid_job(app: &TestApp) -> (Browser, String, Value) {
    let (browser, _, session) = posted_job(app).await;
    let job_id = session["metadata"]["job_id"].as_str().unwrap().to_string();
    let paid = app
        .stripe
        .complete_checkout_session(session["id"].as_str().unwrap());
    deliver(
        app,
        &session_event("evt_paid_first", "checkout.session.completed", &paid),
    )
    .await;
    assert!(
        browser
            .page(&format!("/jobs/{job_id}"))
            .await
            .contains("Published")
    );
    (browser, job_id, paid)
}

fn refund_event(id: &str, paid: &Value, full: bool) -> String {
    let charge = json!({
        "id": format!("ch_{id}"), "object": "charge", "amount": 4900,
        "amount_refunded": if full { 4900 } else { 100 }, "refunded": full,
        "payment_intent": paid["payment_intent"],
    });
    event(id, "charge.refunded", now(), charge)
}

#[tokio::test]
async fn a_full_refund_marks_the_payment_refunded_and_unpublishes_the_job() {
    let app = app_with_webhooks().await;
    let (browser, job_id, paid) = paid_job(&app).await;

    let response = deliver(&app, &refund_event("evt_refund", &paid, true)).await;

    assert_eq!(response.status(), StatusCode::OK);
    let page = browser.page(&format!("/jobs/{job_id}")).await;
    assert!(page.contains("Status: <strong>Refunded</strong>"), "{page}");
    let settings = browser.page("/settings/stripe").await;
    assert!(settings.contains("<td>refunded</td>"));
    assert!(!settings.contains("<td>paid</td>"));
}

#[tokio::test]
async fn a_partial_refund_leaves_the_job_published() {
    let app = app_with_webhooks().await;
    let (browser, job_id, paid) = paid_job(&app).await;

    deliver(&app, &refund_event("evt_partial", &paid, false)).await;

    let page = browser.page(&format!("/jobs/{job_id}")).await;
    assert!(page.contains("Status: <strong>Published</strong>"));
}

#[tokio::test]
async fn serve_forgets_applied_events_older_than_the_retention() {
    let app = app_with_webhooks().await;
    let old = now() - 40 * 86_400;
    app.execute(&format!(
        "INSERT INTO stripe_events (id, type, created, processed_at) VALUES \
         ('evt_old', 'customer.updated', {old}, '2026-10-01 00:00:00'), \
         ('evt_recent', 'customer.updated', {}, '2026-11-29 00:00:00')",
        now()
    ))
    .await;

    // A serve process prunes at start and every hour after.
    let _restarted = app.another_instance(|_| {}).await;

    let pruned = TestApp::eventually(|| async {
        !stripe_sync::db::events::is_recorded(&app.db, "evt_old")
            .await
            .unwrap()
    })
    .await;
    assert!(pruned, "the 40-day-old event is forgotten");
    assert!(
        stripe_sync::db::events::is_recorded(&app.db, "evt_recent")
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn the_success_page_asks_stripe_only_within_the_user_s_allowance() {
    let app = crate::helpers::spawn_app_customized(crate::helpers::StripeSetup::Fake, |config| {
        config.webhook_secret = Some("whsec_test_current".to_string().into());
        config.limits.stripe_actions_per_user = stripe_sync::config::Limit {
            max: 1,
            window: std::time::Duration::from_secs(60),
        };
    })
    .await;
    // Posting the job (customer and Checkout Session) spends the one action.
    let (browser, _, session) = posted_job(&app).await;
    let job_id = session["metadata"]["job_id"].as_str().unwrap().to_string();
    app.stripe
        .complete_checkout_session(session["id"].as_str().unwrap());

    let page = browser.page(&format!("/jobs/{job_id}/success")).await;

    assert!(page.contains("Payment received"), "{page}");
    assert_eq!(app.stripe.calls("GET", "/v1/checkout/sessions"), 0);
}
