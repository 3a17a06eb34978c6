//! Whole lists read in segments by creation time, side by side (`--refresh`,
//! `--check`, `stripe:replay-events`), through the binary at Stripe's published
//! limits and a stand-in answering after a realistic round trip.

use std::collections::HashSet;
use std::time::Duration;

use crate::helpers::commands::{json_report, stderr};
use crate::helpers::webhooks::now;
use crate::helpers::{TestApp, count, spawn_app, wait_until};
use crate::stripe_fake::Fault;
use crate::stripe_limits::run_at_stripe_limits;

const ROUND_TRIP: Duration = Duration::from_millis(100);

/// `count` users linked to customers made `seconds_apart` from `first` on.
async fn linked_customers(
    app: &TestApp,
    count: usize,
    first: i64,
    seconds_apart: f64,
) -> (Vec<i64>, Vec<String>) {
    app.stripe.space_creation_times(first, seconds_apart);
    let ids = app.insert_users(count).await;
    let customers = app.stripe.insert_customers(count, Some(&ids));
    app.link_in_database(&ids, &customers).await;
    (ids, customers)
}

/// A `--check`'s report, drift or not (names differ here; that is not the point).
async fn check(app: &TestApp) -> serde_json::Value {
    let output = app
        .command_at_stripe_limits(&["stripe:sync-customers", "--check", "--json"])
        .output()
        .await
        .unwrap();
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        stderr(&output)
    );
    json_report(&output)
}

/// Starts the command at Stripe's limits and kills it (SIGKILL: nothing of ours
/// runs) once `cards` of `ids` have a card; returns how many have one then.
async fn kill_once_cards_reach(app: &TestApp, args: &[&str], ids: &[i64], cards: usize) -> usize {
    let mut child = app.command_at_stripe_limits(args).spawn().unwrap();
    wait_until("cards stored", Duration::from_secs(60), || async {
        app.with_card(ids).await >= cards
    })
    .await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    app.with_card(ids).await
}

fn retrieves(app: &TestApp) -> usize {
    app.stripe.call_times("GET", "/v1/customers/{id}").len()
}

#[tokio::test]
async fn every_customer_is_read_once_though_segment_bounds_fall_on_crowded_seconds() {
    let app = spawn_app().await;
    app.stripe.set_latency(ROUND_TRIP);
    // Four customers a second: every cut between segments falls on a second
    // that customers on both sides of it share.
    let (_, customers) = linked_customers(&app, 1_200, now() - 3_600, 0.25).await;

    let report = check(&app).await;

    assert_eq!(report["customers_seen"], 1_200, "{report}");
    assert!(report["list_segments"].as_u64().unwrap() >= 3, "{report}");
    let listed = app.stripe.listed_customers();
    assert_eq!(listed, customers.iter().cloned().collect::<HashSet<_>>());
    assert_eq!(retrieves(&app), 0, "every linked customer was in the list");

    let report =
        run_at_stripe_limits(&app, &["stripe:sync-customers", "--refresh", "--json"], 0).await;

    assert_eq!(report["refreshed"], 1_200, "{report}");
    assert_eq!(report["reads"], "list_segments", "{report}");
    assert!(report["list_segments"].as_u64().unwrap() >= 3, "{report}");
    assert_eq!(retrieves(&app), 0, "every linked customer was in the list");
}

#[tokio::test]
async fn customers_made_while_a_check_reads_are_neither_lost_nor_read_twice() {
    let app = spawn_app().await;
    app.stripe.set_latency(ROUND_TRIP);
    let (_, before) = linked_customers(&app, 1_000, now() - 1_000 * 3_600, 3_600.0).await;
    let run = app
        .command_at_stripe_limits(&["stripe:sync-customers", "--check", "--json"])
        .output();
    let make_more = async {
        wait_until("the first pages", Duration::from_secs(30), || async {
            app.stripe.call_times("GET", "/v1/customers").len() >= 2
        })
        .await;
        // Made now, as Stripe makes them: in the newest segment, being read.
        app.stripe.space_creation_times(now(), 0.1);
        for _ in 0..4 {
            app.stripe.insert_customers(50, None);
            tokio::time::sleep(ROUND_TRIP).await;
        }
    };

    let (output, ()) = tokio::join!(run, make_more);

    let report = json_report(&output.unwrap());
    let listed = app.stripe.listed_customers();
    assert!(before.iter().all(|id| listed.contains(id)), "none lost");
    // Each customer served is counted once: one served twice (a page cut off by
    // a newer segment's bound) is kept once, and none is dropped.
    assert_eq!(report["customers_seen"], listed.len(), "{report}");
    assert!(listed.len() <= 1_200, "{}", listed.len());
    assert_eq!(check(&app).await["customers_seen"], 1_200);
}

#[tokio::test]
async fn a_429_on_one_segment_is_retried_and_the_refresh_still_reads_everything() {
    let app = spawn_app().await;
    app.stripe.set_latency(ROUND_TRIP);
    let (ids, _) = linked_customers(&app, 800, now() - 800 * 86_400, 86_400.0).await;
    app.stripe
        .push_fault_for("/v1/customers", Fault::RateLimitedBy("endpoint-rate"));

    let report =
        run_at_stripe_limits(&app, &["stripe:sync-customers", "--refresh", "--json"], 0).await;

    assert_eq!(report["refreshed"], ids.len(), "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    let lists = app.stripe.call_times("GET", "/v1/customers").len();
    assert_eq!(
        lists as u64,
        report["list_pages"].as_u64().unwrap() + 1,
        "the refused page asked once more: {report}"
    );
    assert_eq!(retrieves(&app), 0);
}

#[tokio::test]
async fn a_refresh_killed_mid_read_then_run_again_stores_every_card() {
    let app = spawn_app().await;
    app.stripe.set_latency(ROUND_TRIP);
    let (ids, customers) = linked_customers(&app, 1_500, now() - 1_500 * 600, 600.0).await;
    for customer in &customers {
        app.stripe.set_default_card(customer, "visa", "4242");
    }
    let args = ["stripe:sync-customers", "--refresh", "--json"];
    let stored = kill_once_cards_reach(&app, &args, &ids, 200).await;
    assert!(stored < ids.len(), "killed part way: {stored}");

    let report =
        run_at_stripe_limits(&app, &["stripe:sync-customers", "--refresh", "--json"], 0).await;

    assert_eq!(report["refreshed"], ids.len(), "{report}");
    assert_eq!(app.with_card(&ids).await, ids.len(), "nothing lost");
}

#[tokio::test]
async fn a_refresh_stops_listing_once_every_linked_user_is_seen() {
    let app = spawn_app().await;
    app.stripe.set_latency(ROUND_TRIP);
    // A long history of another app's customers, then ours, the newest.
    app.stripe
        .space_creation_times(now() - 4_000 * 3_600, 3_600.0);
    app.stripe.insert_customers(3_000, None);
    let (ids, _) = linked_customers(&app, 600, now() - 600, 1.0).await;

    let report =
        run_at_stripe_limits(&app, &["stripe:sync-customers", "--refresh", "--json"], 0).await;

    assert_eq!(report["refreshed"], ids.len(), "{report}");
    assert_eq!(report["reads"], "list_segments", "{report}");
    let pages = report["list_pages"].as_u64().unwrap();
    assert!(
        pages < 36,
        "stopped before the other app's history: {report}"
    );
    assert_eq!(retrieves(&app), 0);
}

#[tokio::test]
async fn a_replay_killed_mid_read_resumes_without_a_gap_or_a_second_apply() {
    let app = spawn_app().await;
    let ids = app.users_with_new_cards(40).await;
    // Events of a type the app does not act on, over the whole window, around ours.
    app.stripe
        .insert_events(3_000, "charge.succeeded", now() - 2 * 86_400, 57.0);
    app.stripe.set_latency(ROUND_TRIP);
    let recorded = || count(&app.db, "SELECT COUNT(*) FROM stripe_events");
    let before = recorded().await;

    let applied = kill_once_cards_reach(&app, &["stripe:replay-events", "--json"], &ids, 5).await;
    assert!(applied < 40, "killed part way: {applied}");
    let applied_events = recorded().await - before;

    let output = app
        .command_at_stripe_limits(&["stripe:replay-events", "--json"])
        .output()
        .await
        .unwrap();

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = json_report(&output);
    assert_eq!(app.with_card(&ids).await, 40, "no gap: {report}");
    // Each event the killed run applied is known, and only those.
    assert_eq!(
        report["duplicate"], applied_events,
        "none applied twice: {report}"
    );
    let total = report["applied"].as_i64().unwrap() + report["unchanged"].as_i64().unwrap();
    assert_eq!(
        recorded().await - before,
        applied_events + total,
        "{report}"
    );
    assert!(report["list_segments"].as_u64().unwrap() >= 1, "{report}");
}

/// A page's lookup pads its ids to a power of two with the first of them (one
/// prepared statement per shape, not per length): every length finds each
/// linked user once, and no one else.
#[tokio::test]
async fn a_lookup_of_any_length_finds_each_linked_user_once() {
    let app = spawn_app().await;
    let (ids, customers) = linked_customers(&app, 9, now() - 86_400, 60.0).await;
    for len in 1..=customers.len() {
        let wanted: Vec<&str> = customers[..len].iter().map(String::as_str).collect();
        let found = stripe_sync::db::users::find_by_stripe_ids(&app.db, &wanted)
            .await
            .unwrap();
        let mut found: Vec<i64> = found.iter().map(|user| user.id).collect();
        found.sort_unstable();
        let mut linked = ids[..len].to_vec();
        linked.sort_unstable();
        assert_eq!(found, linked, "a lookup of {len}");
    }
}
