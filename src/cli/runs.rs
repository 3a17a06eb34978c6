//! `stripe-sync runs`: the history of bulk runs, newest first, and `runs show ID`:
//! one run with its failures.

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::CliError;
use crate::config::Config;
use crate::runs::history::{RunRecord, alive_since, now_ms};
use crate::startup::App;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub show: Option<Show>,
    /// How many runs to list
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
    /// Print the runs as one JSON array on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum Show {
    /// One run in full, with its first 100 failures and their reasons
    Show {
        /// The run's id, from `stripe-sync runs`
        id: i64,
        /// Print the run as one JSON object on stdout
        #[arg(long)]
        json: bool,
    },
}

/// A run as `runs` shows it.
#[derive(Debug, Serialize)]
pub struct RunView {
    pub id: i64,
    pub command: String,
    pub kind: String,
    pub flags: String,
    pub host: String,
    /// The process's id in the shared tables (claims on user rows carry it too).
    pub holder: String,
    /// `running`, `abandoned` (its heartbeat lapsed: killed), `succeeded`,
    /// `failed` or `interrupted`.
    pub result: &'static str,
    pub exit_code: Option<i32>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub duration_seconds: f64,
    pub done: Option<i64>,
    pub total: Option<i64>,
    pub counts: Map<String, Value>,
    pub failed: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limiter: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures: Option<Vec<Value>>,
}

pub async fn run(config: Config, args: Args) -> Result<(), CliError> {
    let app = App::build(config).await?;
    let now_ms = now_ms();
    let database = |err| CliError::failed("database", err);
    match args.show {
        Some(Show::Show { id, json }) => {
            let Some((run, failures)) = app.history.find(id).await.map_err(database)? else {
                return Err(CliError::Usage(format!(
                    "no run has id {id} (stripe-sync runs lists them)"
                )));
            };
            let mut view = RunView::of(run, now_ms);
            view.failures = Some(
                failures
                    .and_then(|text| serde_json::from_str(&text).ok())
                    .unwrap_or_default(),
            );
            match json {
                true => println!("{}", serde_json::to_string(&view).expect("serializes")),
                false => print_one(&view),
            }
        }
        None => {
            let views: Vec<RunView> = app
                .history
                .recent(i64::from(args.limit))
                .await
                .map_err(database)?
                .into_iter()
                .map(|run| RunView::of(run, now_ms))
                .collect();
            match args.json {
                true => println!("{}", serde_json::to_string(&views).expect("serializes")),
                false => print_list(&views),
            }
        }
    }
    Ok(())
}

impl RunView {
    pub fn of(run: RunRecord, now_ms: i64) -> Self {
        let alive = run.heartbeat_at >= alive_since(now_ms);
        let result = match (run.ended_at, run.exit_code) {
            (None, _) if alive => "running",
            (None, _) => "abandoned",
            (Some(_), _) if run.interrupted != 0 => "interrupted",
            (Some(_), Some(0)) => "succeeded",
            (Some(_), _) => "failed",
        };
        let until = match (run.ended_at, result) {
            (Some(ended), _) => ended,
            (None, "running") => now_ms,
            (None, _) => run.heartbeat_at,
        };
        let object = |text: Option<String>| -> Option<Map<String, Value>> {
            text.and_then(|text| serde_json::from_str(&text).ok())
        };
        RunView {
            id: run.id,
            result,
            exit_code: run.exit_code,
            started_at: rfc3339(run.started_at),
            ended_at: run.ended_at.map(rfc3339),
            duration_seconds: (until - run.started_at).max(0) as f64 / 1000.0,
            done: run.done,
            total: run.total,
            counts: object(run.counts).unwrap_or_default(),
            failed: run.failed,
            limiter: object(run.limiter).filter(|_| result == "running"),
            failures: None,
            command: run.command,
            kind: run.kind,
            flags: run.flags,
            host: run.host,
            holder: run.holder,
        }
    }

    /// `created 3 · updated 2 · failed 1`: the counts that are not zero, and
    /// `done/total` while it runs.
    fn counts_line(&self) -> String {
        let mut parts: Vec<String> = self
            .counts
            .iter()
            .filter(|(_, value)| value.as_u64().is_some_and(|n| n > 0))
            .map(|(name, value)| format!("{} {value}", name.replace('_', " ")))
            .collect();
        if matches!(self.result, "running" | "abandoned") {
            let of = self
                .total
                .map(|total| format!("/{total}"))
                .unwrap_or_default();
            parts.insert(0, format!("at {}{of}", self.done.unwrap_or(0)));
        }
        parts.join(" · ")
    }
}

fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

fn print_list(views: &[RunView]) {
    if views.is_empty() {
        println!(
            "No runs recorded yet (stripe:sync-customers and stripe:replay-events record theirs)."
        );
        return;
    }
    println!(
        "{:>6}  {:<22} {:<8} {:<21} {:>10}  {:<12} COUNTS",
        "ID", "COMMAND", "KIND", "STARTED (UTC)", "DURATION", "RESULT"
    );
    for view in views {
        println!(
            "{:>6}  {:<22} {:<8} {:<21} {:>9.1}s  {:<12} {}",
            view.id,
            view.command,
            view.kind,
            view.started_at,
            view.duration_seconds,
            view.result,
            view.counts_line()
        );
    }
}

fn print_one(view: &RunView) {
    println!("Run {}: {} {}", view.id, view.command, view.flags);
    let exit = view
        .exit_code
        .map(|code| format!(" (exit {code})"))
        .unwrap_or_default();
    let rows = [
        ("kind", view.kind.clone()),
        ("host", view.host.clone()),
        ("holder", view.holder.clone()),
        ("result", format!("{}{exit}", view.result)),
        ("started", view.started_at.clone()),
        ("ended", view.ended_at.clone().unwrap_or_else(|| "-".into())),
        ("duration", format!("{:.1}s", view.duration_seconds)),
        ("counts", view.counts_line()),
        ("failed", view.failed.to_string()),
    ];
    for (label, value) in rows {
        println!("  {label:<9} {value}");
    }
    if let Some(limiter) = &view.limiter {
        let buckets: Vec<String> = limiter
            .iter()
            .map(|(bucket, rate)| format!("{bucket} {rate}/s"))
            .collect();
        println!("  {:<9} {}", "limiter", buckets.join(", "));
    }
    let failures = view.failures.as_deref().unwrap_or_default();
    if failures.is_empty() {
        return;
    }
    println!(
        "Failures (the first {} of {}):",
        failures.len(),
        view.failed
    );
    for failure in failures {
        println!("  {}", failure_line(failure));
    }
}

/// One failure: what failed (a user and the action, an event, a case of drift),
/// why, and Stripe's request id when it answered.
fn failure_line(failure: &Value) -> String {
    let text = |key: &str| failure.get(key).and_then(Value::as_str);
    let subject = match (failure.get("user_id"), text("event_id")) {
        (Some(user), _) => {
            let action = text("action").or(text("kind")).unwrap_or("user");
            format!("user {user} ({action})")
        }
        (None, Some(event)) => format!("{event} ({})", text("event_type").unwrap_or("event")),
        (None, None) => "run".into(),
    };
    let reason = text("reason").or(text("detail")).unwrap_or("");
    let request = text("request_id")
        .map(|id| format!(" [{id}]"))
        .unwrap_or_default();
    format!("{subject}: {reason}{request}")
}
