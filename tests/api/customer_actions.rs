//! Update, refresh, delete and re-create, and what a person is told when they fail.

use crate::helpers::{PASSWORD, log_line_containing, spawn_app};
use crate::stripe_fake::Fault;

#[tokio::test]
async fn update_pushes_the_local_name_and_email_to_stripe() {
    let app = spawn_app().await;
    let (browser, user_id, stripe_id) = app.linked_user().await;
    browser
        .post_form(
            "/settings/profile",
            &[
                ("name", "Ann Updated"),
                ("email", "ann.new@example.com"),
                ("current_password", PASSWORD),
            ],
        )
        .await;

    let html = browser.press("update").await;

    assert!(html.contains("Sent to Stripe: name, email."), "{html}");
    let customer = app.stripe.customer(&stripe_id).unwrap();
    assert_eq!(customer.name.as_deref(), Some("Ann Updated"));
    assert_eq!(customer.email.as_deref(), Some("ann.new@example.com"));
    assert_eq!(
        app.user(user_id).await.stripe_id.as_deref(),
        Some(stripe_id.as_str())
    );
}

#[tokio::test]
async fn refresh_pulls_the_default_card_into_pm_type_and_pm_last_four() {
    let app = spawn_app().await;
    let (browser, user_id, stripe_id) = app.linked_user().await;
    app.stripe.set_default_card(&stripe_id, "visa", "4242");
    app.stripe.rename_customer(&stripe_id, "Ann From Dashboard");

    let html = browser.press("refresh").await;

    assert!(html.contains("Pulled the latest data from Stripe."));
    let user = app.user(user_id).await;
    assert_eq!(user.pm_type.as_deref(), Some("visa"));
    assert_eq!(user.pm_last_four.as_deref(), Some("4242"));
    assert!(user.stripe_snapshot_at.is_some());
    assert!(html.contains("Ann From Dashboard"));
    assert_eq!(
        user.name, "Ann From Dashboard",
        "a name changed only in Stripe is taken into the local column"
    );
}

#[tokio::test]
async fn refresh_without_a_default_card_clears_the_pm_columns() {
    let app = spawn_app().await;
    let (browser, user_id, stripe_id) = app.linked_user().await;
    app.stripe.set_default_card(&stripe_id, "visa", "4242");
    browser.press("refresh").await;
    app.stripe.clear_default_card(&stripe_id);

    browser.press("refresh").await;

    let user = app.user(user_id).await;
    assert_eq!(user.pm_type, None);
    assert_eq!(user.pm_last_four, None);
}

#[tokio::test]
async fn delete_removes_the_customer_in_stripe_and_clears_the_local_columns() {
    let app = spawn_app().await;
    let (browser, user_id, stripe_id) = app.linked_user().await;
    app.stripe.set_default_card(&stripe_id, "visa", "4242");
    browser.press("refresh").await;

    let html = browser.press("delete").await;

    assert!(html.contains("Stripe customer deleted."));
    assert!(app.stripe.customer(&stripe_id).unwrap().deleted);
    let user = app.user(user_id).await;
    assert_eq!(user.stripe_id, None);
    assert_eq!(user.pm_type, None);
    assert_eq!(user.pm_last_four, None);
    assert_eq!(user.stripe_snapshot, None);
    assert!(html.contains("Create Stripe customer"));
}

#[tokio::test]
async fn deleting_a_customer_stripe_no_longer_has_clears_the_link_and_says_so() {
    let app = spawn_app().await;
    let (browser, user_id, stripe_id) = app.linked_user().await;
    app.stripe.delete_customer(&stripe_id);

    let html = browser.press("delete").await;

    assert!(html.contains("no longer existed in Stripe"));
    assert_eq!(app.user(user_id).await.stripe_id, None);
}

#[tokio::test]
async fn a_customer_deleted_in_stripe_is_reported_and_can_be_re_created() {
    let app = spawn_app().await;
    let (browser, user_id, stripe_id) = app.linked_user().await;
    app.stripe.delete_customer(&stripe_id);

    let html = browser.press("refresh").await;

    assert!(html.contains("Customer does not exist in Stripe"));
    assert!(html.contains("Missing in Stripe"));
    assert!(html.contains("Re-create customer"));
    assert_eq!(
        app.user(user_id).await.stripe_id.as_deref(),
        Some(stripe_id.as_str())
    );

    let html = browser.press("recreate").await;

    let user = app.user(user_id).await;
    let new_id = user.stripe_id.expect("linked again");
    assert_ne!(new_id, stripe_id);
    assert!(html.contains(&format!("Stripe customer {new_id} created.")));
    let live = app.stripe.customers();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].metadata.get("user_id"), Some(&user_id.to_string()));
}

#[tokio::test]
async fn updating_a_customer_stripe_no_longer_has_offers_re_create() {
    let app = spawn_app().await;
    let (browser, _, stripe_id) = app.linked_user().await;
    app.stripe.delete_customer(&stripe_id);
    browser
        .post_form(
            "/settings/profile",
            &[("name", "Ann Renamed"), ("email", "ann@example.com")],
        )
        .await;

    let html = browser.press("update").await;

    assert!(html.contains("Customer does not exist in Stripe"));
    assert!(html.contains("Re-create customer"));
}

#[tokio::test]
async fn re_create_refuses_while_the_customer_still_exists() {
    let app = spawn_app().await;
    let (browser, user_id, stripe_id) = app.linked_user().await;

    let response = browser.post_form("/settings/stripe/recreate", &[]).await;
    assert!(response.status().is_redirection());
    let html = browser.page("/settings/stripe").await;

    assert!(html.contains("still exists"));
    assert_eq!(app.user(user_id).await.stripe_id, Some(stripe_id));
    assert_eq!(app.stripe.customers().len(), 1);
}

#[tokio::test]
async fn actions_without_a_customer_say_no_stripe_customer_found() {
    let app = spawn_app().await;
    let (browser, _) = app.signed_in_user("Ann", "ann@example.com").await;

    for action in ["update", "refresh", "delete"] {
        let html = browser.press(action).await;
        assert!(html.contains("No Stripe customer found"), "{action}");
        assert!(html.contains("Create Stripe customer"), "{action}");
    }
    assert_eq!(app.stripe.total_calls(), 0);
}

#[tokio::test]
async fn stripe_500_gives_a_friendly_message_a_logged_request_id_and_no_change() {
    let app = spawn_app().await;
    let (browser, user_id, stripe_id) = app.linked_user().await;
    browser
        .post_form(
            "/settings/profile",
            &[("name", "Ann Two"), ("email", "ann@example.com")],
        )
        .await;
    let before = app.user(user_id).await;
    app.stripe.push_faults(10, Fault::Status(500));

    let html = browser.press("update").await;

    assert!(html.contains("Stripe is unavailable, nothing was changed."));
    assert!(
        !html.contains("Injected failure"),
        "Stripe's internal text stays in the log"
    );
    let after = app.user(user_id).await;
    assert_eq!(after.stripe_id, before.stripe_id);
    assert_eq!(after.stripe_snapshot, before.stripe_snapshot);
    assert_eq!(
        app.stripe.customer(&stripe_id).unwrap().name.as_deref(),
        Some("Ann")
    );
    let request_id = app.stripe.last_request_id().unwrap();
    let line = log_line_containing(&[
        &request_id,
        "update customer",
        &format!("user_id={user_id}"),
    ])
    .await;
    assert!(line.contains("ERROR"), "{line}");
}

#[tokio::test]
async fn a_user_only_ever_sees_and_changes_their_own_customer() {
    let app = spawn_app().await;
    let (ann, ann_id, ann_customer) = app.linked_user().await;
    let (bob, bob_id) = app.signed_in_user("Bob", "bob@example.com").await;

    let bob_page = bob.page("/settings/stripe").await;
    assert!(!bob_page.contains(&ann_customer));
    assert!(!bob_page.contains("ann@example.com"));
    // Bob's delete acts on Bob (who has no customer), never on Ann.
    let html = bob.press("delete").await;
    assert!(html.contains("No Stripe customer found"));
    assert!(!app.stripe.customer(&ann_customer).unwrap().deleted);
    assert_eq!(app.user(ann_id).await.stripe_id, Some(ann_customer.clone()));
    assert_eq!(app.user(bob_id).await.stripe_id, None);
    assert!(ann.page("/settings/stripe").await.contains(&ann_customer));
}
