//! Bulk runs an operator can trust: claims that follow the living, repair that
//! cannot mass-unlink, orphans linked only by email, and `--refresh`.

use std::time::{Duration, Instant};

use stripe_sync::db::users;

use crate::helpers::commands::{
    assert_one_linked_customer_per_user, json_report, link, run_ok, stderr,
};
use crate::helpers::{TestApp, spawn_app};
use crate::stripe_fake::FakeStripe;

/// Claims `user_id`'s row for another process until `for_ms` from now, as a
/// living holder renewing it (a long time) or a dead one (a short time) leaves it.
async fn held_by_another_process(app: &TestApp, user_id: i64, for_ms: i64) {
    let expires = users::unix_ms(time::OffsetDateTime::now_utc()) + for_ms;
    app.execute(&format!(
        "UPDATE users SET stripe_lease_holder = 'another-process', \
         stripe_lease_expires = {expires} WHERE id = {user_id}"
    ))
    .await;
}

#[tokio::test]
async fn a_user_held_by_a_process_that_died_is_taken_over_once_its_claim_lapses() {
    let app = spawn_app().await;
    let ids = app.insert_users(3).await;
    held_by_another_process(&app, ids[1], 3_000).await;
    let started = Instant::now();

    let report = run_ok(
        &app,
        &["stripe:sync-customers", "--create", "--rate", "100"],
    )
    .await;

    assert_eq!(
        (report["created"].as_u64(), report["held"].as_u64()),
        (Some(3), Some(0)),
        "{report}"
    );
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_one_linked_customer_per_user(&app, &ids).await;
}

#[tokio::test]
async fn a_user_held_by_a_living_run_makes_the_run_exit_1_and_say_so() {
    let app = spawn_app().await;
    let ids = app.insert_users(3).await;
    held_by_another_process(&app, ids[1], 3_600_000).await;

    let output = app
        .run(&["stripe:sync-customers", "--create", "--rate", "100"])
        .await;

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("1 users are held by another run that is still working on them"),
        "{text}"
    );
    assert!(
        stderr(&output).contains("held by another run"),
        "{}",
        stderr(&output)
    );
    assert!(app.user(ids[0]).await.stripe_id.is_some());
    assert!(app.user(ids[1]).await.stripe_id.is_none());
}

/// Twenty linked users.
async fn linked_users(app: &TestApp) -> Vec<i64> {
    let ids = app.insert_users(20).await;
    run_ok(app, &["stripe:sync-customers", "--create", "--rate", "200"]).await;
    ids
}

#[tokio::test]
async fn repair_with_a_key_of_another_account_unlinks_nobody() {
    let app = spawn_app().await;
    let ids = linked_users(&app).await;
    let other_account = FakeStripe::start().await;

    let output = app
        .command(&["stripe:sync-customers", "--check", "--repair"])
        .env("STRIPE_API_BASE", &other_account.url)
        .output()
        .await
        .unwrap();

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("20 of 20 checked links"), "{text}");
    assert!(text.contains("another Stripe account or mode"), "{text}");
    assert_eq!(text.matches("[repaired]").count(), 0, "{text}");
    assert_one_linked_customer_per_user(&app, &ids).await;
}

#[tokio::test]
async fn repair_clears_the_link_of_a_customer_deleted_in_stripe() {
    let app = spawn_app().await;
    let ids = linked_users(&app).await;
    let deleted = app.user(ids[4]).await.stripe_id.unwrap();
    app.stripe.delete_customer(&deleted);

    let report = run_ok(&app, &["stripe:sync-customers", "--check", "--repair"]).await;

    assert_eq!(report["drift"][0]["kind"], "dead_id", "{report}");
    assert_eq!(report["drift"][0]["repaired"], true, "{report}");
    assert_eq!(app.user(ids[4]).await.stripe_id, None);
    for id in ids.iter().filter(|id| **id != ids[4]) {
        assert!(
            app.user(*id).await.stripe_id.is_some(),
            "user {id} unlinked"
        );
    }
}

/// Links the user to an id Stripe has never heard of (its real customer gone).
async fn unknown_to_stripe(app: &TestApp, user_id: i64) {
    let customer = app.user(user_id).await.stripe_id.unwrap();
    app.stripe.delete_customer(&customer);
    app.execute(&format!(
        "UPDATE users SET stripe_id = 'cus_unknown_{user_id}' WHERE id = {user_id}"
    ))
    .await;
}

#[tokio::test]
async fn a_few_customers_stripe_cannot_find_are_unlinked_but_not_more_than_the_share() {
    let app = spawn_app().await;
    let ids = linked_users(&app).await;
    // Linked to ids Stripe answers 404 for (not `deleted: true`): 1 of 20 is
    // within 5%, 2 of 20 is not.
    unknown_to_stripe(&app, ids[0]).await;
    let report = run_ok(&app, &["stripe:sync-customers", "--check", "--repair"]).await;
    assert_eq!(report["drift"][0]["repaired"], true, "{report}");
    unknown_to_stripe(&app, ids[1]).await;
    unknown_to_stripe(&app, ids[2]).await;

    let output = app
        .run(&["stripe:sync-customers", "--check", "--repair"])
        .await;

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(app.user(ids[1]).await.stripe_id.is_some());
    let forced = app
        .run(&[
            "stripe:sync-customers",
            "--check",
            "--repair",
            "--max-missing-share",
            "0.2",
        ])
        .await;
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
    assert!(app.user(ids[1]).await.stripe_id.is_none());
}

#[tokio::test]
async fn a_customer_claiming_a_user_with_another_email_is_reported_and_never_linked() {
    let app = spawn_app().await;
    let ids = app.insert_users(1).await;
    let foreign = app
        .stripe
        .insert_customer("Mallory", "mallory@example.net", Some(ids[0]));

    let output = app
        .run(&["stripe:sync-customers", "--check", "--repair", "--json"])
        .await;

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json_report(&output);
    assert_eq!(report["drift"][0]["kind"], "claim_mismatch", "{report}");
    assert_eq!(report["drift"][0]["stripe_id"], foreign.as_str());
    assert_eq!(
        report["drift"][0]["detail"],
        format!("claims user {}, email differs", ids[0])
    );
    assert_eq!(report["drift"][0]["repaired"], false);
    assert_eq!(app.user(ids[0]).await.stripe_id, None);
}

#[tokio::test]
async fn refresh_pulls_the_card_of_every_linked_user_and_check_then_finds_no_drift() {
    let app = spawn_app().await;
    let ids = app.insert_users(5).await;
    for id in &ids[..4] {
        link(&app, *id).await;
    }
    for (n, id) in ids[..4].iter().enumerate() {
        let customer = app.user(*id).await.stripe_id.unwrap();
        app.stripe
            .set_default_card(&customer, "visa", &format!("424{n}"));
    }
    let check = app
        .run(&["stripe:sync-customers", "--check", "--json"])
        .await;
    let report = json_report(&check);
    let card_drift = report["drift"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "card_differs")
        .count();
    assert_eq!(card_drift, 4, "{report}");
    let writes = app.stripe.write_calls();

    let report = run_ok(
        &app,
        &["stripe:sync-customers", "--refresh", "--rate", "200"],
    )
    .await;

    assert_eq!(
        (report["refreshed"].as_u64(), report["skipped"].as_u64()),
        (Some(4), Some(1)),
        "{report}"
    );
    assert_eq!(app.stripe.write_calls(), writes, "refresh only reads");
    for (n, id) in ids[..4].iter().enumerate() {
        let user = app.user(*id).await;
        assert_eq!(user.pm_type.as_deref(), Some("visa"));
        assert_eq!(user.pm_last_four, Some(format!("424{n}")));
    }
    run_ok(&app, &["stripe:sync-customers", "--check"]).await;
}

#[tokio::test]
async fn refresh_reports_a_customer_missing_in_stripe_and_keeps_the_link() {
    let app = spawn_app().await;
    let ids = app.insert_users(2).await;
    link(&app, ids[0]).await;
    link(&app, ids[1]).await;
    let gone = app.user(ids[1]).await.stripe_id.unwrap();
    app.stripe.delete_customer(&gone);

    let output = app
        .run(&["stripe:sync-customers", "--refresh", "--json"])
        .await;

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json_report(&output);
    assert_eq!(
        (report["refreshed"].as_u64(), report["failed"].as_u64()),
        (Some(1), Some(1))
    );
    let reason = report["failures"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("does not exist in Stripe"), "{reason}");
    assert_eq!(
        app.user(ids[1]).await.stripe_id,
        Some(gone),
        "reported, not cleared"
    );
}

#[tokio::test]
async fn a_check_lists_the_first_100_cases_of_drift_and_counts_the_rest() {
    let app = spawn_app().await;
    let ids = app.insert_users(110).await;
    // Linked to customers Stripe never had: 110 dead ids.
    let dead: Vec<String> = ids.iter().map(|id| format!("cus_nevermade{id}")).collect();
    app.link_in_database(&ids, &dead).await;
    let args = ["stripe:sync-customers", "--check", "--rate", "200"];

    let output = app.run(&[&args[..], &["--json"]].concat()).await;

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json_report(&output);
    assert_eq!(report["found"], 110, "{report}");
    assert_eq!(report["unrepaired"], 110);
    assert_eq!(report["drift"].as_array().unwrap().len(), 100);
    assert_eq!(report["drift_not_listed"], 10);
    assert_eq!(report["drift"][0]["kind"], "dead_id");

    let output = app.run(&args).await;
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("110 links checked, 110 cases of drift"),
        "{text}"
    );
    assert_eq!(text.matches("cus_nevermade").count(), 100, "{text}");
    assert!(
        text.contains("… and 10 more cases of drift, not listed here"),
        "{text}"
    );
}

/// What a power loss leaves of a create whose link commit did not reach the
/// disk (SQLite's `synchronous=NORMAL` allows it): the claim's commit, the
/// idempotency key and parameters, a lease of the run that died, no link.
async fn lose_the_link_commit(app: &TestApp, user_id: i64, customer: &str) {
    let user = app.user(user_id).await;
    let key = app
        .stripe
        .creation_key_of(customer)
        .expect("made with a key");
    let params = stripe_sync::stripe::CustomerParams {
        name: user.name,
        email: user.email,
        fields: Default::default(),
    };
    let params = serde_json::to_string(&params).unwrap().replace('\'', "''");
    let lapsed = users::unix_ms(time::OffsetDateTime::now_utc()) - 1_000;
    app.execute(&format!(
        "UPDATE users SET stripe_id = NULL, pm_type = NULL, pm_last_four = NULL, \
         stripe_snapshot = NULL, stripe_snapshot_at = NULL, stripe_synced_hash = NULL, \
         stripe_synced_at = NULL, stripe_base = NULL, stripe_create_key = '{key}', \
         stripe_create_params = '{params}', stripe_lease_holder = 'a run the power took', \
         stripe_lease_expires = {lapsed} WHERE id = {user_id}"
    ))
    .await;
}

#[tokio::test]
async fn a_create_whose_link_commit_was_lost_is_linked_again_by_the_rerun() {
    let app = spawn_app().await;
    let ids = app.insert_users(3).await;
    run_ok(
        &app,
        &["stripe:sync-customers", "--create", "--rate", "100"],
    )
    .await;
    let customer = app.user(ids[1]).await.stripe_id.expect("linked");
    lose_the_link_commit(&app, ids[1], &customer).await;
    assert_eq!(app.user(ids[1]).await.stripe_id, None);

    let report = run_ok(
        &app,
        &["stripe:sync-customers", "--create", "--rate", "100"],
    )
    .await;

    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(
        report["created"].as_u64().unwrap() + report["relinked"].as_u64().unwrap(),
        1,
        "{report}"
    );
    assert_eq!(app.user(ids[1]).await.stripe_id, Some(customer));
    assert_eq!(app.stripe.customers().len(), 3, "no second customer");
    assert_one_linked_customer_per_user(&app, &ids).await;
}
