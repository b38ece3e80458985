//! The route table: what each virtual model routes to, as agents and the OpenClaw adapter see it
//! (`bitrouter://routes`). Built from the config; health-driven changes update it.

use schemars::JsonSchema;
use serde::Serialize;

use super::config::{PluginConfig, Strategy};
use super::credentials::ProviderSummary;

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct RouteTable {
    pub models: Vec<RouteEntry>,
    /// Providers reachable directly as `provider:model_id`.
    pub direct_providers: Vec<String>,
    pub intercept_all_models: bool,
    /// Whether the daemon answered its last health check.
    pub daemon_healthy: bool,
    /// When the table last changed (RFC 3339).
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct RouteEntry {
    pub name: String,
    pub strategy: Strategy,
    pub endpoints: Vec<EndpointState>,
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

impl RouteTable {
    /// The table as configured, before any health information.
    pub fn from_config(
        config: &PluginConfig,
        providers: &[ProviderSummary],
        updated_at: String,
    ) -> Self {
        let models = config
            .models
            .iter()
            .map(|(name, m)| RouteEntry {
                name: name.clone(),
                strategy: m.strategy,
                endpoints: m
                    .endpoints
                    .iter()
                    .enumerate()
                    .map(|(i, e)| EndpointState {
                        provider: e.provider.clone(),
                        model_id: e.model_id.clone(),
                        health: "unknown".into(),
                        last_error: None,
                        active: m.strategy == Strategy::LoadBalance || i == 0,
                    })
                    .collect(),
            })
            .collect();
        Self {
            models,
            direct_providers: providers.iter().map(|p| p.name.clone()).collect(),
            intercept_all_models: config.intercept_all_models,
            daemon_healthy: false,
            updated_at,
        }
    }
}
