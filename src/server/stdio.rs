//! MCP over stdin/stdout. stdout carries protocol only; logs go to stderr.

use std::sync::Arc;

use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

use super::{AppState, BitrouterServer, ServeError};

/// Serves until the client closes stdin or `shutdown` fires.
pub async fn serve(state: Arc<AppState>, shutdown: CancellationToken) -> Result<(), ServeError> {
    let service = BitrouterServer::new(state)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| ServeError::Stdio(e.to_string()))?;
    let cancel = service.cancellation_token();
    tokio::select! {
        r = service.waiting() => { r.map_err(|e| ServeError::Stdio(e.to_string()))?; }
        _ = shutdown.cancelled() => cancel.cancel(),
    }
    Ok(())
}
