//! What an operator greps: the log file of a real `serve` process after a user's
//! session, read as text. No terminal colours, each field once per span, no
//! ERROR for routine events, every line about a user carrying `user_id=`, and the
//! README's grep examples finding what they promise.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use stripe_sync::db::users;
use stripe_webhook::Webhook;

use crate::helpers::webhooks::{event, now};
use crate::helpers::{Browser, TestApp, spawn_app, wait_until};
use crate::stripe_fake::Fault;

const WEBHOOK_SECRET: &str = "whsec_log_lines";

#[tokio::test]
async fn the_log_file_is_plain_text_with_each_field_once_and_no_false_errors() {
    for rust_log in [None, Some("info")] {
        let (dir, user_id) = session_logged_with(rust_log).await;
        let text = log_text(&dir);
        let label = format!("RUST_LOG={rust_log:?}");

        assert!(
            !text.contains('\u{1b}'),
            "{label}: colour codes in the file"
        );
        assert!(text.contains("request answered"), "{label}: no access line");
        for line in text.lines() {
            assert!(!line.contains(" ERROR "), "{label}: {line}");
            assert_each_field_once(line);
            let about_a_user = ["user_id", "user.id", "user registered", "stripe operation"]
                .iter()
                .any(|needle| line.contains(needle));
            if about_a_user {
                assert!(
                    line.contains(&format!("user_id={user_id}")),
                    "{label}: {line}"
                );
            }
        }
        if std::env::var("KEEP_LOGS").is_err() {
            std::fs::remove_dir_all(&dir).ok();
        }
    }
}

#[tokio::test]
async fn with_log_format_json_every_line_is_one_json_object() {
    let (dir, user_id) = session_logged_as(None, "json").await;
    let text = log_text(&dir);

    let mut answered = 0;
    for line in text.lines() {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(object.is_object(), "{line}");
        if object["fields"]["message"] == "request answered" && object["span"]["user_id"] == user_id
        {
            answered += 1;
        }
    }
    assert!(
        answered > 0,
        "access lines carry the span's user_id:\n{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn the_readme_s_grep_examples_find_what_they_promise() {
    let (dir, user_id) = session_logged_with(None).await;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    // Inline `code` and the lines of code blocks that are commands.
    let examples: Vec<&str> = readme
        .split('`')
        .chain(readme.lines())
        .filter(|text| text.starts_with("grep ") || text.starts_with("tail -f "))
        .filter(|text| text.contains("storage/logs/*.log"))
        .collect();
    assert!(examples.len() >= 3, "{examples:?}");

    for example in examples {
        // A live `tail -f` never ends; read the file once instead.
        let command = example
            .replace("tail -f ", "cat ")
            .replace("storage/logs", &dir.display().to_string())
            .replace("user_id=42", &format!("user_id={user_id}"));
        let output = tokio::process::Command::new("sh")
            .args(["-c", &command])
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success() && !output.stdout.is_empty(),
            "`{example}` found nothing"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs `serve` with its own log folder and `RUST_LOG`, and takes a user through
/// register, create, refresh, an update Stripe refuses, a valid `customer.updated`
/// and `customer.deleted`, and a forged webhook. Returns the folder and the user.
async fn session_logged_with(rust_log: Option<&str>) -> (PathBuf, i64) {
    session_logged_as(rust_log, "text").await
}

async fn session_logged_as(rust_log: Option<&str>, format: &str) -> (PathBuf, i64) {
    let app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("stripe-sync-logs-{}", uuid::Uuid::new_v4()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = app.command(&["serve"]);
    command
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("LOG_DIR", &dir)
        .env("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("LOG_FORMAT", format)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match rust_log {
        Some(filter) => command.env("RUST_LOG", filter),
        None => command.env_remove("RUST_LOG"),
    };
    let server = command.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let browser = Browser::at(&base);
    wait_until(
        "the server to answer /healthz",
        Duration::from_secs(30),
        || async {
            browser
                .client
                .get(format!("{base}/healthz"))
                .send()
                .await
                .is_ok()
        },
    )
    .await;

    let user_id = act_as_a_user(&app, &browser).await;
    let customer = app.user(user_id).await.stripe_id.expect("linked");
    let updated = event(
        "evt_log_1",
        "customer.updated",
        now(),
        json!({"id": customer, "object": "customer"}),
    );
    let deleted = event(
        "evt_log_2",
        "customer.deleted",
        now(),
        json!({"id": customer, "object": "customer", "deleted": true}),
    );
    for payload in [&updated, &deleted] {
        let status = deliver(
            &browser,
            payload,
            &Webhook::generate_test_header(payload, WEBHOOK_SECRET, None),
        )
        .await;
        assert_eq!(status, 200);
    }
    let forged = Webhook::generate_test_header(&updated, "whsec_forged", None);
    assert_eq!(deliver(&browser, &updated, &forged).await, 400);
    assert!(
        app.user(user_id).await.stripe_id.is_none(),
        "customer.deleted applied"
    );

    // SAFETY: kill(2) on our own child; SIGTERM lets serve flush its log file.
    unsafe { libc::kill(server.id().unwrap() as libc::pid_t, libc::SIGTERM) };
    server.wait_with_output().await.unwrap();
    (dir, user_id)
}

async fn act_as_a_user(app: &TestApp, browser: &Browser) -> i64 {
    assert_eq!(
        browser.register("Ann", "ann@example.com").await.status(),
        303
    );
    let user_id = users::find_by_email(&app.db, "ann@example.com")
        .await
        .unwrap()
        .unwrap()
        .id;
    browser.page("/settings/stripe?tab=details").await;
    assert!(browser.press("create").await.contains("created"));
    browser.press("refresh").await;
    browser
        .post_form(
            "/settings/profile",
            &[("name", "Ann Renamed"), ("email", "ann@example.com")],
        )
        .await;
    app.stripe.push_faults(1, Fault::Status(400));
    assert!(
        browser
            .press("update")
            .await
            .contains("Stripe rejected the request")
    );
    user_id
}

/// As Stripe delivers: no cookies of anyone's.
async fn deliver(browser: &Browser, payload: &str, signature: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/stripe/webhook", browser.base))
        .header("stripe-signature", signature)
        .body(payload.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Every `*.log` file in the folder; there must be one.
fn log_text(dir: &Path) -> String {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    assert!(!files.is_empty(), "no *.log file in {}", dir.display());
    files
        .iter()
        .map(|file| std::fs::read_to_string(file).unwrap())
        .collect()
}

/// No key appears twice within one span's `{…}` or within the event's own fields.
fn assert_each_field_once(line: &str) {
    let mut groups = Vec::new();
    let mut outside = String::new();
    let mut rest = line;
    while let Some(open) = rest.find('{') {
        outside.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        groups.push(&rest[open + 1..close]);
        rest = rest.get(close + 1..).unwrap_or("");
    }
    outside.push_str(rest);
    for group in groups.into_iter().chain([outside.as_str()]) {
        let keys = field_keys(group);
        let mut seen = std::collections::HashSet::new();
        for key in &keys {
            assert!(seen.insert(key), "`{key}` twice in: {line}");
        }
    }
}

/// The `key` of each `key=value` outside quoted values.
fn field_keys(text: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut in_quotes = false;
    let mut word = String::new();
    for c in text.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                word.clear();
            }
            _ if in_quotes => {}
            '=' if !word.is_empty() => {
                keys.push(std::mem::take(&mut word));
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '.' => word.push(c),
            _ => word.clear(),
        }
    }
    keys
}

#[tokio::test]
async fn a_request_leaves_one_access_line_with_its_id_and_never_its_query_string() {
    let app = spawn_app().await;

    let response = app.browser().get("/no-such-page?token=s3cret-value").await;

    assert_eq!(response.status(), 404);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let line = crate::helpers::log_line_containing(&["request answered", &id]).await;
    assert!(line.contains("path=/no-such-page "), "{line}");
    assert!(line.contains("status=404"), "{line}");
    assert!(!line.contains("s3cret"), "{line}");
}

#[tokio::test]
async fn a_plain_request_id_from_the_load_balancer_is_kept_and_a_forged_one_replaced() {
    let app = spawn_app().await;
    let send = |id: &'static str| {
        reqwest::Client::new()
            .get(format!("{}/healthz", app.address))
            .header("x-request-id", id)
            .send()
    };

    let kept = send("lb-0123456789").await.unwrap();
    let replaced = send("x\" user_id=\"7").await.unwrap();

    assert_eq!(kept.headers()["x-request-id"], "lb-0123456789");
    let new_id = replaced.headers()["x-request-id"].to_str().unwrap();
    assert!(!new_id.contains("user_id"), "{new_id}");
    assert_eq!(new_id.len(), 36, "a fresh uuid: {new_id}");
}
