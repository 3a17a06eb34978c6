//! `customer.updated` events of one customer that arrive while another of its
//! events is being applied wait, then go as a group: the newest applied as it
//! would be alone, the older ones recorded as superseded by it. That is the
//! state applying them one by one reaches (each older one would be stored, then
//! overwritten, or found superseded), for one write of the user's row instead of
//! one each. Stripe sends a customer's events in bursts (each API update of it is
//! one); applied one by one, they queue on its row.
//!
//! One task per customer applies the groups (spawned by the event that found no
//! queue), so a request that goes away never strands the ones waiting on it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use super::{EventError, EventOutcome, Events, StripeEvent};
use crate::clock::now;
use crate::db::events;

/// The events waiting, by customer; a customer is here while its task runs.
#[derive(Clone, Default)]
pub(super) struct Queues(Arc<Mutex<HashMap<String, Vec<Waiter>>>>);

impl fmt::Debug for Queues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queues")
            .field("customers", &self.lock().len())
            .finish()
    }
}

impl Queues {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<Waiter>>> {
        // A panic while the map is held leaves it whole (pushes and takes).
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

struct Waiter {
    event: StripeEvent,
    answer: oneshot::Sender<Answer>,
}

enum Answer {
    Applied(Result<EventOutcome, EventError>),
    /// The group could not answer for this event: it is applied on its own.
    Alone,
}

impl Events {
    /// Applies a `customer.updated` event of `customer` with the others of the
    /// customer that arrive meanwhile (see the module's text).
    pub(super) async fn apply_customer_updated(
        &self,
        event: &StripeEvent,
        customer: &str,
    ) -> Result<EventOutcome, EventError> {
        let (answer, answered) = oneshot::channel();
        let waiter = Waiter {
            event: event.clone(),
            answer,
        };
        let lead = {
            let mut queues = self.queues.lock();
            match queues.get_mut(customer) {
                Some(waiting) => {
                    waiting.push(waiter);
                    false
                }
                None => {
                    queues.insert(customer.to_owned(), vec![waiter]);
                    true
                }
            }
        };
        if lead {
            let (events, customer) = (self.clone(), customer.to_owned());
            tokio::spawn(async move { events.drain(customer).await });
        }
        match answered.await {
            Ok(Answer::Applied(applied)) => applied,
            Ok(Answer::Alone) | Err(_) => self.apply_customer_event(event, customer).await,
        }
    }

    /// Applies the customer's waiting events, a group at a time, until none wait.
    async fn drain(&self, customer: String) {
        let mut leading = Leading {
            queues: &self.queues,
            customer: &customer,
            done: false,
        };
        loop {
            let group = {
                let mut queues = self.queues.lock();
                match queues.get_mut(&customer) {
                    Some(waiting) if !waiting.is_empty() => std::mem::take(waiting),
                    _ => {
                        queues.remove(&customer);
                        leading.done = true;
                        return;
                    }
                }
            };
            self.apply_group(&customer, group).await;
        }
    }

    async fn apply_group(&self, customer: &str, mut group: Vec<Waiter>) {
        group.sort_by_key(|waiter| waiter.event.created);
        let newest = group.pop().expect("a group is never empty");
        let tied = group
            .last()
            .is_some_and(|older| older.event.created == newest.event.created);
        if group.is_empty() || tied {
            // Events of one second cannot supersede each other: each goes alone.
            for waiter in group.into_iter().chain([newest]) {
                let applied = self.apply_customer_event(&waiter.event, customer).await;
                let _ = waiter.answer.send(Answer::Applied(applied));
            }
            return;
        }
        let applied = self.apply_customer_event(&newest.event, customer).await;
        let older = match applied {
            Ok(EventOutcome::Ignored) => Some(EventOutcome::Ignored),
            // A redelivery says nothing of the user now (it may have been
            // ignored before the user was linked); a failure, nothing at all.
            Ok(EventOutcome::Duplicate) | Err(_) => None,
            // The guard is now at the newest's second or later.
            Ok(_) => Some(EventOutcome::Superseded),
        };
        let _ = newest.answer.send(Answer::Applied(applied));
        let recorded = match older {
            Some(_) => {
                let list: Vec<_> = group.iter().map(|w| &w.event).collect();
                let list = list
                    .iter()
                    .map(|e| (e.id.as_str(), e.type_.as_str(), e.created));
                events::record_all(self.db(), list, now()).await.ok()
            }
            None => None,
        };
        match (older, recorded) {
            (Some(outcome), Some(fresh)) => {
                for (waiter, fresh) in group.into_iter().zip(fresh) {
                    let outcome = if fresh {
                        outcome
                    } else {
                        EventOutcome::Duplicate
                    };
                    let _ = waiter.answer.send(Answer::Applied(Ok(outcome)));
                }
            }
            _ => {
                for waiter in group {
                    let _ = waiter.answer.send(Answer::Alone);
                }
            }
        }
    }
}

/// The customer's task: if it ends without emptying its queue (a panic), the
/// queue goes, and the events in it are applied on their own.
struct Leading<'a> {
    queues: &'a Queues,
    customer: &'a str,
    done: bool,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.queues.lock().remove(self.customer);
        }
    }
}
