//! The route table: what each virtual model routes to, as agents and the OpenClaw adapter see it
//! (`bitrouter://routes`), and the per-endpoint counters (`bitrouter://metrics`).

use schemars::JsonSchema;
use serde::Serialize;

use super::config::Strategy;

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct RouteTable {
    pub models: Vec<RouteEntry>,
    /// Providers reachable directly as `provider:model_id`.
    pub direct_providers: Vec<String>,
    pub intercept_all_models: bool,
    /// Whether the daemon is healthy (and our routes are applied to it).
    pub daemon_healthy: bool,
    /// Route changes made by someone else through the daemon's admin API, newest last.
    pub foreign_changes: Vec<ForeignChange>,
    /// When the table last changed (RFC 3339).
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct RouteEntry {
    pub name: String,
    pub strategy: Strategy,
    pub endpoints: Vec<EndpointState>,
    /// When traffic last moved between endpoints (RFC 3339).
    pub last_switch: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct EndpointState {
    pub provider: String,
    pub model_id: String,
    /// `unknown` until probed, then `healthy` or `unhealthy`.
    pub health: String,
    pub last_error: Option<String>,
    /// Whether the daemon's live route currently sends traffic here.
    pub active: bool,
}

/// A dynamic route someone else put into the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ForeignChange {
    pub model: String,
    /// When it was seen (RFC 3339).
    pub at: String,
    /// What was there: `strategy: provider:model_id, …`, or `deleted`.
    pub found: String,
    /// `reverted` (our route re-applied), `removed` (deleted) or `reported` (left alone).
    pub action: String,
}

/// `bitrouter://metrics`: what the control plane has seen per endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct MetricsTable {
    pub endpoints: Vec<EndpointMetrics>,
    /// Route switches per virtual model since this server started.
    pub switches: std::collections::BTreeMap<String, u64>,
    /// When these counters were read (RFC 3339).
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct EndpointMetrics {
    /// `provider:model_id` as the daemon names it.
    pub endpoint: String,
    pub probes: u64,
    pub probe_failures: u64,
    /// Requests and errors of real traffic, from the daemon's `/v1/metrics`.
    pub requests: u64,
    pub errors: u64,
    /// Times the endpoint was marked unhealthy from failures seen in real traffic.
    pub passive_failures: u64,
    pub last_probe_ms: Option<f64>,
}
