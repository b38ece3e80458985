//! MCP over streamable HTTP at `/mcp`.
//!
//! Loopback by default. A non-loopback bind needs a bearer token; browsers' cross-site requests
//! are refused by `Origin` (DNS rebinding), and rmcp itself refuses foreign `Host` headers.
//! Without a token only the server's own user may connect ([`super::peer`]), and concurrent
//! sessions are capped ([`super::sessions`]). The dashboard page at `/` ([`super::dashboard`])
//! sits behind the same layers.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use super::peer::SameUser;
use super::sessions::CappedSessions;
use super::{AppState, BitrouterServer, ServeError};

/// Origins a local browser page may use; anything else gets 403.
const LOCAL_ORIGINS: [&str; 3] = ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"];

/// Binds `addr`, then serves until `shutdown`. Returns the bound address through `on_bound`
/// so callers (and tests) can use port 0.
pub async fn serve(
    state: Arc<AppState>,
    addr: SocketAddr,
    auth_token: Option<String>,
    shutdown: CancellationToken,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    if auth_token.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(ServeError::EmptyToken);
    }
    if !addr.ip().is_loopback() && auth_token.is_none() {
        return Err(ServeError::InsecureBind(addr));
    }
    let check_peer = auth_token.is_none();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    let mut config = StreamableHttpServerConfig::default()
        .with_cancellation_token(shutdown.child_token())
        .with_allowed_origins(LOCAL_ORIGINS);
    if !addr.ip().is_loopback() {
        // With a token required, any Host may reach us (e.g. a LAN name).
        config = config.with_allowed_hosts(Vec::<String>::new());
    }
    let page = super::dashboard::routes(state.clone(), addr.ip().is_loopback());
    let service: StreamableHttpService<BitrouterServer, CappedSessions> =
        StreamableHttpService::new(
            move || Ok(BitrouterServer::new(state.clone())),
            Default::default(),
            config,
        );
    let app = axum::Router::new()
        .nest_service("/mcp", service)
        .merge(page)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(auth_token),
            require_bearer,
        ));
    on_bound(bound);
    tracing::info!(%bound, "MCP streamable HTTP listening on /mcp");
    // Responses go out in more than one write; without TCP_NODELAY a client that keeps its
    // connection (Node's fetch, the OpenClaw adapter) waits ~40 ms for a delayed ACK each call.
    // With a token, holding it is what counts; without one, being this user.
    let listener = SameUser::new(listener, check_peer).tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(ServeError::Http)
}

async fn require_bearer(
    State(token): State<Arc<Option<String>>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(expected) = token.as_deref() {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !token_matches(given, expected) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "missing or wrong bearer token",
            )
                .into_response();
        }
    }
    next.run(request).await
}

/// Whether the bearer token sent is the expected one. Compared in constant time: `==` stops at
/// the first differing byte, and on a LAN bind that timing would let a client guess the token
/// byte by byte. Only the length can leak, and it says nothing about the token's bytes.
fn token_matches(given: Option<&str>, expected: &str) -> bool {
    given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(expected.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::token_matches;

    #[test]
    fn only_the_exact_token_matches() {
        assert!(token_matches(Some("s3cret-token"), "s3cret-token"));
        assert!(!token_matches(Some("s3cret-tokeN"), "s3cret-token"));
        assert!(!token_matches(Some("s3cret-token "), "s3cret-token"));
        assert!(!token_matches(Some("s3cret"), "s3cret-token"));
        assert!(!token_matches(Some(""), "s3cret-token"));
        assert!(!token_matches(None, "s3cret-token"));
    }
}
