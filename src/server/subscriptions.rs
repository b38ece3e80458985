//! Clients subscribed (legacy `resources/subscribe`) to the route table, and the task that tells
//! them when it changes. Peers have no identity of their own: a streamable-HTTP client is known
//! by its `mcp-session-id`, the stdio client is the only one.

use std::sync::{Arc, Mutex};

use rmcp::RoleServer;
use rmcp::model::ResourceUpdatedNotificationParam;
use rmcp::service::{Peer, RequestContext};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::ROUTES_URI;

#[derive(Default)]
pub struct Subscribers {
    peers: Mutex<Vec<(Option<String>, Peer<RoleServer>)>>,
}

/// The session a request came from (`None` over stdio).
pub fn session_of(ctx: &RequestContext<RoleServer>) -> Option<String> {
    ctx.extensions
        .get::<axum::http::request::Parts>()
        .and_then(|p| p.headers.get("mcp-session-id"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl Subscribers {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Option<String>, Peer<RoleServer>)>> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add(&self, session: Option<String>, peer: Peer<RoleServer>) {
        let mut peers = self.lock();
        peers.retain(|(s, _)| *s != session);
        peers.push((session, peer));
    }

    pub fn remove(&self, session: Option<String>) {
        self.lock().retain(|(s, _)| *s != session);
    }

    /// Sends `notifications/resources/updated` for the route table on every change, dropping
    /// peers whose transport closed. Ends on `shutdown` or when `changes` has no sender left.
    pub async fn forward(
        self: Arc<Self>,
        mut changes: watch::Receiver<u64>,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = changes.changed() => if changed.is_err() { return },
            }
            let peers: Vec<_> = self.lock().clone();
            for (session, peer) in peers {
                let sent = if peer.is_transport_closed() {
                    false
                } else {
                    peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(ROUTES_URI))
                        .await
                        .is_ok()
                };
                if !sent {
                    self.remove(session);
                }
            }
        }
    }
}
