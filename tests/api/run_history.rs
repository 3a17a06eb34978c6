//! The history of bulk runs (`stripe_sync_runs`) and `stripe-sync runs`, as an
//! operator reads it: every run recorded with its flags, progress, end and
//! failures; killed runs shown as abandoned; old runs pruned.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::commands::{json_report, link, stderr};
use crate::helpers::{TestApp, count, spawn_app, wait_until};
use crate::stripe_fake::Fault;

/// `stripe-sync runs --json`: the recorded runs, newest first.
async fn history(app: &TestApp) -> Vec<Value> {
    let output = app.run(&["runs", "--json", "--limit", "100"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    json_report(&output).as_array().expect("an array").clone()
}

/// `stripe-sync runs show ID --json`.
async fn shown(app: &TestApp, id: &Value) -> Value {
    let output = app.run(&["runs", "show", &id.to_string(), "--json"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    json_report(&output)
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_run_is_recorded_with_its_flags_host_counts_and_end_and_listed_newest_first() {
    let app = spawn_app().await;
    let empty = app.run(&["runs"]).await;
    assert_eq!(empty.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&empty.stdout).contains("No runs recorded yet"));
    app.insert_users(3).await;

    let output = app
        .run(&["stripe:sync-customers", "--create", "--rate", "200"])
        .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let replay = app.run(&["stripe:replay-events"]).await;
    assert_eq!(replay.status.code(), Some(0), "{}", stderr(&replay));

    let runs = history(&app).await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    let (newest, sync) = (&runs[0], &runs[1]);
    assert_eq!(newest["command"], "stripe:replay-events");
    assert_eq!(newest["kind"], "replay");
    assert_eq!(sync["command"], "stripe:sync-customers");
    assert_eq!(sync["kind"], "sync");
    assert_eq!(sync["flags"], "--create --rate=200");
    assert_eq!(sync["result"], "succeeded");
    assert_eq!(sync["exit_code"], 0);
    assert_eq!(sync["counts"]["created"], 3);
    assert_eq!(sync["counts"]["stripe_requests"], 3);
    assert_eq!(
        (sync["done"].clone(), sync["total"].clone()),
        (3.into(), 3.into())
    );
    assert!(!sync["host"].as_str().unwrap().is_empty());
    assert!(sync["ended_at"].is_string());

    let text = app.run(&["runs"]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("RESULT"), "{text}");
    assert!(lines[1].contains("stripe:replay-events"), "{text}");
    assert!(
        lines[2].contains("stripe:sync-customers") && lines[2].contains("succeeded"),
        "{text}"
    );
    assert!(lines[2].contains("created 3"), "{text}");
    let limited = history_limited(&app, 1).await;
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0]["id"], newest["id"]);

    let one = shown(&app, &sync["id"]).await;
    assert_eq!(one["failures"], serde_json::json!([]));
    let text = app.run(&["runs", "show", &sync["id"].to_string()]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("stripe:sync-customers --create --rate=200"),
        "{text}"
    );
    assert!(text.contains("succeeded (exit 0)"), "{text}");
}

async fn history_limited(app: &TestApp, limit: u32) -> Vec<Value> {
    let output = app
        .run(&["runs", "--json", "--limit", &limit.to_string()])
        .await;
    json_report(&output).as_array().unwrap().clone()
}

#[tokio::test]
async fn a_run_s_failures_are_kept_with_their_reasons_and_an_unknown_id_exits_2() {
    let app = spawn_app().await;
    let ids = app.insert_users(2).await;
    for _ in 0..2 {
        app.stripe
            .push_fault_for("/v1/customers", Fault::Status(400));
    }

    let output = app
        .run(&["stripe:sync-customers", "--create", "--concurrency", "1"])
        .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));

    let runs = history(&app).await;
    assert_eq!(runs[0]["result"], "failed");
    assert_eq!(runs[0]["exit_code"], 1);
    assert_eq!(runs[0]["failed"], 2);
    let one = shown(&app, &runs[0]["id"]).await;
    let failures = one["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2, "{one}");
    let failed: Vec<i64> = failures
        .iter()
        .map(|f| f["user_id"].as_i64().unwrap())
        .collect();
    assert!(ids.iter().all(|id| failed.contains(id)), "{failed:?}");
    assert!(
        failures
            .iter()
            .all(|f| !f["reason"].as_str().unwrap().is_empty() && f["action"] == "create"),
        "{one}"
    );
    let text = app.run(&["runs", "show", &runs[0]["id"].to_string()]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("user {} (create): ", ids[0])),
        "{text}"
    );

    let unknown = app.run(&["runs", "show", "999999"]).await;
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no run has id 999999"),
        "{}",
        stderr(&unknown)
    );
}

#[tokio::test]
async fn a_check_that_finds_drift_keeps_the_cases_as_its_failures() {
    let app = spawn_app().await;
    let id = app.insert_users(1).await[0];
    link(&app, id).await;
    let customer = app.user(id).await.stripe_id.unwrap();
    app.stripe.delete_customer(&customer);

    let output = app.run(&["stripe:sync-customers", "--check"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));

    let runs = history(&app).await;
    assert_eq!(runs[0]["kind"], "check");
    assert_eq!(runs[0]["result"], "failed");
    let one = shown(&app, &runs[0]["id"]).await;
    assert_eq!(one["failures"][0]["user_id"], id, "{one}");
    assert_eq!(one["failures"][0]["stripe_id"], customer.as_str());
}

#[tokio::test]
async fn a_run_reports_progress_while_it_goes_sigterm_shows_interrupted_sigkill_abandoned() {
    let app = spawn_app().await;
    app.insert_users(200).await;
    app.stripe.set_latency(Duration::from_millis(100));
    let args = ["stripe:sync-customers", "--create", "--rate", "20"];

    let mut killed = app.command(&args).spawn().unwrap();
    wait_until(
        "the run beats with progress",
        Duration::from_secs(30),
        || async {
            let runs = history(&app).await;
            runs.first().is_some_and(|run| {
                run["result"] == "running" && run["done"].as_i64().unwrap_or(0) > 0
            })
        },
    )
    .await;
    let running = history(&app).await.remove(0);
    assert_eq!(running["total"], 200);
    killed.start_kill().unwrap(); // SIGKILL: nothing of ours runs
    killed.wait().await.unwrap();
    wait_until(
        "the killed run shows as abandoned",
        Duration::from_secs(20),
        || async { history(&app).await[0]["result"] == "abandoned" },
    )
    .await;

    let stopped = app.command(&args).spawn().unwrap();
    wait_until("the second run beats", Duration::from_secs(30), || async {
        history(&app).await[0]["result"] == "running"
    })
    .await;
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(stopped.id().unwrap() as libc::pid_t, libc::SIGTERM) };
    let output = stopped.wait_with_output().await.unwrap();
    assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));

    let runs = history(&app).await;
    assert_eq!(runs[0]["result"], "interrupted");
    assert_eq!(runs[0]["exit_code"], 143);
    assert_eq!(runs[1]["result"], "abandoned");
    assert_eq!(runs[1]["exit_code"], Value::Null);
}

#[tokio::test]
async fn runs_older_than_run_history_days_are_pruned() {
    let app = spawn_app().await;
    let day = 86_400_000;
    for (holder, age_days) in [("old-run", 91), ("recent-run", 10)] {
        let at = now_ms() - age_days * day;
        app.execute(&format!(
            "INSERT INTO stripe_sync_runs (holder, command, kind, started_at, heartbeat_at, \
             ended_at, exit_code) VALUES ('{holder}', 'stripe:sync-customers', 'sync', {at}, \
             {at}, {at}, 0)"
        ))
        .await;
    }
    let holders = "SELECT COUNT(*) FROM stripe_sync_runs WHERE holder IN ('old-run', 'recent-run')";

    let output = app.run(&["stripe:sync-customers", "--dry-run"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(count(&app.db, holders).await, 1, "the 90-day default");
    assert_eq!(
        count(
            &app.db,
            "SELECT COUNT(*) FROM stripe_sync_runs WHERE holder = 'recent-run'"
        )
        .await,
        1
    );

    let output = app
        .command(&["stripe:sync-customers", "--dry-run"])
        .env("RUN_HISTORY_DAYS", "5")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(count(&app.db, holders).await, 0);
    assert_eq!(history(&app).await.len(), 2, "the two dry runs stay");

    let refused = app
        .command(&["runs"])
        .env("RUN_HISTORY_DAYS", "0")
        .output()
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("RUN_HISTORY_DAYS"),
        "{}",
        stderr(&refused)
    );
}
