//! stripe-sync keeps an application's users in step with their Stripe customers.
//!
//! Data flows one way: `web` and `cli` call the services — `sync` (customers),
//! `billing` and `events` (events → billing → sync) — which use `db` and `stripe`.

pub mod accounts;
pub mod billing;
pub mod cli;
pub mod clock;
pub mod config;
pub mod context;
pub mod customers;
pub mod db;
pub mod domain;
pub mod events;
pub mod fields;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod monitoring;
pub mod password;
pub mod runs;
pub mod startup;
pub mod stripe;
pub mod telemetry;
pub mod throttle;
pub mod web;
