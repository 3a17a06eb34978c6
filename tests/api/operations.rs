//! What operators and load balancers rely on: liveness and readiness, the favicon,
//! the systemd units in deploy/, and help that names every setting.

use reqwest::StatusCode;
use sqlx::Connection as _;
use stripe_sync::db::Db;

use crate::helpers::{Needs, TestApp, skip_without, spawn_app};

#[tokio::test]
async fn readyz_says_ready_while_the_database_answers() {
    let app = spawn_app().await;

    let response = app.browser().get("/readyz").await;

    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn readyz_turns_503_when_the_database_is_gone_while_healthz_stays_200() {
    let app = spawn_app().await;

    lose_the_database(&app).await;

    assert_eq!(app.browser().get("/readyz").await.status(), 503);
    assert_eq!(app.browser().get("/healthz").await.status(), 200);
}

/// PostgreSQL: the database is dropped under the app. SQLite, whose file cannot
/// be taken from an open connection, and MySQL, whose open connections still
/// answer `SELECT 1` without their database: the pool is closed.
async fn lose_the_database(app: &TestApp) {
    match &app.db {
        Db::Postgres(pool) => {
            let name = app.database_url.rsplit('/').next().unwrap().to_string();
            let server = std::env::var("DATABASE_URL").expect("the suite's postgres url");
            let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
            sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .unwrap();
            // Connections the pool kept were ended by the drop; new ones fail.
            let _ = pool.acquire().await;
        }
        Db::Sqlite(pool) => pool.close().await,
        Db::Mysql(pool) => pool.close().await,
    }
}

#[tokio::test]
async fn the_favicon_is_an_image_served_with_cache_headers() {
    let app = spawn_app().await;

    let response = app.browser().get("/favicon.ico").await;

    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("image/")
    );
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    assert!(response.text().await.unwrap().starts_with("<svg"));
}

#[tokio::test]
async fn the_systemd_units_in_deploy_verify() {
    if skip_without(Needs::SystemdAnalyze) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("stripe-sync-units-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let mut units = Vec::new();
    for entry in std::fs::read_dir(&deploy).unwrap().flatten() {
        if !entry.path().is_file() {
            continue; // deploy/prometheus/
        }
        // The units name the installed binary; verify checks it exists, so point
        // them at the one this build made.
        let text = std::fs::read_to_string(entry.path()).unwrap().replace(
            "/usr/local/bin/stripe-sync",
            env!("CARGO_BIN_EXE_stripe-sync"),
        );
        let unit = dir.join(entry.file_name());
        std::fs::write(&unit, text).unwrap();
        units.push(unit);
    }
    assert!(
        units.len() >= 5,
        "serve, the sync and replay services and their timers"
    );

    let output = tokio::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .args(&units)
        .output()
        .await
        .unwrap();

    let said = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success() && said.trim().is_empty(), "{said}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn serve_help_names_every_setting_with_its_default() {
    let app = spawn_app().await;

    let output = app.run(&["serve", "--help"]).await;

    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example")).unwrap();
    let settings: Vec<&str> = example
        .lines()
        .filter_map(|line| line.split_once('=').map(|(name, _)| name))
        .filter(|name| !name.starts_with('#') && !name.is_empty())
        .collect();
    assert!(settings.contains(&"DATABASE_URL") && settings.contains(&"STRIPE_SECRET"));
    for setting in settings {
        assert!(
            help.contains(setting),
            "serve --help does not name {setting}:\n{help}"
        );
    }
    assert!(help.contains("sqlite://storage/app.db"), "{help}");
}

#[tokio::test]
async fn every_command_s_long_help_has_examples_and_the_settings() {
    let app = spawn_app().await;

    for &command in crate::helpers::COMMANDS {
        let output = app.run(&[command, "--help"]).await;

        let help = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{command}");
        assert!(help.contains("Example"), "{command}:\n{help}");
        assert!(help.contains("DATABASE_URL"), "{command}:\n{help}");
    }
}
