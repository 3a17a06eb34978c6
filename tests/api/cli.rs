//! The binary's commands, run as an operator would.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use reqwest::StatusCode;
use stripe_sync::db::users;

use crate::helpers::{fresh_database_url, log_dir, spawn_app};

fn stripe_sync(database_url: &str, args: &[&str], stdin: &str) -> Output {
    let app_key = base64::engine::general_purpose::STANDARD.encode([9u8; 64]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_stripe-sync"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("APP_KEY", app_key)
        .env("LOG_DIR", log_dir())
        .env_remove("STRIPE_SECRET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn help_lists_the_commands() {
    let output = stripe_sync("sqlite::memory:", &["--help"], "");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for command in ["serve", "migrate", "user:create"] {
        assert!(text.contains(command), "{command}");
    }
}

#[tokio::test]
async fn migrate_applies_the_migrations_and_exits() {
    let url = fresh_database_url().await;
    let output = stripe_sync(&url, &["migrate"], "");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("migrations applied"));
}

#[tokio::test]
async fn user_create_makes_a_login_that_can_sign_in() {
    let app = spawn_app().await;
    let args = [
        "user:create",
        "--email",
        "Op@Example.com",
        "--name",
        "Operator",
        "--password-stdin",
    ];

    let output = stripe_sync(&app.database_url, &args, "a-long-password\n");

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let user = users::find_by_email(&app.db, "op@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.name, "Operator");
    let response = app
        .browser()
        .login("op@example.com", "a-long-password")
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn user_create_refuses_bad_input_with_exit_code_2_and_creates_nothing() {
    let app = spawn_app().await;
    let cases: [(&[&str], &str, &str); 3] = [
        (
            &["--email", "op@example.com", "--name", "Op"],
            "short\n",
            "at least 8 characters",
        ),
        (
            &["--email", "not-an-email", "--name", "Op"],
            "a-long-password\n",
            "valid email",
        ),
        (
            &["--email", "op@example.com", "--name", " "],
            "a-long-password\n",
            "Name is required",
        ),
    ];
    for (fields, password, message) in cases {
        let mut args = vec!["user:create", "--password-stdin"];
        args.extend_from_slice(fields);

        let output = stripe_sync(&app.database_url, &args, password);

        assert_eq!(output.status.code(), Some(2), "{message}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(message),
            "{message}"
        );
    }
    assert!(
        users::find_by_email(&app.db, "op@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn user_create_refuses_an_email_that_exists() {
    let app = spawn_app().await;
    app.signed_in_user("Ann", "ann@example.com").await;
    let args = [
        "user:create",
        "--email",
        "ann@example.com",
        "--name",
        "Ann 2",
        "--password-stdin",
    ];

    let output = stripe_sync(&app.database_url, &args, "a-long-password\n");

    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));
}
