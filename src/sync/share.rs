//! Several processes on one Stripe account share its rate limits.
//!
//! Stripe's limits are per account, not per process: two bulk runs on two
//! machines (or a bulk run and a replay) that each planned the whole budget would
//! together draw 429s. Every process doing bulk work records itself in
//! `stripe_sync_runs` and beats every [`BEAT`]; each takes the planned budget
//! divided by the runs alive, re-read on every beat, so a share grows back within
//! a second when another run ends, and within [`LAPSE`] when one is killed.

use std::sync::Arc;
use std::time::Duration;

use super::{SyncError, SyncService, millis, now};
use crate::db::{runs, users::unix_ms};
use crate::stripe::RateLimiter;

const BEAT: Duration = Duration::from_secs(1);
/// A run whose heartbeat is older than this was killed: it no longer takes a share.
const LAPSE: Duration = Duration::from_secs(5);
/// Runs are remembered this long, then pruned.
const KEPT: Duration = Duration::from_secs(90 * 86_400);

/// This process's place among the runs sharing the account; ends with
/// [`AccountShare::finish`] (or with the process: its heartbeat lapses).
pub struct AccountShare {
    service: SyncService,
    beat: tokio::task::JoinHandle<()>,
}

impl SyncService {
    /// Records this process as running `command` and keeps `limiter` at its share
    /// of the plan until [`AccountShare::finish`].
    pub async fn share_account(
        &self,
        command: &str,
        limiter: Arc<RateLimiter>,
    ) -> Result<AccountShare, SyncError> {
        let now_ms = unix_ms(now());
        runs::prune(self.db(), now_ms - millis(KEPT)).await?;
        runs::start(self.db(), &self.holder, command, now_ms).await?;
        limiter.set_share(living(self, now_ms).await?);
        let service = self.clone();
        let beat = tokio::spawn(async move {
            let mut every = tokio::time::interval(BEAT);
            every.tick().await;
            loop {
                every.tick().await;
                let now_ms = unix_ms(now());
                let counted = async {
                    runs::beat(service.db(), &service.holder, now_ms).await?;
                    living(&service, now_ms).await
                };
                match counted.await {
                    Ok(processes) => limiter.set_share(processes),
                    Err(err) => tracing::warn!(error = %err, "could not renew this run's share"),
                }
            }
        });
        Ok(AccountShare {
            service: self.clone(),
            beat,
        })
    }
}

impl AccountShare {
    /// Ends `share`, if the run took one.
    pub async fn finish_any(share: Option<AccountShare>) {
        if let Some(share) = share {
            share.finish().await;
        }
    }

    /// Gives this process's share back to the others.
    pub async fn finish(self) {
        self.beat.abort();
        let service = &self.service;
        if let Err(err) = runs::finish(service.db(), &service.holder, unix_ms(now())).await {
            tracing::warn!(error = %err, "could not record the end of this run");
        }
    }
}

/// How many runs share the account now, this one included.
async fn living(service: &SyncService, now_ms: i64) -> Result<u32, SyncError> {
    let count = runs::living(service.db(), now_ms - millis(LAPSE)).await?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX).max(1))
}
