//! `stripe-sync stripe:replay-events`, run as an operator runs it, against the
//! stand-in's Events API: what no webhook brought is applied, once.

use serde_json::Value;

use crate::helpers::commands::{json_report, run_ok, stderr};
use crate::helpers::{TestApp, spawn_app, text_rows};
use crate::stripe_fake::Fault;

/// Two users linked to customers, with no webhook delivered to the app.
async fn two_linked_users() -> (TestApp, [(i64, String); 2]) {
    let app = spawn_app().await;
    let ids = app.insert_users(2).await;
    let mut linked = Vec::new();
    for id in ids {
        let created = app.customers.create_customer(id).await.unwrap();
        linked.push((id, created.stripe_id().to_string()));
    }
    let linked: [(i64, String); 2] = linked.try_into().unwrap();
    (app, linked)
}

/// Everything a replay could write: users, applied events, the checkpoint (each
/// column as text, so both drivers read them alike).
async fn database_state(app: &TestApp) -> String {
    const USERS: &str = "SELECT CAST(id AS TEXT), stripe_id, pm_type, pm_last_four, \
        stripe_snapshot, CAST(stripe_event_created AS TEXT), CAST(updated_at AS TEXT) \
        FROM users ORDER BY id";
    const EVENTS: &str =
        "SELECT id, type, CAST(processed_at AS TEXT) FROM stripe_events ORDER BY id";
    const CHECKPOINT: &str = "SELECT name, event_id, CAST(event_created AS TEXT), \
        CAST(updated_at AS TEXT) FROM stripe_event_checkpoints";
    let mut state = String::new();
    for sql in [USERS, EVENTS, CHECKPOINT] {
        let rows = text_rows(&app.db, sql).await;
        state.push_str(&format!("{rows:?}\n"));
    }
    state
}

#[tokio::test]
async fn replay_applies_a_card_and_a_deletion_made_in_stripe_and_a_second_run_writes_nothing() {
    let (app, [(ann, ann_customer), (bob, bob_customer)]) = two_linked_users().await;
    app.stripe.set_default_card(&ann_customer, "visa", "4242");
    app.stripe.delete_customer(&bob_customer);

    let report = run_ok(&app, &["stripe:replay-events"]).await;

    let ann_row = app.user(ann).await;
    assert_eq!(ann_row.pm_type.as_deref(), Some("visa"));
    assert_eq!(ann_row.pm_last_four.as_deref(), Some("4242"));
    assert_eq!(app.user(bob).await.stripe_id, None, "deleted in Stripe");
    assert_eq!(report["applied"], 2, "{report}");
    assert_eq!(report["failed"], 0);
    assert_eq!(report["checkpoint_moved"], true);
    assert_eq!(report["from_checkpoint"], false);
    let last = app.stripe.events().last().unwrap()["id"].clone();
    assert_eq!(report["checkpoint"]["event_id"], last);

    let before = database_state(&app).await;
    let stripe_writes = app.stripe.write_calls();
    for args in [
        &["stripe:replay-events"][..],
        &["stripe:replay-events", "--since", "1h"][..],
    ] {
        let again = run_ok(&app, args).await;

        assert_eq!(again["applied"], 0, "{args:?}: {again}");
        assert_eq!(again["failed"], 0);
        assert_eq!(again["checkpoint_moved"], false);
        assert!(again["duplicate"].as_u64().unwrap() >= 2, "{again}");
        assert_eq!(database_state(&app).await, before, "{args:?} wrote nothing");
        assert_eq!(app.stripe.write_calls(), stripe_writes);
    }
}

#[tokio::test]
async fn the_next_run_continues_from_the_checkpoint() {
    let (app, [(ann, ann_customer), _]) = two_linked_users().await;
    let first = run_ok(&app, &["stripe:replay-events"]).await;
    let checkpoint = first["checkpoint"]["event_created"]
        .as_i64()
        .unwrap_or_else(|| panic!("{first}"));
    app.stripe
        .rename_customer(&ann_customer, "Ann From The Dashboard");

    let next = run_ok(&app, &["stripe:replay-events"]).await;

    assert_eq!(next["from_checkpoint"], true);
    assert_eq!(next["from"].as_i64().unwrap(), checkpoint - 60);
    assert_eq!(next["applied"], 1, "{next}");
    let snapshot: Value =
        serde_json::from_str(&app.user(ann).await.stripe_snapshot.unwrap()).unwrap();
    assert_eq!(snapshot["name"], "Ann From The Dashboard");
}

#[tokio::test]
async fn events_before_since_are_not_read() {
    let (app, [(ann, ann_customer), _]) = two_linked_users().await;
    app.stripe.set_default_card(&ann_customer, "visa", "4242");
    app.stripe.backdate_events(2 * 3_600);

    let recent = run_ok(&app, &["stripe:replay-events", "--since", "1h"]).await;

    assert_eq!(recent["listed"], 0, "{recent}");
    assert_eq!(app.user(ann).await.pm_type, None);

    let wider = run_ok(&app, &["stripe:replay-events", "--since", "3h"]).await;

    assert_eq!(wider["applied"], 1, "{wider}");
    assert_eq!(app.user(ann).await.pm_type.as_deref(), Some("visa"));
}

#[tokio::test]
async fn a_dry_run_reports_what_it_would_apply_and_writes_nothing() {
    let (app, [(ann, ann_customer), (_, bob_customer)]) = two_linked_users().await;
    app.stripe.set_default_card(&ann_customer, "visa", "4242");
    app.stripe.delete_customer(&bob_customer);
    let before = database_state(&app).await;
    let calls = app.stripe.total_calls();

    let report = run_ok(&app, &["stripe:replay-events", "--dry-run"]).await;

    assert_eq!(report["dry_run"], true);
    // The card's attach and update events, and the deletion.
    assert_eq!(report["applied"], 3, "{report}");
    assert_eq!(database_state(&app).await, before);
    assert_eq!(app.user(ann).await.pm_type, None);
    assert_eq!(
        app.stripe.total_calls(),
        calls + 1,
        "one list call and nothing else"
    );
}

#[tokio::test]
async fn a_type_filter_applies_only_those_events_and_leaves_the_checkpoint_alone() {
    let (app, [(ann, ann_customer), (bob, bob_customer)]) = two_linked_users().await;
    app.stripe.set_default_card(&ann_customer, "visa", "4242");
    app.stripe.delete_customer(&bob_customer);

    let report = run_ok(
        &app,
        &["stripe:replay-events", "--type", "customer.deleted"],
    )
    .await;

    assert_eq!(report["applied"], 1, "{report}");
    assert_eq!(app.user(bob).await.stripe_id, None);
    assert_eq!(app.user(ann).await.pm_type, None, "not a selected type");
    assert_eq!(report["checkpoint"], Value::Null);

    let wildcard = run_ok(&app, &["stripe:replay-events", "--type", "customer.*"]).await;

    assert_eq!(wildcard["applied"], 1, "{wildcard}");
    assert_eq!(app.user(ann).await.pm_type.as_deref(), Some("visa"));
    assert_eq!(wildcard["checkpoint"], Value::Null);
}

#[tokio::test]
async fn a_failed_event_fails_the_run_holds_the_checkpoint_before_it_and_the_next_run_applies_it() {
    let (app, [(ann, ann_customer), (bob, bob_customer)]) = two_linked_users().await;
    app.stripe.set_default_card(&ann_customer, "visa", "4242");
    app.stripe.delete_customer(&bob_customer);
    // Stripe refuses the retrieve of Ann's customer once (a new default card is
    // the one thing a payload cannot say).
    app.stripe
        .push_fault_for(&format!("/v1/customers/{ann_customer}"), Fault::Status(400));

    let output = app.run(&["stripe:replay-events", "--json"]).await;

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json_report(&output);
    assert_eq!(report["failed"], 1, "{report}");
    assert_eq!(report["failures"][0]["stripe_answered"], true);
    assert_eq!(report["failures"][0]["event_type"], "customer.updated");
    assert_eq!(app.user(bob).await.stripe_id, None, "later events applied");
    let failed = &report["failures"][0];
    let held = &report["checkpoint"];
    assert!(
        (held["event_created"].as_i64(), held["event_id"].as_str())
            < (failed["created"].as_i64(), failed["event_id"].as_str()),
        "checkpoint {held} stays before the failed event {failed}"
    );
    assert!(stderr(&output).contains("failed events: 1"));

    let retried = run_ok(&app, &["stripe:replay-events"]).await;

    assert_eq!(retried["applied"], 1, "{retried}");
    assert_eq!(app.user(ann).await.pm_last_four.as_deref(), Some("4242"));
}

#[tokio::test]
async fn bad_input_is_refused_with_exit_code_2_before_anything_is_read() {
    let app = spawn_app().await;
    for (args, words) in [
        (
            &["stripe:replay-events", "--since", "yesterday"][..],
            "--since takes a duration",
        ),
        (
            &["stripe:replay-events", "--since", "40d"][..],
            "further than 30 days",
        ),
        // Text that is not ASCII once made the parser slice a character in two.
        (
            &["stripe:replay-events", "--since", "1é"][..],
            "--since takes a duration",
        ),
        (
            &["stripe:replay-events", "--since", "é"][..],
            "--since takes a duration",
        ),
        (
            &["stripe:replay-events", "--since", "1€"][..],
            "--since takes a duration",
        ),
        (
            &["stripe:replay-events", "--since", "+5m"][..],
            "--since takes a duration",
        ),
        (
            &["stripe:replay-events", "--since", "2099-01-01T00:00:00Z"][..],
            "is in the future",
        ),
    ] {
        let output = app.run(args).await;

        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(stderr(&output).contains(words), "{}", stderr(&output));
        assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
    }
    assert_eq!(app.stripe.total_calls(), 0);
}

#[tokio::test]
async fn a_checkpoint_older_than_stripe_keeps_events_starts_the_run_at_the_limit_and_moves() {
    let (app, [(ann, ann_customer), _]) = two_linked_users().await;
    let long_ago = time::OffsetDateTime::now_utc().unix_timestamp() - 40 * 86_400;
    app.execute(&format!(
        "INSERT INTO stripe_event_checkpoints (name, event_id, event_created, updated_at) \
         VALUES ('replay-events', 'evt_long_ago', {long_ago}, {long_ago})"
    ))
    .await;
    app.stripe.set_default_card(&ann_customer, "visa", "4242");

    let report = run_ok(&app, &["stripe:replay-events"]).await;

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let from = report["from"].as_i64().unwrap();
    assert!((now - 30 * 86_400 - from).abs() < 60, "{report}");
    assert_eq!(report["checkpoint_moved"], true, "{report}");
    assert_eq!(app.user(ann).await.pm_type.as_deref(), Some("visa"));
}

#[tokio::test]
async fn a_window_fuller_than_memory_allows_is_read_in_small_parts_and_nothing_is_missed() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use stripe_sync::events::replay::{ReplayOptions, ReplayTally};

    let (app, linked) = two_linked_users().await;
    // Three rounds of renames among other events, each round ten seconds older
    // than the next.
    for round in 0..3 {
        let now = crate::helpers::webhooks::now();
        app.stripe
            .insert_events(150, "charge.succeeded", now - 9, 0.06);
        for (_, customer) in &linked {
            app.stripe
                .rename_customer(customer, &format!("Name {round}"));
        }
        app.stripe.backdate_events(10);
    }
    let made = app.stripe.events().len();
    let options = ReplayOptions {
        since: None,
        types: Vec::new(),
        dry_run: false,
        retention_days: 30,
        // Far fewer than the window holds: parts of one page each.
        max_held_events: 2,
    };

    // As the command runs it: a limiter and retries.
    let limiter = Arc::new(stripe_sync::stripe::RateLimiter::uniform(100));
    let context = app
        .context
        .for_bulk(limiter, crate::helpers::test_retry_policy());
    let report = stripe_sync::events::Events::new(context)
        .replay_events(
            &options,
            Arc::new(ReplayTally::default()),
            Arc::new(AtomicBool::new(false)),
        )
        .await
        .unwrap();

    assert_eq!(report.listed as usize, made, "every event read once");
    assert_eq!(report.applied, 6, "every rename applied: {report:?}");
    assert!(app.stripe.calls("GET", "/v1/events") >= 5, "read in parts");
    assert!(report.list.list_segments >= 3, "{report:?}");
    for (id, _) in &linked {
        let snapshot: Value =
            serde_json::from_str(&app.user(*id).await.stripe_snapshot.unwrap()).unwrap();
        assert_eq!(snapshot["name"], "Name 2", "the newest rename wins");
    }
}

#[tokio::test]
async fn sigterm_stops_a_replay_between_events_and_the_next_run_applies_the_rest() {
    let app = spawn_app().await;
    let ids = app.users_with_new_cards(12).await;
    app.stripe
        .set_latency(std::time::Duration::from_millis(150));
    let cards = || async { app.with_card(&ids).await as u64 };
    let child = app
        .command(&["stripe:replay-events", "--json"])
        .spawn()
        .unwrap();
    crate::helpers::wait_until(
        "two cards replayed",
        std::time::Duration::from_secs(30),
        || async { cards().await >= 2 },
    )
    .await;

    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id().unwrap() as libc::pid_t, libc::SIGTERM) };
    let output = child.wait_with_output().await.unwrap();

    assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));
    let report = json_report(&output);
    assert_eq!(report["interrupted"], true);
    let applied = report["applied"].as_u64().unwrap();
    assert!(applied > 0 && applied < 12, "stopped part way: {report}");
    assert_eq!(cards().await, applied, "each applied event was stored");
    assert_eq!(report["checkpoint_moved"], true);

    let rest = run_ok(&app, &["stripe:replay-events"]).await;

    assert_eq!(rest["applied"].as_u64().unwrap(), 12 - applied, "{rest}");
    assert_eq!(cards().await, 12, "nothing lost");
}
