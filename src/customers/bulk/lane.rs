//! One lane of a bulk run: a scan of the users for its own actions and the
//! workers acting on what it finds; and how each user's outcome is counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{Action, BulkOptions, Done, HELD_POLL, HELD_WAIT, PAGE_SIZE, Tally};
use crate::customers::{CustomerError, Customers, UserIds};
use crate::db::users::{self, FieldRow};
use crate::runs::report::{Conflict, Failure, Failures, Notes, Subject};

/// Which pass a user's attempt belongs to: what happens to an attempt that is not
/// final (no answer, held elsewhere) depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    First,
    Again,
}

/// Users to try again, and the failure to report if they cannot be.
#[derive(Default)]
struct Later {
    unanswered: Vec<(i64, Action, Failure)>,
    held: Vec<(i64, Action)>,
}

/// Ids of users one lane handles and another must leave alone: the ones the
/// create lane took, or the ones a list page already refreshed.
pub(super) type Handled = Arc<Mutex<UserIds>>;

/// Which users a lane acts on when two lanes scan the same users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Share {
    /// Every user: the only lane of the run.
    Alone,
    /// Users without a customer (their ids go into `handled`).
    Creates,
    /// Linked users the create lane did not take.
    Updates,
}

/// One scan of the users and the workers acting on what it finds, at most
/// `concurrency` at once; every lane of a run counts into the same tally.
pub(super) struct Lane {
    service: Customers,
    options: BulkOptions,
    share: Share,
    handled: Handled,
    permits: Arc<Semaphore>,
    tasks: JoinSet<()>,
    /// Whose task each running task is, to report a task that panicked.
    running: HashMap<tokio::task::Id, (i64, Action)>,
    tally: Arc<Tally>,
    failures: Arc<Mutex<Failures>>,
    notes: Arc<Mutex<Notes>>,
    later: Arc<Mutex<Later>>,
}

/// The run's failures and notes, which every lane adds to.
pub(super) type Reports = (Arc<Mutex<Failures>>, Arc<Mutex<Notes>>);

/// How a lane's run ended.
pub(super) struct LaneEnd {
    pub(super) interrupted: bool,
    pub(super) retried: u64,
}

impl Lane {
    pub(super) fn new(
        service: Customers,
        options: BulkOptions,
        share: Share,
        handled: Handled,
        tally: Arc<Tally>,
        (failures, notes): Reports,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
        Lane {
            service,
            options,
            share,
            handled,
            permits,
            tasks: JoinSet::new(),
            running: HashMap::new(),
            tally,
            failures,
            notes,
            later: Arc::default(),
        }
    }

    async fn spawn(&mut self, user_id: i64, action: Action, pass: Pass) {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        let service = self.service.clone();
        let options = self.options.clone();
        let reports = Reported {
            tally: self.tally.clone(),
            failures: self.failures.clone(),
            notes: self.notes.clone(),
            later: self.later.clone(),
        };
        let task = self.tasks.spawn(async move {
            let outcome = service.run(user_id, action, &options).await;
            reports.record(pass, user_id, action, outcome);
            drop(permit);
        });
        self.running.insert(task.id(), (user_id, action));
        while let Some(joined) = self.tasks.try_join_next_with_id() {
            self.reap(joined);
        }
    }

    async fn finish(&mut self) {
        while let Some(joined) = self.tasks.join_next_with_id().await {
            self.reap(joined);
        }
    }

    /// A task that ended: one that panicked reports its user as failed, never lost.
    fn reap(&mut self, joined: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let id = match &joined {
            Ok((id, ())) => *id,
            Err(err) => err.id(),
        };
        let Some((user_id, action)) = self.running.remove(&id) else {
            return;
        };
        if let Err(err) = joined {
            tracing::error!(user_id, action = action.name(), error = %err, "a bulk task panicked");
            self.fail(Failure {
                subject: Subject::User {
                    user_id,
                    action: action.name(),
                },
                reason: "internal error (see the log)".into(),
                request_id: None,
                stripe_answered: false,
            });
        }
    }

    fn take_later(&self) -> Later {
        std::mem::take(&mut *self.later.lock().expect("later lock"))
    }

    fn fail(&self, failure: Failure) {
        self.tally.add(&self.tally.failed);
        self.failures.lock().expect("failures lock").push(failure);
    }

    /// What this lane does for one user of the scan, if anything.
    fn plan(&self, row: &FieldRow) -> Option<Action> {
        let mut handled = self.handled.lock().expect("handled lock");
        let others = match self.share {
            Share::Alone => handled.contains(row.id),
            Share::Creates => row.stripe_id.is_some(),
            Share::Updates => row.stripe_id.is_none() || handled.contains(row.id),
        };
        if others {
            return None;
        }
        let action = self.plan_user(row)?;
        if self.share == Share::Creates {
            handled.insert(row.id);
        }
        Some(action)
    }

    /// Scans the users, then gives the unanswered a second pass and waits for
    /// users held elsewhere. Stops scheduling new users once `stop` is set.
    pub(super) async fn run(mut self, stop: &AtomicBool) -> Result<LaneEnd, CustomerError> {
        let stopped = || stop.load(Ordering::Relaxed);
        let mut cursor = 0;
        let mut interrupted = false;
        'pages: loop {
            let page = match self.options.user {
                Some(id) if cursor == 0 => vec![self.service.sync_row(id).await?],
                Some(_) => Vec::new(),
                None => {
                    let columns = self.service.columns();
                    users::field_page_after(self.service.db(), cursor, PAGE_SIZE, &columns).await?
                }
            };
            let Some(last) = page.last() else { break };
            cursor = last.id;
            for row in page {
                if stopped() {
                    interrupted = true;
                    break 'pages;
                }
                let Some(action) = self.plan(&row) else {
                    continue;
                };
                if self.options.dry_run {
                    let tally = &self.tally;
                    tally.add(match action {
                        Action::Create => &tally.created,
                        Action::Update => &tally.updated,
                        Action::Refresh => &tally.refreshed,
                    });
                    continue;
                }
                self.spawn(row.id, action, Pass::First).await;
            }
        }
        self.finish().await;

        // Second pass for the unanswered.
        let Later { unanswered, held } = self.take_later();
        let retried = unanswered.len() as u64;
        for (user_id, action, failure) in unanswered {
            if stopped() {
                interrupted = true;
                self.fail(failure);
            } else {
                self.spawn(user_id, action, Pass::Again).await;
            }
        }
        self.finish().await;

        // Users held elsewhere, until their holder lets go or dies: at once (a
        // run beside this one has most likely finished them by now), then every
        // poll.
        let mut held = [held, self.take_later().held].concat();
        let waiting_since = Instant::now();
        while !held.is_empty() && !stopped() && waiting_since.elapsed() < HELD_WAIT {
            for (user_id, action) in std::mem::take(&mut held) {
                self.spawn(user_id, action, Pass::Again).await;
            }
            self.finish().await;
            held = self.take_later().held;
            if !held.is_empty() {
                tokio::time::sleep(HELD_POLL).await;
            }
        }
        interrupted |= stopped() && !held.is_empty();
        for _ in &held {
            self.tally.add(&self.tally.held);
        }
        Ok(LaneEnd {
            interrupted,
            retried,
        })
    }
}

impl Lane {
    /// What to do for one user, from the scan alone: users with nothing to push,
    /// pull or record, and users outside the chosen actions, are counted here and
    /// cost no Stripe call and no write. A user whose only news is a conflict is
    /// reported here too.
    fn plan_user(&self, row: &FieldRow) -> Option<Action> {
        let (options, tally) = (&self.options, &self.tally);
        match &row.stripe_id {
            Some(_) if options.refresh => Some(Action::Refresh),
            None if options.create => Some(Action::Create),
            Some(_) if options.update => {
                let plan = self.service.plan_row(row, options.settle(), options.force);
                if !plan.is_quiet() {
                    return Some(Action::Update);
                }
                let fields: Vec<String> = plan.conflicts().map(|f| f.field.key()).collect();
                let conflict = (!fields.is_empty()).then_some(Conflict {
                    user_id: row.id,
                    fields,
                });
                self.notes
                    .lock()
                    .expect("notes lock")
                    .add(row.id, conflict, &plan.withheld());
                tally.add(&tally.unchanged);
                None
            }
            _ => {
                tally.add(&tally.skipped);
                None
            }
        }
    }
}

/// Where a task counts its user's outcome.
struct Reported {
    tally: Arc<Tally>,
    failures: Arc<Mutex<Failures>>,
    notes: Arc<Mutex<Notes>>,
    later: Arc<Mutex<Later>>,
}

impl Reported {
    /// Counts one user's outcome. An unanswered failure in the first pass, and a
    /// user held elsewhere in any pass, are set aside to try again and counted then.
    fn record(
        &self,
        pass: Pass,
        user_id: i64,
        action: Action,
        outcome: Result<Done, CustomerError>,
    ) {
        let (tally, failures, later) = (&*self.tally, &*self.failures, &*self.later);
        match &outcome {
            Ok(Done::Updated(update)) => {
                if !update.pulled.is_empty() {
                    tally.pulled.add();
                }
                let conflict = (!update.conflicts.is_empty()).then(|| Conflict {
                    user_id,
                    fields: update.conflicts.clone(),
                });
                let mut notes = self.notes.lock().expect("notes lock");
                notes.add(user_id, conflict, &update.not_sent);
            }
            Ok(Done::Created(created)) => {
                let mut notes = self.notes.lock().expect("notes lock");
                notes.add(user_id, None, &created.not_sent);
            }
            _ => {}
        }
        record(tally, failures, later, pass, user_id, action, outcome);
    }
}

fn record(
    tally: &Tally,
    failures: &Mutex<Failures>,
    later: &Mutex<Later>,
    pass: Pass,
    user_id: i64,
    action: Action,
    outcome: Result<Done, CustomerError>,
) {
    let failure = |err: &CustomerError| {
        let subject = Subject::User {
            user_id,
            action: action.name(),
        };
        Failure::of(subject, err)
    };
    match outcome {
        Ok(Done::Created(created)) if created.relinked => tally.add(&tally.relinked),
        Ok(Done::Created(_)) => tally.add(&tally.created),
        Ok(Done::Updated(update)) if update.pushed.is_empty() => tally.add(&tally.unchanged),
        Ok(Done::Updated(_)) => tally.add(&tally.updated),
        Ok(Done::Refreshed) => tally.add(&tally.refreshed),
        // Another run (or the page) holds the user right now.
        Err(CustomerError::CreateInProgress | CustomerError::Busy) => {
            later
                .lock()
                .expect("later lock")
                .held
                .push((user_id, action));
        }
        // Another run got there first.
        Err(CustomerError::AlreadyHasCustomer { .. } | CustomerError::NoCustomer) => {
            tally.add(&tally.skipped)
        }
        Err(err) if err.is_unanswered() && pass == Pass::First => {
            let failed = failure(&err);
            later
                .lock()
                .expect("later lock")
                .unanswered
                .push((user_id, action, failed));
        }
        Err(err) => {
            tally.add(&tally.failed);
            failures.lock().expect("failures lock").push(failure(&err));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Context;
    use crate::db::Db;

    #[tokio::test]
    async fn a_task_that_panics_is_reported_as_a_failed_user_never_lost() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let options = BulkOptions {
            create: false,
            update: true,
            refresh: false,
            user: None,
            dry_run: false,
            force: false,
            prefer: None,
            concurrency: 1,
        };
        let mut lane = Lane {
            service: Customers::new(Context::new(db, None, Default::default())),
            options,
            share: Share::Alone,
            handled: Arc::default(),
            permits: Arc::new(Semaphore::new(1)),
            tasks: JoinSet::new(),
            running: HashMap::new(),
            tally: Arc::default(),
            failures: Arc::default(),
            notes: Arc::default(),
            later: Arc::default(),
        };
        let task = lane.tasks.spawn(async { panic!("a bug in a bulk task") });
        lane.running.insert(task.id(), (7, Action::Update));

        lane.finish().await;

        let failures = lane.failures.lock().unwrap();
        let failures = failures.listed();
        assert_eq!(failures.len(), 1);
        assert_eq!(
            failures[0].subject,
            Subject::User {
                user_id: 7,
                action: "update"
            }
        );
        assert!(failures[0].reason.contains("internal error"));
        assert_eq!(lane.tally.failed.get(), 1);
        assert_eq!(lane.tally.processed.get(), 1);
    }
}
