//! HTTP sessions with a cap: rmcp's local session manager keeps every session until the client
//! deletes it or it idles for 5 minutes, and each costs ~50 KB, so clients that never say goodbye
//! (crashed agents, scripts) grow the server without bound. At [`MAX_SESSIONS`] the session idle
//! the longest is closed to make room; its client gets 404 and, as the spec asks, starts a new
//! session.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use futures_core::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError,
};
use rmcp::transport::streamable_http_server::session::{
    ServerSseMessage, SessionId, SessionManager,
};

/// Concurrent HTTP sessions kept (README: "MCP over HTTP").
pub const MAX_SESSIONS: usize = 64;

/// [`LocalSessionManager`] that keeps at most `cap` sessions, evicting the longest idle.
pub struct CappedSessions {
    inner: LocalSessionManager,
    cap: usize,
    last_used: Mutex<HashMap<SessionId, Instant>>,
}

impl Default for CappedSessions {
    fn default() -> Self {
        Self::new(MAX_SESSIONS)
    }
}

impl CappedSessions {
    pub fn new(cap: usize) -> Self {
        Self {
            inner: LocalSessionManager::default(),
            cap: cap.max(1),
            last_used: Mutex::new(HashMap::new()),
        }
    }

    /// Sessions currently kept.
    pub fn len(&self) -> usize {
        self.last_used.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn touch(&self, id: &SessionId) {
        if let Ok(mut m) = self.last_used.lock()
            && let Some(t) = m.get_mut(id)
        {
            *t = Instant::now();
        }
    }

    /// The longest-idle sessions beyond room for one more, removed from the books.
    fn over_cap(&self) -> Vec<SessionId> {
        let Ok(mut m) = self.last_used.lock() else {
            return Vec::new();
        };
        let excess = (m.len() + 1).saturating_sub(self.cap);
        if excess == 0 {
            return Vec::new();
        }
        let mut by_age: Vec<(Instant, SessionId)> =
            m.iter().map(|(id, t)| (*t, id.clone())).collect();
        by_age.sort_by_key(|(t, _)| *t);
        let evict: Vec<SessionId> = by_age.into_iter().take(excess).map(|(_, id)| id).collect();
        for id in &evict {
            m.remove(id);
        }
        evict
    }
}

impl SessionManager for CappedSessions {
    type Error = LocalSessionManagerError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        for id in self.over_cap() {
            tracing::info!(session = %id, cap = self.cap, "session limit reached: closing the longest idle session");
            if let Err(e) = self.inner.close_session(&id).await {
                tracing::debug!(session = %id, error = %e, "closing an evicted session");
            }
        }
        let (id, transport) = self.inner.create_session().await?;
        if let Ok(mut m) = self.last_used.lock() {
            m.insert(id.clone(), Instant::now());
        }
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.touch(id);
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        if let Ok(mut m) = self.last_used.lock() {
            m.remove(id);
        }
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        self.inner.create_stream(id, message).await
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.touch(id);
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        self.inner.resume(id, last_event_id).await
    }
}
