//! The page shows the last snapshot and never calls Stripe itself.

use crate::helpers::{StripeSetup, spawn_app, spawn_app_with};

#[tokio::test]
async fn showing_the_page_makes_no_stripe_call() {
    let app = spawn_app().await;
    let (browser, _) = app.signed_in_user("Ann", "ann@example.com").await;
    browser.press("create").await;
    let calls = app.stripe.total_calls();

    for _ in 0..3 {
        browser.page("/settings/stripe").await;
    }

    assert_eq!(app.stripe.total_calls(), calls);
}

#[tokio::test]
async fn a_linked_customer_shows_side_by_side_with_the_time_it_was_pulled() {
    let app = spawn_app().await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;

    let html = browser.press("create").await;

    let stripe_id = app.user(user_id).await.stripe_id.unwrap();
    assert!(html.contains("Status: <strong>Linked</strong>"));
    assert_eq!(
        html.matches(&format!("<td>{stripe_id}</td>")).count(),
        2,
        "local and Stripe column"
    );
    assert!(html.contains("as pulled"));
    assert!(html.contains("just now"));
    assert!(!html.contains("class=\"differs\""));
    for button in [
        "Update (push what changed here)",
        "Refresh (pull from Stripe)",
        "Delete customer",
    ] {
        assert!(html.contains(button), "{button}");
    }
    assert!(!html.contains("Create Stripe customer"));
}

#[tokio::test]
async fn a_local_change_not_yet_pushed_is_marked_as_differing() {
    let app = spawn_app().await;
    let (browser, _) = app.signed_in_user("Ann", "ann@example.com").await;
    browser.press("create").await;
    browser
        .post_form(
            "/settings/profile",
            &[("name", "Ann Renamed"), ("email", "ann@example.com")],
        )
        .await;

    let html = browser.page("/settings/stripe").await;

    assert_eq!(
        html.matches("class=\"differs\"").count(),
        1,
        "only the name differs"
    );
    assert!(html.contains("<span class=\"badge\">changed here</span>"));
}

#[tokio::test]
async fn an_unlinked_user_sees_only_the_create_button() {
    let app = spawn_app().await;
    let (browser, _) = app.signed_in_user("Ann", "ann@example.com").await;

    let html = browser.page("/settings/stripe").await;

    assert!(html.contains("Status: <strong>Not linked</strong>"));
    assert!(html.contains("Create Stripe customer"));
    assert!(!html.contains("Delete customer"));
}

#[tokio::test]
async fn without_stripe_keys_the_page_says_so_and_disables_the_buttons() {
    let app = spawn_app_with(StripeSetup::Unconfigured).await;
    let (browser, _) = app.signed_in_user("Ann", "ann@example.com").await;

    let html = browser.page("/settings/stripe").await;

    assert!(html.contains("Stripe is not configured"));
    assert!(html.contains("disabled>Create Stripe customer"));
}

#[tokio::test]
async fn names_are_escaped_on_the_page() {
    let app = spawn_app().await;
    let (browser, _) = app
        .signed_in_user("<script>alert(1)</script>", "ann@example.com")
        .await;

    let html = browser.page("/settings/stripe").await;

    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"));
}

#[tokio::test]
async fn delete_asks_for_confirmation_on_a_page_of_its_own() {
    let app = spawn_app().await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    browser.press("create").await;
    let stripe_id = app.user(user_id).await.stripe_id.unwrap();

    let page = browser.page("/settings/stripe").await;
    assert!(
        page.contains("href=\"/settings/stripe/delete\""),
        "Delete is a link to a confirm step"
    );
    let confirm = browser.page("/settings/stripe/delete").await;

    assert!(confirm.contains(&stripe_id));
    assert!(confirm.contains("Yes, delete the customer"));
    assert!(
        !app.stripe.customer(&stripe_id).unwrap().deleted,
        "asking deletes nothing"
    );
}

#[tokio::test]
async fn the_delete_confirmation_sends_an_unlinked_user_back() {
    let app = spawn_app().await;
    let (browser, _) = app.signed_in_user("Ann", "ann@example.com").await;

    let response = browser.get("/settings/stripe/delete").await;

    assert!(response.status().is_redirection());
}
