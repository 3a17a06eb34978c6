//! The command line: parse, load settings, start logging, dispatch to one command.

mod bulk;
mod check;
mod migrate;
mod progress;
pub mod replay_events;
mod report;
pub mod runs;
mod serve;
mod signals;
pub mod sync_customers;
pub mod user_create;
pub mod user_password;
pub mod webhook;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, SETTINGS_HELP};
use crate::telemetry::{self, Console};

#[derive(Debug, Parser)]
#[command(
    name = "stripe-sync",
    version = crate::startup::version_text(),
    about = "Keeps your users in step with their Stripe customers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web app (migrations are applied at start)
    #[command(
        after_help = SETTINGS_HELP,
        long_about = "Run the web app (migrations are applied at start). Stops on SIGTERM or \
                      Ctrl-C after the requests in flight.\n\nExamples:\n  \
                      stripe-sync serve\n  \
                      BIND=0.0.0.0:8080 DATABASE_URL=postgres://app@db/app stripe-sync serve"
    )]
    Serve,
    /// Apply database migrations and exit
    #[command(
        after_help = SETTINGS_HELP,
        long_about = "Apply database migrations and exit; running it twice changes \
                      nothing. On a database a newer release has migrated further, it changes \
                      nothing and says so (exit 0); serve and every command run on such a \
                      database as it is. --check applies nothing and exits 1 when this \
                      release has migrations not applied yet, listing them.\n\nExamples:\n  \
                      DATABASE_URL=postgres://app@db/app stripe-sync migrate\n  \
                      stripe-sync migrate --check"
    )]
    Migrate(migrate::Args),
    /// Create a login
    #[command(
        name = "user:create",
        after_help = SETTINGS_HELP,
        long_about = "Create a login. The password is prompted for twice, or read from the \
                      first line of standard input.\n\nExamples:\n  \
                      stripe-sync user:create --email ann@example.com --name Ann\n  \
                      printf '%s\\n' \"$PASSWORD\" | stripe-sync user:create --email ann@example.com \
                      --name Ann --password-stdin"
    )]
    UserCreate(user_create::Args),
    /// Set a user's password and sign them out everywhere
    #[command(
        name = "user:password",
        after_help = SETTINGS_HELP,
        long_about = "Set a user's password; every session of the user ends. The password \
                      is prompted for twice, or read from the first line of standard input. \
                      An unknown email exits 2.\n\nExamples:\n  \
                      stripe-sync user:password --email ann@example.com\n  \
                      printf '%s\\n' \"$PASSWORD\" | stripe-sync user:password --email \
                      ann@example.com --password-stdin"
    )]
    UserPassword(user_password::Args),
    /// Create, update or refresh Stripe customers in bulk (with no action flag:
    /// create and update)
    #[command(
        name = "stripe:sync-customers",
        after_help = SETTINGS_HELP,
        long_about = SYNC_EXAMPLES
    )]
    SyncCustomers(sync_customers::Args),
    /// Apply the Stripe events no webhook brought, from Stripe's Events API
    #[command(
        name = "stripe:replay-events",
        after_help = SETTINGS_HELP,
        long_about = REPLAY_EXAMPLES
    )]
    ReplayEvents(replay_events::Args),
    /// List the recent bulk runs, or show one with its failures
    #[command(
        after_help = SETTINGS_HELP,
        long_about = "List the recent stripe:sync-customers and stripe:replay-events runs, \
                      newest first: id, command, kind, start, duration, result (running, \
                      succeeded, failed, interrupted, or abandoned: killed, its heartbeat \
                      lapsed) and counts. `runs show ID` shows one run with its first 100 \
                      failures. Runs are kept RUN_HISTORY_DAYS days. An unknown id exits 2.\n\n\
                      Examples:\n  \
                      stripe-sync runs\n  \
                      stripe-sync runs --limit 5 --json\n  \
                      stripe-sync runs show 42"
    )]
    Runs(runs::Args),
    /// Create the webhook endpoint in Stripe and print its signing secret
    #[command(
        name = "stripe:webhook",
        after_help = SETTINGS_HELP,
        long_about = "Create the webhook endpoint in Stripe, subscribed to exactly the events \
                      the app handles and pinned to the API version it reads, and print its \
                      signing secret once, with the line to add to .env. An endpoint for the \
                      same URL is reported, never duplicated.\n\nExamples:\n  \
                      stripe-sync stripe:webhook --url https://app.example.com/stripe/webhook\n  \
                      stripe-sync stripe:webhook --url https://app.example.com/stripe/webhook --disabled"
    )]
    Webhook(webhook::Args),
}

/// What `--help` says of the rates, for every command that calls Stripe in bulk.
macro_rules! rate_help {
    () => {
        "

Rates: Stripe limits each account globally (100 requests/s live, 25/s in a sandbox) and
each operation on its own (25/s: creating, updating, retrieving and listing customers are
four). A run plans 80% of each, 80/s global with a live key (20/s in a sandbox) and 20/s
per operation, leaving the rest to the web app's own calls; runs on the same database
(on other machines too) share that plan between them. --rate caps the global rate,
--endpoint-rate (or STRIPE_ENDPOINT_RATE) the per-operation one, for an account whose
limits Stripe has raised."
    };
}

const REPLAY_EXAMPLES: &str = concat!(
    "\
Apply the Stripe events no webhook brought (the app was down, the endpoint was
misconfigured), read back from Stripe's Events API oldest first, through the same
handling and dedupe as webhooks. Without --since a run continues from where the last
one ended (a stored checkpoint), else from 3 days back; run it from a timer every few
minutes. Applied events older than STRIPE_EVENTS_RETENTION_DAYS are forgotten.

Examples:
  stripe-sync stripe:replay-events                       continue from the checkpoint
  stripe-sync stripe:replay-events --since 2d --dry-run  what two days would apply
  stripe-sync stripe:replay-events --since 2026-11-28T09:00:00Z --type 'customer.*'

Exit codes: 0 every event applied; 1 an event failed (the checkpoint stays before it);
2 bad input; 130 after Ctrl-C; 143 after SIGTERM.",
    rate_help!()
);

const SYNC_EXAMPLES: &str = concat!("\
Create, update or refresh Stripe customers in bulk at Stripe's rate limits (with no
action flag: create and update, both at once). --refresh reads customers in list pages
of 100, and retrieves one by one when few of the account's customers are this app's.

Examples:
  stripe-sync stripe:sync-customers --dry-run            what would be created and updated
  stripe-sync stripe:sync-customers --create --update    create missing customers, push changes
  stripe-sync stripe:sync-customers --refresh            pull cards and trial ends of every linked user
  stripe-sync stripe:sync-customers --user=42 --create   one user
  stripe-sync stripe:sync-customers --check --repair     report drift, fix what is safe to fix

Exit codes: 0 every selected user handled; 1 a user failed, drift found, or users held by
another living run; 2 bad input; 130 after Ctrl-C; 143 after SIGTERM.",
    rate_help!()
);

/// Exit codes: 0 success, 1 the command failed, 2 usage error (clap's own).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match crate::startup::config_from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    let console = match cli.command {
        Command::Serve => Console::Stdout,
        _ => Console::Stderr,
    };
    let _guard = match telemetry::init(&config.log_settings(), console) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!(
                "could not start logging to {}: {err}",
                config.log_dir.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("could not start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli.command, config))
}

pub async fn run(command: Command, config: Config) -> ExitCode {
    let result = match command {
        Command::Serve => serve::run(config).await,
        Command::Migrate(args) => migrate::run(config, args).await,
        Command::SyncCustomers(args) => sync_customers::run(config, args).await,
        Command::ReplayEvents(args) => replay_events::run(config, args).await,
        Command::Webhook(args) => webhook::run(config, args).await,
        Command::Runs(args) => runs::run(config, args).await,
        Command::UserCreate(args) => {
            let stdin = std::io::stdin();
            user_create::run(config, args, &mut stdin.lock()).await
        }
        Command::UserPassword(args) => {
            let stdin = std::io::stdin();
            user_password::run(config, args, &mut stdin.lock()).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = err.exit_code();
            // A refused invocation (exit 2) did nothing: its one line is enough.
            if code != ExitCode::from(2) {
                tracing::error!(error = %err, "command failed");
            }
            eprintln!("error: {err}");
            code
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Startup(#[from] crate::startup::StartupError),
    #[error("{0}")]
    Usage(String),
    /// The command could not do its work; the cause stays attached.
    #[error("{context}: {source}")]
    Failed {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The command ran and printed its report; the run was not a full success.
    #[error("{0}")]
    Reported(String),
    /// Stopped by a signal after printing its report.
    #[error("{detail}")]
    Interrupted { signal: i32, detail: String },
}

impl CliError {
    pub fn failed(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        CliError::Failed {
            context: context.into(),
            source: source.into(),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit_status())
    }

    /// The process's exit status: 2 refused, 128 + the signal's number when
    /// stopped by one, else 1.
    pub fn exit_status(&self) -> u8 {
        match self {
            CliError::Usage(_)
            | CliError::Startup(
                crate::startup::StartupError::FieldMap(_) | crate::startup::StartupError::Mail(_),
            ) => 2,
            CliError::Interrupted { signal, .. } => u8::try_from(128 + signal).unwrap_or(1),
            _ => 1,
        }
    }
}
