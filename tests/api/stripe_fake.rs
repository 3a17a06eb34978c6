//! A small Stripe stand-in that speaks Stripe's wire format for the customer
//! endpoints, honours idempotency keys the way Stripe does, counts calls and can
//! inject latency, error statuses and dropped connections.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// What the next request meets instead of a normal answer.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status and a Stripe-shaped `api_error`, without acting.
    Status(u16),
    /// The same, with a `Stripe-Should-Retry` header.
    StatusShouldRetry(u16, bool),
    /// Answer with this status and a plain-text body, as a proxy in between would.
    PlainText(u16),
    /// Close the connection without answering, without acting.
    Drop,
    /// Act normally, then hold the answer back this long (a lost or late reply).
    SlowReply(Duration),
    /// Act, then answer with this status instead of the result (the call took
    /// effect, but the caller is told it failed).
    StatusAfterActing(u16),
    /// Act, then close the connection without answering (the reply is lost).
    DropAfterActing,
    /// 429 with code `lock_timeout`: another request holds a lock on the object.
    LockTimeout,
    /// 429 with a `Retry-After` of this many seconds.
    RateLimitedFor(u64),
    /// 429 naming the limiter in `Stripe-Rate-Limited-Reason` (`global-rate`, …).
    RateLimitedBy(&'static str),
    /// 200 with a body of this many bytes (spaces: JSON's whitespace), without acting.
    HugeBody(usize),
}

#[derive(Clone, Debug)]
pub struct FakeCustomer {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub created: i64,
    pub deleted: bool,
    /// The default payment method: its id, brand and last four.
    pub default_card: Option<(String, String, String)>,
    /// `phone`, `description`, `preferred_locales`, `address` and `shipping`, as
    /// Stripe's JSON has them (absent: null, or `[]` for the locales).
    pub fields: BTreeMap<String, Value>,
}

enum Remembered {
    InFlight {
        fingerprint: String,
    },
    Done {
        fingerprint: String,
        status: StatusCode,
        body: Value,
    },
}

/// One of Stripe's rate limiters as a token bucket: `per_second` tokens a second,
/// holding at most one second's worth.
struct RateLimit {
    per_second: f64,
    tokens: f64,
    last: std::time::Instant,
}

impl RateLimit {
    fn new(per_second: u32) -> Self {
        RateLimit {
            per_second: f64::from(per_second),
            tokens: f64::from(per_second),
            last: std::time::Instant::now(),
        }
    }

    fn refill(&mut self, now: std::time::Instant) {
        let refill = now.duration_since(self.last).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.per_second);
        self.last = now;
    }
}

/// Stripe's two limiters: the account's, and one per named operation (method and
/// path, ids replaced), each refusing with its own `Stripe-Rate-Limited-Reason`.
#[derive(Default)]
struct Limits {
    global: Option<RateLimit>,
    endpoint_per_second: Option<u32>,
    endpoints: HashMap<String, RateLimit>,
}

/// Stripe's published limits: 100 requests/s for a live account, 25/s per operation.
pub const STRIPE_GLOBAL_LIMIT: u32 = 100;
pub const STRIPE_ENDPOINT_LIMIT: u32 = 25;

#[derive(Default)]
struct State {
    checkout_sessions: BTreeMap<String, Value>,
    portal_sessions: Vec<Value>,
    latency: Duration,
    limits: Limits,
    rejected_for_rate: usize,
    /// Customer ids served by list pages, with how often.
    listed: HashMap<String, usize>,
    /// Refusals by `Stripe-Rate-Limited-Reason`.
    rejected_by: BTreeMap<&'static str, usize>,
    /// Share of requests (0..1) that meet a random fault of the five kinds the
    /// internet produces (see `random_fault`).
    fault_rate: f64,
    customers: BTreeMap<String, FakeCustomer>,
    /// Every customer by creation time, as lists read them (newest first).
    by_created: std::collections::BTreeSet<(i64, String)>,
    /// Creation times from `space_creation_times`: the first, the seconds
    /// between customers, and how many have been made since.
    creation: Option<(i64, f64, u64)>,
    idempotency: HashMap<String, Remembered>,
    calls: Vec<(Method, String)>,
    /// When each call arrived, beside `calls`.
    call_times: Vec<std::time::Instant>,
    faults: VecDeque<Fault>,
    /// Faults for the next requests whose path starts with the prefix.
    path_faults: Vec<(String, Fault)>,
    next_id: u64,
    last_request_id: Option<String>,
    /// Every event, oldest first, as the Events API keeps them.
    events: Vec<Value>,
    /// Where and with which secret events are delivered as webhooks, if anywhere.
    webhook_target: Option<(String, String)>,
    /// Events made but not yet handed to a delivery task.
    undelivered: Vec<String>,
    webhook_endpoints: BTreeMap<String, Value>,
    /// The form of every customer create and update, by path, oldest first.
    customer_forms: Vec<(String, Vec<(String, String)>)>,
}

#[derive(Clone)]
pub struct FakeStripe {
    pub url: String,
    prefix: String,
    state: Arc<Mutex<State>>,
}

type Reply = (StatusCode, Value);

impl FakeStripe {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake stripe");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let prefix: String = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
        let fake = FakeStripe {
            url,
            prefix,
            state: Arc::default(),
        };
        let server = fake.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let fake = server.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let fake = fake.clone();
                        async move { fake.serve(req).await }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        fake
    }

    // ----- what tests arrange and inspect --------------------------------------

    /// Every answer comes this much later (Stripe's own latency, say).
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().unwrap().latency = latency;
    }

    /// Answers 429 (`global-rate`) beyond `per_second` requests a second in all,
    /// as Stripe's account limit does.
    pub fn set_rate_limit(&self, per_second: u32) {
        self.state.lock().unwrap().limits.global = Some(RateLimit::new(per_second));
    }

    /// Stripe's two limiters: `global` requests a second in all (`global-rate`)
    /// and `endpoint` for each named operation (`endpoint-rate`).
    pub fn set_limits(&self, global: u32, endpoint: u32) {
        let mut state = self.state.lock().unwrap();
        state.limits = Limits {
            global: Some(RateLimit::new(global)),
            endpoint_per_second: Some(endpoint),
            endpoints: HashMap::new(),
        };
    }

    /// Stripe's published limits for a live account.
    pub fn set_stripe_limits(&self) {
        self.set_limits(STRIPE_GLOBAL_LIMIT, STRIPE_ENDPOINT_LIMIT);
    }

    pub fn rejected_for_rate(&self) -> usize {
        self.state.lock().unwrap().rejected_for_rate
    }

    /// 429s sent with this `Stripe-Rate-Limited-Reason`.
    pub fn rejected_by(&self, reason: &str) -> usize {
        let state = self.state.lock().unwrap();
        state.rejected_by.get(reason).copied().unwrap_or(0)
    }

    /// When each call to `method` and a path of `shape` arrived (`{id}` for ids,
    /// as in `POST /v1/customers/{id}`).
    pub fn call_times(&self, method: &str, shape: &str) -> Vec<std::time::Instant> {
        let state = self.state.lock().unwrap();
        let wanted = format!("{method} {shape}");
        state
            .calls
            .iter()
            .zip(&state.call_times)
            .filter(|((m, p), _)| endpoint(m.as_str(), p) == wanted)
            .map(|(_, at)| *at)
            .collect()
    }

    /// `count` customers made on Stripe's side at once (another app's, or ones
    /// linked by the caller), each named in `metadata.user_id` when `user_ids`
    /// gives it; returns their ids, oldest first.
    pub fn insert_customers(&self, count: usize, user_ids: Option<&[i64]>) -> Vec<String> {
        let mut state = self.state.lock().unwrap();
        (0..count)
            .map(|n| {
                let mut metadata = BTreeMap::new();
                if let Some(ids) = user_ids {
                    metadata.insert("user_id".to_string(), ids[n].to_string());
                }
                let name = format!("Customer {n}");
                let email = format!("customer{n}@example.com");
                new_customer(&mut state, Some(name), Some(email), metadata).id
            })
            .collect()
    }

    /// Customers made from now on are created `seconds_apart` after one another
    /// (a fraction puts several in one second), the first at `first` (Unix
    /// seconds): an account whose customers span years, or crowd a second.
    pub fn space_creation_times(&self, first: i64, seconds_apart: f64) {
        self.state.lock().unwrap().creation = Some((first, seconds_apart, 0));
    }

    /// `count` events of `type_` about an object of nobody's here, made
    /// `seconds_apart` from `first` on: an Events API with a history to read.
    pub fn insert_events(&self, count: usize, type_: &str, first: i64, seconds_apart: f64) {
        let mut state = self.state.lock().unwrap();
        for n in 0..count {
            state.next_id += 1;
            let created = first + (n as f64 * seconds_apart) as i64;
            let object = json!({"id": format!("ch_fake{:08}", state.next_id), "object": "charge"});
            let event = json!({
                "id": format!("evt_fake{:08}", state.next_id), "object": "event", "type": type_,
                "created": created, "api_version": "2026-09-30.endive", "livemode": false,
                "pending_webhooks": 0, "request": {"id": null, "idempotency_key": null},
                "data": {"object": object},
            });
            state.events.push(event);
        }
    }

    /// Makes a share of all requests fail at random, as the internet does: a 429, a
    /// 500 before or after the call took effect, the connection dropped before or
    /// after.
    pub fn set_fault_rate(&self, share: f64) {
        self.state.lock().unwrap().fault_rate = share;
    }

    /// Checkout Sessions made so far, in Stripe's JSON.
    pub fn checkout_sessions(&self) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .checkout_sessions
            .values()
            .cloned()
            .collect()
    }

    /// The session as Stripe shows it once the customer has paid.
    pub fn complete_checkout_session(&self, id: &str) -> Value {
        let mut state = self.state.lock().unwrap();
        let session = state.checkout_sessions.get_mut(id).expect("session exists");
        session["status"] = json!("complete");
        session["payment_status"] = json!("paid");
        session["payment_intent"] = json!(format!("pi_fake_{}", &id[12..]));
        session.clone()
    }

    pub fn portal_sessions(&self) -> Vec<Value> {
        self.state.lock().unwrap().portal_sessions.clone()
    }

    /// Calls that write (POST and DELETE).
    pub fn write_calls(&self) -> usize {
        let state = self.state.lock().unwrap();
        state
            .calls
            .iter()
            .filter(|(m, _)| *m != Method::GET)
            .count()
    }

    /// The next request to a path starting with `prefix` meets `fault`.
    pub fn push_fault_for(&self, prefix: &str, fault: Fault) {
        let mut state = self.state.lock().unwrap();
        state.path_faults.push((prefix.to_string(), fault));
    }

    pub fn push_faults(&self, count: usize, fault: Fault) {
        let mut state = self.state.lock().unwrap();
        state.faults.extend(std::iter::repeat_n(fault, count));
    }

    /// The customer ids list pages have served so far.
    pub fn listed_customers(&self) -> HashSet<String> {
        self.state.lock().unwrap().listed.keys().cloned().collect()
    }

    /// Live customers (not deleted), as Stripe holds them.
    pub fn customers(&self) -> Vec<FakeCustomer> {
        let state = self.state.lock().unwrap();
        state
            .customers
            .values()
            .filter(|c| !c.deleted)
            .cloned()
            .collect()
    }

    pub fn customer(&self, id: &str) -> Option<FakeCustomer> {
        self.state.lock().unwrap().customers.get(id).cloned()
    }

    /// Calls made, by method and path prefix (e.g. `POST`, `/v1/customers`).
    pub fn calls(&self, method: &str, path_prefix: &str) -> usize {
        let state = self.state.lock().unwrap();
        state
            .calls
            .iter()
            .filter(|(m, p)| m.as_str() == method && p.starts_with(path_prefix))
            .count()
    }

    pub fn total_calls(&self) -> usize {
        self.state.lock().unwrap().calls.len()
    }

    pub fn last_request_id(&self) -> Option<String> {
        self.state.lock().unwrap().last_request_id.clone()
    }

    /// The idempotency key the customer `id` was created with, if it was.
    pub fn creation_key_of(&self, id: &str) -> Option<String> {
        let state = self.state.lock().unwrap();
        state
            .idempotency
            .iter()
            .find_map(|(key, remembered)| match remembered {
                Remembered::Done { body, .. } if body["id"] == id => Some(key.clone()),
                _ => None,
            })
    }

    /// A customer created on Stripe's side (the dashboard, or a lost attempt).
    pub fn insert_customer(&self, name: &str, email: &str, user_id: Option<i64>) -> String {
        let mut state = self.state.lock().unwrap();
        let mut metadata = BTreeMap::new();
        if let Some(user_id) = user_id {
            metadata.insert("user_id".to_string(), user_id.to_string());
        }
        let customer = new_customer(&mut state, Some(name.into()), Some(email.into()), metadata);
        customer.id
    }

    /// Deletes a customer on Stripe's side, as the dashboard would.
    pub fn delete_customer(&self, id: &str) {
        let mut state = self.state.lock().unwrap();
        let customer = state.customers.get_mut(id).expect("customer exists");
        customer.deleted = true;
        let object = customer_json(customer, vec![]);
        state.emit("customer.deleted", object, None);
        drop(state);
        self.deliver_events();
    }

    /// Attaches a new card and makes it the default, as the dashboard would
    /// (`payment_method.attached`, then `customer.updated`).
    pub fn set_default_card(&self, id: &str, brand: &str, last4: &str) {
        let mut state = self.state.lock().unwrap();
        state.next_id += 1;
        let method = format!("pm_fake{:08}", state.next_id);
        let before = customer_json(&state.customers[id], vec![]);
        let customer = state.customers.get_mut(id).expect("customer exists");
        customer.default_card = Some((method.clone(), brand.into(), last4.into()));
        let (created, after) = (customer.created, customer_json(customer, vec![]));
        let attached = payment_method_json(&method, id, brand, last4, created);
        state.emit("payment_method.attached", attached, None);
        state.emit_updated(before, after);
        drop(state);
        self.deliver_events();
    }

    pub fn clear_default_card(&self, id: &str) {
        self.change_customer(id, |customer| customer.default_card = None);
    }

    /// Edits a customer as the billing portal or the dashboard would: the same
    /// form fields an update takes (`phone`, `address[city]`, `email`, ...).
    pub fn edit_customer(&self, id: &str, form: &[(&str, &str)]) {
        let form: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.change_customer(id, |customer| apply_form(customer, &form));
    }

    /// The forms of the customer writes sent to `path` (`/v1/customers/cus_..`),
    /// oldest first, each as its field → value.
    pub fn customer_forms(&self, path: &str) -> Vec<BTreeMap<String, String>> {
        self.state
            .lock()
            .unwrap()
            .customer_forms
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, form)| form.iter().cloned().collect())
            .collect()
    }

    pub fn rename_customer(&self, id: &str, name: &str) {
        self.change_customer(id, |customer| customer.name = Some(name.into()));
    }

    fn change_customer(&self, id: &str, change: impl FnOnce(&mut FakeCustomer)) {
        let mut state = self.state.lock().unwrap();
        let customer = state.customers.get_mut(id).expect("customer exists");
        let before = customer_json(customer, vec![]);
        change(customer);
        let after = customer_json(customer, vec![]);
        state.emit_updated(before, after);
        drop(state);
        self.deliver_events();
    }

    /// Every event so far, oldest first.
    pub fn events(&self) -> Vec<Value> {
        self.state.lock().unwrap().events.clone()
    }

    /// Moves every event made so far `seconds` into the past (events a run could
    /// have missed while the app was down).
    pub fn backdate_events(&self, seconds: i64) {
        for event in &mut self.state.lock().unwrap().events {
            event["created"] = json!(event["created"].as_i64().unwrap() - seconds);
        }
    }

    /// From now on, every event is also delivered to `url` as a webhook signed
    /// with `secret`, as Stripe does (each in its own task: order not kept).
    pub fn deliver_webhooks_to(&self, url: &str, secret: &str) {
        self.state.lock().unwrap().webhook_target = Some((url.into(), secret.into()));
    }

    /// An endpoint made elsewhere (the Dashboard), sending `events` to `url`.
    pub fn insert_webhook_endpoint(&self, url: &str, events: &[&str]) {
        let mut state = self.state.lock().unwrap();
        state.next_id += 1;
        let id = format!("we_fake{:08}", state.next_id);
        let endpoint = json!({
            "id": id, "object": "webhook_endpoint", "livemode": false, "url": url,
            "enabled_events": events, "api_version": null, "status": "enabled",
            "created": 1_764_300_000, "metadata": {},
        });
        state.webhook_endpoints.insert(id, endpoint);
    }

    pub fn webhook_endpoints(&self) -> Vec<Value> {
        let state = self.state.lock().unwrap();
        state.webhook_endpoints.values().cloned().collect()
    }

    fn deliver_events(&self) {
        let mut state = self.state.lock().unwrap();
        let Some((url, secret)) = state.webhook_target.clone() else {
            return;
        };
        for payload in std::mem::take(&mut state.undelivered) {
            let (url, secret) = (url.clone(), secret.clone());
            tokio::spawn(async move {
                let signature =
                    stripe_webhook::Webhook::generate_test_header(&payload, &secret, None);
                let _ = reqwest::Client::new()
                    .post(url)
                    .header("content-type", "application/json")
                    .header("stripe-signature", signature)
                    .body(payload)
                    .send()
                    .await;
            });
        }
    }

    // ----- the server -------------------------------------------------------------

    async fn serve(&self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::io::Error> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let key = req
            .headers()
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        record_request(&method, &path, &query, &body);
        let (request_id, fault, latency) = {
            let mut state = self.state.lock().unwrap();
            state.calls.push((method.clone(), path.clone()));
            state.call_times.push(std::time::Instant::now());
            state.next_id += 1;
            let request_id = format!("req_{}{}", self.prefix, state.next_id);
            state.last_request_id = Some(request_id.clone());
            let targeted = state
                .path_faults
                .iter()
                .position(|(prefix, _)| path.starts_with(prefix.as_str()));
            let fault = targeted
                .map(|at| state.path_faults.remove(at).1)
                .or_else(|| state.faults.pop_front())
                .or_else(|| {
                    state
                        .over_rate_limit(&method, &path)
                        .map(Fault::RateLimitedBy)
                })
                .or_else(|| state.random_fault());
            (request_id, fault, state.latency)
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let mut should_retry: Option<bool> = None;
        let mut retry_after: Option<u64> = None;
        let mut limited_by: Option<&str> = None;
        let mut plain_text = false;
        let (status, body) = match fault {
            // An error from the service makes hyper close the connection unanswered.
            Some(Fault::Drop) => return Err(std::io::Error::other("injected drop")),
            Some(Fault::Status(code)) => injected(code, &request_id),
            Some(Fault::StatusShouldRetry(code, retry)) => {
                should_retry = Some(retry);
                injected(code, &request_id)
            }
            Some(Fault::PlainText(code)) => {
                plain_text = true;
                (StatusCode::from_u16(code).unwrap(), Value::Null)
            }
            Some(Fault::StatusAfterActing(code)) => {
                self.handle(&method, &path, &query, &body, key, &request_id);
                injected(code, &request_id)
            }
            Some(Fault::LockTimeout) => (
                StatusCode::TOO_MANY_REQUESTS,
                error_body(
                    "invalid_request_error",
                    Some("lock_timeout"),
                    "This object cannot be accessed right now because another API request \
                     or Stripe process is currently accessing it.",
                    &request_id,
                ),
            ),
            Some(Fault::RateLimitedFor(seconds)) => {
                retry_after = Some(seconds);
                injected(429, &request_id)
            }
            Some(Fault::HugeBody(bytes)) => {
                // Made at once, not through JSON: a slow stand-in would time out
                // before the limit is ever met.
                let body = Full::new(Bytes::from(vec![b' '; bytes]));
                let response = Response::builder().status(StatusCode::OK);
                return Ok(response.body(body).unwrap());
            }
            Some(Fault::RateLimitedBy(reason)) => {
                limited_by = Some(reason);
                rate_limited(&request_id)
            }
            Some(Fault::DropAfterActing) => {
                self.handle(&method, &path, &query, &body, key, &request_id);
                return Err(std::io::Error::other("injected drop after acting"));
            }
            Some(Fault::SlowReply(delay)) => {
                let reply = self.handle(&method, &path, &query, &body, key, &request_id);
                tokio::time::sleep(delay).await;
                reply
            }
            None => self.handle(&method, &path, &query, &body, key, &request_id),
        };
        self.deliver_events();
        let mut response = Response::builder()
            .status(status)
            .header("request-id", request_id);
        if let Some(retry) = should_retry {
            response = response.header("stripe-should-retry", retry.to_string());
        }
        if let Some(seconds) = retry_after {
            response = response.header("retry-after", seconds.to_string());
        }
        if let Some(reason) = limited_by {
            response = response.header("stripe-rate-limited-reason", reason);
        }
        let response = if plain_text {
            response
                .header("content-type", "text/plain")
                .body(Full::new(Bytes::from_static(b"502 Bad Gateway")))
        } else {
            response
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.to_string())))
        };
        Ok(response.unwrap())
    }

    fn handle(
        &self,
        method: &Method,
        path: &str,
        query: &str,
        body: &[u8],
        key: Option<String>,
        request_id: &str,
    ) -> Reply {
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        let params: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        // Stripe compares the parameters, not their order (maps such as metadata are
        // sent in whatever order the client's map iterates).
        let mut sorted = form.clone();
        sorted.sort();
        let fingerprint = format!("{method} {path} {sorted:?}");
        if let Some(key) = &key
            && method != Method::GET
        {
            let mut state = self.state.lock().unwrap();
            match state.idempotency.get(key) {
                Some(Remembered::Done {
                    fingerprint: seen,
                    status,
                    body,
                }) if *seen == fingerprint => {
                    return (*status, body.clone());
                }
                Some(Remembered::InFlight { fingerprint: seen }) if *seen == fingerprint => {
                    let message = "There is currently another in-progress request using this \
                                   Stripe-Idempotency-Key. Please try again later.";
                    return (
                        StatusCode::CONFLICT,
                        error_body("idempotency_error", None, message, request_id),
                    );
                }
                Some(_) => {
                    let message = format!(
                        "Keys for idempotent requests can only be used with the same parameters \
                         they were first used with. Try using a key other than '{key}'."
                    );
                    return (
                        StatusCode::BAD_REQUEST,
                        error_body("idempotency_error", None, &message, request_id),
                    );
                }
                None => {
                    state.idempotency.insert(
                        key.clone(),
                        Remembered::InFlight {
                            fingerprint: fingerprint.clone(),
                        },
                    );
                }
            }
        }
        let reply = self.route(method, path, &form, &params, request_id);
        if let Some(key) = key
            && method != Method::GET
        {
            let mut state = self.state.lock().unwrap();
            state.idempotency.insert(
                key,
                Remembered::Done {
                    fingerprint,
                    status: reply.0,
                    body: reply.1.clone(),
                },
            );
        }
        reply
    }

    fn route(
        &self,
        method: &Method,
        path: &str,
        form: &[(String, String)],
        query: &[(String, String)],
        request_id: &str,
    ) -> Reply {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut state = self.state.lock().unwrap();
        match (method, segments.as_slice()) {
            (&Method::POST, ["v1", "customers", ..]) if shipping_lacks_name(form) => {
                missing_param("shipping[name]", request_id)
            }
            (&Method::POST, ["v1", "customers"]) => {
                let metadata = bracketed(form, "metadata");
                let mut customer = new_customer(
                    &mut state,
                    field(form, "name"),
                    field(form, "email"),
                    metadata,
                );
                apply_form(&mut customer, form);
                state
                    .customers
                    .insert(customer.id.clone(), customer.clone());
                state.customer_forms.push((path.to_string(), form.to_vec()));
                state.emit("customer.created", customer_json(&customer, vec![]), None);
                (StatusCode::OK, customer_json(&customer, expands(form)))
            }
            (&Method::POST, ["v1", "checkout", "sessions"]) => {
                state.next_id += 1;
                let id = format!("cs_test_fake{:08}", state.next_id);
                let amount: i64 = field(form, "line_items[0][price_data][unit_amount]")
                    .and_then(|a| a.parse().ok())
                    .unwrap_or(0);
                let quantity: i64 = field(form, "line_items[0][quantity]")
                    .and_then(|q| q.parse().ok())
                    .unwrap_or(1);
                let session = json!({
                    "id": id, "object": "checkout.session", "livemode": false,
                    "url": format!("{}/pay/{id}", self.url),
                    "mode": field(form, "mode"), "status": "open", "payment_status": "unpaid",
                    "amount_total": amount * quantity,
                    "currency": field(form, "line_items[0][price_data][currency]"),
                    "customer": field(form, "customer"),
                    "client_reference_id": field(form, "client_reference_id"),
                    "metadata": bracketed(form, "metadata"),
                    "success_url": field(form, "success_url"),
                    "cancel_url": field(form, "cancel_url"),
                    "line_item_name": field(form, "line_items[0][price_data][product_data][name]"),
                    "payment_intent": null, "created": 1_764_300_000,
                });
                state.checkout_sessions.insert(id, session.clone());
                (StatusCode::OK, session)
            }
            (&Method::GET, ["v1", "checkout", "sessions", id]) => {
                match state.checkout_sessions.get(*id) {
                    Some(session) => (StatusCode::OK, session.clone()),
                    None => (
                        StatusCode::NOT_FOUND,
                        error_body(
                            "invalid_request_error",
                            Some("resource_missing"),
                            &format!("No such checkout.session: '{id}'"),
                            request_id,
                        ),
                    ),
                }
            }
            (&Method::POST, ["v1", "billing_portal", "sessions"]) => {
                state.next_id += 1;
                let id = format!("bps_fake{:08}", state.next_id);
                let session = json!({
                    "id": id, "object": "billing_portal.session", "livemode": false,
                    "url": format!("{}/portal/{id}", self.url),
                    "customer": field(form, "customer"),
                    "return_url": field(form, "return_url"), "created": 1_764_300_000,
                });
                state.portal_sessions.push(session.clone());
                (StatusCode::OK, session)
            }
            (&Method::GET, ["v1", "events"]) => {
                let (from, until) = created_range(query);
                let type_ = field(query, "type");
                let matches_type = |event: &Value| {
                    let actual = event["type"].as_str().unwrap();
                    match type_.as_deref() {
                        None => true,
                        Some(wanted) => match wanted.strip_suffix('*') {
                            Some(prefix) => actual.starts_with(prefix),
                            None => actual == wanted,
                        },
                    }
                };
                let in_range =
                    |event: &Value| (from..until).contains(&event["created"].as_i64().unwrap());
                let matching: Vec<&Value> = state
                    .events
                    .iter()
                    .rev()
                    .filter(|e| matches_type(e) && in_range(e))
                    .collect();
                list_page(query, "/v1/events", matching)
            }
            (&Method::POST, ["v1", "webhook_endpoints"]) => {
                state.next_id += 1;
                let id = format!("we_fake{:08}", state.next_id);
                let events: Vec<String> = bracketed(form, "enabled_events").into_values().collect();
                let endpoint = json!({
                    "id": id, "object": "webhook_endpoint", "livemode": false,
                    "url": field(form, "url"), "enabled_events": events,
                    "api_version": field(form, "api_version"),
                    "description": field(form, "description"),
                    "status": "enabled", "created": 1_764_300_000, "metadata": {},
                });
                state.webhook_endpoints.insert(id.clone(), endpoint.clone());
                let mut created = endpoint;
                created["secret"] = json!(format!("whsec_fake_{}", uuid::Uuid::new_v4().simple()));
                (StatusCode::OK, created)
            }
            (&Method::GET, ["v1", "webhook_endpoints"]) => {
                let all: Vec<&Value> = state.webhook_endpoints.values().rev().collect();
                list_page(query, "/v1/webhook_endpoints", all)
            }
            (&Method::POST, ["v1", "webhook_endpoints", id]) => {
                let Some(endpoint) = state.webhook_endpoints.get_mut(*id) else {
                    return unknown_route(path, request_id);
                };
                if let Some(disabled) = field(form, "disabled") {
                    endpoint["status"] = json!(if disabled == "true" {
                        "disabled"
                    } else {
                        "enabled"
                    });
                }
                (StatusCode::OK, endpoint.clone())
            }
            (&Method::GET, ["v1", "customers"]) => {
                let email = field(query, "email");
                let limit = field(query, "limit")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(10);
                let expand: Vec<String> = expands(query)
                    .into_iter()
                    .filter_map(|e| e.strip_prefix("data.").map(str::to_string))
                    .collect();
                // Newest first, as Stripe lists them, in `created[...]`'s range,
                // after the cursor.
                let (from, until) = created_range(query);
                let upper = match field(query, "starting_after") {
                    Some(after) => match state.customers.get(&after) {
                        Some(cursor) => (cursor.created, after).min((until, String::new())),
                        None => return no_such_customer(&after, request_id),
                    },
                    None => (until, String::new()),
                };
                let lower = (from, String::new());
                let mut matching = state
                    .by_created
                    .range(lower..upper.max((from, String::new())))
                    .rev()
                    .map(|(_, id)| &state.customers[id])
                    .filter(|c| !c.deleted && (email.is_none() || c.email == email));
                let data: Vec<Value> = matching
                    .by_ref()
                    .take(limit)
                    .map(|c| customer_json(c, expand.clone()))
                    .collect();
                let has_more = matching.next().is_some();
                for customer in &data {
                    let id = customer["id"].as_str().unwrap_or_default().to_string();
                    *state.listed.entry(id).or_default() += 1;
                }
                let list = json!({"object": "list", "url": "/v1/customers", "has_more": has_more, "data": data});
                (StatusCode::OK, list)
            }
            (method, ["v1", "customers", id]) => {
                let Some(customer) = state.customers.get_mut(*id) else {
                    return no_such_customer(id, request_id);
                };
                match *method {
                    Method::GET if customer.deleted => (
                        StatusCode::OK,
                        json!({"id": id, "object": "customer", "deleted": true}),
                    ),
                    Method::GET => (StatusCode::OK, customer_json(customer, expands(query))),
                    _ if customer.deleted => no_such_customer(id, request_id),
                    Method::POST => {
                        let before = customer_json(customer, vec![]);
                        apply_form(customer, form);
                        let reply = customer_json(customer, expands(form));
                        let after = customer_json(customer, vec![]);
                        state.emit_updated(before, after);
                        state.customer_forms.push((path.to_string(), form.to_vec()));
                        (StatusCode::OK, reply)
                    }
                    Method::DELETE => {
                        customer.deleted = true;
                        let object = customer_json(customer, vec![]);
                        state.emit("customer.deleted", object, None);
                        (
                            StatusCode::OK,
                            json!({"id": id, "object": "customer", "deleted": true}),
                        )
                    }
                    _ => unknown_route(path, request_id),
                }
            }
            _ => unknown_route(path, request_id),
        }
    }
}

impl State {
    /// Records an event as Stripe makes one, for the Events API and webhooks.
    fn emit(&mut self, type_: &str, object: Value, previous: Option<Value>) {
        self.next_id += 1;
        let mut data = json!({"object": object});
        if let Some(previous) = previous {
            data["previous_attributes"] = previous;
        }
        let event = json!({
            "id": format!("evt_fake{:08}", self.next_id), "object": "event", "type": type_,
            "created": time::OffsetDateTime::now_utc().unix_timestamp(),
            "api_version": "2026-09-30.endive", "livemode": false, "pending_webhooks": 1,
            "request": {"id": null, "idempotency_key": null}, "data": data,
        });
        if self.webhook_target.is_some() {
            self.undelivered.push(event.to_string());
        }
        self.events.push(event);
    }

    /// `customer.updated` with the fields that changed, if any did (Stripe sends
    /// none for an update that changes nothing).
    fn emit_updated(&mut self, before: Value, after: Value) {
        let previous: serde_json::Map<String, Value> = before
            .as_object()
            .unwrap()
            .iter()
            .filter(|(key, value)| after.get(key.as_str()) != Some(value))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        if !previous.is_empty() {
            self.emit("customer.updated", after, Some(Value::Object(previous)));
        }
    }

    /// The limiter that refuses this request, if one does: the account's first,
    /// then the operation's. A refused request takes no token from either.
    fn over_rate_limit(&mut self, method: &Method, path: &str) -> Option<&'static str> {
        let now = std::time::Instant::now();
        let limits = &mut self.limits;
        let per_endpoint = limits.endpoint_per_second;
        let endpoint = per_endpoint.map(|per_second| {
            limits
                .endpoints
                .entry(endpoint(method.as_str(), path))
                .or_insert_with(|| RateLimit::new(per_second))
        });
        let mut refused = None;
        if let Some(global) = &mut limits.global {
            global.refill(now);
            if global.tokens < 1.0 {
                refused = Some("global-rate");
            }
        }
        if let Some(endpoint) = endpoint {
            endpoint.refill(now);
            if refused.is_none() && endpoint.tokens < 1.0 {
                refused = Some("endpoint-rate");
            }
            if refused.is_none() {
                endpoint.tokens -= 1.0;
            }
        }
        if let (None, Some(global)) = (refused, &mut limits.global) {
            global.tokens -= 1.0;
        }
        let reason = refused?;
        self.rejected_for_rate += 1;
        *self.rejected_by.entry(reason).or_default() += 1;
        Some(reason)
    }

    fn random_fault(&self) -> Option<Fault> {
        if self.fault_rate <= 0.0 || rand::random::<f64>() >= self.fault_rate {
            return None;
        }
        Some(match rand::random_range(0..5) {
            0 => Fault::Status(429),
            1 => Fault::Status(500),
            2 => Fault::StatusAfterActing(500),
            3 => Fault::Drop,
            _ => Fault::DropAfterActing,
        })
    }
}

fn new_customer(
    state: &mut State,
    name: Option<String>,
    email: Option<String>,
    metadata: BTreeMap<String, String>,
) -> FakeCustomer {
    state.next_id += 1;
    let created = match &mut state.creation {
        Some((first, apart, made)) => {
            *made += 1;
            *first + ((*made - 1) as f64 * *apart) as i64
        }
        None => 1_764_300_000 + state.next_id as i64,
    };
    let customer = FakeCustomer {
        id: format!("cus_fake{:08}", state.next_id),
        name,
        email,
        metadata,
        created,
        deleted: false,
        default_card: None,
        fields: BTreeMap::new(),
    };
    state
        .customers
        .insert(customer.id.clone(), customer.clone());
    state
        .by_created
        .insert((customer.created, customer.id.clone()));
    customer
}

fn customer_json(customer: &FakeCustomer, expand: Vec<String>) -> Value {
    let default_pm = customer.default_card.as_ref().map(|(id, brand, last4)| {
        if expand
            .iter()
            .any(|e| e == "invoice_settings.default_payment_method")
        {
            payment_method_json(id, &customer.id, brand, last4, customer.created)
        } else {
            json!(id)
        }
    });
    json!({
        "id": customer.id, "object": "customer", "created": customer.created,
        "livemode": false, "name": customer.name, "email": customer.email,
        "metadata": customer.metadata, "balance": 0, "delinquent": false,
        "description": customer.fields.get("description").cloned().unwrap_or(Value::Null),
        "phone": customer.fields.get("phone").cloned().unwrap_or(Value::Null),
        "preferred_locales": customer.fields.get("preferred_locales").cloned().unwrap_or(json!([])),
        "address": customer.fields.get("address").cloned().unwrap_or(Value::Null),
        "shipping": customer.fields.get("shipping").cloned().unwrap_or(Value::Null),
        "currency": null,
        "invoice_settings": {"custom_fields": null, "default_payment_method": default_pm,
                             "footer": null, "rendering_options": null},
    })
}

fn payment_method_json(id: &str, customer: &str, brand: &str, last4: &str, created: i64) -> Value {
    json!({
        "id": id, "object": "payment_method", "type": "card", "created": created,
        "livemode": false, "customer": customer,
        "billing_details": {"address": null, "email": null, "name": null, "phone": null},
        "card": {"brand": brand, "last4": last4, "exp_month": 12, "exp_year": 2034,
                 "funding": "credit", "country": "US"},
    })
}

/// The `created[gte|gt|lt|lte]` filter as a half-open range of Unix seconds.
fn created_range(query: &[(String, String)]) -> (i64, i64) {
    let bound =
        |op: &str| field(query, &format!("created[{op}]")).map(|v| v.parse::<i64>().unwrap());
    let from = bound("gte")
        .max(bound("gt").map(|b| b + 1))
        .unwrap_or(i64::MIN);
    let until = match (bound("lt"), bound("lte")) {
        (Some(lt), Some(lte)) => lt.min(lte + 1),
        (Some(lt), None) => lt,
        (None, Some(lte)) => lte + 1,
        (None, None) => i64::MAX,
    };
    (from, until)
}

/// One page of a list, newest first, after `starting_after`.
fn list_page(query: &[(String, String)], url: &str, items: Vec<&Value>) -> Reply {
    let limit = field(query, "limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10);
    let after = field(query, "starting_after");
    let mut rest = items
        .into_iter()
        .skip_while(|item| {
            after
                .as_ref()
                .is_some_and(|after| item["id"] != json!(after))
        })
        .skip(usize::from(after.is_some()));
    let data: Vec<Value> = rest.by_ref().take(limit).cloned().collect();
    let has_more = rest.next().is_some();
    (
        StatusCode::OK,
        json!({"object": "list", "url": url, "has_more": has_more, "data": data}),
    )
}

fn error_body(type_: &str, code: Option<&str>, message: &str, request_id: &str) -> Value {
    json!({"error": {
        "type": type_, "code": code, "message": message,
        "request_log_url": format!("https://dashboard.stripe.com/test/logs/{request_id}"),
    }})
}

/// Stripe's named operation of a request: its method and path, each of the
/// stand-in's object ids (by their prefixes) replaced.
fn endpoint(method: &str, path: &str) -> String {
    const ID_PREFIXES: [&str; 6] = ["cus_", "cs_", "we_", "evt_", "pm_", "bps_"];
    let shape: Vec<&str> = path
        .split('/')
        .map(
            |segment| match ID_PREFIXES.iter().any(|p| segment.starts_with(p)) {
                true => "{id}",
                false => segment,
            },
        )
        .collect();
    format!("{method} {}", shape.join("/"))
}

fn rate_limited(request_id: &str) -> Reply {
    (
        StatusCode::TOO_MANY_REQUESTS,
        error_body(
            "invalid_request_error",
            Some("rate_limit"),
            "Too many requests hit the API too quickly. We recommend an exponential \
             backoff of your requests.",
            request_id,
        ),
    )
}

fn injected(code: u16, request_id: &str) -> Reply {
    let status = StatusCode::from_u16(code).unwrap();
    (
        status,
        error_body("api_error", None, "Injected failure.", request_id),
    )
}

fn no_such_customer(id: &str, request_id: &str) -> Reply {
    let message = format!("No such customer: '{id}'");
    (
        StatusCode::NOT_FOUND,
        error_body(
            "invalid_request_error",
            Some("resource_missing"),
            &message,
            request_id,
        ),
    )
}

/// Stripe requires `shipping[name]` whenever `shipping` is sent (empty reads as
/// unset).
fn shipping_lacks_name(form: &[(String, String)]) -> bool {
    let sends_shipping = form.iter().any(|(k, _)| k.starts_with("shipping["));
    sends_shipping && field(form, "shipping[name]").is_none_or(|name| name.is_empty())
}

fn missing_param(param: &str, request_id: &str) -> Reply {
    let mut body = error_body(
        "invalid_request_error",
        Some("parameter_missing"),
        &format!("Missing required param: {param}."),
        request_id,
    );
    body["error"]["param"] = json!(param);
    (StatusCode::BAD_REQUEST, body)
}

/// Appends the request to the file `STRIPE_FAKE_REQUEST_LOG` names, as one JSON
/// line, when it names one: `scripts/test` checks every request the suite made
/// against Stripe's published request types (`scripts/stripe_conformance.py`).
fn record_request(method: &Method, path: &str, query: &str, body: &[u8]) {
    use std::io::Write as _;
    static LOG: std::sync::OnceLock<Option<Mutex<std::fs::File>>> = std::sync::OnceLock::new();
    let log = LOG.get_or_init(|| {
        let path = std::env::var_os("STRIPE_FAKE_REQUEST_LOG")?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|err| panic!("STRIPE_FAKE_REQUEST_LOG {path:?}: {err}"));
        Some(Mutex::new(file))
    });
    if let Some(file) = log {
        let line = json!({
            "method": method.as_str(),
            "path": path,
            "query": query,
            "body": String::from_utf8_lossy(body),
        });
        writeln!(file.lock().unwrap(), "{line}").expect("the request log takes a line");
    }
}

fn unknown_route(path: &str, request_id: &str) -> Reply {
    let message = format!("Unrecognized request URL ({path}).");
    (
        StatusCode::NOT_FOUND,
        error_body("invalid_request_error", None, &message, request_id),
    )
}

const ADDRESS_PARTS: [&str; 6] = ["line1", "line2", "city", "state", "postal_code", "country"];

/// Applies a customer create's or update's form as Stripe does: an empty value
/// clears a field, an address is replaced whole, metadata keys merge (an empty
/// value removes one).
fn apply_form(customer: &mut FakeCustomer, form: &[(String, String)]) {
    let text = |value: String| match value.is_empty() {
        true => Value::Null,
        false => json!(value),
    };
    if let Some(name) = field(form, "name") {
        customer.name = (!name.is_empty()).then_some(name);
    }
    if let Some(email) = field(form, "email") {
        customer.email = (!email.is_empty()).then_some(email);
    }
    for key in ["phone", "description"] {
        if let Some(value) = field(form, key) {
            customer.fields.insert(key.into(), text(value));
        }
    }
    let locales: Vec<String> = bracketed(form, "preferred_locales").into_values().collect();
    if field(form, "preferred_locales").is_some() || !locales.is_empty() {
        customer
            .fields
            .insert("preferred_locales".into(), json!(locales));
    }
    let address = |prefix: &str| {
        let parts: serde_json::Map<String, Value> = ADDRESS_PARTS
            .iter()
            .map(|part| {
                let value = field(form, &format!("{prefix}[{part}]")).unwrap_or_default();
                (part.to_string(), text(value))
            })
            .collect();
        Value::Object(parts)
    };
    if field(form, "address").is_some() {
        customer.fields.insert("address".into(), Value::Null);
    } else if form.iter().any(|(k, _)| k.starts_with("address[")) {
        customer.fields.insert("address".into(), address("address"));
    }
    if field(form, "shipping").is_some() {
        customer.fields.insert("shipping".into(), Value::Null);
    } else if form.iter().any(|(k, _)| k.starts_with("shipping[")) {
        let shipping = json!({
            "name": text(field(form, "shipping[name]").unwrap_or_default()),
            "phone": text(field(form, "shipping[phone]").unwrap_or_default()),
            "address": address("shipping[address]"),
            "carrier": null, "tracking_number": null,
        });
        customer.fields.insert("shipping".into(), shipping);
    }
    for (key, value) in bracketed(form, "metadata") {
        match value.is_empty() {
            true => customer.metadata.remove(&key),
            false => customer.metadata.insert(key, value),
        };
    }
}

fn field(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// `metadata[user_id]=5` and the like.
fn bracketed(pairs: &[(String, String)], name: &str) -> BTreeMap<String, String> {
    let prefix = format!("{name}[");
    pairs
        .iter()
        .filter_map(|(k, v)| {
            let inner = k.strip_prefix(&prefix)?.strip_suffix(']')?;
            Some((inner.to_string(), v.clone()))
        })
        .collect()
}

/// `expand[]=a`, `expand[0]=a` or `expand=a`.
fn expands(pairs: &[(String, String)]) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == "expand" || k.starts_with("expand["))
        .map(|(_, v)| v.clone())
        .collect()
}
