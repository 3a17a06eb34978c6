//! Replaying Stripe's Events API: the events no webhook brought (the app was
//! down, the endpoint misconfigured, Stripe gave up after three days) are read
//! back and applied through the same [`Customers::apply_event`] and dedupe as
//! webhooks, oldest first, with a checkpoint so a timer continues where the last
//! run ended.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::Serialize;

use super::{EventError, EventOutcome, Events, StripeEvent, is_handled};
use crate::clock::now;
use crate::db::checkpoints::{self, Checkpoint};
use crate::db::events;
use crate::runs::report::{Count, Failure, Failures, RunError as _, Subject};
use crate::stripe::{Dated, ListReads, PageCall, Segment, Segments, StripeFailure, StripeGateway};

/// The checkpoint's name in `stripe_event_checkpoints`.
/// The name of the replay's checkpoint row.
pub const CHECKPOINT: &str = "replay-events";
/// How far before the checkpoint a run starts again: an event can show up in the
/// list a little after its `created` time. Ones applied already are duplicates.
pub const OVERLAP_SECONDS: i64 = 60;
/// Without a checkpoint or `--since`: Stripe retries a delivery for three days.
pub const DEFAULT_SINCE_SECONDS: i64 = 3 * 86_400;
/// Stripe keeps events for thirty days.
pub const STRIPE_KEEPS_SECONDS: i64 = 30 * 86_400;
/// About the most events held in memory at once: read but waiting for every
/// older one. The window is read in parts of at most this many over the
/// segments in flight.
pub const MAX_HELD_EVENTS: usize = 20_000;

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Where to start (Unix seconds); `None`: the checkpoint, else three days back.
    pub since: Option<i64>,
    /// Event types to apply (`customer.*` style wildcards); empty: every handled type.
    pub types: Vec<String>,
    pub dry_run: bool,
    /// How long applied events are remembered (`STRIPE_EVENTS_RETENTION_DAYS`): a
    /// replay never reaches further back, where it could not tell a duplicate.
    pub retention_days: u32,
    /// About the most events held in memory at once ([`MAX_HELD_EVENTS`]).
    pub max_held_events: usize,
}

/// Live counts for the progress display.
#[derive(Debug, Default)]
pub struct ReplayTally {
    pub listed: Count,
    pub applied: Count,
    pub unchanged: Count,
    pub duplicate: Count,
    pub ignored: Count,
    pub failed: Count,
}

/// The final report; `--json` prints it as one object.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    pub dry_run: bool,
    pub interrupted: bool,
    /// The window read: events created in `[from, until)`, Unix seconds.
    pub from: i64,
    pub until: i64,
    /// Whether `from` came from the stored checkpoint.
    pub from_checkpoint: bool,
    /// Events the Events API listed in the window.
    pub listed: u64,
    /// Events that changed the local copy (in a dry run: that would be applied).
    pub applied: u64,
    /// Applied, but they said what was stored already or were older than it.
    pub unchanged: u64,
    /// Applied before, by a webhook or an earlier run.
    pub duplicate: u64,
    /// Of a type the app does not act on, or outside `--type`, or about nobody here.
    pub ignored: u64,
    pub failed: u64,
    #[serde(flatten)]
    pub failures: Failures,
    /// The checkpoint after the run, and whether this run moved it.
    pub checkpoint: Option<Checkpoint>,
    pub checkpoint_moved: bool,
    /// Applied events forgotten after the retention period.
    pub pruned: u64,
    /// How the events were read: segments side by side, and pages.
    #[serde(flatten)]
    pub list: ListReads,
    pub elapsed_seconds: f64,
}

impl ReplayReport {
    pub fn complete(&self) -> bool {
        self.failed == 0 && !self.interrupted
    }
}

/// Whether `type_` is selected by a `--type` pattern (`customer.*`, `*` or exact).
pub fn type_matches(pattern: &str, type_: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => type_.starts_with(prefix),
        None => pattern == type_,
    }
}

/// `--since` as Unix seconds: `90s`, `15m`, `1h`, `2d` before `now`, or an
/// RFC 3339 time.
pub fn parse_since(value: &str, now: i64) -> Result<i64, String> {
    let bad = || {
        format!(
            "--since takes a duration such as 90s, 15m, 1h or 2d, or an RFC 3339 time such as \
             2026-11-28T09:00:00Z (got {value:?})"
        )
    };
    if !value.is_ascii() {
        return Err(bad());
    }
    if let Ok(at) =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
    {
        let at = at.unix_timestamp();
        if at > now {
            return Err(format!(
                "--since {value} is in the future: there are no events after now to apply"
            ));
        }
        return Ok(at);
    }
    let split = value.len().checked_sub(1).ok_or_else(bad)?;
    let (number, unit) = value.split_at(split);
    if !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let number: i64 = number.parse().map_err(|_| bad())?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    if number <= 0 {
        return Err(bad());
    }
    Ok(now - number.saturating_mul(unit))
}

impl Events {
    /// Reads the events created since the start (see [`ReplayOptions::since`])
    /// in segments side by side and applies them oldest first (ties by id), each
    /// once every older one is read. Stops between events when
    /// `stop` is set. The checkpoint moves only over a run that covered
    /// everything since it, with no `--type`, and never past a failed event.
    pub async fn replay_events(
        &self,
        options: &ReplayOptions,
        tally: Arc<ReplayTally>,
        stop: Arc<AtomicBool>,
    ) -> Result<ReplayReport, EventError> {
        let started = Instant::now();
        let stripe = self.stripe()?;
        let now = now().unix_timestamp();
        let stored = checkpoints::find(self.db(), CHECKPOINT).await?;
        let oldest = now - STRIPE_KEEPS_SECONDS.min(i64::from(options.retention_days) * 86_400);
        let from_checkpoint = options.since.is_none() && stored.is_some();
        let from = match (options.since, &stored) {
            (Some(since), _) => since,
            (None, Some(checkpoint)) => checkpoint.event_created - OVERLAP_SECONDS,
            (None, None) => now - DEFAULT_SINCE_SECONDS,
        }
        .max(oldest);
        // Up to and including this second; events of it still arriving are read by
        // the next run, which starts a minute before the checkpoint.
        let until = now + 1;
        if let Some(checkpoint) = stored.as_ref().filter(|c| c.event_created < oldest) {
            tracing::warn!(
                checkpoint = %checkpoint.event_id,
                from,
                "the checkpoint is older than Stripe keeps events or than applied events are \
                 remembered: events before the start can no longer be replayed"
            );
        }
        // The run covers everything after the checkpoint when it reads every type
        // and starts from the checkpoint (or as near as can be), or before it.
        let may_move = !options.dry_run
            && options.types.is_empty()
            && (options.since.is_none()
                || stored
                    .as_ref()
                    .is_none_or(|checkpoint| from <= checkpoint.event_created));
        let server_type = match options.types.as_slice() {
            [only] if !only.contains('*') => Some(only.as_str()),
            _ => None,
        };

        let mut report = ReplayReport {
            dry_run: options.dry_run,
            interrupted: false,
            from,
            until,
            from_checkpoint,
            listed: 0,
            applied: 0,
            unchanged: 0,
            duplicate: 0,
            ignored: 0,
            failed: 0,
            failures: Failures::default(),
            checkpoint: stored.clone(),
            checkpoint_moved: false,
            pruned: 0,
            list: ListReads::default(),
            elapsed_seconds: 0.0,
        };
        let mut reached: Option<Checkpoint> = None;
        let mut blocked = false;
        let mut pages = event_segments(stripe, from, until, server_type, options.max_held_events);
        // Events read but not yet applied: those above where the read is complete.
        let mut held: Vec<StripeEvent> = Vec::new();
        'pages: loop {
            if stop.load(Ordering::SeqCst) {
                report.interrupted = true;
                break;
            }
            let page = pages.next_page().await;
            let done = page.is_none();
            if let Some(page) = page {
                held.extend(page?);
            }
            let complete_below = if done {
                i64::MAX
            } else {
                pages.complete_below()
            };
            held.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
            let ready = held.partition_point(|event| event.created < complete_below);
            for event in held.drain(..ready) {
                if stop.load(Ordering::SeqCst) {
                    report.interrupted = true;
                    break 'pages;
                }
                report.listed += 1;
                tally.listed.add();
                let selected = is_handled(&event.type_)
                    && (options.types.is_empty()
                        || options.types.iter().any(|t| type_matches(t, &event.type_)));
                let outcome = if !selected {
                    Ok(EventOutcome::Ignored)
                } else if options.dry_run {
                    self.dry_run_outcome(&event).await
                } else {
                    self.apply_event(&event).await
                };
                match outcome {
                    Ok(outcome) => {
                        count(&mut report, &tally, outcome);
                        if !blocked {
                            reached = Some(Checkpoint {
                                event_id: event.id.clone(),
                                event_created: event.created,
                            });
                        }
                    }
                    Err(err) => {
                        tracing::warn!(
                            event_id = %event.id,
                            event_type = %event.type_,
                            request_id = err.request_id(),
                            error = %err,
                            "replayed event failed"
                        );
                        blocked = true;
                        report.failed += 1;
                        tally.failed.add();
                        let subject = Subject::Event {
                            event_id: event.id,
                            event_type: event.type_,
                            created: event.created,
                        };
                        report.failures.push(Failure::of(subject, &err));
                    }
                }
            }
            if done {
                break;
            }
        }
        report.list = pages.reads();
        if may_move && let Some(reached) = reached {
            let moved = checkpoints::advance(self.db(), CHECKPOINT, &reached, now).await?;
            if moved {
                report.checkpoint = Some(reached);
                report.checkpoint_moved = true;
            }
        }
        if !options.dry_run {
            report.pruned = self.prune_events(options.retention_days).await?;
        }
        report.elapsed_seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// What applying would do, without writing or calling Stripe.
    async fn dry_run_outcome(&self, event: &StripeEvent) -> Result<EventOutcome, EventError> {
        Ok(if events::is_recorded(self.db(), &event.id).await? {
            EventOutcome::Duplicate
        } else {
            EventOutcome::Applied
        })
    }
}

fn count(report: &mut ReplayReport, tally: &ReplayTally, outcome: EventOutcome) {
    let (field, live) = match outcome {
        EventOutcome::Applied => (&mut report.applied, &tally.applied),
        EventOutcome::Unchanged | EventOutcome::Superseded => {
            (&mut report.unchanged, &tally.unchanged)
        }
        EventOutcome::Duplicate => (&mut report.duplicate, &tally.duplicate),
        EventOutcome::Ignored => (&mut report.ignored, &tally.ignored),
    };
    *field += 1;
    live.add();
}

/// The events of `[from, until)` in segments side by side (see [`Segments`]),
/// oldest parts first and none longer than `max_held` events over the
/// segments in flight, so the events held until every older one is read stay few.
fn event_segments(
    stripe: &StripeGateway,
    from: i64,
    until: i64,
    type_: Option<&str>,
    max_held: usize,
) -> Segments<StripeEvent> {
    let (stripe_, type_) = (stripe.clone(), type_.map(str::to_string));
    let fetch = move |segment: Segment| -> PageCall<StripeEvent> {
        let (stripe, type_) = (stripe_.clone(), type_.clone());
        Box::pin(async move {
            let (page, has_more) = stripe.list_events(&segment, type_.as_deref()).await?;
            let events = page
                .into_iter()
                .map(serde_json::from_value)
                .collect::<Result<_, _>>()
                .map_err(|err| StripeFailure::unreadable("list events", &err.to_string()))?;
            Ok((events, has_more))
        })
    };
    let pace = stripe.pace("GET /v1/events");
    let part_pages = max_held / (100 * pace.in_flight());
    Segments::new(from, until, pace, Box::new(fetch)).oldest_first(part_pages)
}

impl Dated for StripeEvent {
    fn list_id(&self) -> &str {
        &self.id
    }

    fn created_at(&self) -> i64 {
        self.created
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_rfc3339_times() {
        let now = 1_800_000_000;
        assert_eq!(parse_since("90s", now), Ok(now - 90));
        assert_eq!(parse_since("15m", now), Ok(now - 900));
        assert_eq!(parse_since("1h", now), Ok(now - 3_600));
        assert_eq!(parse_since("2d", now), Ok(now - 172_800));
        assert_eq!(parse_since("2026-11-28T09:00:00Z", now), Ok(1_795_856_400));
        for bad in ["", "h", "1w", "-1h", "0h", "yesterday", "2026-11-28"] {
            assert!(parse_since(bad, now).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn type_patterns_take_a_trailing_wildcard() {
        assert!(type_matches("customer.*", "customer.updated"));
        assert!(type_matches("*", "charge.refunded"));
        assert!(type_matches("customer.deleted", "customer.deleted"));
        assert!(!type_matches("customer.*", "checkout.session.completed"));
        assert!(!type_matches("customer.deleted", "customer.updated"));
    }
}
