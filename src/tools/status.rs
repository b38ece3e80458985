//! `bitrouter_status`: one read-only snapshot of everything a user would check first: the daemon's
//! health, the binary, paths, providers (names and key sources only) and virtual models with
//! their route health. The models are the control plane's route table entries as published (the
//! same facts as `bitrouter://routes`), embedded, not recomputed: most MCP clients never read
//! resources.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::keystore;
use crate::home::Home;
use crate::routing::PluginConfig;
use crate::routing::credentials::{self, ProviderSummary};
use crate::routing::table::{ForeignChange, RouteEntry, RouteTable};
use crate::supervisor::DaemonStatus;
use crate::supervisor::binary::BinaryInfo;

/// `bitrouter_status` takes no arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusParams {}

#[derive(Debug, Serialize, JsonSchema)]
pub struct StatusOutput {
    /// Version of this MCP server.
    pub server_version: String,
    /// Why the last edit of the config file was refused (the previous config stays in force).
    pub config_error: Option<String>,
    /// Address the daemon listens on; OpenAI-compatible clients use `http://<listen>/v1`.
    pub listen: String,
    pub daemon: DaemonStatus,
    pub binary: BinaryInfo,
    pub paths: Paths,
    pub providers: Vec<ProviderSummary>,
    /// Each virtual model: the endpoints serving now, every endpoint's health, circuit breaker,
    /// last error, probe latency and traffic counts, and the last switch (when, from, to, why).
    pub models: Vec<RouteEntry>,
    pub intercept_all_models: bool,
    pub auto_start: bool,
    /// The config's `exposeToNetwork`: whether the daemon may listen on a non-loopback `host`,
    /// where anyone who reaches it can spend the provider keys.
    pub expose_to_network: bool,
    pub health_check_interval_ms: u64,
    /// Route changes someone else made through the daemon's admin API, and what we did.
    pub foreign_route_changes: Vec<ForeignChange>,
    /// Number of local accounts and the active one's prefix.
    pub accounts: usize,
    pub active_account: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Paths {
    pub data_dir: String,
    pub bitrouter_home: String,
    /// The config file this server was started with, if any.
    pub config_file: Option<String>,
    pub daemon_config: String,
    pub env_file: String,
    pub logs_dir: String,
}

pub fn run(
    home: &Home,
    config: &PluginConfig,
    config_file: Option<&std::path::Path>,
    daemon: DaemonStatus,
    binary: BinaryInfo,
    routes: &RouteTable,
) -> StatusOutput {
    let accounts = keystore::list(home).unwrap_or_default();
    StatusOutput {
        server_version: env!("CARGO_PKG_VERSION").into(),
        config_error: None,
        listen: config.listen_addr(),
        daemon,
        binary,
        paths: Paths {
            data_dir: home.data_dir().display().to_string(),
            bitrouter_home: home.bitrouter_home().display().to_string(),
            config_file: config_file.map(|p| p.display().to_string()),
            daemon_config: home.daemon_config_file().display().to_string(),
            env_file: home.env_file().display().to_string(),
            logs_dir: home.logs_dir().display().to_string(),
        },
        providers: credentials::providers(home, config),
        models: routes.models.clone(),
        intercept_all_models: config.intercept_all_models,
        foreign_route_changes: routes.foreign_changes.clone(),
        auto_start: config.auto_start,
        expose_to_network: config.expose_to_network,
        health_check_interval_ms: config.health_check_interval_ms,
        active_account: accounts.iter().find(|a| a.active).map(|a| a.prefix.clone()),
        accounts: accounts.len(),
    }
}
