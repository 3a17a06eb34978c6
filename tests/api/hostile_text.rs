//! Text no form field should carry (NUL and other control characters, direction
//! controls left unbalanced) is refused on every form with 422 and the field's
//! name, and nothing is stored.

use reqwest::StatusCode;

use crate::helpers::{PASSWORD, body, count, spawn_app};

/// What an attacker pastes: a NUL (PostgreSQL refuses it in text, as a 500 once),
/// an escape, and a right-to-left override that makes `gpj.exe` read `exe.jpg`.
const HOSTILE: [&str; 3] = ["Ann\0", "Ann\u{1b}[31m", "Ann\u{202E}gpj.exe"];

#[tokio::test]
async fn registration_refuses_hostile_names_and_emails_and_makes_no_account() {
    let app = spawn_app().await;
    let browser = app.browser();

    for (n, hostile) in HOSTILE.iter().enumerate() {
        let email = format!("ann{n}@example.com");
        let named = browser.register(hostile, &email).await;
        assert!(
            body(named, StatusCode::UNPROCESSABLE_ENTITY)
                .await
                .contains("Name ")
        );
        let mailed = browser
            .register("Ann", &format!("{hostile}@example.com"))
            .await;
        assert!(
            body(mailed, StatusCode::UNPROCESSABLE_ENTITY)
                .await
                .contains("Email ")
        );
    }

    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM users").await, 0);
}

#[tokio::test]
async fn the_profile_refuses_hostile_names_and_keeps_the_old_ones() {
    let app = spawn_app().await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;

    for hostile in HOSTILE {
        let response = browser
            .post_form(
                "/settings/profile",
                &[("name", hostile), ("email", "ann@example.com")],
            )
            .await;

        assert!(
            body(response, StatusCode::UNPROCESSABLE_ENTITY)
                .await
                .contains("Name ")
        );
    }
    assert_eq!(app.user(user_id).await.name, "Ann");
}

#[tokio::test]
async fn a_job_with_hostile_text_is_refused_naming_the_field_and_not_stored() {
    let app = spawn_app().await;
    let (browser, _) = app.signed_in_user("Ann", "ann@example.com").await;
    let description = "Build the payments platform in Rust, with tests.";

    for (field, label) in [
        ("title", "Title "),
        ("company", "Company "),
        ("description", "Description "),
    ] {
        for hostile in HOSTILE {
            let padded = format!("{hostile} and more text to pass the length check");
            let mut fields = vec![
                ("form_token", "6f1c4c7e-2a55-4c7b-9a56-0e4f8f5d2b11"),
                ("title", "Senior Rust Engineer"),
                ("company", "Ferris Inc."),
                ("description", description),
            ];
            for entry in &mut fields {
                if entry.0 == field {
                    entry.1 = &padded;
                }
            }
            let response = browser.post_form("/jobs/new", &fields).await;

            assert!(
                body(response, StatusCode::UNPROCESSABLE_ENTITY)
                    .await
                    .contains(label)
            );
        }
    }
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM job_postings").await, 0);
    // Line breaks are what a description is made of.
    let multi_line = format!("{description}\r\nSecond paragraph.");
    let response = browser
        .post_form(
            "/jobs/new",
            &[
                ("form_token", "6f1c4c7e-2a55-4c7b-9a56-0e4f8f5d2b11"),
                ("title", "Senior Rust Engineer"),
                ("company", "Ferris Inc."),
                ("description", &multi_line),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_sign_in_with_a_nul_in_the_email_is_refused_not_an_error() {
    let app = spawn_app().await;
    let browser = app.browser();

    let response = browser
        .post_form(
            "/login",
            &[("email", "ann\0@example.com"), ("password", PASSWORD)],
        )
        .await;

    assert!(
        body(response, StatusCode::UNPROCESSABLE_ENTITY)
            .await
            .contains("Email ")
    );
}
