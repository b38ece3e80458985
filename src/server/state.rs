//! Shared state of one server process: the home, the live config, the route control plane and
//! the daemon's supervisor.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::subscriptions::Subscribers;
use crate::home::Home;
use crate::routing::control::RoutePlane;
use crate::routing::source::ConfigSource;
use crate::routing::{PluginConfig, RouteTable};
use crate::supervisor::binary::{self, BinaryInfo};
use crate::supervisor::{DaemonState, DaemonStatus, Supervisor, SupervisorOptions};
use crate::tools;

/// How often the config file is checked for changes.
const CONFIG_POLL: std::time::Duration = std::time::Duration::from_secs(1);

pub struct AppState {
    pub home: Home,
    pub config: Arc<ConfigSource>,
    pub supervisor: Supervisor,
    pub plane: Arc<RoutePlane>,
    pub subscribers: Arc<Subscribers>,
    /// The daemon's spend log as read so far (`bitrouter_usage`, `bitrouter://usage`).
    pub spend_log: crate::spend_log::SharedMirror,
    binary_override: Option<PathBuf>,
    /// Binary lookup runs `bitrouter --version`; done once, not per status call.
    binary: OnceCell<BinaryInfo>,
}

impl AppState {
    /// Builds the state and starts the config watcher, the route control plane and the
    /// supervisor; the returned task ends once the daemon is stopped after `shutdown`.
    pub fn start(
        home: Home,
        config: PluginConfig,
        config_file: Option<PathBuf>,
        options: SupervisorOptions,
        shutdown: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let source = ConfigSource::new(config_file, config);
        tokio::spawn(source.clone().watch(CONFIG_POLL, shutdown.clone()));
        let binary_override = options.binary.clone();
        let plane = RoutePlane::new(home.clone(), source.current());
        tokio::spawn(plane.clone().run(source.subscribe(), shutdown.clone()));
        let subscribers = Arc::new(Subscribers::default());
        tokio::spawn(subscribers.clone().forward(plane.clone()));
        let (supervisor, task) = Supervisor::start(
            home.clone(),
            source.subscribe(),
            options,
            Some(plane.clone()),
            shutdown,
        );
        let state = Self {
            home,
            config: source,
            supervisor,
            plane,
            subscribers,
            spend_log: Default::default(),
            binary_override,
            binary: OnceCell::new(),
        };
        (state, task)
    }

    async fn daemon_status(&self) -> DaemonStatus {
        let mut status = self.supervisor.status();
        if !status.managed {
            let probe = self.plane.daemon_client().health().await;
            status.healthy = probe.result.is_ok();
            status.state = if status.healthy {
                DaemonState::Healthy
            } else {
                DaemonState::Stopped
            };
            status.health_latency_ms = Some(probe.latency.as_secs_f64() * 1000.0);
            status.last_error = probe.result.err();
        }
        status
    }

    pub async fn status(&self) -> tools::status::StatusOutput {
        let daemon = self.daemon_status().await;
        let binary = match daemon.binary.clone() {
            Some(b) => b,
            None => self
                .binary
                .get_or_init(|| binary::inspect(self.binary_override.as_deref()))
                .await
                .clone(),
        };
        let mut out = tools::status::run(
            &self.home,
            &self.config.current(),
            self.config.path(),
            daemon,
            binary,
            &self.plane.table(),
        );
        out.config_error = self.config.last_error();
        out
    }

    pub fn route_table(&self) -> Arc<RouteTable> {
        self.plane.table()
    }
}
