//! Rolling deploys and rollbacks: this release serves, and restarts, on a
//! database a newer release has migrated; `migrate` says where a database
//! stands; instances starting together apply each migration once.

use std::time::Duration;

use reqwest::StatusCode;
use stripe_sync::db::Db;
use stripe_sync::db::migrations::Schema;
use stripe_webhook::Webhook;

use crate::helpers::{Browser, TestApp, fresh_database_url, spawn_app, wait_until};

/// A migration no release of ours has made yet.
const NEWER: i64 = 29991231000001;
const WEBHOOK_SECRET: &str = "whsec_test_rollout";

/// What a newer release's migration leaves: its row in `_sqlx_migrations` and a
/// column on `users` and on `payments` this release does not know.
async fn migrate_as_a_newer_release(app: &TestApp) {
    let checksum = match app.db {
        Db::Postgres(_) => "'\\x00'::bytea",
        _ => "X'00'",
    };
    app.execute(&format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ({NEWER}, 'a newer release', TRUE, {checksum}, 1)"
    ))
    .await;
    app.add_user_columns(&[("newer_release_note", "VARCHAR(40) NULL")])
        .await;
    app.execute("ALTER TABLE payments ADD COLUMN newer_release_note VARCHAR(40) NULL")
        .await;
}

/// A `serve` process of this build on `database_url`, ready (its `/readyz`
/// answered 200); returns it with its address. It binds a port of its own
/// choosing (`BIND=127.0.0.1:0`, read back from its "listening on" line), so no
/// other test can take the port between a pick and the bind; one that exits
/// before it listens fails the test with what it printed.
async fn start_serve(app: &TestApp, database_url: &str) -> (tokio::process::Child, String) {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};

    let mut child = app
        .command(&["serve"])
        .env("DATABASE_URL", database_url)
        .env("BIND", "127.0.0.1:0")
        .env("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .spawn()
        .expect("serve starts");
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    let listening = async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            printed.push_str(&line);
            printed.push('\n');
            if let Some((_, rest)) = line.split_once("listening on ") {
                return rest.split_whitespace().next().map(str::to_string);
            }
        }
        None
    };
    let address = match tokio::time::timeout(Duration::from_secs(90), listening).await {
        Ok(Some(address)) => address,
        outcome => {
            let mut stderr = String::new();
            let mut pipe = child.stderr.take().unwrap();
            let _ = tokio::time::timeout(Duration::from_secs(5), pipe.read_to_string(&mut stderr))
                .await;
            let _ = child.kill().await;
            panic!(
                "serve did not listen ({}):\nstdout:\n{printed}\nstderr:\n{stderr}",
                match outcome {
                    Ok(_) => "it exited",
                    Err(_) => "90 s passed",
                }
            );
        }
    };
    // Keep reading what it prints, so a full pipe never stalls it.
    tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
    let mut stderr = child.stderr.take().unwrap();
    tokio::spawn(async move { tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await });
    let ready = || async {
        reqwest::get(format!("{address}/readyz"))
            .await
            .is_ok_and(|response| response.status() == StatusCode::OK)
    };
    wait_until("serve to be ready", Duration::from_secs(90), ready).await;
    (child, address)
}

#[tokio::test]
async fn this_release_serves_and_syncs_on_a_database_a_newer_release_migrated() {
    let app = spawn_app().await;
    migrate_as_a_newer_release(&app).await;

    let (mut serve, address) = start_serve(&app, &app.database_url).await;

    // The page and a create.
    let browser = Browser::at(&address);
    assert_eq!(
        browser.register("Ann", "ann@example.com").await.status(),
        StatusCode::SEE_OTHER
    );
    let page = browser.press("create").await;
    assert!(page.contains("cus_"), "{page}");
    let user = stripe_sync::db::users::find_by_email(&app.db, "ann@example.com")
        .await
        .unwrap()
        .expect("registered");
    let customer = user.stripe_id.clone().expect("linked");
    // A webhook.
    let payload = crate::helpers::webhooks::event(
        "evt_rollout_1",
        "customer.deleted",
        crate::helpers::webhooks::now(),
        serde_json::json!({"id": customer, "object": "customer", "deleted": true}),
    );
    let response = reqwest::Client::new()
        .post(format!("{address}/stripe/webhook"))
        .header("content-type", "application/json")
        .header(
            "stripe-signature",
            Webhook::generate_test_header(&payload, WEBHOOK_SECRET, None),
        )
        .body(payload)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.user(user.id).await.stripe_id, None, "the event applied");
    // A bulk run.
    app.insert_users(3).await;
    let output = app.run(&["stripe:sync-customers", "--create"]).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stripe_sync::db::users::count_linked(&app.db).await.unwrap(),
        4
    );
    // Said once, in words.
    let warning = crate::helpers::log_line_containing(&["newer than this release knows"]).await;
    assert!(warning.contains(&NEWER.to_string()), "{warning}");
    serve.kill().await.unwrap();
}

#[tokio::test]
async fn migrate_on_a_newer_schema_changes_nothing_and_says_so() {
    let app = spawn_app().await;
    migrate_as_a_newer_release(&app).await;
    let before = Schema::read(&app.db).await.unwrap();

    let output = app.run(&["migrate"]).await;

    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let known = before.known_newest();
    assert!(
        stdout.contains(&format!(
            "the database is at {NEWER}, newer than this release's {known}: nothing to do"
        )),
        "{stdout}"
    );
    let after = Schema::read(&app.db).await.unwrap();
    assert_eq!(
        format!("{after:?}"),
        format!("{before:?}"),
        "nothing changed"
    );
}

#[tokio::test]
async fn migrate_check_names_the_migrations_not_applied() {
    let app = spawn_app().await;
    let up_to_date = app.run(&["migrate", "--check"]).await;
    assert!(up_to_date.status.success(), "{up_to_date:?}");
    let newest = Schema::read(&app.db).await.unwrap().known_newest();

    // As if this release's newest migration had not run yet.
    app.execute(&format!(
        "DELETE FROM _sqlx_migrations WHERE version = {newest}"
    ))
    .await;
    let output = app.run(&["migrate", "--check"]).await;

    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("not applied: {newest}")),
        "{stdout}"
    );
    assert!(
        Schema::read(&app.db).await.unwrap().pending().len() == 1,
        "--check applied nothing"
    );
}

#[tokio::test]
async fn three_instances_starting_at_once_apply_each_migration_once() {
    let app = spawn_app().await;
    let fresh = fresh_database_url().await;

    let (a, b, c) = tokio::join!(
        start_serve(&app, &fresh),
        start_serve(&app, &fresh),
        start_serve(&app, &fresh)
    );

    let db = Db::connect(&fresh).await.unwrap();
    let schema = Schema::read(&db).await.unwrap();
    assert!(schema.pending().is_empty(), "{schema:?}");
    assert_eq!(schema.newer_than_release(), None);
    for (mut serve, address) in [a, b, c] {
        let html = Browser::at(&address).page("/login").await;
        assert!(html.contains("Sign in"), "{address}");
        serve.kill().await.unwrap();
    }
}

#[tokio::test]
async fn version_names_the_release_and_its_newest_migration() {
    let app = spawn_app().await;

    let output = app.run(&["--version"]).await;

    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let newest = stripe_sync::db::migrations::release_newest();
    assert!(
        stdout.contains(&format!(
            "{} (newest migration {newest})",
            env!("CARGO_PKG_VERSION")
        )),
        "{stdout}"
    );
}
