//! The binary's commands, run as an operator would.

use reqwest::StatusCode;
use stripe_sync::db::users;

use crate::helpers::{fresh_database_url, spawn_app};

#[tokio::test]
async fn help_lists_the_commands() {
    let app = spawn_app().await;
    let output = app.run(&["--help"]).await;
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for &command in crate::helpers::COMMANDS {
        assert!(text.contains(command), "{command}");
    }
}

#[tokio::test]
async fn migrate_applies_the_migrations_and_exits() {
    let app = spawn_app().await;
    let fresh = fresh_database_url().await;

    let output = app
        .command(&["migrate"])
        .env("DATABASE_URL", &fresh)
        .output()
        .await
        .unwrap();

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("migrations applied"));
    let db = stripe_sync::db::Db::connect(&fresh).await.unwrap();
    assert_eq!(
        users::count(&db).await.unwrap(),
        0,
        "the users table exists"
    );
}

#[tokio::test]
async fn a_mysql_url_without_its_database_is_refused_before_connecting() {
    let app = spawn_app().await;
    // Port 1: nothing listens there, so only a check made before connecting passes.
    for url in [
        "mysql://root:s3cret@127.0.0.1:1",
        "mariadb://root:s3cret@127.0.0.1:1/",
    ] {
        let output = app
            .command(&["migrate"])
            .env("DATABASE_URL", url)
            .output()
            .await
            .unwrap();

        assert!(!output.status.success(), "{url}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("must name its database"), "{stderr}");
        assert!(!stderr.contains("s3cret"), "{stderr}");
    }
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

    let output = app.run_with_input(&args, "a-long-password\n").await;

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

        let output = app.run_with_input(&args, password).await;

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

    let output = app.run_with_input(&args, "a-long-password\n").await;

    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));
}

#[tokio::test]
async fn a_laravel_app_key_is_accepted_and_a_short_one_is_refused() {
    use base64::Engine as _;
    let app = spawn_app().await;
    let encode = |bytes: usize| {
        let key = base64::engine::general_purpose::STANDARD.encode(vec![3u8; bytes]);
        format!("base64:{key}")
    };

    let laravel = app
        .command(&["migrate"])
        .env("APP_KEY", encode(32))
        .output()
        .await
        .unwrap();
    let short = app
        .command(&["migrate"])
        .env("APP_KEY", encode(31))
        .output()
        .await
        .unwrap();

    assert_eq!(laravel.status.code(), Some(0));
    assert_eq!(short.status.code(), Some(2));
    let said = String::from_utf8_lossy(&short.stderr);
    assert!(
        said.contains("APP_KEY must be base64 of at least 32 random bytes"),
        "{said}"
    );
    assert!(!said.contains(&encode(31)), "the key is never echoed");
}

/// A folder of its own under the system's temporary folder.
fn scratch_dir(label: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("stripe-sync-{label}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn a_sqlite_file_in_a_missing_folder_is_refused_and_no_folder_is_made() {
    let app = spawn_app().await;
    let dir = scratch_dir("missing");
    let url = format!("sqlite://{}/no/such/folder/app.db", dir.display());

    let output = app
        .command(&["migrate"])
        .env("DATABASE_URL", &url)
        .output()
        .await
        .unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(!dir.join("no").exists(), "no folder was made");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_sqlite_url_with_a_password_is_refused_and_never_becomes_a_folder() {
    let app = spawn_app().await;
    let dir = scratch_dir("userinfo");

    let output = app
        .command(&["migrate"])
        .env("DATABASE_URL", "sqlite://u:Secret@/x.db")
        .current_dir(&dir)
        .output()
        .await
        .unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("takes no user or password"), "{stderr}");
    assert!(!stderr.contains("Secret"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert!(left.is_empty(), "created {left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn a_new_sqlite_database_and_its_wal_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let app = spawn_app().await;
    let dir = scratch_dir("mode");
    let file = dir.join("app.db");
    let url = format!("sqlite://{}", file.display());

    let db = stripe_sync::db::Db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();

    for path in [file.clone(), dir.join("app.db-wal"), dir.join("app.db-shm")] {
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
    drop((db, app));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_live_key_is_never_sent_to_a_plain_http_base_every_command_refuses_to_start() {
    let app = spawn_app().await;
    let live = "sk_live_never_printed_0123456789";

    let commands: [&[&str]; 7] = [
        &["serve"],
        &["migrate"],
        &["user:create", "--email", "op@example.com", "--name", "Op"],
        &["stripe:sync-customers"],
        &["stripe:replay-events"],
        &[
            "stripe:webhook",
            "--url",
            "https://app.example.com/stripe/webhook",
        ],
        &["runs"],
    ];
    assert_eq!(
        commands.len(),
        crate::helpers::COMMANDS.len(),
        "every command"
    );
    for command in commands {
        for key in [live, "rk_live_never_printed_0123456789"] {
            let output = app
                .command(command)
                .env("STRIPE_SECRET", key)
                .env("STRIPE_API_BASE", "http://stripe.example.invalid")
                .output()
                .await
                .unwrap();

            assert_eq!(output.status.code(), Some(2), "{command:?}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(stderr.trim().lines().count(), 1, "{command:?}: {stderr}");
            assert!(stderr.contains("live key"), "{stderr}");
            assert!(
                !stderr.contains("never_printed"),
                "the key is never printed"
            );
        }
    }
    // A test key may go anywhere (a stand-in on another host of a test network).
    let output = app
        .command(&["migrate"])
        .env("STRIPE_API_BASE", "http://stripe.example.invalid")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
}
