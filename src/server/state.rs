//! Shared state of one server process: the home, the loaded config and the daemon's supervisor.

use std::path::PathBuf;

use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use crate::daemon_api::DaemonClient;
use crate::home::Home;
use crate::routing::control::{PlaneOptions, RoutePlane};
use crate::routing::{PluginConfig, RouteTable};
use crate::supervisor::binary::{self, BinaryInfo};
use crate::supervisor::{DaemonState, DaemonStatus, Supervisor, SupervisorOptions};
use crate::tools;

use super::subscriptions::Subscribers;

pub struct AppState {
    pub home: Home,
    pub config: PluginConfig,
    pub config_file: Option<PathBuf>,
    pub supervisor: Supervisor,
    pub plane: Arc<RoutePlane>,
    pub subscribers: Arc<Subscribers>,
    /// For an unmanaged daemon (`autoStart: false`) status probes it directly.
    daemon: DaemonClient,
    binary_override: Option<PathBuf>,
    /// Binary lookup runs `bitrouter --version`; done once, not per status call.
    binary: OnceCell<BinaryInfo>,
}

impl AppState {
    /// Builds the state and starts the route control plane and the supervisor; the returned task
    /// ends once the daemon is stopped after `shutdown`.
    pub fn start(
        home: Home,
        config: PluginConfig,
        config_file: Option<PathBuf>,
        options: SupervisorOptions,
        shutdown: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let binary_override = options.binary.clone();
        let plane = RoutePlane::new(
            home.clone(),
            config.clone(),
            PlaneOptions::from_config(&config),
        );
        tokio::spawn(plane.clone().run(shutdown.clone()));
        let subscribers = Arc::new(Subscribers::default());
        tokio::spawn(subscribers.clone().forward(plane.clone()));
        let (supervisor, task) = Supervisor::start(
            home.clone(),
            config.clone(),
            options,
            Some(plane.clone()),
            shutdown,
        );
        let state = Self {
            daemon: DaemonClient::new(&config.listen_addr()),
            home,
            config,
            config_file,
            supervisor,
            plane,
            subscribers,
            binary_override,
            binary: OnceCell::new(),
        };
        (state, task)
    }

    async fn daemon_status(&self) -> DaemonStatus {
        let mut status = self.supervisor.status();
        if !status.managed {
            let probe = self.daemon.health().await;
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
        tools::status::run(
            &self.home,
            &self.config,
            self.config_file.as_deref(),
            daemon,
            binary,
            self.plane.table().foreign_changes.clone(),
        )
    }

    pub fn route_table(&self) -> Arc<RouteTable> {
        self.plane.table()
    }
}
