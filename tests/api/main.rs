//! One integration test binary: helpers, the Stripe stand-in, one file per area.

// The suite reads and seeds the database with each driver's own SQL, on purpose
// (the app's queries go through src/db/dialect).
#![allow(clippy::disallowed_methods)]

mod account_security;
mod accounts;
mod browser;
mod bulk_integrity;
mod cli;
mod conformance;
mod customer_actions;
mod customer_create;
mod customer_fields;
mod helpers;
mod hostile_text;
mod jobs;
mod laravel;
mod list_segments;
mod log_lines;
mod monitoring;
mod operations;
mod password_reset;
mod passwords;
mod profile;
mod replay_events;
mod rollouts;
mod run_history;
mod settings_page;
mod slow_clients;
mod stripe_client;
mod stripe_contract;
mod stripe_fake;
mod stripe_limits;
mod sync_command;
mod web_tier;
mod webhook_bursts;
mod webhook_command;
mod webhooks;
