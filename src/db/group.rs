//! Group commit: writes of one kind that arrive while the previous group is
//! committing wait for it and then go together, in one transaction. Fifty
//! concurrent creates pay for a few commits (and, where a commit waits for the
//! disk, a few fsyncs) instead of fifty; a lone write goes at once, so a page
//! waits no longer than it did.
//!
//! Each group runs in a task of its own, so a caller that gives up (a request
//! cancelled by its client) cancels nothing of the others'. A group that fails is
//! run again one request at a time, so each caller gets its own answer and one bad
//! row cannot fail its neighbours.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use super::Db;

/// Runs a group of requests in one transaction and answers each, in order.
pub type Flush<R, A> = fn(Db, Vec<R>) -> Flushing<A>;

/// A group's transaction under way.
pub type Flushing<A> = Pin<Box<dyn Future<Output = Result<Vec<A>, sqlx::Error>> + Send>>;

/// The most requests one transaction takes.
const MAX_GROUP: usize = 256;

/// Requests of one kind, committed in groups.
pub struct Group<R, A> {
    inner: Arc<Inner<R, A>>,
}

impl<R, A> Clone for Group<R, A> {
    fn clone(&self) -> Self {
        Group {
            inner: self.inner.clone(),
        }
    }
}

impl<R, A> std::fmt::Debug for Group<R, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group").finish_non_exhaustive()
    }
}

struct Inner<R, A> {
    db: Db,
    flush: Flush<R, A>,
    queue: Mutex<Queue<R, A>>,
}

struct Queue<R, A> {
    waiting: Vec<Waiting<R, A>>,
    /// Whether a task is flushing groups (it takes what waits until nothing does).
    flushing: bool,
}

struct Waiting<R, A> {
    request: R,
    answer: oneshot::Sender<Result<A, sqlx::Error>>,
}

impl<R, A> Group<R, A>
where
    R: Ord + Clone + Send + 'static,
    A: Send + 'static,
{
    pub fn new(db: Db, flush: Flush<R, A>) -> Self {
        let queue = Queue {
            waiting: Vec::new(),
            flushing: false,
        };
        Group {
            inner: Arc::new(Inner {
                db,
                flush,
                queue: Mutex::new(queue),
            }),
        }
    }

    /// Runs `request` with whatever others wait, and returns its answer once
    /// its group has committed.
    pub async fn run(&self, request: R) -> Result<A, sqlx::Error> {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut queue = self.inner.lock();
            queue.waiting.push(Waiting { request, answer });
            !std::mem::replace(&mut queue.flushing, true)
        };
        if start {
            tokio::spawn(flush_all(self.inner.clone()));
        }
        answered.await.unwrap_or(Err(sqlx::Error::WorkerCrashed))
    }
}

impl<R, A> Inner<R, A> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<R, A>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Flushes groups until none waits. Requests go in their order (a user id
/// first), so two processes' groups take rows in one order and cannot deadlock.
async fn flush_all<R, A>(inner: Arc<Inner<R, A>>)
where
    R: Ord + Clone + Send + 'static,
    A: Send + 'static,
{
    let _stopped = Stopped(&inner);
    loop {
        let mut group = {
            let mut queue = inner.lock();
            if queue.waiting.is_empty() {
                queue.flushing = false;
                return;
            }
            let take = queue.waiting.len().min(MAX_GROUP);
            queue.waiting.drain(..take).collect::<Vec<_>>()
        };
        group.sort_by(|a, b| a.request.cmp(&b.request));
        let requests = group.iter().map(|w| w.request.clone()).collect();
        match (inner.flush)(inner.db.clone(), requests).await {
            Ok(answers) if answers.len() == group.len() => {
                for (waiting, answer) in group.into_iter().zip(answers) {
                    let _ = waiting.answer.send(Ok(answer));
                }
            }
            failed => {
                if group.len() == 1 {
                    let failed = failed.and_then(|_| Err(sqlx::Error::RowNotFound));
                    let _ = group.remove(0).answer.send(failed);
                    continue;
                }
                for waiting in group {
                    let alone = (inner.flush)(inner.db.clone(), vec![waiting.request]).await;
                    let answer = alone.and_then(|mut answers| match answers.len() {
                        1 => Ok(answers.remove(0)),
                        _ => Err(sqlx::Error::RowNotFound),
                    });
                    let _ = waiting.answer.send(answer);
                }
            }
        }
    }
}

/// Should a flush panic, its waiting callers get an error instead of waiting
/// for ever, and the next request starts a new flush.
struct Stopped<'a, R, A>(&'a Inner<R, A>);

impl<R, A> Drop for Stopped<'_, R, A> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut queue = self.0.lock();
            queue.waiting.clear();
            queue.flushing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::{Flushing, Group};
    use crate::db::Db;

    /// The size of every group flushed, in order.
    static GROUPS: Mutex<Vec<usize>> = Mutex::new(Vec::new());

    /// Doubles each request after a pause (a commit taking time); a negative
    /// request fails the whole group, as a bad row fails a transaction.
    fn double(_db: Db, requests: Vec<i64>) -> Flushing<i64> {
        Box::pin(async move {
            GROUPS.lock().unwrap().push(requests.len());
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            if requests.iter().any(|&r| r < 0) {
                return Err(sqlx::Error::RowNotFound);
            }
            Ok(requests.iter().map(|r| r * 2).collect())
        })
    }

    /// Runs `requests` at once, each from a task of its own; returns each with its answer.
    async fn run_all(group: &Group<i64, i64>, requests: &[i64]) -> Vec<(i64, Option<i64>)> {
        let tasks = requests.iter().map(|&r| {
            let group = group.clone();
            tokio::spawn(async move { (r, group.run(r).await.ok()) })
        });
        join_all(tasks).await
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_commit_and_a_bad_one_fails_alone() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let group = Group::new(db, double);
        let take = || std::mem::take(&mut *GROUPS.lock().unwrap());

        let answers = run_all(&group, &(1..=40).collect::<Vec<_>>()).await;
        assert!(
            answers.iter().all(|&(r, a)| a == Some(r * 2)),
            "{answers:?}"
        );
        assert_eq!(
            take(),
            [40],
            "forty requests waiting together, one transaction"
        );

        let answers = run_all(&group, &[1, 2, -7, 4]).await;
        assert_eq!(
            answers,
            [(1, Some(2)), (2, Some(4)), (-7, None), (4, Some(8))]
        );
        assert_eq!(
            take(),
            [4, 1, 1, 1, 1],
            "the failed group ran again one by one"
        );

        assert_eq!(run_all(&group, &[5]).await, [(5, Some(10))]);
        assert_eq!(take(), [1], "a lone request goes at once, alone");
    }

    async fn join_all<T: Send + 'static>(
        tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
    ) -> Vec<T> {
        let mut done = Vec::new();
        for task in tasks.collect::<Vec<_>>() {
            done.push(task.await.unwrap());
        }
        done
    }
}
