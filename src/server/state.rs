//! Shared state of one server process: the home, the loaded config and the daemon client.

use std::path::PathBuf;

use tokio::sync::OnceCell;

use crate::auth::now_unix;
use crate::auth::rfc3339;
use crate::daemon_api::DaemonClient;
use crate::home::Home;
use crate::routing::{PluginConfig, RouteTable};
use crate::supervisor::binary::{self, BinaryInfo};
use crate::tools;

pub struct AppState {
    pub home: Home,
    pub config: PluginConfig,
    pub config_file: Option<PathBuf>,
    pub daemon: DaemonClient,
    /// Binary lookup runs `bitrouter --version`; done once, not per status call.
    binary: OnceCell<BinaryInfo>,
    started_at: u64,
}

impl AppState {
    pub fn new(home: Home, config: PluginConfig, config_file: Option<PathBuf>) -> Self {
        let daemon = DaemonClient::new(&config.listen_addr());
        Self {
            home,
            config,
            config_file,
            daemon,
            binary: OnceCell::new(),
            started_at: now_unix(),
        }
    }

    pub async fn binary(&self) -> &BinaryInfo {
        self.binary.get_or_init(|| binary::inspect(None)).await
    }

    pub async fn status(&self) -> tools::status::StatusOutput {
        let binary = self.binary().await.clone();
        tools::status::run(
            &self.home,
            &self.config,
            self.config_file.as_deref(),
            &self.daemon,
            &binary,
        )
        .await
    }

    pub async fn route_table(&self) -> RouteTable {
        let providers = tools::status::providers(&self.home, &self.config);
        let mut table = RouteTable::from_config(&self.config, &providers, rfc3339(self.started_at));
        table.daemon_healthy = self.daemon.health().await.result.is_ok();
        table
    }
}
