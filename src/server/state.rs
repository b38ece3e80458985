//! Shared state of one server process: the home, the live config, the route control plane, the
//! daemon's supervisor, and this server's part in the ownership of its data dir.
//!
//! The owner runs the supervisor and the control plane and publishes their state; a follower
//! answers status and resources from what the owner published, until it takes over.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{OnceCell, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::subscriptions::Subscribers;
use crate::auth::{now_unix, rfc3339};
use crate::home::Home;
use crate::routing::PluginConfig;
use crate::routing::control::RoutePlane;
use crate::routing::source::ConfigSource;
use crate::supervisor::binary::{self, BinaryInfo};
use crate::supervisor::ownership::{Ownership, Published, ServerInfo, config_parts};
use crate::supervisor::{DaemonState, DaemonStatus, Supervisor, SupervisorOptions};
use crate::tools;

/// How often the config file is checked for changes.
const CONFIG_POLL: Duration = Duration::from_secs(1);
/// How often a follower re-reads the owner's state to notify route-table subscribers.
const FOLLOW_POLL: Duration = Duration::from_millis(250);
/// Longest time between two publications of an owner whose state did not change (metrics
/// counters move without notice).
const HEARTBEAT_MAX: Duration = Duration::from_secs(5);

pub struct AppState {
    pub home: Home,
    pub config: Arc<ConfigSource>,
    pub supervisor: Supervisor,
    pub plane: Arc<RoutePlane>,
    pub subscribers: Arc<Subscribers>,
    /// The daemon's spend log as read so far (`bitrouter_usage`, `bitrouter://usage`).
    pub spend_log: crate::spend_log::SharedMirror,
    pub ownership: Arc<Ownership>,
    /// Bumped whenever the route table this server shows changes (its own plane's as owner,
    /// the published one as follower).
    route_changes: watch::Sender<u64>,
    binary_override: Option<PathBuf>,
    /// Binary lookup runs `bitrouter --version`; done once, not per status call.
    binary: OnceCell<BinaryInfo>,
}

/// `bitrouter_status`'s answer: a [`tools::status::StatusOutput`], where a follower's daemon
/// part is the owner's published JSON, whatever fields it has. Same schema as `StatusOutput`.
#[derive(Debug, serde::Serialize)]
#[serde(transparent)]
pub struct StatusJson(pub Value);

impl schemars::JsonSchema for StatusJson {
    fn schema_name() -> Cow<'static, str> {
        tools::status::StatusOutput::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        tools::status::StatusOutput::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        tools::status::StatusOutput::json_schema(generator)
    }
}

impl AppState {
    /// Builds the state and starts, as `tasks`, the config watcher, the supervisor (which first
    /// takes or waits for the data dir's ownership), the route control plane, the publication of
    /// their state (once owner) and the route-change notifications. Every one of them ends on
    /// `shutdown`. `transport` names how this server is reached (`stdio` or its URL), for other
    /// servers' status. The returned task is the supervisor's: it ends once the daemon is
    /// stopped after `shutdown`. The caller withdraws the ownership once `tasks` are joined.
    pub fn start(
        tasks: &TaskTracker,
        home: Home,
        config: PluginConfig,
        config_file: Option<PathBuf>,
        transport: String,
        options: SupervisorOptions,
        shutdown: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let me = ServerInfo {
            pid: std::process::id(),
            transport,
            config_file: config_file.as_ref().map(|p| p.display().to_string()),
        };
        let source = ConfigSource::new(config_file, config);
        tasks.spawn(source.clone().watch(CONFIG_POLL, shutdown.clone()));
        let ownership = Ownership::new(home.clone(), me);
        let binary_override = options.binary.clone();
        let plane = RoutePlane::new(home.clone(), source.current());
        {
            // The control plane runs in the owner only, as one unit.
            let (plane, configs) = (plane.clone(), source.subscribe());
            let (ownership, shutdown) = (ownership.clone(), shutdown.clone());
            tasks.spawn(async move {
                if ownership.owned(&shutdown).await {
                    plane.run(configs, shutdown).await;
                }
            });
        }
        let (route_changes, changes) = watch::channel(0u64);
        let subscribers = Arc::new(Subscribers::default());
        tasks.spawn(subscribers.clone().forward(changes, shutdown.clone()));
        let (supervisor, supervised) = Supervisor::start(
            home.clone(),
            source.subscribe(),
            options,
            Some(plane.clone()),
            ownership.clone(),
            shutdown.clone(),
            tasks,
        );
        tasks.spawn(feed_route_changes(
            ownership.clone(),
            plane.clone(),
            route_changes.clone(),
            shutdown.clone(),
        ));
        tasks.spawn(publish(
            ownership.clone(),
            supervisor.clone(),
            plane.clone(),
            source.clone(),
            shutdown,
        ));
        let state = Self {
            home,
            config: source,
            supervisor,
            plane,
            subscribers,
            spend_log: Default::default(),
            ownership,
            route_changes,
            binary_override,
            binary: OnceCell::new(),
        };
        (state, supervised)
    }

    /// What the owner publishes to followers, and shows itself.
    async fn own_daemon_status(&self) -> DaemonStatus {
        daemon_status(&self.supervisor, &self.plane).await
    }

    pub async fn status(&self) -> StatusJson {
        let published = (!self.ownership.is_owner())
            .then(|| self.ownership.read())
            .flatten();
        let owner = self.ownership.is_owner();
        let daemon = if owner {
            self.own_daemon_status().await
        } else {
            self.supervisor.status()
        };
        let binary = match daemon.binary.clone() {
            Some(b) => b,
            None => self
                .binary
                .get_or_init(|| binary::inspect(self.binary_override.as_deref()))
                .await
                .clone(),
        };
        let config = self.config.current();
        let mut out = tools::status::run(
            &self.home,
            &config,
            self.config.path(),
            daemon,
            binary,
            &self.plane.table(),
            self.ownership.status(&config, published.as_ref()),
        );
        out.config_error = self.config.last_error();
        let mut value = serde_json::to_value(&out).unwrap_or(Value::Null);
        if !owner {
            follow(&mut value, published.as_ref());
        }
        StatusJson(value)
    }

    /// `bitrouter://routes` as this server shows it.
    pub fn route_table(&self) -> Value {
        if !self.ownership.is_owner()
            && let Some(p) = self.ownership.read()
        {
            return p.routes;
        }
        to_json(&*self.plane.table())
    }

    /// `bitrouter://metrics` as this server shows it.
    pub fn metrics(&self) -> Value {
        if !self.ownership.is_owner()
            && let Some(p) = self.ownership.read()
        {
            return p.metrics;
        }
        to_json(&self.plane.metrics())
    }

    /// Fires whenever the route table this server shows changes.
    pub fn route_changes(&self) -> watch::Receiver<u64> {
        self.route_changes.subscribe()
    }
}

fn to_json(v: &impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A follower's status: the daemon, its address and route changes are the owner's.
fn follow(status: &mut Value, published: Option<&Published>) {
    match published {
        Some(p) => {
            status["listen"] = p.daemon["listen"].clone();
            status["daemon"] = p.daemon.clone();
            status["models"] = p.routes["models"].clone();
            status["foreign_route_changes"] = p.routes["foreign_changes"].clone();
        }
        None => {
            let daemon = &mut status["daemon"];
            daemon["state"] = to_json(&DaemonState::Starting);
            daemon["last_error"] = Value::from(
                "another server owns this data dir's daemon and has not published its state yet",
            );
        }
    }
}

/// The supervisor's status; without `autoStart` nobody supervises the daemon, so its health is
/// probed here.
async fn daemon_status(supervisor: &Supervisor, plane: &RoutePlane) -> DaemonStatus {
    let mut status = supervisor.status();
    if !status.managed {
        let probe = plane.daemon_client().health().await;
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

/// Once owner: publishes the daemon's status, the route table and metrics on every change, and
/// at least every health interval (at most [`HEARTBEAT_MAX`] apart), until `shutdown`.
async fn publish(
    ownership: Arc<Ownership>,
    supervisor: Supervisor,
    plane: Arc<RoutePlane>,
    source: Arc<ConfigSource>,
    shutdown: CancellationToken,
) {
    if !ownership.owned(&shutdown).await {
        return;
    }
    let mut status = supervisor.changes();
    let mut table = plane.subscribe();
    let mut configs = source.subscribe();
    loop {
        let config = source.current();
        let published = Published {
            owner: ownership.me().clone(),
            config: config_parts(&config),
            daemon: to_json(&daemon_status(&supervisor, &plane).await),
            routes: to_json(&*plane.table()),
            metrics: to_json(&plane.metrics()),
            updated_at: rfc3339(now_unix()),
        };
        if let Err(e) = ownership.publish(&published) {
            tracing::warn!(error = %e, "cannot publish the daemon's state for other servers");
        }
        let heartbeat = Duration::from_millis(config.health_check_interval_ms).min(HEARTBEAT_MAX);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = status.changed() => {}
            _ = table.changed() => {}
            _ = configs.changed() => {}
            _ = tokio::time::sleep(heartbeat) => {}
        }
        // A burst of changes (a restart: starting, healthy, routes) becomes one write.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Feeds `route_changes`: from the owner's published table while following, from our own plane
/// once owner.
async fn feed_route_changes(
    ownership: Arc<Ownership>,
    plane: Arc<RoutePlane>,
    changes: watch::Sender<u64>,
    shutdown: CancellationToken,
) {
    let bump = || changes.send_modify(|n| *n = n.wrapping_add(1));
    let mut owned = ownership.subscribe();
    let mut last: Option<Value> = None;
    while !ownership.is_owner() {
        let routes = ownership.read().map(|p| p.routes);
        if routes != last {
            last = routes;
            bump();
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = owned.changed() => {}
            _ = tokio::time::sleep(FOLLOW_POLL) => {}
        }
    }
    let mut table = plane.subscribe();
    bump();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = table.changed() => {
                if changed.is_err() {
                    return;
                }
                bump();
            }
        }
    }
}
