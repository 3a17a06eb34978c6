use reqwest::StatusCode;

use crate::helpers::{PASSWORD, body, location, spawn_app};

#[tokio::test]
async fn saving_the_profile_changes_name_and_email() {
    let app = spawn_app().await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;

    let response = browser
        .post_form(
            "/settings/profile",
            &[
                ("name", "Ann B"),
                ("email", "Ann.B@Example.com"),
                ("current_password", PASSWORD),
            ],
        )
        .await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/settings/profile");
    assert!(
        browser
            .page("/settings/profile")
            .await
            .contains("Profile saved.")
    );
    let user = app.user(user_id).await;
    assert_eq!(user.name, "Ann B");
    assert_eq!(user.email, "ann.b@example.com");
}

#[tokio::test]
async fn a_bad_profile_field_says_why_and_changes_nothing() {
    let app = spawn_app().await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;

    let response = browser
        .post_form("/settings/profile", &[("name", "Ann B"), ("email", "ann@")])
        .await;

    assert!(
        body(response, StatusCode::UNPROCESSABLE_ENTITY)
            .await
            .contains("Enter a valid email address")
    );
    let user = app.user(user_id).await;
    assert_eq!(
        (user.name.as_str(), user.email.as_str()),
        ("Ann", "ann@example.com")
    );
}

#[tokio::test]
async fn an_email_used_by_another_account_is_refused() {
    let app = spawn_app().await;
    app.signed_in_user("Bob", "bob@example.com").await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;

    let response = browser
        .post_form(
            "/settings/profile",
            &[
                ("name", "Ann"),
                ("email", "bob@example.com"),
                ("current_password", PASSWORD),
            ],
        )
        .await;

    assert!(
        body(response, StatusCode::UNPROCESSABLE_ENTITY)
            .await
            .contains("already used by another account")
    );
    assert_eq!(app.user(user_id).await.email, "ann@example.com");
}
