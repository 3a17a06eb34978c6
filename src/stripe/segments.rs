//! Reading a whole list by creation time, in segments side by side.
//!
//! A list page is one round trip, and at Stripe's real latency (a few hundred
//! milliseconds for a page of customers with their cards) reading pages one after
//! another is bound by the round trip, not by the rate limit. So the span of
//! `created` times is cut into half-open ranges (`created[gte]`, `created[lt]`),
//! each paged on its own with `starting_after`, as many in flight as the
//! operation's planned rate times its measured round trip (Little's law), every
//! call still taking its token from the shared limiter.
//!
//! The span starts as one range (a list of one page costs one call), or as even
//! cuts when the caller knows how many items it will read at least
//! ([`Segments::expecting`]). How many pages a range still holds is estimated
//! from the density of its last page. After a page whose oldest item was created
//! at `t`, a range that answers "more" and holds more than its fair share of
//! what is left (all ranges' estimates over the calls the pace keeps busy) is
//! cut evenly: the rest is `[gte, t]`, the lower pieces become ranges of their
//! own and the range goes on over the top piece, `[m, lt)`, after the same
//! cursor, whose item (created at `t >= m`) is in both filters. When a place in
//! flight is free and nothing waits, the range in flight with the most left
//! gives up its lower half; items of its page in flight below the cut are left
//! to the new range (the page is filtered, and the range ends there when it
//! crossed the cut). No item is handed out twice and none falls between ranges,
//! even when many share a second on a boundary. An empty range costs one call,
//! so a year holding most of the items is cut again and again rather than read as
//! one long serial tail.
//!
//! Pages come back in the order they arrive, not in `created` order; at most the
//! pages in flight are held. Dropping the reader abandons the calls in flight.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::{RateLimiter, StripeFailure};

/// An item of a list read by creation time.
pub trait Dated {
    fn list_id(&self) -> &str;
    /// Unix seconds.
    fn created_at(&self) -> i64;
}

/// One range of the span: items created in `[gte, lt)`, after `after` (a cursor
/// of the same list) when some of it has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub gte: i64,
    pub lt: i64,
    pub after: Option<String>,
}

/// One page of a segment, as the list answers it: newest first, and whether more follow.
pub type Page<T> = (Vec<T>, bool);

/// A call for one page of a segment.
pub type PageCall<T> = Pin<Box<dyn Future<Output = Result<Page<T>, StripeFailure>> + Send>>;

/// Makes the call for a segment's next page.
pub type Fetch<T> = Box<dyn Fn(Segment) -> PageCall<T> + Send + Sync>;

/// The most segments in flight, whatever the pace asks for: bounds the pages held.
pub const MAX_IN_FLIGHT: usize = 32;
/// The fewest pages a cut aims to leave in each piece: every piece ends on a
/// page short of 100, so pieces of a page each would cost twice the calls.
const MIN_PIECE_PAGES: f64 = 2.0;
/// A part in flight is cut when it holds this many fair shares.
const STEAL_ABOVE: f64 = 1.5;
/// Lanes without a limiter (a test's stand-in).
const UNLIMITED_LANES: f64 = 3.0;
/// The round trip assumed before one is measured.
const FIRST_GUESS: Duration = Duration::from_millis(250);
/// Spare calls in flight beyond rate × round trip, for the round trip's spread.
const HEADROOM: f64 = 1.25;

/// How many segments the reader keeps in flight: the operation's planned rate
/// times its measured round trip, from the limiter the calls go through.
#[derive(Clone)]
pub struct Pace {
    limiter: Option<Arc<RateLimiter>>,
    endpoint: String,
}

impl Pace {
    pub fn new(limiter: Option<Arc<RateLimiter>>, endpoint: &str) -> Self {
        Pace {
            limiter,
            endpoint: endpoint.to_string(),
        }
    }

    /// Calls the operation can keep busy: its planned rate times its round trip.
    pub(crate) fn lanes(&self) -> f64 {
        let Some(limiter) = &self.limiter else {
            return UNLIMITED_LANES;
        };
        let (rate, round_trip) = limiter.pacing(&self.endpoint);
        (rate * round_trip.unwrap_or(FIRST_GUESS).as_secs_f64()).max(1.0)
    }

    /// Segments to keep in flight now: the lanes, and some to spare for the
    /// round trip's spread.
    pub fn in_flight(&self) -> usize {
        let wanted = (self.lanes() * HEADROOM).ceil() as usize + 1;
        wanted.clamp(1, MAX_IN_FLIGHT)
    }
}

/// How a run read a list, for its report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ListReads {
    /// Segments made (the first cut and every split).
    pub list_segments: u64,
    /// Pages read.
    pub list_pages: u64,
}

impl std::fmt::Display for ListReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} segments, {} list pages",
            self.list_segments, self.list_pages
        )
    }
}

impl ListReads {
    pub fn add(&mut self, other: ListReads) {
        self.list_segments += other.list_segments;
        self.list_pages += other.list_pages;
    }
}

/// A segment as the reader keeps it: what is left of it and how densely it is
/// filled, to tell how many pages it still holds.
struct Part {
    segment: Segment,
    /// The newest second still to read: `lt - 1`, or the cursor's `created`.
    top: i64,
    /// Items per second, from the last page read in it or its parent; `None`
    /// before any page.
    density: Option<f64>,
}

impl Part {
    /// The range `[gte, lt)`, not read yet, thought to be `density` full.
    fn unread(gte: i64, lt: i64, density: Option<f64>) -> Self {
        Part {
            segment: Segment {
                gte,
                lt,
                after: None,
            },
            top: lt - 1,
            density,
        }
    }

    /// Pages the part still holds, estimated from its density (one before any page).
    fn pages_left(&self) -> f64 {
        match self.density {
            Some(density) => (self.top - self.segment.gte + 1) as f64 * density / 100.0,
            None => 1.0,
        }
    }

    /// Cuts off the part's lower half as a part of its own, keeping at least a
    /// page and a half above the cut (the page in flight); `None` when too little is left.
    fn cut_lower(&mut self) -> Option<Part> {
        // A part not read yet has its parent's density, which may be nothing like its own.
        self.segment.after.as_ref()?;
        let density = self.density?;
        let pages = self.pages_left();
        let keep = (pages / 2.0).max(1.5);
        if pages - keep < 0.5 {
            return None;
        }
        let cut = self.top - (keep * 100.0 / density).ceil() as i64 + 1;
        if cut <= self.segment.gte {
            return None;
        }
        let lower = Part::unread(self.segment.gte, cut, Some(density));
        self.segment.gte = cut;
        Some(lower)
    }
}

type Call<T> = (Segment, Result<Page<T>, StripeFailure>);

/// Pages of a list read in segments side by side; see the module's notes.
pub struct Segments<T> {
    fetch: Fetch<T>,
    pace: Pace,
    /// Parts waiting for a call.
    queue: Vec<Part>,
    running: JoinSet<Call<T>>,
    /// The parts in flight, their lower bound raised when a cut takes their lower half.
    live: HashMap<tokio::task::Id, Part>,
    /// The end of the whole range: complete below it once nothing is left.
    until: i64,
    /// Read oldest parts first, none longer than this many pages (see [`Segments::oldest_first`]).
    oldest_first: Option<f64>,
    reads: ListReads,
}

impl<T: Dated + Send + 'static> Segments<T> {
    /// Reads items created in `[from, until)`: one segment at first, which is
    /// all a list of one page needs.
    pub fn new(from: i64, until: i64, pace: Pace, fetch: Fetch<T>) -> Self {
        let queue: Vec<Part> = (from < until)
            .then(|| Part::unread(from, until, None))
            .into_iter()
            .collect();
        Segments {
            fetch,
            pace,
            reads: ListReads {
                list_segments: queue.len() as u64,
                list_pages: 0,
            },
            queue,
            running: JoinSet::new(),
            live: HashMap::new(),
            until,
            oldest_first: None,
        }
    }

    /// Starts the oldest waiting part first and cuts parts to at most
    /// `max_part_pages`, so that [`Segments::complete_below`] follows the read
    /// closely: a reader that must hand items on in `created` order holds only
    /// what is above it.
    pub fn oldest_first(mut self, max_part_pages: usize) -> Self {
        self.oldest_first = Some(max_part_pages.max(1) as f64);
        self
    }

    /// Every item created before this second has been handed out.
    pub fn complete_below(&self) -> i64 {
        self.queue
            .iter()
            .chain(self.live.values())
            .map(|part| part.segment.gte)
            .min()
            .unwrap_or(self.until)
    }

    /// Starts from as many even cuts as the pace has lanes, no more than the
    /// pages `items` fill, when the caller knows it will read at least that
    /// many (a refresh, its linked users): the first round trip then reads in
    /// all lanes instead of finding out that the list is long.
    pub fn expecting(mut self, items: u64) -> Self {
        let Some(whole) = self.queue.pop() else {
            return self;
        };
        let (gte, lt) = (whole.segment.gte, whole.segment.lt);
        let pages = (items as f64 / 100.0 / MIN_PIECE_PAGES).ceil() as i64;
        let pieces = pages.min(self.pace.in_flight() as i64).min(lt - gte).max(1);
        let width = (lt - gte) / pieces;
        let density = (items > 0).then(|| items as f64 / (lt - gte) as f64);
        for piece in 0..pieces {
            let lt = if piece == pieces - 1 {
                lt
            } else {
                gte + (piece + 1) * width
            };
            self.queue
                .push(Part::unread(gte + piece * width, lt, density));
        }
        self.reads.list_segments = pieces as u64;
        self
    }

    /// The segments made and pages read so far.
    pub fn reads(&self) -> ListReads {
        self.reads
    }

    /// The next page to arrive, or `None` once every segment is read.
    pub async fn next_page(&mut self) -> Option<Result<Vec<T>, StripeFailure>> {
        self.start_calls();
        let (id, (_, answer)) = match self.running.join_next_with_id().await? {
            Ok(done) => done,
            Err(err) => std::panic::resume_unwind(err.into_panic()),
        };
        let part = self.live.remove(&id).expect("every call has its part");
        let (mut page, mut has_more) = match answer {
            Ok(page) => page,
            Err(failure) => return Some(Err(failure)),
        };
        self.reads.list_pages += 1;
        // Items below a cut made while the call was out belong to the lower part.
        let before = page.len();
        page.retain(|item| item.created_at() >= part.segment.gte);
        has_more &= page.len() == before;
        if has_more && let (Some(newest), Some(last)) = (page.first(), page.last()) {
            let spread = (newest.created_at() - last.created_at()).max(0) + 1;
            self.go_on(Part {
                segment: Segment {
                    after: Some(last.list_id().to_string()),
                    ..part.segment
                },
                top: last.created_at(),
                density: Some(page.len() as f64 / spread as f64),
            });
        }
        self.start_calls();
        Some(Ok(page))
    }

    /// Queues the rest of a segment, cut evenly by time when it holds more than
    /// its fair share of what is left to read (what is left over the segments
    /// the pace wants in flight): the lower pieces new, the top one going on
    /// after the cursor.
    fn go_on(&mut self, mut rest: Part) {
        let wanted = self.pace.in_flight();
        let fair_share = self.fair_share(rest.pages_left());
        // The cursor's `created` is in the range unless the list ignored the filter.
        let seconds = if rest.top < rest.segment.lt {
            rest.top - rest.segment.gte + 1
        } else {
            0
        };
        let fair_pieces = (rest.pages_left() / fair_share).round() as i64;
        // A cut from one page's estimate makes no more pieces than the pace
        // wants; a piece still too long is cut again at its next page.
        let capped_pieces = self
            .oldest_first
            .map_or(1, |most| (rest.pages_left() / most).ceil() as i64);
        let pieces = fair_pieces
            .max(capped_pieces)
            .min(wanted as i64)
            .min(seconds);
        if pieces > 1 {
            let width = seconds / pieces;
            let gte = rest.segment.gte;
            for piece in 0..pieces - 1 {
                let lt = gte + (piece + 1) * width;
                self.queue
                    .push(Part::unread(gte + piece * width, lt, rest.density));
            }
            self.reads.list_segments += pieces as u64 - 1;
            rest.segment.gte = gte + (pieces - 1) * width;
        }
        self.queue.push(rest);
    }

    /// The pages each lane would read if what is left (`more` besides the
    /// parts known) were shared evenly: a part holding more would be the tail.
    fn fair_share(&self, more: f64) -> f64 {
        let left: f64 = self
            .queue
            .iter()
            .chain(self.live.values())
            .map(Part::pages_left)
            .sum();
        ((left + more) / self.pace.lanes()).max(MIN_PIECE_PAGES)
    }

    /// Starts calls until the pace's count is in flight: parts waiting first,
    /// then the lower half of the part in flight with the most left.
    fn start_calls(&mut self) {
        let wanted = self.pace.in_flight();
        if self.oldest_first.is_some() {
            // The oldest at the end, where `pop` takes it.
            self.queue
                .sort_by_key(|part| std::cmp::Reverse(part.segment.gte));
        }
        while self.running.len() < wanted {
            let part = match self.queue.pop() {
                Some(part) => part,
                None => {
                    let fair_share = self.fair_share(0.0);
                    let biggest = self
                        .live
                        .values_mut()
                        .filter(|part| part.segment.after.is_some())
                        .filter(|part| part.pages_left() > fair_share * STEAL_ABOVE)
                        .max_by(|a, b| a.pages_left().total_cmp(&b.pages_left()));
                    match biggest.and_then(Part::cut_lower) {
                        Some(lower) => {
                            self.reads.list_segments += 1;
                            lower
                        }
                        None => break,
                    }
                }
            };
            let segment = part.segment.clone();
            let call = (self.fetch)(segment.clone());
            let handle = self.running.spawn(async move { (segment, call.await) });
            self.live.insert(handle.id(), part);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::stripe::RatePlan;

    #[derive(Debug)]
    struct Item(i64, String);

    impl Dated for Item {
        fn list_id(&self) -> &str {
            &self.1
        }

        fn created_at(&self) -> i64 {
            self.0
        }
    }

    /// A list of `items` (created, id), oldest first, answering a page as Stripe
    /// does after a round trip that varies from call to call; counts its calls.
    fn model(items: Vec<(i64, String)>, calls: Arc<Mutex<u32>>) -> Fetch<Item> {
        let items = Arc::new(items);
        Box::new(move |segment: Segment| -> PageCall<Item> {
            let (items, calls) = (items.clone(), calls.clone());
            Box::pin(async move {
                let call = {
                    let mut calls = calls.lock().unwrap();
                    *calls += 1;
                    *calls
                };
                tokio::time::sleep(Duration::from_millis(50 + u64::from(call * 37 % 300))).await;
                let cursor = segment.after.as_ref().map(|after| {
                    items
                        .iter()
                        .find(|(_, id)| id == after)
                        .expect("a cursor of the list")
                });
                let mut newest_first = items
                    .iter()
                    .rev()
                    .filter(|(created, _)| (segment.gte..segment.lt).contains(created))
                    .filter(|item| {
                        cursor.is_none_or(|cursor| (item.0, &item.1) < (cursor.0, &cursor.1))
                    });
                let page: Vec<Item> = newest_first
                    .by_ref()
                    .take(100)
                    .map(|(created, id)| Item(*created, id.clone()))
                    .collect();
                Ok((page, newest_first.next().is_some()))
            })
        })
    }

    /// `count` items, `per_second` to a second, the first at `first`.
    fn crowded(count: usize, per_second: usize, first: i64) -> Vec<(i64, String)> {
        (0..count)
            .map(|n| (first + (n / per_second) as i64, format!("it_{n:06}")))
            .collect()
    }

    fn pace() -> Pace {
        let plan = RatePlan {
            global: 100,
            endpoint: 40,
        };
        Pace::new(Some(Arc::new(RateLimiter::new(plan))), "GET /v1/things")
    }

    /// `count` items ever denser towards the newest, several to a second at the end.
    fn growing(count: usize, first: i64) -> Vec<(i64, String)> {
        (0..count)
            .map(|n| (first + (n as f64).sqrt() as i64 * 40, format!("it_{n:06}")))
            .collect()
    }

    /// Reads everything; checks each item is handed out once and, when the
    /// reader goes oldest first, that nothing below `complete_below` comes later.
    async fn read_all(mut segments: Segments<Item>, items: &[(i64, String)]) -> ListReads {
        let mut seen = std::collections::HashSet::new();
        let mut complete_below = i64::MIN;
        while let Some(page) = segments.next_page().await {
            for item in page.unwrap() {
                assert!(item.0 >= complete_below, "{item:?} below {complete_below}");
                assert!(seen.insert(item.1.clone()), "{item:?} handed out twice");
            }
            complete_below = complete_below.max(segments.complete_below());
        }
        assert_eq!(seen.len(), items.len(), "every item handed out");
        segments.reads()
    }

    #[tokio::test(start_paused = true)]
    async fn crowded_seconds_on_every_cut_are_read_exactly_once() {
        let layouts = [
            crowded(5_000, 7, 1_700_000_000),
            growing(5_000, 1_700_000_000),
        ];
        for (items, expected) in layouts
            .iter()
            .flat_map(|items| [(items, 0), (items, 5_000)])
        {
            let calls = Arc::new(Mutex::new(0));
            let fetch = model(items.clone(), calls.clone());
            let segments =
                Segments::new(1_293_840_000, 1_800_000_000, pace(), fetch).expecting(expected);

            let reads = read_all(segments, items).await;

            assert!(reads.list_segments > 4, "{reads:?}");
            assert_eq!(u64::from(*calls.lock().unwrap()), reads.list_pages);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn oldest_first_hands_nothing_out_below_where_it_is_complete() {
        let items = crowded(4_000, 3, 1_700_000_000);
        let calls = Arc::new(Mutex::new(0));
        let fetch = model(items.clone(), calls);
        let segments = Segments::new(1_699_000_000, 1_700_100_000, pace(), fetch).oldest_first(3);

        let reads = read_all(segments, &items).await;

        assert!(
            reads.list_segments >= 10,
            "parts of 3 pages at most: {reads:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_list_of_one_page_costs_one_call() {
        let items = crowded(60, 2, 1_700_000_000);
        let calls = Arc::new(Mutex::new(0));
        let segments = Segments::new(
            1_293_840_000,
            1_800_000_000,
            pace(),
            model(items.clone(), calls),
        );

        let reads = read_all(segments, &items).await;

        assert_eq!(
            reads,
            ListReads {
                list_segments: 1,
                list_pages: 1
            }
        );
    }
}
