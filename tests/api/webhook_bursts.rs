//! A customer's events arriving together: applied as a group (the newest as it
//! would be alone, the older ones superseded by it), and the pool that serves
//! them.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::webhooks::{SECRET, app_with_webhooks, deliver, event, now};
use crate::helpers::{TestApp, count, log_line_containing};
use crate::stripe_fake::Fault;

fn snapshot_name(app_user: &stripe_sync::db::users::User) -> String {
    let snapshot: Value =
        serde_json::from_str(app_user.stripe_snapshot.as_deref().unwrap()).unwrap();
    snapshot["name"].as_str().unwrap_or_default().to_string()
}

/// Renames the customer once per name in Stripe and returns the events it
/// sent, with unique ids and `created` as given.
fn renames(app: &TestApp, customer: &str, names: &[(&str, i64)]) -> Vec<Value> {
    let seen = app.stripe.events().len();
    for (name, _) in names {
        app.stripe.rename_customer(customer, name);
    }
    let mut events = app.stripe.events().split_off(seen);
    let tag = uuid::Uuid::new_v4().simple().to_string();
    for (n, (event, (_, created))) in events.iter_mut().zip(names).enumerate() {
        event["id"] = json!(format!("evt_{tag}_{n}"));
        event["created"] = json!(created);
    }
    events
}

/// Posts the signed event from a task of its own; the task answers the status.
fn spawn_delivery(app: &TestApp, payload: String) -> tokio::task::JoinHandle<StatusCode> {
    let address = app.address.clone();
    tokio::spawn(async move {
        let signature = stripe_webhook::Webhook::generate_test_header(&payload, SECRET, None);
        reqwest::Client::new()
            .post(format!("{address}/stripe/webhook"))
            .header("stripe-signature", signature)
            .body(payload)
            .send()
            .await
            .unwrap()
            .status()
    })
}

/// Holds the customer's queue: a lean `customer.updated` (the app pulls the
/// customer) delivered while Stripe answers in `latency`. Returns its task.
async fn hold_the_customer(
    app: &TestApp,
    customer: &str,
    created: i64,
    latency: Duration,
) -> tokio::task::JoinHandle<StatusCode> {
    app.stripe.set_latency(latency);
    let lean = event(
        &format!("evt_lean_{}", uuid::Uuid::new_v4().simple()),
        "customer.updated",
        created,
        json!({"id": customer, "object": "customer"}),
    );
    let held = spawn_delivery(app, lean);
    tokio::time::sleep(latency / 4).await;
    held
}

async fn deliver_together(app: &TestApp, events: &[Value]) {
    for status in statuses_together(app, events).await {
        assert_eq!(status, StatusCode::OK);
    }
}

/// Delivers the events at once; their statuses, in the same order.
async fn statuses_together(app: &TestApp, events: &[Value]) -> Vec<StatusCode> {
    let deliveries: Vec<_> = events
        .iter()
        .map(|event| spawn_delivery(app, event.to_string()))
        .collect();
    let mut statuses = Vec::new();
    for delivery in deliveries {
        statuses.push(delivery.await.unwrap());
    }
    statuses
}

/// Renames "Burst 1" to "Burst `count`", a second apart from `base + 1`.
fn burst(app: &TestApp, customer: &str, base: i64, count: i64) -> Vec<Value> {
    let names: Vec<(String, i64)> = (1..=count)
        .map(|n| (format!("Burst {n}"), base + n))
        .collect();
    let names: Vec<(&str, i64)> = names.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    renames(app, customer, &names)
}

#[tokio::test]
async fn a_burst_of_one_customer_s_events_writes_the_newest_and_records_the_rest_as_superseded() {
    let app = app_with_webhooks().await;
    let (_, user_id, customer) = app.linked_user().await;
    let base = now() - 60;
    let events = burst(&app, &customer, base, 8);
    let recorded_before = count(&app.db, "SELECT COUNT(*) FROM stripe_events").await;
    let calls = app.stripe.total_calls();

    let held = hold_the_customer(&app, &customer, base - 30, Duration::from_millis(400)).await;
    // Oldest first, and one of them twice (Stripe redelivers).
    let mut burst = events.clone();
    burst.push(events[2].clone());
    deliver_together(&app, &burst).await;
    assert_eq!(held.await.unwrap(), StatusCode::OK);

    let user = app.user(user_id).await;
    assert_eq!(snapshot_name(&user), "Burst 8");
    assert_eq!(user.stripe_event_created, Some(base + 8));
    assert_eq!(
        app.stripe.total_calls(),
        calls + 1,
        "only the lean event pulled"
    );
    let recorded = count(&app.db, "SELECT COUNT(*) FROM stripe_events").await;
    assert_eq!(
        recorded - recorded_before,
        9,
        "the lean one and the eight, once each"
    );
    let id = |n: usize| events[n]["id"].as_str().unwrap().to_string();
    // The lean event's pull brought Stripe's name already: the newest says
    // what is stored, and moves the guard; the older ones never touch the row.
    log_line_containing(&[&id(7), "outcome=Unchanged"]).await;
    for n in 0..7 {
        log_line_containing(&[&id(n), "outcome=Superseded"]).await;
    }
    log_line_containing(&[&id(2), "outcome=Duplicate"]).await;
}

#[tokio::test]
async fn a_burst_whose_newest_second_is_shared_asks_stripe_and_ends_as_stripe_has_it() {
    let app = app_with_webhooks().await;
    let (_, user_id, customer) = app.linked_user().await;
    let base = now() - 60;
    let events = renames(
        &app,
        &customer,
        &[
            ("Early", base + 1),
            ("Tied A", base + 5),
            ("Tied B", base + 5),
        ],
    );
    let calls = app.stripe.total_calls();

    let held = hold_the_customer(&app, &customer, base - 30, Duration::from_millis(400)).await;
    // The later of the tied pair first: payloads alone would keep "Tied A".
    deliver_together(
        &app,
        &[events[2].clone(), events[1].clone(), events[0].clone()],
    )
    .await;
    assert_eq!(held.await.unwrap(), StatusCode::OK);

    let user = app.user(user_id).await;
    assert_eq!(snapshot_name(&user), "Tied B", "Stripe's name");
    assert!(
        app.stripe.total_calls() >= calls + 2,
        "the lean event and the tie were pulled"
    );
}

/// The newest of a group was delivered before, while no user was linked (so it
/// was ignored): its redelivery says nothing of the user now, and the older
/// events are applied one by one, as they would be alone.
#[tokio::test]
async fn a_burst_whose_newest_is_a_redelivery_applies_the_older_ones_alone() {
    let app = app_with_webhooks().await;
    let (_, user_id, customer) = app.linked_user().await;
    let base = now() - 60;
    let events = burst(&app, &customer, base, 4);
    app.execute("UPDATE users SET stripe_id = NULL").await;
    deliver(&app, &events[3].to_string()).await;
    app.execute(&format!(
        "UPDATE users SET stripe_id = '{customer}' WHERE id = {user_id}"
    ))
    .await;

    let held = hold_the_customer(&app, &customer, base - 30, Duration::from_millis(400)).await;
    deliver_together(&app, &events).await;
    assert_eq!(held.await.unwrap(), StatusCode::OK);

    let user = app.user(user_id).await;
    assert_eq!(snapshot_name(&user), "Burst 3", "the newest event applied");
    assert_eq!(user.stripe_event_created, Some(base + 3));
    let id = |n: usize| events[n]["id"].as_str().unwrap().to_string();
    log_line_containing(&[&id(3), "outcome=Duplicate"]).await;
    log_line_containing(&[&id(2), "outcome=Applied"]).await;
}

/// The newest of a group fails (its pull meets Stripe errors): it answers 500
/// for Stripe to retry, and the older ones are applied on their own.
#[tokio::test]
async fn a_burst_whose_newest_fails_answers_500_for_it_and_applies_the_rest() {
    let app = app_with_webhooks().await;
    let (_, user_id, customer) = app.linked_user().await;
    let base = now() - 60;
    let mut events = burst(&app, &customer, base, 3);
    // A lean newest: only a retrieve can say it.
    events.push(
        serde_json::from_str(&event(
            &format!("evt_lean_newest_{}", uuid::Uuid::new_v4().simple()),
            "customer.updated",
            base + 10,
            json!({"id": customer, "object": "customer"}),
        ))
        .unwrap(),
    );

    let held = hold_the_customer(&app, &customer, base - 30, Duration::from_millis(400)).await;
    app.stripe.set_latency(Duration::ZERO);
    app.stripe.push_faults(8, Fault::Status(500));
    let statuses = statuses_together(&app, &events).await;
    assert_eq!(held.await.unwrap(), StatusCode::OK);

    assert_eq!(statuses[..3], [StatusCode::OK; 3]);
    assert_eq!(statuses[3], StatusCode::INTERNAL_SERVER_ERROR);
    let user = app.user(user_id).await;
    assert_eq!(snapshot_name(&user), "Burst 3");
    assert_eq!(user.stripe_event_created, Some(base + 3));
    let newest = events[3]["id"].as_str().unwrap().to_string();
    let sql = format!("SELECT COUNT(*) FROM stripe_events WHERE id = '{newest}'");
    assert_eq!(
        count(&app.db, &sql).await,
        0,
        "the failed one is not recorded"
    );
}

/// sqlx pings a connection only when it sat idle a second or more: one the
/// server ended while idle is dropped, and the request gets a working one.
#[tokio::test]
async fn connections_the_database_ended_while_idle_are_not_handed_out() {
    let app = app_with_webhooks().await;
    let (_, _, customer) = app.linked_user().await;
    let warm = renames(&app, &customer, &[("Warm", now() - 5)]);
    deliver_together(&app, &warm).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    let ended = end_the_app_s_connections(&app).await;

    let fresh = renames(&app, &customer, &[("After", now() - 1)]);
    deliver(&app, &fresh[0].to_string()).await;
    assert_eq!(app.browser().get("/readyz").await.status(), 200);
    if !matches!(app.db, stripe_sync::db::Db::Sqlite(_)) {
        assert!(ended > 0, "the app's idle connections were ended");
    }
}

/// Ends every connection the app's pool holds to its database (none on SQLite,
/// whose connections are files). Returns how many were ended.
async fn end_the_app_s_connections(app: &TestApp) -> i64 {
    use sqlx::Connection as _;
    match &app.db {
        stripe_sync::db::Db::Postgres(_) => {
            let name = app.database_url.rsplit('/').next().unwrap().to_string();
            let server = std::env::var("DATABASE_URL").expect("the suite's postgres url");
            let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()) AS ended",
            )
            .bind(name)
            .fetch_one(&mut admin)
            .await
            .unwrap()
        }
        stripe_sync::db::Db::Mysql(_) => {
            let name = app.database_url.rsplit('/').next().unwrap().to_string();
            let server = std::env::var("DATABASE_URL").expect("the suite's mysql url");
            let mut admin = sqlx::MySqlConnection::connect(&server).await.unwrap();
            let ids: Vec<i64> = sqlx::query_scalar(
                "SELECT id FROM information_schema.processlist \
                 WHERE db = ? AND id <> CONNECTION_ID()",
            )
            .bind(name)
            .fetch_all(&mut admin)
            .await
            .unwrap();
            for id in &ids {
                sqlx::query(&format!("KILL {id}"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
            }
            ids.len() as i64
        }
        stripe_sync::db::Db::Sqlite(_) => 0,
    }
}
