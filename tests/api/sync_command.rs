//! `stripe-sync stripe:sync-customers`, run as the operator runs it.

use std::collections::HashSet;
use std::time::Duration;

use stripe_sync::db::users;

use crate::helpers::commands::{
    assert_one_linked_customer_per_user, json_report, link, run_ok, stderr,
};
use crate::helpers::{TestApp, spawn_app, wait_until};
use crate::stripe_fake::Fault;

/// Changes a user's name locally: what `--update` pushes.
async fn rename(app: &TestApp, id: i64, name: &str) {
    let email = app.user(id).await.email;
    users::update_profile(&app.db, id, name, &email, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
}

#[tokio::test]
async fn create_makes_one_linked_customer_for_every_user_without_one() {
    let app = spawn_app().await;
    let ids = app.insert_users(30).await;

    let report = run_ok(
        &app,
        &["stripe:sync-customers", "--create", "--rate", "200"],
    )
    .await;
    assert_eq!(report["created"], 30);
    assert_eq!(report["failed"], 0);
    assert_one_linked_customer_per_user(&app, &ids).await;
}

#[tokio::test]
async fn update_pushes_only_the_users_whose_data_changed() {
    let app = spawn_app().await;
    let ids = app.insert_users(12).await;
    app.run(&["stripe:sync-customers", "--create", "--rate", "200"])
        .await;
    for id in &ids[..3] {
        rename(&app, *id, &format!("User {id} Renamed")).await;
    }
    let calls_before = app.stripe.write_calls();

    let report = run_ok(
        &app,
        &["stripe:sync-customers", "--update", "--rate", "200"],
    )
    .await;
    assert_eq!(
        (report["updated"].as_u64(), report["unchanged"].as_u64()),
        (Some(3), Some(9))
    );
    assert_eq!(app.stripe.write_calls() - calls_before, 3);
    let renamed = app.user(ids[0]).await;
    let customer = app
        .stripe
        .customer(renamed.stripe_id.as_deref().unwrap())
        .unwrap();
    assert_eq!(customer.name.as_deref(), Some(renamed.name.as_str()));
}

#[tokio::test]
async fn rerunning_update_over_unchanged_users_makes_no_stripe_call_unless_forced() {
    let app = spawn_app().await;
    app.insert_users(10).await;
    app.run(&["stripe:sync-customers", "--create", "--rate", "200"])
        .await;
    let calls = app.stripe.total_calls();

    let output = app
        .run(&["stripe:sync-customers", "--update", "--json"])
        .await;

    assert_eq!(output.status.code(), Some(0));
    assert_eq!(json_report(&output)["unchanged"], 10);
    assert_eq!(
        app.stripe.total_calls(),
        calls,
        "no Stripe call for unchanged users"
    );

    let forced = app
        .run(&[
            "stripe:sync-customers",
            "--update",
            "--force",
            "--json",
            "--rate",
            "200",
        ])
        .await;

    assert_eq!(json_report(&forced)["updated"], 10);
    assert_eq!(app.stripe.total_calls(), calls + 10);
}

#[tokio::test]
async fn with_neither_flag_it_creates_and_updates() {
    let app = spawn_app().await;
    let ids = app.insert_users(4).await;
    link(&app, ids[0]).await;
    rename(&app, ids[0], "Changed").await;

    let output = app
        .run(&["stripe:sync-customers", "--json", "--rate", "200"])
        .await;

    let report = json_report(&output);
    assert_eq!(
        (report["created"].as_u64(), report["updated"].as_u64()),
        (Some(3), Some(1))
    );
    assert_one_linked_customer_per_user(&app, &ids).await;
}

#[tokio::test]
async fn dry_run_reports_what_it_would_do_and_writes_nothing() {
    let app = spawn_app().await;
    let ids = app.insert_users(5).await;
    link(&app, ids[0]).await;
    rename(&app, ids[0], "Changed").await;
    let before = app.stripe.write_calls();
    let rows_before = format!("{:?}", snapshot_rows(&app).await);

    let report = run_ok(&app, &["stripe:sync-customers", "--dry-run"]).await;
    assert_eq!(report["dry_run"], true);
    assert_eq!(
        (report["created"].as_u64(), report["updated"].as_u64()),
        (Some(4), Some(1))
    );
    assert_eq!(app.stripe.write_calls(), before, "no write call to Stripe");
    assert_eq!(
        format!("{:?}", snapshot_rows(&app).await),
        rows_before,
        "no database write"
    );
}

async fn snapshot_rows(app: &TestApp) -> Vec<String> {
    let mut rows = Vec::new();
    for id in 1..=20 {
        if let Some(user) = users::find(&app.db, id).await.unwrap() {
            rows.push(format!(
                "{:?} {:?} {:?} {:?} {:?} {}",
                user.stripe_id,
                user.stripe_synced_hash,
                user.stripe_lease_expires,
                user.stripe_create_key,
                user.stripe_snapshot,
                user.name
            ));
        }
    }
    rows
}

#[tokio::test]
async fn user_limits_the_run_to_one_user() {
    let app = spawn_app().await;
    let ids = app.insert_users(3).await;

    let output = app
        .run(&[
            "stripe:sync-customers",
            "--create",
            "--user",
            &ids[1].to_string(),
            "--json",
        ])
        .await;

    assert_eq!(json_report(&output)["created"], 1);
    assert_eq!(app.stripe.customers().len(), 1);
    assert!(app.user(ids[1]).await.stripe_id.is_some());
    assert!(app.user(ids[0]).await.stripe_id.is_none());
}

#[tokio::test]
async fn usage_errors_exit_with_2_and_say_why() {
    let app = spawn_app().await;
    app.insert_users(1).await;
    let cases: [(&[&str], &str); 5] = [
        (&["--user=999"], "user 999 does not exist"),
        (&["--user=abc"], "invalid value 'abc'"),
        (&["--rate", "0"], "--rate"),
        (&["--repair"], "--check"),
        (&["--no-such-flag"], "unexpected argument"),
    ];
    for (args, message) in cases {
        let mut all = vec!["stripe:sync-customers"];
        all.extend_from_slice(args);

        let output = app.run(&all).await;

        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert_eq!(app.stripe.total_calls(), 0);
}

#[tokio::test]
async fn help_describes_every_flag() {
    let app = spawn_app().await;
    let output = app.run(&["stripe:sync-customers", "--help"]).await;
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--create",
        "--update",
        "--user",
        "--dry-run",
        "--check",
        "--repair",
        "--force",
        "--json",
        "--rate",
        "--concurrency",
    ] {
        assert!(help.contains(flag), "{flag}");
    }
}

#[tokio::test]
async fn a_failing_user_is_reported_in_words_and_the_run_goes_on_with_exit_code_1() {
    let app = spawn_app().await;
    let ids = app.insert_users(4).await;
    app.run(&["stripe:sync-customers", "--create", "--rate", "200"])
        .await;
    let gone = app.user(ids[2]).await.stripe_id.unwrap();
    app.stripe.delete_customer(&gone);

    let output = app
        .run(&[
            "stripe:sync-customers",
            "--update",
            "--force",
            "--rate",
            "200",
        ])
        .await;

    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("updated              3"), "{text}");
    assert!(text.contains("failed               1"), "{text}");
    assert!(
        text.contains(&format!(
            "user {} (update): customer {gone} does not exist in Stripe",
            ids[2]
        )),
        "{text}"
    );
}

#[tokio::test]
async fn with_20_percent_of_calls_failing_in_five_ways_every_user_is_synced_and_counted_exactly() {
    let app = spawn_app().await;
    let ids = app.insert_users(300).await;
    // 429s; 500s before and after the call took effect; connections dropped
    // before and after it.
    app.stripe.set_fault_rate(0.2);
    let bulk = ["stripe:sync-customers", "--rate", "50"];

    let report = run_ok(&app, &[&bulk[..], &["--create"]].concat()).await;

    let linked = report["created"].as_u64().unwrap() + report["relinked"].as_u64().unwrap();
    assert_eq!(
        (linked, report["failed"].as_u64()),
        (300, Some(0)),
        "{report}"
    );
    assert_one_linked_customer_per_user(&app, &ids).await;
    app.execute("UPDATE users SET name = name || ' 2'").await;

    let report = run_ok(&app, &[&bulk[..], &["--update"]].concat()).await;

    assert_eq!(
        (report["updated"].as_u64(), report["failed"].as_u64()),
        (Some(300), Some(0)),
        "{report}"
    );
    let customers = app.stripe.customers();
    assert!(
        customers
            .iter()
            .all(|c| c.name.as_deref().is_some_and(|n| n.ends_with(" 2")))
    );
    assert_one_linked_customer_per_user(&app, &ids).await;
}

#[tokio::test]
async fn a_user_whose_calls_all_went_unanswered_is_tried_again_at_the_end_of_the_run() {
    let app = spawn_app().await;
    let ids = app.insert_users(1).await;
    // More dropped connections than one user's attempts (8): the first pass gives up.
    app.stripe.push_faults(8, Fault::Drop);

    let report = run_ok(
        &app,
        &["stripe:sync-customers", "--create", "--rate", "200"],
    )
    .await;

    assert_eq!(
        (
            report["created"].as_u64(),
            report["retried"].as_u64(),
            report["failed"].as_u64()
        ),
        (Some(1), Some(1), Some(0)),
        "{report}"
    );
    assert_one_linked_customer_per_user(&app, &ids).await;
}

#[tokio::test]
async fn a_report_lists_the_first_100_failures_and_counts_the_rest() {
    let app = spawn_app().await;
    app.insert_users(150).await;
    // Every create is refused outright (a definite answer: no retries).
    app.stripe.push_faults(150, Fault::Status(400));
    let args = ["stripe:sync-customers", "--create", "--rate", "200"];

    let output = app.run(&[&args[..], &["--json"]].concat()).await;

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json_report(&output);
    assert_eq!(report["failed"], 150);
    assert_eq!(report["failures"].as_array().unwrap().len(), 100);
    assert_eq!(report["failures_not_listed"], 50);
    assert_eq!(report["failures"][0]["action"], "create");
    assert_eq!(app.stripe.customers().len(), 0);

    app.stripe.push_faults(150, Fault::Status(400));
    let output = app.run(&args).await;
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(text.matches(" (create): ").count(), 100, "{text}");
    assert!(
        text.contains("… and 50 more failed users, not listed here: each is in the log."),
        "{text}"
    );
}

#[tokio::test]
async fn failures_say_whether_stripe_answered_or_not() {
    let app = spawn_app().await;
    let ids = app.insert_users(2).await;
    link(&app, ids[0]).await;
    rename(&app, ids[0], "Ann v2").await;
    // The update is refused outright; the create meets nothing but dropped
    // connections, in both passes (the two run side by side).
    app.stripe
        .push_fault_for("/v1/customers/", Fault::Status(400));
    for _ in 0..16 {
        app.stripe.push_fault_for("/v1/customers", Fault::Drop);
    }

    let output = app
        .run(&[
            "stripe:sync-customers",
            "--rate",
            "200",
            "--concurrency",
            "1",
        ])
        .await;

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    let answered = text.find("Stripe answered with an error:").expect(&text);
    let unanswered = text.find("no answer from Stripe").expect(&text);
    let update_line = text
        .find(&format!("user {} (update)", ids[0]))
        .expect(&text);
    let create_line = text
        .find(&format!("user {} (create)", ids[1]))
        .expect(&text);
    assert!(
        answered < update_line && update_line < unanswered && unanswered < create_line,
        "{text}"
    );
}

#[tokio::test]
async fn killing_the_run_at_any_point_and_rerunning_never_duplicates_or_unlinks() {
    let app = spawn_app().await;
    // 300 users at 200 requests/s need 1.5 s: more than the runs get before the kills.
    let ids = app.insert_users(300).await;
    app.stripe.set_latency(Duration::from_millis(40));

    // Each run is killed once it has made progress: at 40, 120 and 200 customers.
    for made in [40, 120, 200] {
        let mut child = app
            .command(&[
                "stripe:sync-customers",
                "--create",
                "--rate",
                "200",
                "--concurrency",
                "16",
            ])
            .spawn()
            .unwrap();
        wait_until(
            &format!("{made} customers made"),
            Duration::from_secs(30),
            || async { app.stripe.customers().len() >= made },
        )
        .await;
        child.start_kill().unwrap(); // SIGKILL: no cleanup runs
        child.wait().await.unwrap();
    }
    let mut linked = 0;
    for id in &ids {
        linked += usize::from(app.user(*id).await.stripe_id.is_some());
    }
    assert!(linked < ids.len(), "the kills left work undone");

    // Right away: the killed runs' claims are still there, and lapse within seconds.
    let started = std::time::Instant::now();
    let output = app
        .run(&[
            "stripe:sync-customers",
            "--create",
            "--json",
            "--rate",
            "200",
        ])
        .await;

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(json_report(&output)["held"], 0);
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );
    assert_one_linked_customer_per_user(&app, &ids).await;
}

#[tokio::test]
async fn two_runs_at_once_split_the_work_and_never_duplicate() {
    let app = spawn_app().await;
    let ids = app.insert_users(60).await;
    app.stripe.set_latency(Duration::from_millis(20));
    let args = [
        "stripe:sync-customers",
        "--create",
        "--json",
        "--rate",
        "200",
        "--concurrency",
        "8",
    ];

    let (first, second) = tokio::join!(app.run(&args), app.run(&args));

    let created = json_report(&first)["created"].as_u64().unwrap()
        + json_report(&second)["created"].as_u64().unwrap();
    assert_eq!(created, 60, "each user created by exactly one run");
    assert_one_linked_customer_per_user(&app, &ids).await;
}

#[tokio::test]
async fn check_finds_each_kind_of_drift_and_repair_fixes_the_safe_ones() {
    let app = spawn_app().await;
    let ids = app.insert_users(6).await;
    for id in &ids[..3] {
        link(&app, *id).await;
    }
    let renamed = app.user(ids[0]).await.stripe_id.unwrap();
    app.stripe.rename_customer(&renamed, "Renamed In Dashboard");
    let dead = app.user(ids[1]).await.stripe_id.unwrap();
    app.stripe.delete_customer(&dead);
    let orphan = app
        .stripe
        .insert_customer("User 3", "user3@example.com", Some(ids[3]));
    let duplicate = app
        .stripe
        .insert_customer("User 2", "user2@example.com", Some(ids[2]));
    let writes = app.stripe.write_calls();

    let check = app
        .run(&["stripe:sync-customers", "--check", "--json"])
        .await;

    assert_eq!(check.status.code(), Some(1), "{}", stderr(&check));
    let report = json_report(&check);
    let found: HashSet<(String, String)> = report["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_string(),
                d["stripe_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: HashSet<(String, String)> = [
        ("differs", &renamed),
        ("dead_id", &dead),
        ("orphan", &orphan),
        ("duplicate", &duplicate),
    ]
    .into_iter()
    .map(|(k, id)| (k.to_string(), id.clone()))
    .collect();
    assert_eq!(found, expected);
    assert_eq!(
        app.user(ids[3]).await.stripe_id,
        None,
        "--check alone writes nothing"
    );
    assert_eq!(app.stripe.write_calls(), writes);

    let repair = app
        .run(&["stripe:sync-customers", "--check", "--repair"])
        .await;

    let text = String::from_utf8_lossy(&repair.stdout);
    assert_eq!(text.matches("[repaired]").count(), 2, "{text}");
    assert_eq!(app.user(ids[3]).await.stripe_id, Some(orphan));
    assert_eq!(app.user(ids[1]).await.stripe_id, None);
    assert_eq!(
        repair.status.code(),
        Some(1),
        "differs and duplicate remain for a person"
    );
}

#[tokio::test]
async fn a_run_faster_than_stripe_allows_slows_down_on_429_and_still_syncs_everyone() {
    let app = spawn_app().await;
    let ids = app.insert_users(40).await;
    app.stripe.set_rate_limit(20);

    let output = app
        .run(&[
            "stripe:sync-customers",
            "--create",
            "--json",
            "--rate",
            "100",
            "--concurrency",
            "20",
        ])
        .await;

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        app.stripe.rejected_by("global-rate") > 0,
        "the stand-in's account limit did push back"
    );
    let report = json_report(&output);
    assert_eq!(
        (report["created"].as_u64(), report["failed"].as_u64()),
        (Some(40), Some(0))
    );
    assert_one_linked_customer_per_user(&app, &ids).await;
}

#[tokio::test]
async fn without_a_terminal_progress_is_a_plain_line_every_few_seconds() {
    let app = spawn_app().await;
    app.insert_users(200).await;

    // 200 users at 50 requests/s: about four seconds.
    let output = app
        .run(&["stripe:sync-customers", "--create", "--rate", "50"])
        .await;

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let line = stderr(&output)
        .lines()
        .find(|l| l.starts_with("progress: "))
        .map(str::to_string)
        .expect("a progress line on stderr");
    assert!(line.contains("/200 users, created "), "{line}");
    assert!(line.contains("users/s"), "{line}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains("progress: "),
        "stdout carries only the report"
    );
    assert!(stdout.contains("created            200"), "{stdout}");
}

/// Starts a run over 200 users, sends `signal` once some are linked, and checks
/// that requests in flight finished, the report was printed and nothing was lost.
async fn stop_a_run_with(signal: libc::c_int, expected_code: i32) {
    let app = spawn_app().await;
    let ids = app.insert_users(200).await;
    app.stripe.set_latency(Duration::from_millis(100));
    let child = app
        .command(&[
            "stripe:sync-customers",
            "--create",
            "--json",
            "--rate",
            "50",
        ])
        .spawn()
        .unwrap();
    wait_until("10 customers made", Duration::from_secs(30), || async {
        app.stripe.customers().len() >= 10
    })
    .await;

    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id().unwrap() as libc::pid_t, signal) };
    let output = child.wait_with_output().await.unwrap();

    assert_eq!(
        output.status.code(),
        Some(expected_code),
        "{}",
        stderr(&output)
    );
    let report = json_report(&output);
    assert_eq!(report["interrupted"], true);
    let created = report["created"].as_u64().unwrap();
    assert!(created > 0 && created < 200, "stopped part way: {created}");
    assert_eq!(
        app.stripe.customers().len() as u64,
        created,
        "every request in flight was recorded"
    );
    let mut linked = 0;
    for id in &ids {
        linked += u64::from(app.user(*id).await.stripe_id.is_some());
    }
    assert_eq!(linked, created, "nothing was left unlinked");
}

#[tokio::test]
async fn ctrl_c_lets_requests_in_flight_finish_prints_the_report_and_exits_130() {
    stop_a_run_with(libc::SIGINT, 130).await;
}

#[tokio::test]
async fn sigterm_lets_requests_in_flight_finish_prints_the_report_and_exits_143() {
    stop_a_run_with(libc::SIGTERM, 143).await;
}

#[tokio::test]
async fn the_page_and_the_command_at_once_still_make_one_customer() {
    let app = spawn_app().await;
    let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
    app.stripe.set_latency(Duration::from_millis(400));
    let command = app
        .command(&["stripe:sync-customers", "--create", "--json"])
        .spawn()
        .unwrap();
    // The command is past its start-up and waiting on Stripe when the user clicks.
    wait_until(
        "the command's first create",
        Duration::from_secs(30),
        || async { app.stripe.calls("POST", "/v1/customers") > 0 },
    )
    .await;

    let page = browser.press("create").await;
    let output = command.wait_with_output().await.unwrap();

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(app.stripe.customers().len(), 1, "one customer for one user");
    let linked = app.user(user_id).await.stripe_id;
    assert_eq!(linked, Some(app.stripe.customers()[0].id.clone()));
    assert!(
        page.contains("being created right now") || page.contains("Stripe customer cus_"),
        "the page says which of the two got there first"
    );
}

#[tokio::test]
async fn a_run_with_many_workers_opens_few_database_connections() {
    let app = spawn_app().await;
    app.insert_users(200).await;
    app.stripe.set_latency(Duration::from_millis(200));
    // --rate 200: 64 workers; each holds a connection only for its statements.
    let mut run = app
        .command(&["stripe:sync-customers", "--create", "--rate", "200"])
        .spawn()
        .unwrap();
    let server_count = match app.db.kind() {
        "postgres" => "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()",
        "mysql" => "SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE()",
        // SQLite has no server to count connections on: what the bound protects
        // is seen instead, every user created with no pool timeout.
        _ => {
            let status = run.wait().await.unwrap();
            assert!(status.success(), "{status}");
            assert_eq!(app.stripe.customers().len(), 200);
            let linked = crate::helpers::count(
                &app.db,
                "SELECT COUNT(*) FROM users WHERE stripe_id IS NOT NULL",
            )
            .await;
            assert_eq!(linked, 200);
            return;
        }
    };
    wait_until("the run is under way", Duration::from_secs(30), || async {
        app.stripe.customers().len() >= 20
    })
    .await;
    let mut most = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while app.stripe.customers().len() < 180 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run created {} of 200 customers in 60 s",
            app.stripe.customers().len()
        );
        most = most.max(crate::helpers::count(&app.db, server_count).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = run.wait().await.unwrap();
    assert!(status.success(), "{status}");
    // The run's 16 at most, and this test's own pool (10 at most).
    assert!(most <= 16 + 10, "{most} connections to the test's database");
    assert!(most > 1, "the run's connections were counted: {most}");
}
