//! How a long command learns it should stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// SIGINT (Ctrl-C) and SIGTERM (systemd, Kubernetes, `timeout`) both stop the run
/// gracefully: no new users, requests in flight finish, the report is printed, and
/// the exit code says which signal (128 + its number).
pub struct Stop {
    pub flag: Arc<AtomicBool>,
    signal: Arc<AtomicI32>,
}

impl Stop {
    pub fn on_signals() -> Self {
        let stop = Stop {
            flag: Arc::new(AtomicBool::new(false)),
            signal: Arc::new(AtomicI32::new(0)),
        };
        for (kind, number) in [
            (tokio::signal::unix::SignalKind::interrupt(), 2),
            (tokio::signal::unix::SignalKind::terminate(), 15),
        ] {
            let Ok(mut signals) = tokio::signal::unix::signal(kind) else {
                continue;
            };
            let (flag, signal) = (stop.flag.clone(), stop.signal.clone());
            tokio::spawn(async move {
                if signals.recv().await.is_some() {
                    eprintln!("Stopping: letting requests in flight finish ...");
                    let _ = signal.compare_exchange(0, number, Ordering::SeqCst, Ordering::SeqCst);
                    flag.store(true, Ordering::SeqCst);
                }
            });
        }
        stop
    }

    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            n => Some(n),
        }
    }
}
