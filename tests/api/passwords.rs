//! Changing a password on `/settings/profile`, and an operator's `user:password`.

use reqwest::StatusCode;

use crate::helpers::{Browser, PASSWORD, TestApp, location, logs_hold, spawn_app};

/// In the log check's list of secrets (`scripts/test`), like [`PASSWORD`].
const NEW_PASSWORD: &str = "a-long-password";

async fn change(browser: &Browser, current: &str, new: &str) -> reqwest::Response {
    browser
        .post_form(
            "/settings/password",
            &[
                ("current_password", current),
                ("password", new),
                ("password_confirmation", new),
            ],
        )
        .await
}

/// Whether `browser` is still signed in (a page behind sign-in answers).
async fn signed_in(browser: &Browser) -> bool {
    let response = browser.get("/settings/stripe").await;
    match response.status() {
        StatusCode::OK => true,
        _ => {
            assert!(location(&response).starts_with("/login"), "{response:?}");
            false
        }
    }
}

async fn password_hash(app: &TestApp, user_id: i64) -> String {
    app.user(user_id).await.password_hash
}

#[tokio::test]
async fn changing_the_password_keeps_this_session_under_a_new_id_and_ends_every_other() {
    let app = spawn_app().await;
    let (ann, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    let other = app.browser();
    assert_eq!(
        other.login("ann@example.com", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let before = ann.cookie("stripe_sync_session").expect("a session");

    let response = change(&ann, PASSWORD, NEW_PASSWORD).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/settings/profile");
    let page = ann.page("/settings/profile").await;
    assert!(page.contains("Password changed."), "{page}");
    assert_ne!(
        ann.cookie("stripe_sync_session").expect("a session"),
        before,
        "the session id was cycled"
    );
    assert!(signed_in(&ann).await, "this session goes on");
    assert!(!signed_in(&other).await, "the other session is signed out");
    assert!(password_hash(&app, user_id).await.starts_with("$argon2id$"));
    let stranger = app.browser();
    assert_eq!(
        stranger.login("ann@example.com", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        stranger
            .login("ann@example.com", NEW_PASSWORD)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert!(
        !logs_hold(NEW_PASSWORD).await,
        "no log line holds the password"
    );
}

#[tokio::test]
async fn a_wrong_current_password_is_refused_and_counted_across_instances() {
    let app = spawn_app().await;
    let second = app.another_instance(|_| {}).await;
    let (ann, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    let elsewhere = second.browser();
    elsewhere.login("ann@example.com", PASSWORD).await;
    let hash = password_hash(&app, user_id).await;

    for (n, browser) in [&ann, &elsewhere, &ann, &elsewhere, &ann]
        .into_iter()
        .enumerate()
    {
        let response = change(browser, &format!("wrong-guess-{n}"), NEW_PASSWORD).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "try {n}"
        );
        let page = response.text().await.unwrap();
        assert!(page.contains("current password is not right"), "{page}");
    }
    let sixth = change(&elsewhere, PASSWORD, NEW_PASSWORD).await;

    assert_eq!(sixth.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(sixth.headers().contains_key("retry-after"));
    assert!(sixth.text().await.unwrap().contains("Too many"));
    assert_eq!(password_hash(&app, user_id).await, hash, "nothing changed");
    assert!(signed_in(&ann).await && signed_in(&elsewhere).await);
}

#[tokio::test]
async fn a_new_password_that_breaks_the_rules_is_refused_in_words_and_not_counted() {
    let app = spawn_app().await;
    let (ann, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    let hash = password_hash(&app, user_id).await;

    for _ in 0..6 {
        let response = ann
            .post_form(
                "/settings/password",
                &[
                    ("current_password", PASSWORD),
                    ("password", NEW_PASSWORD),
                    ("password_confirmation", "a-long-passwort"),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(response.text().await.unwrap().contains("do not match"));
    }
    let short = change(&ann, PASSWORD, "short").await;
    assert!(
        short
            .text()
            .await
            .unwrap()
            .contains("at least 8 characters")
    );
    assert_eq!(password_hash(&app, user_id).await, hash);

    let response = change(&ann, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "refusals before any hashing are not counted"
    );
}

#[tokio::test]
async fn user_password_sets_it_signs_the_user_out_and_refuses_an_unknown_email() {
    let app = spawn_app().await;
    let (ann, user_id) = app.signed_in_user("Ann", "ann@example.com").await;

    let output = app
        .run_with_input(
            &[
                "user:password",
                "--email",
                "Ann@Example.com",
                "--password-stdin",
            ],
            &format!("{NEW_PASSWORD}\n"),
        )
        .await;

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "password set for user {user_id} <ann@example.com>"
        )),
        "{stdout}"
    );
    assert!(!signed_in(&ann).await, "signed out everywhere");
    assert_eq!(
        app.browser()
            .login("ann@example.com", NEW_PASSWORD)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );

    let hash = password_hash(&app, user_id).await;
    for (email, input, says) in [
        (
            "bob@example.com",
            "another-long-one\n",
            "no user has email bob@example.com",
        ),
        ("ann@example.com", "short\n", "at least 8 characters"),
    ] {
        let output = app
            .run_with_input(
                &["user:password", "--email", email, "--password-stdin"],
                input,
            )
            .await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
    assert_eq!(password_hash(&app, user_id).await, hash, "nothing changed");
    assert!(!logs_hold(NEW_PASSWORD).await);
}
