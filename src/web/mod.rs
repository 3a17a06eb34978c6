//! The web app: routes, sessions, CSRF and flash messages around the customers service.

mod auth;
mod csrf;
mod error;
mod extract;
mod headers;
mod jobs;
mod limits;
mod page;
mod password_reset;
mod profile;
mod request;
pub mod session;
mod settings;
mod webhook;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum_csrf::{CsrfConfig, CsrfLayer};
use axum_login::{AuthManagerLayerBuilder, login_required};
use axum_messages::MessagesManagerLayer;
use base64::Engine as _;
use ipnet::IpNet;
use secrecy::SecretString;
use tower::layer::util::Stack;
use tower_http::limit::RequestBodyLimitLayer;
use tower_sessions::cookie::{Key, SameSite};
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::accounts::Accounts;
use crate::accounts::SessionStore;
use crate::billing::Billing;
use crate::config::{Config, JobPosting, Limits};
use crate::context::Context;
use crate::customers::Customers;
use crate::events::Events;
use crate::mail::Mailer;
use crate::throttle::Throttle;
use session::Backend;

pub use error::WebError;

/// Form posts are small; anything bigger is refused before a handler runs.
const BODY_LIMIT_BYTES: usize = 64 * 1024;
/// Stripe's events are larger than a form post.
const WEBHOOK_BODY_LIMIT_BYTES: usize = 1024 * 1024;
const SESSION_COOKIE: &str = "stripe_sync_session";
const CSRF_COOKIE: &str = "stripe_sync_csrf";

/// The handlers' state: one shared copy, so the clone axum makes for each
/// request is a reference count, not a copy of every service and its client.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    /// What the services are built on (the database, for readiness).
    pub context: Context,
    /// The customers service.
    pub customers: Customers,
    pub billing: Billing,
    pub events: Events,
    /// Request limits, counted in the database and shared by every instance.
    pub throttle: Throttle,
    pub limits: Limits,
    /// Logins and profiles, with the cap on password hashes computed at once.
    pub accounts: Accounts,
    pub trusted_proxies: Arc<[IpNet]>,
    /// Signing secrets of the webhook endpoint; empty when not configured.
    pub webhook_secrets: Arc<Vec<SecretString>>,
    pub job_posting: JobPosting,
    /// Public base URL, for the pages Stripe sends the browser back to, and
    /// the links mail carries.
    pub app_url: Arc<str>,
    /// Password-reset mail; `None` without `MAIL_URL`.
    pub mailer: Option<Mailer>,
    /// Whether `/register` says an email has an account.
    pub register_reveals_accounts: bool,
}

/// What the web tier runs on, built once by `startup`.
#[derive(Clone)]
pub struct Services {
    /// What billing and events are built on.
    pub context: Context,
    pub customers: Customers,
    pub accounts: Accounts,
    pub throttle: Throttle,
    pub sessions: SessionStore,
    pub mailer: Option<Mailer>,
}

pub fn router(config: &Config, services: Services) -> Router {
    let Services {
        context,
        customers,
        accounts,
        throttle,
        sessions,
        mailer,
    } = services;
    let secure = config.secure_cookies();
    // Under https, `__Host-` names: the browser keeps such cookies only when Secure,
    // for path / and without a Domain, so no subdomain can set or shadow them.
    let cookie_name = |name: &str| match secure {
        true => format!("__Host-{name}"),
        false => name.to_string(),
    };
    let session_key = config.signing_key("stripe-sync session cookies");
    let session_layer = SessionManagerLayer::new(sessions)
        .with_name(cookie_name(SESSION_COOKIE))
        .with_secure(secure)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_expiry(Expiry::OnInactivity(time::Duration::days(7)))
        .with_signed(Key::from(&session_key));
    let backend = Backend::new(accounts.clone());
    let auth_layer = AuthManagerLayerBuilder::new(backend, session_layer).build();
    // Key and salt both come from APP_KEY (axum_csrf's default salt is random per
    // process), so a form from one instance or before a restart posts to any other.
    let csrf_salt = base64::engine::general_purpose::STANDARD
        .encode(config.derived_key("stripe-sync csrf token salt"));
    let csrf = CsrfConfig::default()
        .with_key(Some(axum_csrf::Key::from(
            &config.signing_key("stripe-sync csrf cookies"),
        )))
        .with_salt(csrf_salt)
        .with_cookie_name(&cookie_name(CSRF_COOKIE))
        .with_cookie_path("/")
        .with_secure(secure)
        .with_http_only(true)
        .with_cookie_same_site(axum_csrf::SameSite::Strict);

    let state = AppState(Arc::new(Shared {
        throttle,
        billing: Billing::new(context.clone()),
        events: Events::new(context.clone()),
        context,
        customers,
        limits: config.limits,
        accounts,
        trusted_proxies: config.trusted_proxies.clone().into(),
        webhook_secrets: Arc::new(config.webhook_secrets()),
        job_posting: config.job_posting.clone(),
        app_url: config.app_url.as_str().into(),
        mailer,
        register_reveals_accounts: config.register_reveals_accounts,
    }));

    // Every POST here calls Stripe and counts against the user's allowance.
    let stripe_actions = Router::new()
        .route("/settings/stripe/create", post(settings::create))
        .route("/settings/stripe/update", post(settings::update))
        .route("/settings/stripe/keep", post(settings::keep))
        .route("/settings/stripe/refresh", post(settings::refresh))
        .route(
            "/settings/stripe/delete",
            get(settings::confirm_delete).post(settings::delete),
        )
        .route("/settings/stripe/recreate", post(settings::recreate))
        .route("/settings/stripe/portal", post(settings::portal))
        .route("/jobs/new", get(jobs::new_form).post(jobs::create))
        .route("/jobs/{id}/pay", post(jobs::pay))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::stripe_actions,
        ));
    let router = Router::new()
        .route("/settings/stripe", get(settings::show))
        .merge(stripe_actions)
        .route("/settings/profile", get(profile::show).post(profile::save))
        .route("/settings/password", post(profile::change_password))
        .route("/jobs/{id}", get(jobs::show))
        .route("/jobs/{id}/success", get(jobs::success))
        .route("/jobs/{id}/cancelled", get(jobs::cancelled))
        .route_layer(login_required!(Backend, login_url = "/login"))
        .route("/register", get(auth::register_form).post(auth::register))
        .route(
            "/forgot-password",
            get(password_reset::forgot_form).post(password_reset::forgot),
        )
        .route(
            "/reset-password/{token}",
            get(password_reset::reset_form).post(password_reset::reset),
        )
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/", get(|| async { Redirect::to("/settings/stripe") }))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/static/app.css", get(stylesheet))
        .route("/favicon.ico", get(favicon))
        .fallback(error::not_found)
        .layer(body_limit(BODY_LIMIT_BYTES))
        .layer(MessagesManagerLayer)
        .layer(axum::middleware::from_fn(request::record_user))
        .layer(auth_layer)
        .layer(axum::middleware::from_fn(session::upgrade_legacy_cookie))
        .layer(axum::Extension(session::LegacySessionCookie::new(
            &cookie_name(SESSION_COOKIE),
            &session_key,
            config.legacy_session_key().as_deref(),
        )))
        .layer(CsrfLayer::new(csrf))
        .layer(axum::Extension(csrf::CsrfBinding::new(
            config.derived_key("stripe-sync csrf session binding"),
        )));
    // Stripe's events are signed, not sent by a browser: merged after the
    // session, sign-in, CSRF and flash layers, so none of them runs for one
    // (no session read or written, no cookie set).
    let webhook = Router::new()
        .route("/stripe/webhook", post(webhook::receive))
        .layer(body_limit(WEBHOOK_BODY_LIMIT_BYTES));
    let router = router.merge(webhook);
    headers::with_security_headers(router, secure)
        .layer(axum::middleware::from_fn(request::trace))
        .with_state(state)
}

/// Refuses a body over `bytes`: at once with 413 when its `Content-Length` says
/// so, else when that much has arrived (axum's own limit is lifted for it).
fn body_limit(bytes: usize) -> Stack<DefaultBodyLimit, RequestBodyLimitLayer> {
    Stack::new(
        DefaultBodyLimit::disable(),
        RequestBodyLimitLayer::new(bytes),
    )
}

/// Liveness: the process answers. Touches nothing else, so a database outage does
/// not get the app restarted.
async fn healthz() -> &'static str {
    "ok"
}

/// How long readiness waits for the database before saying no.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Readiness, for a load balancer: 200 when the database answers, else 503.
async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.context.database_ready(READY_TIMEOUT).await {
        (StatusCode::OK, "ready")
    } else {
        tracing::warn!("not ready: the database did not answer");
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
    }
}

/// Browsers ask for `/favicon.ico` on every page; an SVG serves every modern one.
async fn favicon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../../static/favicon.svg"),
    )
}

/// The stylesheet is compiled in, so the binary serves it from any directory.
async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/app.css"),
    )
}
