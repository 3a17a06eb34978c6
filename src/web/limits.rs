//! The request limits as the web tier applies them: who the client is, and the
//! per-user cap on actions that spend the account's Stripe rate limit.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::Method;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::session::AuthSession;
use super::{AppState, WebError};
use crate::throttle::{Bucket, Verdict};

/// The client's address: the socket's peer, or, when the peer is a trusted proxy,
/// the nearest address in `X-Forwarded-For` that is not one of ours.
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let Some(peer) = peer else {
            return Ok(ClientAddr("unknown".into()));
        };
        let trusted = |ip: &IpAddr| state.trusted_proxies.iter().any(|net| net.contains(ip));
        if !trusted(&peer) {
            return Ok(ClientAddr(peer.to_string()));
        }
        // Each proxy appends the address it received from, so read from the right
        // and stop at the first one we do not operate.
        let forwarded: Vec<IpAddr> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|item| item.trim().parse().ok())
            .collect();
        let client = forwarded
            .iter()
            .rev()
            .find(|ip| !trusted(ip))
            .or(forwarded.first())
            .copied()
            .unwrap_or(peer);
        Ok(ClientAddr(client.to_string()))
    }
}

/// Route layer over the actions that call Stripe: each POST counts against the
/// signed-in user's allowance, so one person cannot spend the account-wide rate
/// limit that the bulk sync and webhooks need.
pub async fn stripe_actions(
    State(state): State<AppState>,
    auth: AuthSession,
    request: Request,
    next: Next,
) -> Response {
    let Some(user) = auth
        .user
        .as_ref()
        .filter(|_| request.method() == Method::POST)
    else {
        return next.run(request).await;
    };
    let bucket = Bucket::stripe_actions(user.id);
    match state
        .throttle
        .hit(&bucket, state.limits.stripe_actions_per_user)
        .await
    {
        Ok(Verdict::Allowed) => next.run(request).await,
        Ok(Verdict::Refused { retry_after }) => {
            tracing::warn!(
                user_id = user.id,
                path = request.uri().path(),
                "stripe action refused: per-user limit reached"
            );
            WebError::TooManyRequests { retry_after }.into_response()
        }
        Err(err) => WebError::from(err).into_response(),
    }
}
