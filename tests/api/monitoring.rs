//! Prometheus metrics on `METRICS_BIND`, the scrape config and alert rules of
//! `deploy/prometheus/`, and a real Prometheus reading the app's series back.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use stripe_webhook::Webhook;

use crate::helpers::commands::stderr;
use crate::helpers::webhooks::{event, now};
use crate::helpers::{Browser, Needs, TestApp, skip_without, spawn_app, wait_until};

const WEBHOOK_SECRET: &str = "whsec_monitoring_test";

/// `stripe-sync serve` of `app`, in a process of its own (a recorder of its own).
struct Served {
    _child: tokio::process::Child,
    base: String,
    metrics: Option<String>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn serve(app: &TestApp, with_metrics: bool) -> Served {
    let (port, metrics_port) = (free_port(), free_port());
    let mut command = app.command(&["serve"]);
    command
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if with_metrics {
        command.env("METRICS_BIND", format!("127.0.0.1:{metrics_port}"));
    }
    let child = command.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let healthz = format!("{base}/healthz");
    wait_until("serve answers", Duration::from_secs(30), || async {
        reqwest::get(&healthz).await.is_ok()
    })
    .await;
    Served {
        _child: child,
        base,
        metrics: with_metrics.then(|| format!("http://127.0.0.1:{metrics_port}")),
    }
}

async fn scrape(served: &Served) -> String {
    let url = format!("{}/metrics", served.metrics.as_ref().unwrap());
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    response.text().await.unwrap()
}

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/prometheus")
        .join(file)
}

/// Runs promtool with `args` (and `input` on its standard input); returns its
/// output after insisting it succeeded.
async fn promtool(args: &[&str], input: Option<&str>) -> String {
    let mut child = tokio::process::Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        tokio::io::AsyncWriteExt::write_all(&mut stdin, input.as_bytes())
            .await
            .unwrap();
    }
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[tokio::test]
async fn metrics_are_served_on_metrics_bind_only_never_on_the_public_listener() {
    let app = spawn_app().await;

    let without = serve(&app, false).await;
    let response = reqwest::get(format!("{}/metrics", without.base))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let served = serve(&app, true).await;
    let public = reqwest::get(format!("{}/metrics", served.base))
        .await
        .unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND, "not on BIND");
    let browser = Browser::at(&served.base);
    browser.register("Ann", "ann.metrics@example.com").await;
    browser.get("/jobs/12345").await;
    let text = scrape(&served).await;
    assert!(text.contains("stripe_sync_ready 1"), "{text}");
    assert!(
        text.contains(
            r#"stripe_sync_http_requests_total{method="POST",route="/register",status="303"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/jobs/{id}""#),
        "a route's template: {text}"
    );
    assert!(
        text.contains("stripe_sync_db_connections{state=\"idle\"}"),
        "{text}"
    );
    assert!(
        text.contains("stripe_sync_password_hashes_queued 0"),
        "{text}"
    );
    for private in ["ann.metrics", "12345"] {
        assert!(!text.contains(private), "no {private} in a label: {text}");
    }
    let other = reqwest::get(format!(
        "{}/settings/stripe",
        served.metrics.as_ref().unwrap()
    ))
    .await
    .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND, "only /metrics there");

    let clash = app
        .command(&["serve"])
        .env("BIND", "127.0.0.1:3999")
        .env("METRICS_BIND", "127.0.0.1:3999")
        .output()
        .await
        .unwrap();
    assert_eq!(clash.status.code(), Some(2));
    assert!(
        stderr(&clash).contains("METRICS_BIND"),
        "{}",
        stderr(&clash)
    );

    if skip_without(Needs::Prometheus) {
        return;
    }
    promtool(&["check", "metrics"], Some(&text)).await;
}

#[tokio::test]
async fn promtool_proves_the_scrape_config_and_that_each_alert_fires_and_stays_quiet() {
    if skip_without(Needs::Prometheus) {
        return;
    }
    let config = deploy("prometheus.yml");
    let checked = promtool(&["check", "config", config.to_str().unwrap()], None).await;
    assert!(checked.contains("SUCCESS"), "{checked}");
    let rules = deploy("alerts.yml");
    let checked = promtool(&["check", "rules", rules.to_str().unwrap()], None).await;
    assert!(checked.contains("7 rules found"), "{checked}");
    let tests = deploy("alerts.test.yml");
    let tested = promtool(&["test", "rules", tests.to_str().unwrap()], None).await;
    assert!(tested.contains("SUCCESS"), "{tested}");
    // Every alert of the rules file has a test that expects it to fire.
    let tests_text = std::fs::read_to_string(&tests).unwrap();
    let rules_text = std::fs::read_to_string(&rules).unwrap();
    for line in rules_text.lines().filter(|l| l.contains("- alert: ")) {
        let name = line.split("- alert: ").nth(1).unwrap().trim();
        assert!(
            tests_text.contains(&format!(
                "alertname: {name}\n        exp_alerts:\n          - "
            )),
            "{name} has a test where it fires"
        );
        assert!(
            tests_text.contains(&format!("alertname: {name}\n        exp_alerts: []")),
            "{name} has a test where it stays quiet"
        );
    }
}

/// Prometheus with `deploy/prometheus/prometheus.yml`, scraping `target` every
/// second; its HTTP API's base URL.
async fn start_prometheus(target: &str, dir: &Path) -> (tokio::process::Child, String) {
    let config = std::fs::read_to_string(deploy("prometheus.yml")).unwrap();
    assert!(config.contains("127.0.0.1:9464") && config.contains("scrape_interval: 15s"));
    let config = config
        .replace("127.0.0.1:9464", target)
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("evaluation_interval: 15s", "evaluation_interval: 1s")
        .replace(
            "- alerts.yml",
            &format!("- {}", deploy("alerts.yml").display()),
        );
    std::fs::create_dir_all(dir).unwrap();
    let file = dir.join("prometheus.yml");
    std::fs::write(&file, config).unwrap();
    let port = free_port();
    let child = tokio::process::Command::new("prometheus")
        .arg(format!("--config.file={}", file.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    (child, format!("http://127.0.0.1:{port}"))
}

/// The result of an instant query, once it has any (within a minute).
async fn query(prometheus: &str, promql: &str) -> Vec<Value> {
    let url = format!("{prometheus}/api/v1/query");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let answer = reqwest::Client::new()
            .get(&url)
            .query(&[("query", promql)])
            .send()
            .await;
        if let Ok(response) = answer
            && let Ok(body) = response.json::<Value>().await
            && let Some(result) = body["data"]["result"].as_array()
            && !result.is_empty()
        {
            return result.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Prometheus never had {promql}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn value(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_real_prometheus_reads_the_bulk_run_stripe_calls_and_webhook_events_back() {
    if skip_without(Needs::Prometheus) {
        return;
    }
    let app = spawn_app().await;
    app.insert_users(3).await;
    let served = serve(&app, true).await;

    // A bulk sync, recorded in the history the app reads.
    let output = app
        .run(&["stripe:sync-customers", "--create", "--rate", "200"])
        .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // The web app's own Stripe call: a customer made from the settings page.
    let browser = Browser::at(&served.base);
    browser.register("Bea", "bea.prometheus@example.com").await;
    browser.press("create").await;
    // A webhook event, applied, then delivered again.
    let customer = app.stripe.customers()[0].id.clone();
    let payload = event(
        "evt_monitoring_1",
        "customer.updated",
        now(),
        json!({"id": customer, "object": "customer", "name": "Renamed in Stripe"}),
    );
    for _ in 0..2 {
        let signature = Webhook::generate_test_header(&payload, WEBHOOK_SECRET, None);
        let response = reqwest::Client::new()
            .post(format!("{}/stripe/webhook", served.base))
            .header("stripe-signature", signature)
            .body(payload.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    let dir = std::env::temp_dir().join(format!("stripe-sync-prometheus-{}", uuid::Uuid::new_v4()));
    let target = served
        .metrics
        .as_ref()
        .unwrap()
        .trim_start_matches("http://");
    let (_prometheus, api) = start_prometheus(target, &dir).await;

    let up = query(&api, r#"up{job="stripe-sync"} == 1"#).await;
    assert_eq!(up.len(), 1, "{up:?}");
    let success = query(
        &api,
        r#"stripe_sync_run_last_success_timestamp_seconds{command="stripe:sync-customers",kind="sync"}"#,
    )
    .await;
    let age = now() as f64 - value(&success[0]);
    assert!((0.0..120.0).contains(&age), "the run ended {age} s ago");
    let calls = query(
        &api,
        r#"sum by (endpoint) (stripe_sync_stripe_requests_total{outcome="ok"})"#,
    )
    .await;
    let created = calls
        .iter()
        .find(|sample| sample["metric"]["endpoint"] == "POST /v1/customers")
        .unwrap_or_else(|| panic!("{calls:?}"));
    assert_eq!(value(created), 1.0, "the page's one create: {calls:?}");
    for (outcome, expected) in [("applied", 1.0), ("duplicate", 1.0)] {
        let events = query(
            &api,
            &format!(
                r#"stripe_sync_webhook_events_total{{type="customer.updated",outcome="{outcome}"}}"#
            ),
        )
        .await;
        assert_eq!(value(&events[0]), expected, "{outcome}: {events:?}");
    }
    let failed = query(
        &api,
        r#"stripe_sync_webhook_events_total{type="customer.updated",outcome="failed"}"#,
    )
    .await;
    assert_eq!(
        value(&failed[0]),
        0.0,
        "the failures the alert watches start at 0"
    );

    // The rules are loaded, and the webhook alert is quiet: nothing failed.
    let rules: Value = reqwest::get(format!("{api}/api/v1/rules"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let loaded = rules["data"]["groups"][0]["rules"].as_array().unwrap();
    assert_eq!(loaded.len(), 7, "{rules}");
    let webhook_alert = loaded
        .iter()
        .find(|rule| rule["name"] == "StripeSyncWebhookFailed")
        .unwrap();
    assert_eq!(webhook_alert["state"], "inactive", "{webhook_alert}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The value of the series `name{labels}` in a scrape, when it is there.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
}

#[tokio::test]
async fn every_series_the_issue_names_counts_what_happened() {
    let app = spawn_app().await;
    app.insert_users(60).await;
    let served = serve(&app, true).await;

    // A bulk run going now: its Stripe requests and its limiter's buckets. One of
    // its users fails, so the run ends with exit 1 and one failure.
    app.stripe
        .push_fault_for("/v1/customers", crate::stripe_fake::Fault::Status(400));
    app.stripe.set_latency(Duration::from_millis(100));
    let run = app
        .command(&["stripe:sync-customers", "--create", "--rate", "20"])
        .spawn()
        .unwrap();
    let running = r#"stripe_sync_runs_running{command="stripe:sync-customers",kind="sync"}"#;
    let labels = r#"{command="stripe:sync-customers",kind="sync"}"#;
    let requests = format!("stripe_sync_run_stripe_requests{labels}");
    let mut live = String::new();
    // Until its first beat (a second in) has written what it did so far.
    for _ in 0..100 {
        live = scrape(&served).await;
        if sample(&live, &requests).is_some_and(|n| n > 0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sample(&live, running), Some(1.0), "{live}");
    assert!(sample(&live, &requests).unwrap() > 0.0, "{live}");
    assert!(sample(&live, &format!("stripe_sync_run_rate_limited{labels}")).is_some());
    let global = r#"stripe_sync_run_limiter_requests_per_second{command="stripe:sync-customers",kind="sync",bucket="global"}"#;
    assert_eq!(sample(&live, global), Some(20.0), "{live}");
    let output = run.wait_with_output().await.unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    app.stripe.set_latency(Duration::ZERO);

    // The web app's own call meets a 429 naming Stripe's limiter, and is retried.
    app.stripe.push_fault_for(
        "/v1/customers",
        crate::stripe_fake::Fault::RateLimitedBy("endpoint-rate"),
    );
    let browser = Browser::at(&served.base);
    browser.register("Cy", "cy.metrics@example.com").await;
    browser.press("create").await;
    // Six wrong passwords for one account: the sixth is refused by the limit.
    for _ in 0..6 {
        browser
            .login("cy.metrics@example.com", "not-the-password")
            .await;
    }
    // A webhook signed with another secret.
    let forged = reqwest::Client::new()
        .post(format!("{}/stripe/webhook", served.base))
        .header(
            "stripe-signature",
            Webhook::generate_test_header("{}", "whsec_forged", None),
        )
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    // A replay that finds nothing new: caught up as of its end.
    let replay = app.run(&["stripe:replay-events"]).await;
    assert_eq!(replay.status.code(), Some(0), "{}", stderr(&replay));

    let text = scrape(&served).await;
    assert_eq!(
        sample(&text, &format!("stripe_sync_run_last_exit_code{labels}")),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, &format!("stripe_sync_run_last_failures{labels}")),
        Some(1.0)
    );
    let ended = sample(
        &text,
        &format!("stripe_sync_run_last_end_timestamp_seconds{labels}"),
    );
    assert!((now() as f64 - ended.unwrap()).abs() < 120.0, "{text}");
    assert_eq!(
        sample(
            &text,
            &format!("stripe_sync_run_last_success_timestamp_seconds{labels}")
        ),
        None,
        "the run failed: no success to report"
    );
    assert_eq!(sample(&text, running), Some(0.0));
    assert_eq!(
        sample(
            &text,
            r#"stripe_sync_stripe_rate_limited_total{endpoint="POST /v1/customers",reason="endpoint-rate"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"stripe_sync_stripe_requests_total{endpoint="POST /v1/customers",outcome="rate_limited"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "stripe_sync_sign_in_refusals_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "stripe_sync_webhook_signature_failures_total"),
        Some(1.0)
    );
    let age = sample(&text, "stripe_sync_replay_checkpoint_age_seconds").expect("an age");
    assert!((0.0..60.0).contains(&age), "{age}");
    assert!(text.contains(
        "stripe_sync_stripe_request_duration_seconds_bucket{endpoint=\"POST /v1/customers\""
    ));
}
