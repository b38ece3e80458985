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
    /// Endpoints that take its requests now (`provider:model_id`): the first listed for
    /// `priority`, all listed for `load_balance`.
    pub serving: Vec<String>,
    /// No endpoint is usable: the route lists them all, the one most likely to work first.
    pub all_out: bool,
    pub endpoints: Vec<EndpointState>,
    /// When traffic last moved between endpoints, and why.
    pub last_switch: Option<Switch>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct EndpointState {
    pub provider: String,
    pub model_id: String,
    /// `unknown` until probed, then `healthy` (takes traffic) or `unhealthy`.
    pub health: String,
    /// Circuit breaker from real traffic: `closed`, `open` (cooling down) or `half-open` (a
    /// one-token trial request is in flight).
    pub breaker: String,
    /// The cooldown being served while the breaker is not closed, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cooldown_s: Option<u64>,
    pub last_error: Option<String>,
    /// Latency of the last model-listing probe.
    pub probe_ms: Option<u64>,
    /// Real requests and errors through the daemon (its `/v1/metrics`, since it started).
    pub requests: u64,
    pub errors: u64,
    /// Whether the daemon's live route currently sends traffic here.
    pub active: bool,
}

/// A change of the endpoints serving a virtual model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Switch {
    /// RFC 3339.
    pub at: String,
    /// Endpoints serving before and after (`provider:model_id`, comma-separated).
    pub from: String,
    pub to: String,
    pub why: String,
}

impl RouteTable {
    /// Equal apart from the counters and latencies that move with every request and probe:
    /// those alone do not notify subscribers or move `updated_at`.
    pub fn same_shape(&self, other: &RouteTable) -> bool {
        fn calm(t: &RouteTable) -> RouteTable {
            let mut t = t.clone();
            t.updated_at.clear();
            for m in &mut t.models {
                for e in &mut m.endpoints {
                    e.probe_ms = None;
                    e.requests = 0;
                    e.errors = 0;
                }
            }
            t
        }
        calm(self) == calm(other)
    }
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
    /// Times failures in real traffic tripped the endpoint's breaker.
    pub passive_failures: u64,
    /// One-token trial requests sent to end a cooldown, and how many failed.
    pub trials: u64,
    pub trial_failures: u64,
    pub last_probe_ms: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(health: &str, requests: u64, probe_ms: Option<u64>) -> RouteTable {
        RouteTable {
            models: vec![RouteEntry {
                name: "smart".into(),
                strategy: Strategy::Priority,
                serving: vec!["pa:m1".into()],
                all_out: false,
                endpoints: vec![EndpointState {
                    provider: "pa".into(),
                    model_id: "m1".into(),
                    health: health.into(),
                    breaker: "closed".into(),
                    cooldown_s: None,
                    last_error: None,
                    probe_ms,
                    requests,
                    errors: 0,
                    active: true,
                }],
                last_switch: None,
            }],
            direct_providers: vec![],
            intercept_all_models: false,
            daemon_healthy: true,
            foreign_changes: vec![],
            updated_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn counters_and_latency_alone_do_not_change_the_shape() {
        let a = table("healthy", 1, Some(12));
        assert!(a.same_shape(&table("healthy", 900, Some(40))));
        assert!(a.same_shape(&table("healthy", 1, None)));
        assert!(!a.same_shape(&table("unhealthy", 1, Some(12))));
    }
}
