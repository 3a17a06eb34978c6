//! Bulk runs, whichever command runs them (`stripe:sync-customers`, its
//! `--check`, `stripe:replay-events`): their record in the history and share of
//! the account ([`history`]), and what they report ([`report`]). Below the
//! services, which count into a report and record their runs here.

pub mod history;
pub mod report;
