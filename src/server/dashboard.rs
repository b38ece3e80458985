//! The live dashboard: one self-contained HTML page (inline JS/CSS/SVG, no CDN, no build step)
//! served at `/` of the HTTP server and, unchanged, as the MCP App resource [`APP_URI`].
//!
//! The page draws facts from their owners and computes none of its own: in a browser it polls
//! `/dashboard/status` (the same [`crate::tools::status::StatusOutput`] as `bitrouter_status`);
//! inside an MCP Apps host it calls `bitrouter_status` through the host's postMessage bridge.
//! The routes here go through the same middleware as `/mcp` (bearer token when one is set) plus
//! [`local_only`], the Origin/Host rules rmcp applies to `/mcp`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rmcp::model::{MetaObject, Resource, ResourceContents};

use super::AppState;
use crate::home::Home;

/// URI of the MCP App resource.
pub const APP_URI: &str = "ui://bitrouter/dashboard";
/// MIME type the MCP Apps extension renders.
pub const APP_MIME: &str = "text/html;profile=mcp-app";
/// The page: the same bytes at `/` and as [`APP_URI`].
pub const PAGE: &str = include_str!("dashboard.html");

/// Hosts a loopback-bound server answers to (DNS rebinding defence, as rmcp's default for `/mcp`).
const LOCAL_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// `_meta` of a tool whose result the dashboard shows: the MCP Apps extension's
/// `ui.resourceUri`, and the flat `ui/resourceUri` key that earlier hosts read. Hosts without
/// MCP Apps ignore `_meta`.
pub fn tool_meta() -> MetaObject {
    let mut meta = MetaObject::new();
    meta.insert("ui".into(), serde_json::json!({ "resourceUri": APP_URI }));
    meta.insert("ui/resourceUri".into(), APP_URI.into());
    meta
}

/// The App resource as listed.
pub fn app_resource() -> Resource {
    Resource::new(APP_URI, "dashboard")
        .with_title("BitRouter dashboard")
        .with_description(
            "Live view of routes, endpoint health, switches, restarts and traffic (an MCP App: \
             HTML rendered by hosts with the MCP Apps extension).",
        )
        .with_mime_type(APP_MIME)
}

/// The App resource's contents.
pub fn app_contents() -> ResourceContents {
    ResourceContents::text(PAGE, APP_URI).with_mime_type(APP_MIME)
}

/// Routes of the page and its data, for the HTTP server's router. `loopback`: the server is
/// bound to a loopback address, so only local `Host` names are answered.
pub fn routes(state: Arc<AppState>, loopback: bool) -> axum::Router {
    axum::Router::new()
        .route("/", get(page))
        .route("/dashboard/status", get(status))
        .route("/dashboard/usage", get(usage))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(loopback, local_only))
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Everything is inline; the page may only talk back to this server.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 img-src data:; connect-src 'self'; frame-ancestors 'none'",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PAGE,
    )
        .into_response()
}

async fn status(State(state): State<Arc<AppState>>) -> Response {
    json(&state.status().await)
}

fn json(value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `bitrouter_usage` over the last hour with its latest 100 requests: what the page charts.
async fn usage(State(state): State<Arc<AppState>>) -> Response {
    let params = crate::tools::usage::UsageParams {
        since: Some("1h".into()),
        recent: Some(100),
        ..Default::default()
    };
    let read = tokio::task::spawn_blocking(move || {
        crate::tools::usage::run(
            &state.home,
            &state.config.current(),
            &state.spend_log,
            params,
            crate::tools::usage::now_ms(),
        )
    })
    .await;
    match read {
        Ok(Ok(out)) => json(&out),
        // No spend log yet, or a locked one: the page asks again later.
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, e.message).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Refuses a cross-site `Origin` (403) and, on a loopback bind, a `Host` that is not a local
/// name (403): a page on another site, or one reached through DNS rebinding, cannot read this.
async fn local_only(State(loopback): State<bool>, request: Request, next: Next) -> Response {
    if let Some(why) = refusal(request.headers(), loopback) {
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    next.run(request).await
}

fn refusal(headers: &HeaderMap, loopback: bool) -> Option<&'static str> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let local = origin
            .to_str()
            .ok()
            .and_then(|o| o.parse::<Uri>().ok())
            .is_some_and(|u| u.scheme_str() == Some("http") && u.host().is_some_and(is_local));
        if !local {
            return Some("forbidden: cross-origin request");
        }
    }
    if loopback {
        let local = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse::<axum::http::uri::Authority>().ok())
            .is_some_and(|a| is_local(a.host()));
        if !local {
            return Some("forbidden: this server answers to localhost only");
        }
    }
    None
}

fn is_local(host: &str) -> bool {
    LOCAL_HOSTS.contains(&host)
}

/// Records the HTTP server's address in the data dir, so `bitrouter-mcp dashboard` can find it.
pub fn record_address(home: &Home, bound: SocketAddr) {
    let path = home.http_address_file();
    if let Err(e) = crate::fsutil::write_private(&path, format!("{bound}\n").as_bytes()) {
        tracing::warn!(path = %path.display(), error = %e, "cannot record the HTTP address");
    }
}

/// Removes the record on shutdown, unless another server has replaced it meanwhile.
pub fn forget_address(home: &Home, bound: SocketAddr) {
    let path = home.http_address_file();
    if recorded_address(home) == Some(bound) {
        let _ = std::fs::remove_file(path);
    }
}

/// The address a server on this data dir recorded, if any.
pub fn recorded_address(home: &Home) -> Option<SocketAddr> {
    std::fs::read_to_string(home.http_address_file())
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The page's URL for a server bound to `bound`: an unspecified bind is reached on loopback.
pub fn url(bound: SocketAddr) -> String {
    let ip = match bound.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(ip, bound.port()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn local_origins_and_hosts_pass_foreign_ones_are_refused() {
        let ok = headers(&[
            ("host", "127.0.0.1:8788"),
            ("origin", "http://localhost:8788"),
        ]);
        assert_eq!(refusal(&ok, true), None);
        assert_eq!(refusal(&headers(&[("host", "[::1]:1")]), true), None);
        let foreign = headers(&[
            ("host", "127.0.0.1:8788"),
            ("origin", "https://evil.example"),
        ]);
        assert!(refusal(&foreign, true).is_some());
        let https_local = headers(&[("host", "localhost"), ("origin", "https://localhost")]);
        assert!(refusal(&https_local, true).is_some());
        for origin in [
            "null",
            "http://localhost.evil.example:1",
            "http://127.0.0.1.evil.example",
        ] {
            let mut h = headers(&[("host", "127.0.0.1:8788")]);
            h.insert("origin", HeaderValue::from_static(origin));
            assert!(refusal(&h, true).is_some(), "{origin}");
        }
        let rebound = headers(&[("host", "evil.example:8788")]);
        assert!(refusal(&rebound, true).is_some());
        assert!(refusal(&HeaderMap::new(), true).is_some(), "no Host");
        // A non-loopback bind (token required) answers any Host, never a foreign Origin.
        assert_eq!(refusal(&rebound, false), None);
        assert!(refusal(&foreign, false).is_some());
    }

    #[test]
    fn unspecified_binds_are_opened_on_loopback() {
        assert_eq!(
            url("0.0.0.0:8788".parse().unwrap_or_else(|_| unreachable!())),
            "http://127.0.0.1:8788/"
        );
        assert_eq!(
            url("[::]:9".parse().unwrap_or_else(|_| unreachable!())),
            "http://[::1]:9/"
        );
        assert_eq!(
            url("127.0.0.1:5".parse().unwrap_or_else(|_| unreachable!())),
            "http://127.0.0.1:5/"
        );
    }

    #[test]
    fn the_page_is_small_and_self_contained() {
        assert!(PAGE.len() < 2 * 1024 * 1024);
        assert!(PAGE.starts_with("<!doctype html>"));
        for external in ["src=\"http", "href=\"http", "@import", "<link"] {
            assert!(!PAGE.contains(external), "page loads {external}");
        }
    }
}
