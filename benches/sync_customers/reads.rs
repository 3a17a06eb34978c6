//! Part four (`--part reads`): reads at Stripe's limits whatever the latency.
//!
//! `--read-users` (40,000) linked customers created across five years, Stripe's
//! limits, a live key, no flags; `--refresh`, `--check` and a replay of as many
//! events (of a type the app does not act on, across two days) at 100 ms and at
//! 400 ms per call. The plan is 20 list calls/s of 100: 2,000 users/s (target
//! ≥ 0.9 of it, ≤ 1% refused).
//!
//! Then a simulation of `--simulated-customers` (1,000,000): the same segment
//! reader and rate limiter on a clock that only moves when everything waits, the
//! list answered from memory after 400 ms. It reports the simulated minutes
//! (target: under 10) and the most pages the reader held at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use stripe_sync::stripe::{
    Dated, PageCall, RateLimiter, RatePlan, Segment, Segments, StripeFailure,
};

use super::{Measured, Settings, insert_rows, measure, spawn_app};

const FIVE_YEARS: i64 = 5 * 365 * 86_400;
/// The plan a live key's run makes for one operation.
const PLANNED_USERS_PER_SECOND: f64 = 20.0 * 100.0;

pub async fn run(settings: &Settings) -> Vec<Measured> {
    let mut results = Vec::new();
    for latency_ms in [100, 400] {
        results.extend(at_latency(settings.read_users, latency_ms).await);
    }
    results
}

/// Peak RSS of `--refresh` and `--check` over `--memory-users` (1,000,000)
/// linked customers against a tenth of them (target ≤ 1.1): a raised limit
/// (`--rate 1000 --endpoint-rate 1000`, the most the flags take) and 100 ms per
/// call, so the reader keeps its most segments in flight and a million users take
/// a few minutes.
pub async fn memory(settings: &Settings) -> Vec<Measured> {
    let mut results = Vec::new();
    for customers in [settings.memory_users / 10, settings.memory_users] {
        let app = spawn_app().await;
        app.stripe.set_latency(Duration::from_millis(100));
        app.stripe.set_limits(1000, 1000);
        seed_linked(&app, customers).await;
        for flag in ["--refresh", "--check"] {
            let phase = format!("{} {customers}, raised limit", &flag[2..]);
            let args = ["stripe:sync-customers", "--json", flag, "--rate", "1000"];
            let command = app.command(&[&args[..], &["--endpoint-rate", "1000"]].concat());
            let measured = super::measure_commands(&app, &phase, vec![(command, "")], None);
            results.push(measured.await);
        }
    }
    results
}

pub fn print_memory(results: &[Measured]) {
    println!("\nMemory of --refresh and --check, 100 ms per call, a raised limit\n");
    super::print_table(results);
    if let [refresh, check, large_refresh, large_check] = results {
        for (small, large) in [(refresh, large_refresh), (check, large_check)] {
            println!(
                "peak RSS, {} ÷ {}: {:.2} (target ≤ 1.1)",
                large.phase,
                small.phase,
                large.peak_rss_kib as f64 / small.peak_rss_kib as f64
            );
        }
    }
}

/// `customers` customers created across five years, each linked to a user who
/// agrees with it (`--check` finds no drift).
async fn seed_linked(app: &super::TestApp, customers: usize) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let apart = FIVE_YEARS as f64 / customers as f64;
    app.stripe.space_creation_times(now - FIVE_YEARS, apart);
    let ids = app.stripe.insert_customers(customers, None);
    // Linked users who agree with their customers: `--check` finds no drift.
    let rows = ids.into_iter().enumerate().map(|(n, id)| {
        vec![
            format!("Customer {n}"),
            format!("customer{n}@example.com"),
            id,
        ]
    });
    let sql = "INSERT INTO users (name, email, password, stripe_id, stripe_synced_at, \
               created_at, updated_at) VALUES ($1, $2, 'x', $3, $4, $4, $4)";
    insert_rows(&app.db, sql, rows).await;
}

async fn at_latency(customers: usize, latency_ms: u64) -> Vec<Measured> {
    let app = spawn_app().await;
    app.stripe.set_latency(Duration::from_millis(latency_ms));
    seed_linked(&app, customers).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let two_days = 2.0 * 86_400.0 / customers as f64;
    app.stripe
        .insert_events(customers, "charge.succeeded", now - 2 * 86_400, two_days);

    let planned = Some(PLANNED_USERS_PER_SECOND);
    let sync = |flag| ["stripe:sync-customers", "--json", flag];
    let at = |phase: &str| format!("{phase}, {latency_ms} ms");
    vec![
        measure(&app, &at("refresh"), &sync("--refresh"), planned).await,
        measure(&app, &at("check"), &sync("--check"), planned).await,
        measure(
            &app,
            &at("replay events"),
            &["stripe:replay-events", "--json", "--since", "3d"],
            planned,
        )
        .await,
    ]
}

/// A customer of the simulated account.
struct Item {
    id: String,
    created: i64,
}

impl Dated for Item {
    fn list_id(&self) -> &str {
        &self.id
    }

    fn created_at(&self) -> i64 {
        self.created
    }
}

/// How the simulated account's customers spread over its five years.
#[derive(Debug, Clone, Copy)]
pub enum Layout {
    Even,
    Growing,
}

/// What the simulation found: simulated seconds, pages and segments, the most
/// pages held at once, and whether every customer was read exactly once.
pub struct Simulated {
    pub layout: Layout,
    pub customers: usize,
    pub seconds: f64,
    pub pages: u64,
    pub segments: u64,
    pub most_held: usize,
}

/// Reads `customers` spread over five years through [`Segments`] and a limiter
/// planned as a live key's run plans, each call answered after `latency`.
pub fn simulate(customers: usize, layout: Layout, latency: Duration) -> Simulated {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async move {
        let first = 1_640_000_000;
        let apart = FIVE_YEARS as f64 / customers as f64;
        // Oldest first; the list answers newest first.
        let created: Arc<Vec<i64>> = Arc::new(
            (0..customers)
                .map(|n| match layout {
                    Layout::Even => first + (n as f64 * apart) as i64,
                    // Density rising with time: the last year holds a third.
                    Layout::Growing => {
                        first + (FIVE_YEARS as f64 * (n as f64 / customers as f64).sqrt()) as i64
                    }
                })
                .collect(),
        );
        let limiter = Arc::new(RateLimiter::new(RatePlan {
            global: 100,
            endpoint: 20,
        }));
        let held = Arc::new(AtomicUsize::new(0));
        let most_held = Arc::new(AtomicUsize::new(0));
        let fetch = {
            let (created, limiter) = (created.clone(), limiter.clone());
            let (held, most_held) = (held.clone(), most_held.clone());
            move |segment: Segment| -> PageCall<Item> {
                let (created, limiter) = (created.clone(), limiter.clone());
                let (held, most_held) = (held.clone(), most_held.clone());
                Box::pin(async move {
                    limiter.acquire("GET /v1/customers").await;
                    tokio::time::sleep(latency).await;
                    limiter.observe_round_trip("GET /v1/customers", latency);
                    let page = list_page(&created, &segment);
                    let now = held.fetch_add(1, Ordering::SeqCst) + 1;
                    most_held.fetch_max(now, Ordering::SeqCst);
                    Ok::<_, StripeFailure>(page)
                })
            }
        };
        let pace = stripe_sync::stripe::Pace::new(Some(limiter.clone()), "GET /v1/customers");
        let started = tokio::time::Instant::now();
        let now = first + FIVE_YEARS + 86_400;
        let mut pages = Segments::new(1_293_840_000, now, pace, Box::new(fetch))
            // A refresh expects its linked users.
            .expecting(customers as u64);
        let mut seen = vec![false; customers];
        while let Some(page) = pages.next_page().await {
            for item in page.expect("the model list does not fail") {
                let n: usize = item.id.parse().unwrap();
                assert!(!seen[n], "customer {n} read twice");
                seen[n] = true;
            }
            held.fetch_sub(1, Ordering::SeqCst);
        }
        assert!(seen.iter().all(|s| *s), "every customer read");
        let reads = pages.reads();
        Simulated {
            layout,
            customers,
            seconds: started.elapsed().as_secs_f64(),
            pages: reads.list_pages,
            segments: reads.list_segments,
            most_held: most_held.load(Ordering::SeqCst),
        }
    })
}

/// The model's answer: up to 100 items of the segment, newest first, after its
/// cursor, and whether more follow.
fn list_page(created: &[i64], segment: &Segment) -> (Vec<Item>, bool) {
    let start = created.partition_point(|c| *c < segment.gte);
    let mut end = created.partition_point(|c| *c < segment.lt);
    if let Some(after) = &segment.after {
        end = end.min(after.parse::<usize>().unwrap());
    }
    let end = end.max(start);
    let from = end.saturating_sub(100).max(start);
    let items = (from..end)
        .rev()
        .map(|n| Item {
            id: format!("{n:09}"),
            created: created[n],
        })
        .collect();
    (items, from > start)
}

pub fn print(results: &[Measured], simulated: &[Simulated]) {
    println!(
        "\nReads under Stripe's real limits, a live key, no flags: list segments side by side, \
         planned 20 list calls/s × 100 = 2,000 users/s\n"
    );
    super::print_table(results);
    for simulated in simulated {
        println!(
            "\nsimulated ({:?} over five years): {} customers at 400 ms per call in {:.1} \
             simulated minutes (target < 10), {} pages in {} segments, at most {} pages held at once",
            simulated.layout,
            simulated.customers,
            simulated.seconds / 60.0,
            simulated.pages,
            simulated.segments,
            simulated.most_held
        );
    }
}
