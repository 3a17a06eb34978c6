//! `POST /stripe/webhook`: signed events keep the local copy true.

use reqwest::StatusCode;
use serde_json::{Value, json};
use stripe_webhook::Webhook;

use stripe_sync::db::Db;

use crate::helpers::webhooks::{
    OLD_SECRET, SECRET, app_with_webhooks, deliver, deliver_expecting, event, now, post,
};
use crate::helpers::{StripeSetup, TestApp, log_line_containing, spawn_app_customized};
use crate::stripe_fake::Fault;

fn deleted_event(id: &str, customer: &str) -> String {
    event(
        id,
        "customer.deleted",
        now(),
        json!({"id": customer, "object": "customer", "deleted": true}),
    )
}

fn updated_event(id: &str, customer: &str, created: i64) -> String {
    event(
        id,
        "customer.updated",
        created,
        json!({"id": customer, "object": "customer"}),
    )
}

#[tokio::test]
async fn the_signature_matrix() {
    let app = app_with_webhooks().await;
    let (_, user_id, customer) = app.linked_user().await;
    let payload = deleted_event("evt_matrix_1", &customer);
    let sign =
        |secret: &str, age: i64| Webhook::generate_test_header(&payload, secret, Some(now() - age));
    let rejected: Vec<(&str, Option<String>, String)> = vec![
        (
            "wrong secret",
            Some(sign("whsec_test_wrong", 0)),
            payload.clone(),
        ),
        ("301 s old", Some(sign(SECRET, 301)), payload.clone()),
        ("missing header", None, payload.clone()),
        (
            "malformed header",
            Some("t=not-a-number,v1=abc".to_string()),
            payload.clone(),
        ),
        (
            "no v1 signature",
            Some(format!("t={}", now())),
            payload.clone(),
        ),
        (
            "body altered after signing",
            Some(sign(SECRET, 0)),
            payload.replace("evt_matrix_1", "evt_matrix_2"),
        ),
    ];

    for (case, signature, body) in &rejected {
        let response = post(&app, body, signature.as_deref()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        assert_eq!(
            app.user(user_id).await.stripe_id.as_deref(),
            Some(customer.as_str()),
            "{case} changed nothing"
        );
    }
    log_line_containing(&["webhook rejected", "signature does not match"]).await;

    let old_but_in_time = post(&app, &payload, Some(&sign(SECRET, 300))).await;
    assert_eq!(old_but_in_time.status(), StatusCode::OK, "300 s old passes");
    assert_eq!(app.user(user_id).await.stripe_id, None);
}

#[tokio::test]
async fn the_second_secret_of_a_rotation_is_accepted() {
    let app = app_with_webhooks().await;
    let (_, user_id, customer) = app.linked_user().await;
    let payload = deleted_event("evt_rotation", &customer);

    let signature = Webhook::generate_test_header(&payload, OLD_SECRET, None);
    let response = post(&app, &payload, Some(&signature)).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.user(user_id).await.stripe_id, None);
}

#[tokio::test]
async fn without_a_webhook_secret_the_endpoint_answers_503_and_processes_nothing() {
    let app = spawn_app_customized(StripeSetup::Fake, |_| {}).await;
    let (_, user_id, customer) = app.linked_user().await;
    let payload = deleted_event("evt_unconfigured", &customer);

    deliver_expecting(&app, &payload, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(app.user(user_id).await.stripe_id, Some(customer));
}

#[tokio::test]
async fn customer_deleted_clears_the_linked_users_cashier_columns() {
    let app = app_with_webhooks().await;
    let (_, user_id, customer) = app.linked_user().await;
    app.stripe.set_default_card(&customer, "visa", "4242");
    app.customers.refresh_customer(user_id).await.unwrap();
    app.execute("UPDATE users SET trial_ends_at = updated_at")
        .await;

    let response = deliver(&app, &deleted_event("evt_deleted", &customer)).await;

    assert_eq!(response.status(), StatusCode::OK);
    let user = app.user(user_id).await;
    assert_eq!(user.stripe_id, None);
    assert_eq!((user.pm_type, user.pm_last_four), (None, None));
    assert_eq!(user.trial_ends_at, None);
    assert_eq!(user.stripe_snapshot, None);
}

#[tokio::test]
async fn customer_deleted_for_a_customer_no_user_has_changes_nothing() {
    let app = app_with_webhooks().await;
    let (_, user_id, customer) = app.linked_user().await;

    let response = deliver(&app, &deleted_event("evt_stranger", "cus_nobodys")).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.user(user_id).await.stripe_id, Some(customer));
}

/// Delivers, signed, the events the stand-in made since `from` (an index into its
/// event log), oldest first.
async fn deliver_made_since(app: &TestApp, from: usize) -> usize {
    let events = app.stripe.events();
    for event in &events[from..] {
        let response = deliver(app, &event.to_string()).await;
        assert_eq!(response.status(), StatusCode::OK, "{event}");
    }
    events.len()
}

fn snapshot_name(user: &stripe_sync::db::users::User) -> String {
    let snapshot: Value = serde_json::from_str(user.stripe_snapshot.as_deref().unwrap()).unwrap();
    snapshot["name"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_new_default_card_is_pulled_once_and_later_changes_come_from_the_payload() {
    let app = app_with_webhooks().await;
    let (_, user_id, customer) = app.linked_user().await;
    let seen = app.stripe.events().len();
    app.stripe.set_default_card(&customer, "mastercard", "4444");
    let calls = app.stripe.total_calls();

    let seen = deliver_made_since(&app, seen).await;

    let user = app.user(user_id).await;
    assert_eq!(user.pm_type.as_deref(), Some("mastercard"));
    assert_eq!(user.pm_last_four.as_deref(), Some("4444"));
    assert_eq!(
        app.stripe.total_calls(),
        calls + 1,
        "one retrieve for the card the payload names only by id"
    );

    app.stripe.rename_customer(&customer, "Ann In Dashboard");
    let mut rename = app.stripe.events().remove(seen);
    // A later second than the card's event (the same second would be pulled).
    rename["created"] = json!(app.user(user_id).await.stripe_event_created.unwrap() + 1);
    let calls = app.stripe.total_calls();
    deliver(&app, &rename.to_string()).await;

    let user = app.user(user_id).await;
    assert_eq!(snapshot_name(&user), "Ann In Dashboard");
    assert_eq!(
        user.name, "Ann In Dashboard",
        "a name changed only in Stripe is taken into the local column"
    );
    assert_eq!(user.pm_last_four.as_deref(), Some("4444"), "card kept");
    assert_eq!(app.stripe.total_calls(), calls, "no call for a rename");
}

#[tokio::test]
async fn the_echo_of_our_own_push_makes_no_stripe_call_and_changes_nothing() {
    let app = app_with_webhooks().await;
    let (_, user_id, customer) = app.linked_user().await;
    app.stripe.set_default_card(&customer, "visa", "4242");
    app.customers.refresh_customer(user_id).await.unwrap();
    app.execute(&format!(
        "UPDATE users SET name = 'Ann Renamed' WHERE id = {user_id}"
    ))
    .await;
    let seen = app.stripe.events().len();
    app.customers
        .update_customer(user_id, stripe_sync::customers::Push::IfChanged)
        .await
        .unwrap();
    let before = app.user(user_id).await;
    let calls = app.stripe.total_calls();

    deliver_made_since(&app, seen).await;

    assert_eq!(
        app.stripe.events().len(),
        seen + 1,
        "the push made one event"
    );
    assert_eq!(app.stripe.total_calls(), calls, "an echo costs no call");
    let after = app.user(user_id).await;
    assert_eq!(after.stripe_snapshot, before.stripe_snapshot);
    assert_eq!(after.pm_last_four.as_deref(), Some("4242"));
}

#[tokio::test]
async fn customer_updated_with_a_lean_payload_pulls_the_customer() {
    let app = app_with_webhooks().await;
    let (_, user_id, customer) = app.linked_user().await;
    app.stripe.set_default_card(&customer, "mastercard", "4444");
    app.stripe.rename_customer(&customer, "Ann In Dashboard");

    let response = deliver(&app, &updated_event("evt_updated", &customer, now())).await;

    assert_eq!(response.status(), StatusCode::OK);
    let user = app.user(user_id).await;
    assert_eq!(user.pm_type.as_deref(), Some("mastercard"));
    assert_eq!(user.pm_last_four.as_deref(), Some("4444"));
    assert_eq!(snapshot_name(&user), "Ann In Dashboard");
}

#[tokio::test]
async fn an_older_payload_after_a_newer_one_changes_nothing_and_calls_nobody() {
    let app = app_with_webhooks().await;
    let (_, user_id, customer) = app.linked_user().await;
    let seen = app.stripe.events().len();
    app.stripe.rename_customer(&customer, "Older Name");
    app.stripe.rename_customer(&customer, "Newest Name");
    let mut events = app.stripe.events().split_off(seen);
    events[0]["created"] = json!(now() - 60);
    let calls = app.stripe.total_calls();

    deliver(&app, &events[1].to_string()).await;
    deliver(&app, &events[0].to_string()).await;

    assert_eq!(snapshot_name(&app.user(user_id).await), "Newest Name");
    assert_eq!(app.stripe.total_calls(), calls);
    assert_eq!(
        app.user(user_id).await.stripe_event_created,
        Some(created(&events[1]))
    );
}

fn created(event: &Value) -> i64 {
    event["created"].as_i64().unwrap()
}

#[tokio::test]
async fn two_events_of_the_same_second_are_settled_by_asking_stripe() {
    let app = app_with_webhooks().await;
    let (_, user_id, customer) = app.linked_user().await;
    let seen = app.stripe.events().len();
    app.stripe.rename_customer(&customer, "First");
    app.stripe.rename_customer(&customer, "Second");
    let mut events = app.stripe.events().split_off(seen);
    let second = now();
    events[0]["created"] = json!(second);
    events[1]["created"] = json!(second);
    let calls = app.stripe.total_calls();

    deliver(&app, &events[1].to_string()).await;
    deliver(&app, &events[0].to_string()).await;

    assert_eq!(snapshot_name(&app.user(user_id).await), "Second");
    assert_eq!(app.stripe.total_calls(), calls + 1, "the tie was pulled");
}

#[tokio::test]
async fn payment_method_events_about_the_default_change_the_card_without_a_call() {
    let app = app_with_webhooks().await;
    let (_, user_id, customer) = app.linked_user().await;
    let seen = app.stripe.events().len();
    app.stripe.set_default_card(&customer, "visa", "4242");
    deliver_made_since(&app, seen).await;
    let default = app
        .stripe
        .customer(&customer)
        .unwrap()
        .default_card
        .unwrap()
        .0;
    let calls = app.stripe.total_calls();
    let method = |id: &str, last4: &str| {
        json!({"id": id, "object": "payment_method", "type": "card", "customer": customer,
               "card": {"brand": "visa", "last4": last4}})
    };

    // Another card attached: not the default, nothing to store.
    deliver(
        &app,
        &event(
            "evt_pm_other",
            "payment_method.attached",
            now(),
            method("pm_other", "1111"),
        ),
    )
    .await;
    assert_eq!(
        app.user(user_id).await.pm_last_four.as_deref(),
        Some("4242")
    );
    // The default card's details as its own event carries them.
    deliver(
        &app,
        &event(
            "evt_pm_default",
            "payment_method.attached",
            now(),
            method(&default, "0005"),
        ),
    )
    .await;
    assert_eq!(
        app.user(user_id).await.pm_last_four.as_deref(),
        Some("0005")
    );

    let detached = json!({
        "id": "evt_pm_off", "object": "event", "type": "payment_method.detached", "created": now(),
        "data": {"object": {"id": default, "object": "payment_method", "customer": null},
                 "previous_attributes": {"customer": customer}},
    })
    .to_string();
    deliver(&app, &detached).await;

    let user = app.user(user_id).await;
    assert_eq!((user.pm_type, user.pm_last_four), (None, None));
    assert_eq!(app.stripe.total_calls(), calls, "all from the payloads");
}

#[tokio::test]
async fn a_redelivered_event_answers_200_and_changes_nothing() {
    let app = app_with_webhooks().await;
    let (_, user_id, customer) = app.linked_user().await;
    let payload = updated_event("evt_replayed", &customer, now());
    deliver(&app, &payload).await;
    let snapshot = app.user(user_id).await.stripe_snapshot;
    let calls = app.stripe.total_calls();
    app.stripe.rename_customer(&customer, "Changed Since");

    let response = deliver(&app, &payload).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        app.stripe.total_calls(),
        calls,
        "a duplicate is not applied again"
    );
    assert_eq!(app.user(user_id).await.stripe_snapshot, snapshot);
}

#[tokio::test]
async fn an_older_event_delivered_after_a_newer_one_never_brings_back_older_data() {
    let app = app_with_webhooks().await;
    let (_, user_id, customer) = app.linked_user().await;
    app.stripe.rename_customer(&customer, "Newest Name");
    let newer = updated_event("evt_newer", &customer, now());
    let older = updated_event("evt_older", &customer, now() - 60);

    assert_eq!(deliver(&app, &newer).await.status(), StatusCode::OK);
    assert_eq!(deliver(&app, &older).await.status(), StatusCode::OK);

    let snapshot = app.user(user_id).await.stripe_snapshot.unwrap();
    assert!(snapshot.contains("Newest Name"), "{snapshot}");
}

#[tokio::test]
async fn a_failing_handler_answers_500_and_writes_nothing_so_the_retry_applies_it() {
    let app = app_with_webhooks().await;
    let (_, user_id, customer) = app.linked_user().await;
    app.stripe.set_default_card(&customer, "visa", "4242");
    let payload = updated_event("evt_retry_me", &customer, now());
    // As many failures as the client's attempts: the delivery fails, then Stripe is back.
    app.stripe.push_faults(4, Fault::Status(500));

    deliver_expecting(&app, &payload, StatusCode::INTERNAL_SERVER_ERROR).await;

    assert_eq!(app.user(user_id).await.pm_type, None, "no partial write");

    let retried = deliver(&app, &payload).await;

    assert_eq!(retried.status(), StatusCode::OK);
    assert_eq!(app.user(user_id).await.pm_type.as_deref(), Some("visa"));
}

#[tokio::test]
async fn a_failure_inside_the_transaction_rolls_back_the_event_record_too() {
    let app = app_with_webhooks().await;
    let (_, user_id, customer) = app.linked_user().await;
    app.stripe.set_default_card(&customer, "visa", "4242");
    let payload = updated_event("evt_rolled_back", &customer, now());
    // The retrieve succeeds; the write of the card, after the event was recorded in
    // the same transaction, fails.
    refuse_card_writes(&app, true).await;

    deliver_expecting(&app, &payload, StatusCode::INTERNAL_SERVER_ERROR).await;

    assert_eq!(app.user(user_id).await.pm_type, None);
    refuse_card_writes(&app, false).await;
    let retried = deliver(&app, &payload).await;
    assert_eq!(retried.status(), StatusCode::OK);
    assert_eq!(
        app.user(user_id).await.pm_type.as_deref(),
        Some("visa"),
        "the failed attempt left no record that would make the retry a duplicate"
    );
}

/// A trigger that makes any write of `users.pm_type` fail, or its removal.
async fn refuse_card_writes(app: &TestApp, refuse: bool) {
    match (&app.db, refuse) {
        (Db::Sqlite(_), true) => {
            app.execute(
                "CREATE TRIGGER refuse_card BEFORE UPDATE OF pm_type ON users \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
            )
            .await
        }
        (Db::Sqlite(_), false) => app.execute("DROP TRIGGER refuse_card").await,
        (Db::Postgres(_), true) => {
            app.execute(
                "CREATE FUNCTION refuse_card() RETURNS trigger AS $$ \
                 BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql",
            )
            .await;
            app.execute(
                "CREATE TRIGGER refuse_card BEFORE UPDATE OF pm_type ON users \
                 FOR EACH ROW EXECUTE FUNCTION refuse_card()",
            )
            .await
        }
        (Db::Postgres(_), false) => app.execute("DROP TRIGGER refuse_card ON users").await,
        (Db::Mysql(_), true) => {
            app.execute(
                "CREATE TRIGGER refuse_card BEFORE UPDATE ON users FOR EACH ROW \
                 IF NOT (NEW.pm_type <=> OLD.pm_type) THEN \
                 SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test'; END IF",
            )
            .await
        }
        (Db::Mysql(_), false) => app.execute("DROP TRIGGER refuse_card").await,
    }
}

#[tokio::test]
async fn an_unknown_event_type_is_acknowledged_and_ignored() {
    let app = app_with_webhooks().await;
    let (_, user_id, customer) = app.linked_user().await;
    let payload = event(
        "evt_unknown",
        "invoice.finalized",
        now(),
        json!({"id": "in_1", "customer": customer}),
    );

    let response = deliver(&app, &payload).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.user(user_id).await.stripe_id, Some(customer));
}

#[tokio::test]
async fn fields_the_handler_does_not_read_never_make_a_valid_event_fail() {
    let app = app_with_webhooks().await;
    let (_, user_id, customer) = app.linked_user().await;
    // No pending_webhooks, no livemode, no api_version, and fields from the future.
    let payload = json!({
        "id": "evt_lean", "type": "customer.deleted", "created": now(),
        "brand_new_field": {"nested": [1, 2, 3]},
        "data": {"object": {"id": customer, "deleted": true, "another_new_field": true}},
    })
    .to_string();

    let response = deliver(&app, &payload).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.user(user_id).await.stripe_id, None);
}

#[tokio::test]
async fn a_bulk_update_with_its_webhooks_delivered_costs_one_call_per_user() {
    let app = app_with_webhooks().await;
    let ids = app.insert_users(20).await;
    crate::helpers::commands::run_ok(&app, &["stripe:sync-customers", "--create"]).await;
    app.execute("UPDATE users SET name = name || ' Renamed'")
        .await;
    app.stripe
        .deliver_webhooks_to(&format!("{}/stripe/webhook", app.address), SECRET);
    let calls = app.stripe.total_calls();

    let report =
        crate::helpers::commands::run_ok(&app, &["stripe:sync-customers", "--update"]).await;

    assert_eq!(report["updated"], 20, "{report}");
    let all_applied = TestApp::eventually(|| async {
        let mut applied = 0;
        for id in &ids {
            applied += usize::from(app.user(*id).await.stripe_event_created.is_some());
        }
        applied == ids.len()
    })
    .await;
    assert!(all_applied, "every echo reached the app");
    assert_eq!(
        app.stripe.total_calls() - calls,
        20,
        "the pushes, and no call for their echoes"
    );
    for id in ids {
        assert!(snapshot_name(&app.user(id).await).ends_with(" Renamed"));
    }
}

#[tokio::test]
async fn an_event_dated_in_the_future_is_refused_and_stores_nothing() {
    let app = app_with_webhooks().await;
    let (_, user_id, customer) = app.linked_user().await;
    app.stripe.rename_customer(&customer, "From The Future");

    for created in [i64::MAX, now() + 3_600] {
        let poisoned = updated_event(&format!("evt_future_{created}"), &customer, created);
        deliver_expecting(&app, &poisoned, StatusCode::BAD_REQUEST).await;
    }

    let recorded = crate::helpers::count(&app.db, "SELECT COUNT(*) FROM stripe_events").await;
    assert_eq!(recorded, 0, "no event id was stored");
    let user = app.user(user_id).await;
    assert_eq!(
        user.stripe_event_created, None,
        "the ordering guard was not moved"
    );
    assert!(
        !user
            .stripe_snapshot
            .unwrap_or_default()
            .contains("From The Future")
    );
    // The refusal is logged.
    log_line_containing(&["WARN", "dated in the future"]).await;
}

#[tokio::test]
async fn refresh_re_anchors_an_ordering_guard_a_bad_date_poisoned() {
    let app = app_with_webhooks().await;
    let (browser, user_id, customer) = app.linked_user().await;
    // Left by an event dated far ahead, before such events were refused.
    app.execute(&format!(
        "UPDATE users SET stripe_event_created = 9000000000000000000 WHERE id = {user_id}"
    ))
    .await;
    let stale = updated_event("evt_before_refresh", &customer, now());
    app.stripe.rename_customer(&customer, "Renamed Once");
    assert_eq!(deliver(&app, &stale).await.status(), StatusCode::OK);
    let snapshot = app.user(user_id).await.stripe_snapshot.unwrap_or_default();
    assert!(
        !snapshot.contains("Renamed Once"),
        "the poisoned guard holds it back"
    );

    browser.press("refresh").await;
    app.stripe.rename_customer(&customer, "Renamed Twice");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let genuine = updated_event("evt_after_refresh", &customer, now());
    assert_eq!(deliver(&app, &genuine).await.status(), StatusCode::OK);

    let user = app.user(user_id).await;
    assert!(
        user.stripe_snapshot
            .unwrap_or_default()
            .contains("Renamed Twice"),
        "events after the refresh apply again"
    );
    assert!(user.stripe_event_created.is_some_and(|at| at <= now()));
}

#[tokio::test]
async fn retention_also_forgets_event_rows_dated_in_the_future() {
    let app = app_with_webhooks().await;
    app.execute(&format!(
        "INSERT INTO stripe_events (id, type, created, processed_at) VALUES \
         ('evt_far_ahead', 'customer.updated', 9000000000000000000, '2026-11-30 12:00:00'), \
         ('evt_recent', 'customer.updated', {}, '2026-11-30 12:00:00')",
        now() - 60
    ))
    .await;

    // `serve` prunes too, at start and hourly: only what is left is certain.
    stripe_sync::events::Events::new(app.context.clone())
        .prune_events(30)
        .await
        .unwrap();

    let left = crate::helpers::text_rows(&app.db, "SELECT id FROM stripe_events").await;
    assert_eq!(left, vec![vec![Some("evt_recent".to_string())]]);
}

#[tokio::test]
async fn the_webhook_route_reads_and_writes_no_session() {
    let app = app_with_webhooks().await;
    let (browser, user_id, customer) = app.linked_user().await;
    let session = browser.cookie("stripe_sync_session").expect("signed in");
    app.stripe.rename_customer(&customer, "Renamed In Stripe");
    let payload = updated_event("evt_sessionless", &customer, now());
    let signature = Webhook::generate_test_header(&payload, SECRET, None);
    // The session store out of reach: any route that reads a session fails.
    let away = match app.db {
        Db::Postgres(_) => "ALTER TABLE tower_sessions.session RENAME TO session_away",
        _ => "ALTER TABLE tower_sessions RENAME TO tower_sessions_away",
    };
    app.execute(away).await;
    assert!(
        !browser.get("/settings/stripe").await.status().is_success(),
        "a page reads its session"
    );

    // A request carrying a signed-in session, as a browser's would.
    let response = reqwest::Client::new()
        .post(format!("{}/stripe/webhook", app.address))
        .header("content-type", "application/json")
        .header("cookie", format!("stripe_sync_session={session}"))
        .header("stripe-signature", signature)
        .body(payload)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let cookies: Vec<_> = response.headers().get_all("set-cookie").iter().collect();
    assert!(cookies.is_empty(), "{cookies:?}");
    assert!(
        snapshot_name(&app.user(user_id).await).contains("Renamed In Stripe"),
        "the event applied"
    );
}
