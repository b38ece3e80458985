//! The routing control plane: keeps the daemon's live routes pointing at healthy endpoints.
//!
//! BitRouter 0.11.0's `priority` strategy always uses the first endpoint, so failover is ours:
//! - **Active probes** (every `healthCheckIntervalMs`) list each upstream's models with its key;
//!   they mark endpoints unhealthy and are the only thing that marks them healthy again (after
//!   `recover_after` successes in a row, so a flapping upstream does not bounce traffic).
//! - **Passive detection** (every `metricsPollMs`, from the daemon's `/v1/metrics`): an error
//!   count rising on an endpoint marks it unhealthy at once, without waiting for a probe.
//! - **Applying**: each virtual model gets a dynamic route (`POST /admin/routes`) listing its
//!   healthy endpoints in order (`priority`: the first serves; `load_balance`: round-robin over
//!   them). With none healthy it lists all, so requests are still tried.
//! - **Reconciling** on every probe tick and after each daemon (re)start: routes someone else
//!   changed through the admin API (any valid token can) are put back and reported.
//!
//! The control plane calls `/admin/*` with an admin token signed by a key that exists only in
//! this process's memory: no file holds it, so no agent can read it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::config::{PluginConfig, Strategy};
use super::endpoints::{self, Target};
use super::env_file;
use super::probe;
use super::table::{
    EndpointMetrics, EndpointState, ForeignChange, MetricsTable, RouteEntry, RouteTable,
};
use crate::auth::jwt::{self, Claims, Scope};
use crate::auth::{now_unix, rfc3339};
use crate::daemon_api::{DaemonClient, Metrics, Route, RouteEndpoint};
use crate::home::Home;

/// Most foreign changes kept for status.
const FOREIGN_KEPT: usize = 50;

#[derive(Debug, Clone)]
pub struct PlaneOptions {
    pub probe_interval: Duration,
    /// `None` turns passive detection off.
    pub metrics_interval: Option<Duration>,
    /// Successful probes in a row before an unhealthy endpoint is used again.
    pub recover_after: u32,
    /// Also delete dynamic routes for model names the user did not configure.
    pub enforce_routes: bool,
}

impl PlaneOptions {
    pub fn from_config(config: &PluginConfig) -> Self {
        Self {
            probe_interval: Duration::from_millis(config.health_check_interval_ms),
            metrics_interval: (config.metrics_poll_ms > 0)
                .then(|| Duration::from_millis(config.metrics_poll_ms)),
            recover_after: 2,
            enforce_routes: config.enforce_routes,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Health {
    #[default]
    Unknown,
    Healthy,
    Unhealthy,
}

impl Health {
    fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

#[derive(Debug, Default, Clone)]
struct EndpointHealth {
    health: Health,
    last_error: Option<String>,
    ok_streak: u32,
    probes: u64,
    probe_failures: u64,
    passive_failures: u64,
    last_probe_ms: Option<f64>,
}

#[derive(Debug, Default)]
struct State {
    /// By endpoint id (`provider:model_id`).
    health: BTreeMap<String, EndpointHealth>,
    /// What the daemon holds, as we last applied it, by model.
    applied: BTreeMap<String, Route>,
    /// Traffic counters by endpoint id, summed over routes.
    counters: BTreeMap<String, (u64, u64)>,
    switches: BTreeMap<String, u64>,
    last_switch: BTreeMap<String, u64>,
    foreign: Vec<ForeignChange>,
    /// Foreign routes already reported (model + what was found), so each is reported once.
    reported: BTreeSet<String>,
    daemon_healthy: bool,
}

/// A short-lived admin token from an in-memory key, re-minted before it expires.
struct AdminToken {
    key: SigningKey,
    cached: Mutex<Option<(String, u64)>>,
}

impl AdminToken {
    fn new() -> Self {
        let mut seed = [0u8; 32];
        // Without randomness the key would be guessable; fall back to time-mixed bytes only if the
        // OS refuses, which it does not on supported systems.
        if getrandom::fill(&mut seed).is_err() {
            seed[..8].copy_from_slice(&now_unix().to_le_bytes());
        }
        Self {
            key: SigningKey::from_bytes(&seed),
            cached: Mutex::new(None),
        }
    }

    fn get(&self) -> String {
        let now = now_unix();
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((token, exp)) = cached.as_ref()
            && *exp > now + 300
        {
            return token.clone();
        }
        let exp = now + 3600;
        let claims = Claims {
            iss: jwt::issuer(&self.key.verifying_key()),
            chain: jwt::SOLANA_MAINNET.into(),
            iat: Some(now),
            exp: Some(exp),
            scope: Scope::Admin,
            models: None,
            budget: None,
            budget_scope: None,
            budget_range: None,
        };
        let token = jwt::sign(&claims, &self.key).unwrap_or_default();
        *cached = Some((token.clone(), exp));
        token
    }
}

/// What the plane works from; replaced whole when the config changes.
struct Setup {
    config: Arc<PluginConfig>,
    targets: Vec<Target>,
    client: DaemonClient,
    options: PlaneOptions,
}

impl Setup {
    fn new(config: Arc<PluginConfig>) -> Arc<Self> {
        Arc::new(Self {
            targets: endpoints::targets(&config),
            client: DaemonClient::new(&config.listen_addr()),
            options: PlaneOptions::from_config(&config),
            config,
        })
    }
}

pub struct RoutePlane {
    setup: std::sync::RwLock<Arc<Setup>>,
    home: Home,
    http: reqwest::Client,
    admin: AdminToken,
    state: Mutex<State>,
    /// Serializes route changes so a tick and a restore never interleave.
    applying: tokio::sync::Mutex<()>,
    table: watch::Sender<Arc<RouteTable>>,
}

fn describe_route(r: &Route) -> String {
    let eps: Vec<String> = r
        .endpoints
        .iter()
        .map(|e| format!("{}:{}", e.provider, e.model_id))
        .collect();
    format!(
        "{}: {}",
        r.strategy.as_deref().unwrap_or("config"),
        eps.join(", ")
    )
}

fn same_route(a: &Route, b: &Route) -> bool {
    a.strategy == b.strategy && a.endpoints == b.endpoints
}

impl RoutePlane {
    pub fn new(home: Home, config: Arc<PluginConfig>) -> Arc<Self> {
        let setup = Setup::new(config);
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap_or_default();
        let mut state = State::default();
        for t in &setup.targets {
            state.health.entry(t.id()).or_default();
        }
        let plane = Self {
            setup: std::sync::RwLock::new(setup),
            home,
            http,
            admin: AdminToken::new(),
            state: Mutex::new(state),
            applying: tokio::sync::Mutex::new(()),
            table: watch::channel(Arc::new(RouteTable {
                models: Vec::new(),
                direct_providers: Vec::new(),
                intercept_all_models: false,
                daemon_healthy: false,
                foreign_changes: Vec::new(),
                updated_at: String::new(),
            }))
            .0,
        };
        plane.publish();
        Arc::new(plane)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn setup(&self) -> Arc<Setup> {
        self.setup
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Takes a new config: endpoints are re-resolved (health kept for endpoints that stay), and
    /// the next apply adds, changes and deletes routes to match. Returns whether the daemon must
    /// restart for it (then the supervisor restores the routes).
    fn reconfigure(&self, config: Arc<PluginConfig>) -> bool {
        let setup = Setup::new(config);
        let old = std::mem::replace(
            &mut *self.setup.write().unwrap_or_else(|e| e.into_inner()),
            setup.clone(),
        );
        {
            let mut s = self.lock();
            let ids: BTreeSet<String> = setup.targets.iter().map(Target::id).collect();
            s.health.retain(|id, _| ids.contains(id));
            for id in ids {
                s.health.entry(id).or_default();
            }
            if old.config.listen_addr() != setup.config.listen_addr() {
                // Another daemon address: nothing we applied is there.
                s.applied.clear();
                s.counters.clear();
            }
        }
        self.publish();
        super::daemon_config::needs_restart(&old.config, &setup.config)
    }

    /// A client for the daemon the current config names.
    pub fn daemon_client(&self) -> DaemonClient {
        self.setup().client.clone()
    }

    /// The current route table.
    pub fn table(&self) -> Arc<RouteTable> {
        self.table.borrow().clone()
    }

    /// Fires whenever the route table changes.
    pub fn subscribe(&self) -> watch::Receiver<Arc<RouteTable>> {
        self.table.subscribe()
    }

    /// The supervisor says whether the daemon is up (with our routes applied).
    pub fn set_daemon_healthy(&self, healthy: bool) {
        let changed = {
            let mut s = self.lock();
            std::mem::replace(&mut s.daemon_healthy, healthy) != healthy
        };
        if changed {
            self.publish();
        }
    }

    pub fn metrics(&self) -> MetricsTable {
        let s = self.lock();
        MetricsTable {
            endpoints: s
                .health
                .iter()
                .map(|(id, h)| {
                    let (requests, errors) = s.counters.get(id).copied().unwrap_or_default();
                    EndpointMetrics {
                        endpoint: id.clone(),
                        probes: h.probes,
                        probe_failures: h.probe_failures,
                        requests,
                        errors,
                        passive_failures: h.passive_failures,
                        last_probe_ms: h.last_probe_ms,
                    }
                })
                .collect(),
            switches: s.switches.clone(),
            updated_at: rfc3339(now_unix()),
        }
    }

    /// Builds the table from the state and sends it when something other than the time changed.
    fn publish(&self) {
        let setup = self.setup();
        // File I/O (.env) stays outside the state lock.
        let providers = super::credentials::providers(&self.home, &setup.config);
        let s = self.lock();
        let models = setup
            .config
            .models
            .iter()
            .map(|(name, m)| {
                let applied = s.applied.get(name);
                let active: Vec<String> = applied
                    .map(|r| {
                        let ids = r
                            .endpoints
                            .iter()
                            .map(|e| format!("{}:{}", e.provider, e.model_id));
                        match m.strategy {
                            Strategy::Priority => ids.take(1).collect(),
                            Strategy::LoadBalance => ids.collect(),
                        }
                    })
                    .unwrap_or_default();
                RouteEntry {
                    name: name.clone(),
                    strategy: m.strategy,
                    endpoints: setup
                        .targets
                        .iter()
                        .filter(|t| &t.model == name)
                        .map(|t| {
                            let h = s.health.get(&t.id()).cloned().unwrap_or_default();
                            EndpointState {
                                provider: t.provider.clone(),
                                model_id: t.model_id.clone(),
                                health: h.health.as_str().into(),
                                last_error: h.last_error,
                                active: active.contains(&t.id()),
                            }
                        })
                        .collect(),
                    last_switch: s.last_switch.get(name).map(|t| rfc3339(*t)),
                }
            })
            .collect();
        let mut table = RouteTable {
            models,
            direct_providers: providers
                .iter()
                .filter(|p| p.has_credentials || p.configured)
                .map(|p| p.name.clone())
                .collect(),
            intercept_all_models: setup.config.intercept_all_models,
            daemon_healthy: s.daemon_healthy,
            foreign_changes: s.foreign.clone(),
            updated_at: String::new(),
        };
        drop(s);
        self.table.send_if_modified(|current| {
            table.updated_at = current.updated_at.clone();
            if **current == table {
                return false;
            }
            table.updated_at = rfc3339(now_unix());
            *current = Arc::new(table);
            true
        });
    }

    /// The routes the daemon should hold now.
    fn desired(&self) -> BTreeMap<String, Route> {
        let setup = self.setup();
        let s = self.lock();
        setup
            .config
            .models
            .iter()
            .map(|(name, m)| {
                let all: Vec<&Target> = setup.targets.iter().filter(|t| &t.model == name).collect();
                let healthy: Vec<&Target> = all
                    .iter()
                    .copied()
                    .filter(|t| s.health.get(&t.id()).map(|h| h.health) != Some(Health::Unhealthy))
                    .collect();
                let chosen = if healthy.is_empty() { all } else { healthy };
                let route = Route {
                    model: name.clone(),
                    strategy: Some(m.strategy.as_str().to_string()),
                    endpoints: chosen
                        .iter()
                        .map(|t| RouteEndpoint {
                            provider: t.daemon_provider.clone(),
                            model_id: t.model_id.clone(),
                        })
                        .collect(),
                    source: None,
                };
                (name.clone(), route)
            })
            .collect()
    }

    /// Applies the desired routes that differ from what the daemon holds.
    async fn apply(&self) -> Result<(), String> {
        let setup = self.setup();
        let _guard = self.applying.lock().await;
        let desired = self.desired();
        let token = self.admin.get();
        let mut first_error = None;
        for (model, route) in desired {
            let previous = self.lock().applied.get(&model).cloned();
            if previous.as_ref().is_some_and(|p| same_route(p, &route)) {
                continue;
            }
            match setup.client.set_route(&token, &route).await {
                Ok(()) => {
                    tracing::info!(model, route = %describe_route(&route), "route applied");
                    let mut s = self.lock();
                    if previous.is_some_and(|p| p.endpoints != route.endpoints) {
                        *s.switches.entry(model.clone()).or_default() += 1;
                        s.last_switch.insert(model.clone(), now_unix());
                    }
                    s.applied.insert(model, route);
                }
                Err(e) => {
                    tracing::warn!(model, error = %e, "cannot apply route");
                    first_error.get_or_insert(e);
                }
            }
        }
        // Models no longer configured: their dynamic routes go.
        let stale: Vec<String> = self
            .lock()
            .applied
            .keys()
            .filter(|m| !setup.config.models.contains_key(*m))
            .cloned()
            .collect();
        for model in stale {
            match setup.client.delete_route(&token, &model).await {
                Ok(()) => {
                    tracing::info!(model, "route removed (no longer configured)");
                    self.lock().applied.remove(&model);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        self.publish();
        first_error.map_or(Ok(()), Err)
    }

    /// After a daemon (re)start: it lost every dynamic route; apply all before it counts healthy.
    pub async fn restore(&self) -> Result<(), String> {
        {
            let mut s = self.lock();
            s.applied.clear();
            // The daemon's counters restart at zero.
            s.counters.clear();
        }
        self.apply().await
    }

    /// Compares the daemon's routes with ours: re-applies ours, removes or reports others.
    async fn reconcile(&self) -> Result<(), String> {
        let setup = self.setup();
        let token = self.admin.get();
        let live = setup.client.routes(&token).await?;
        let dynamic: BTreeMap<String, Route> = live
            .into_iter()
            .filter(|r| r.source.as_deref() == Some("dynamic"))
            .map(|r| (r.model.clone(), r))
            .collect();
        let applied = self.lock().applied.clone();
        let mut changes = Vec::new();
        for (model, ours) in &applied {
            let found = match dynamic.get(model) {
                None => "deleted".to_string(),
                Some(r) if !same_route(r, ours) => describe_route(r),
                Some(_) => continue,
            };
            changes.push((model.clone(), found, "reverted"));
            self.lock().applied.remove(model);
        }
        for (model, r) in &dynamic {
            if setup.config.models.contains_key(model) {
                continue;
            }
            let found = describe_route(r);
            if setup.options.enforce_routes {
                setup.client.delete_route(&token, model).await?;
                changes.push((model.clone(), found, "removed"));
            } else if self.lock().reported.insert(format!("{model}\n{found}")) {
                changes.push((model.clone(), found, "reported"));
            }
        }
        if !changes.is_empty() {
            let at = rfc3339(now_unix());
            let mut s = self.lock();
            for (model, found, action) in changes {
                tracing::warn!(model, found, action, "foreign route change in the daemon");
                s.foreign.push(ForeignChange {
                    model,
                    at: at.clone(),
                    found,
                    action: action.into(),
                });
            }
            let excess = s.foreign.len().saturating_sub(FOREIGN_KEPT);
            s.foreign.drain(..excess);
        }
        self.apply().await
    }

    /// One round of active probes, one per upstream.
    async fn probe_all(&self) {
        let setup = self.setup();
        let env = env_file::read(&self.home.env_file());
        let timeout = setup
            .options
            .probe_interval
            .clamp(Duration::from_millis(250), Duration::from_secs(5));
        let mut upstreams: BTreeMap<String, &Target> = BTreeMap::new();
        for t in &setup.targets {
            upstreams.entry(t.daemon_provider.clone()).or_insert(t);
        }
        let mut probes = tokio::task::JoinSet::new();
        for (provider, t) in upstreams {
            let http = self.http.clone();
            let upstream = t.upstream.clone();
            let key = upstream.resolve_key(&env);
            probes.spawn(async move {
                (
                    provider,
                    probe::probe(&http, &upstream, key.as_deref(), timeout).await,
                )
            });
        }
        while let Some(Ok((provider, result))) = probes.join_next().await {
            let mut s = self.lock();
            for t in setup
                .targets
                .iter()
                .filter(|t| t.daemon_provider == provider)
            {
                let h = s.health.entry(t.id()).or_default();
                h.probes += 1;
                h.last_probe_ms = Some(result.latency.as_secs_f64() * 1000.0);
                match &result.result {
                    Ok(()) => {
                        h.ok_streak = h.ok_streak.saturating_add(1);
                        if h.health == Health::Unknown
                            || (h.health == Health::Unhealthy
                                && h.ok_streak >= setup.options.recover_after)
                        {
                            if h.health == Health::Unhealthy {
                                tracing::info!(endpoint = %t.id(), "endpoint recovered");
                            }
                            h.health = Health::Healthy;
                            h.last_error = None;
                        }
                    }
                    Err(e) => {
                        h.probe_failures += 1;
                        h.ok_streak = 0;
                        if h.health != Health::Unhealthy {
                            tracing::warn!(endpoint = %t.id(), error = %e, "endpoint unhealthy (probe)");
                        }
                        h.health = Health::Unhealthy;
                        h.last_error = Some(format!("probe: {e}"));
                    }
                }
            }
        }
    }

    /// Reads the daemon's traffic counters; an error count rising marks that endpoint unhealthy.
    /// Returns whether any endpoint changed health.
    fn absorb_metrics(&self, metrics: &Metrics) -> bool {
        let mut totals: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for by_endpoint in metrics.values() {
            for (id, c) in by_endpoint {
                let e = totals.entry(id.clone()).or_default();
                e.0 += c.total_requests;
                e.1 += c.total_errors;
            }
        }
        let mut s = self.lock();
        let mut changed = false;
        for (id, (requests, errors)) in totals {
            let before = s.counters.insert(id.clone(), (requests, errors));
            let Some((_, errors_before)) = before else {
                continue; // first sight: a baseline, not a failure
            };
            if errors > errors_before
                && let Some(h) = s.health.get_mut(&id)
            {
                h.ok_streak = 0;
                h.last_error = Some(format!(
                    "{} failed request(s) through the daemon",
                    errors - errors_before
                ));
                if h.health != Health::Unhealthy {
                    tracing::warn!(endpoint = %id, "endpoint unhealthy (errors in traffic)");
                    h.health = Health::Unhealthy;
                    h.passive_failures += 1;
                    changed = true;
                }
            }
        }
        changed
    }

    /// Runs probes, metrics polling, applying and reconciling until `shutdown`; follows config
    /// changes from `configs`.
    pub async fn run(
        self: Arc<Self>,
        mut configs: watch::Receiver<Arc<PluginConfig>>,
        shutdown: CancellationToken,
    ) {
        let every = |d: Duration| {
            let mut t = tokio::time::interval(d);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        };
        let setup = self.setup();
        let mut probe_tick = every(setup.options.probe_interval);
        let mut metrics_tick = every(
            setup
                .options
                .metrics_interval
                .unwrap_or(Duration::from_secs(3600)),
        );
        loop {
            let setup = self.setup();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                changed = configs.changed() => {
                    if changed.is_err() {
                        continue;
                    }
                    let config = configs.borrow_and_update().clone();
                    let restarts = self.reconfigure(config);
                    let setup = self.setup();
                    probe_tick = every(setup.options.probe_interval);
                    metrics_tick = every(
                        setup.options.metrics_interval.unwrap_or(Duration::from_secs(3600)),
                    );
                    if !restarts && (!setup.config.auto_start || self.lock().daemon_healthy) {
                        let _ = self.apply().await;
                    }
                }
                _ = probe_tick.tick() => {
                    self.probe_all().await;
                    if setup.config.auto_start && !self.lock().daemon_healthy {
                        // Down or restarting: the supervisor restores our routes once it is up.
                        self.publish();
                        continue;
                    }
                    let reconciled = self.reconcile().await;
                    if let Err(e) = &reconciled {
                        tracing::debug!(error = %e, "reconcile skipped");
                    }
                    if !setup.config.auto_start {
                        // Nobody supervises this daemon: reaching its admin API is its health.
                        self.set_daemon_healthy(reconciled.is_ok());
                    }
                    self.publish();
                }
                _ = metrics_tick.tick(), if setup.options.metrics_interval.is_some() => {
                    if !self.lock().daemon_healthy {
                        continue;
                    }
                    if let Ok(m) = setup.client.metrics().await
                        && self.absorb_metrics(&m)
                    {
                        let _ = self.apply().await;
                    }
                }
            }
        }
    }
}
