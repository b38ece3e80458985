//! The routing control plane: keeps the daemon's live routes on endpoints that work. This is the
//! I/O half; whether an endpoint may take traffic is decided by the pure policy in `health`.
//!
//! BitRouter 0.11.0's `priority` strategy always uses the first endpoint, so failover is ours:
//! - **Active probes** (every `healthCheckIntervalMs`) list each upstream's models with its key.
//! - **Passive detection** (every `metricsPollMs`, from the daemon's `/v1/metrics`): failures of
//!   real traffic trip an endpoint's circuit breaker. Streamed requests that failed before their
//!   stream, which the daemon counts nowhere, come from its log lines (`rejections`, fed by the
//!   supervisor's log writer).
//! - **Trials**: when a breaker's cooldown ends, one minimal real request (one output token) goes
//!   to that upstream directly; only a passed trial puts the endpoint back.
//! - **Applying**: each virtual model gets a dynamic route (`POST /admin/routes`) listing its
//!   usable endpoints in order (`priority`: the first serves; `load_balance`: round-robin over
//!   them); with none usable, all of them, the most likely to work first (`health::order`).
//! - **Reconciling** on every probe tick and after each daemon (re)start: routes someone else
//!   changed through the admin API (any valid token can) are put back and reported.
//! - **Publishing** the route table (`bitrouter://routes`, and `bitrouter_status.models`).
//!
//! The control plane calls `/admin/*` with an admin token signed by a key that exists only in
//! this process's memory: no file holds it, so no agent can read it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::config::{PluginConfig, Strategy};
use super::env_file;
use super::health::{self, HealthPolicy, ProbeState};
use super::probe::{self, UpstreamClient};
use super::rejections::Rejections;
use super::resolve::{self, Target};
use super::table::{
    EndpointMetrics, EndpointState, ForeignChange, MetricsTable, RouteEntry, RouteTable, Switch,
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
    /// Probe-down recovery, breaker cooldowns and trip thresholds.
    pub health: HealthPolicy,
    /// Also delete dynamic routes for model names the user did not configure.
    pub enforce_routes: bool,
}

impl PlaneOptions {
    pub fn from_config(config: &PluginConfig) -> Self {
        Self {
            probe_interval: Duration::from_millis(config.health_check_interval_ms),
            metrics_interval: (config.metrics_poll_ms > 0)
                .then(|| Duration::from_millis(config.metrics_poll_ms)),
            health: HealthPolicy::for_interval(Duration::from_millis(
                config.health_check_interval_ms,
            )),
            enforce_routes: config.enforce_routes,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// By endpoint id as the daemon names it (`provider:model_id`).
    health: BTreeMap<String, health::Endpoint>,
    /// What the daemon holds, as we last applied it, by model.
    applied: BTreeMap<String, Route>,
    switches: BTreeMap<String, u64>,
    last_switch: BTreeMap<String, Switch>,
    foreign: Vec<ForeignChange>,
    /// Foreign routes already reported (model + what was found), so each is reported once.
    reported: BTreeSet<String>,
    daemon_healthy: bool,
    /// Failures only the daemon's log shows (see [`super::rejections`]).
    log: LogTap,
}

/// The failures the daemon's log showed that its metrics missed (see [`super::rejections`]).
#[derive(Debug, Default)]
struct LogTap {
    /// The daemon's error totals per endpoint at the last poll.
    metrics_errors: BTreeMap<String, u64>,
    /// Failures added to each endpoint's counters, cumulative.
    extra: BTreeMap<String, u64>,
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
            targets: resolve::targets(&config),
            client: DaemonClient::new(&config.listen_addr()),
            options: PlaneOptions::from_config(&config),
            config,
        })
    }
}

pub struct RoutePlane {
    setup: std::sync::RwLock<Arc<Setup>>,
    home: Home,
    upstreams: UpstreamClient,
    admin: AdminToken,
    state: Mutex<State>,
    /// Serializes route changes so a tick and a restore never interleave.
    applying: tokio::sync::Mutex<()>,
    table: watch::Sender<Arc<RouteTable>>,
    /// Fed by the daemon's log writer (the supervisor's), drained at each metrics poll.
    rejections: Arc<Rejections>,
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

/// `provider:model_id` as the user configured it (not the synthetic daemon provider).
fn display_id(t: &Target) -> String {
    format!("{}:{}", t.provider, t.model_id)
}

/// How a route endpoint is shown: as the user configured it (`provider:model_id`), or as the
/// daemon names it when no configured endpoint matches.
fn endpoint_name(targets: &[&Target], e: &RouteEndpoint) -> String {
    targets
        .iter()
        .find(|t| t.daemon_provider == e.provider && t.model_id == e.model_id)
        .map_or_else(
            || format!("{}:{}", e.provider, e.model_id),
            |t| display_id(t),
        )
}

/// The endpoints of `route` that take requests: the first for `priority`, all for `load_balance`.
fn serving(targets: &[&Target], route: &Route, strategy: Strategy) -> Vec<String> {
    let ids = route.endpoints.iter().map(|e| endpoint_name(targets, e));
    match strategy {
        Strategy::Priority => ids.take(1).collect(),
        Strategy::LoadBalance => ids.collect(),
    }
}

impl RoutePlane {
    pub fn new(home: Home, config: Arc<PluginConfig>) -> Arc<Self> {
        let setup = Setup::new(config);
        // Upstreams are reached as the daemon reaches them: its trust roots, its proxies.
        let upstreams = UpstreamClient::new();
        let mut state = State::default();
        for t in &setup.targets {
            state.health.entry(t.id()).or_default();
        }
        let plane = Self {
            setup: std::sync::RwLock::new(setup),
            home,
            upstreams,
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
            rejections: Arc::default(),
        };
        plane.publish();
        Arc::new(plane)
    }

    /// The counter the daemon's log writer feeds (see [`super::rejections`]).
    pub fn rejections(&self) -> Arc<Rejections> {
        self.rejections.clone()
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
                s.health
                    .values_mut()
                    .for_each(health::Endpoint::reset_traffic);
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
                .map(|(id, h)| EndpointMetrics {
                    endpoint: id.clone(),
                    probes: h.probes,
                    probe_failures: h.probe_failures,
                    requests: h.requests,
                    errors: h.errors,
                    passive_failures: h.trips,
                    trials: h.trials,
                    trial_failures: h.trial_failures,
                    last_probe_ms: h.last_probe_ms,
                })
                .collect(),
            switches: s.switches.clone(),
            updated_at: rfc3339(now_unix()),
        }
    }

    /// Builds the table from the state. Subscribers hear of it (and `updated_at` moves) only when
    /// more than counters and latencies changed; those are refreshed in place.
    fn publish(&self) {
        let setup = self.setup();
        // File I/O (.env) stays outside the state lock.
        let providers = super::credentials::providers(&self.home, &setup.config);
        let policy = setup.options.health;
        let s = self.lock();
        let unseen = health::Endpoint::default();
        let models = setup
            .config
            .models
            .iter()
            .map(|(name, m)| {
                let targets: Vec<&Target> =
                    setup.targets.iter().filter(|t| &t.model == name).collect();
                let serving = s
                    .applied
                    .get(name)
                    .map(|r| serving(&targets, r, m.strategy))
                    .unwrap_or_default();
                let with_health: Vec<(&Target, &health::Endpoint)> = targets
                    .iter()
                    .map(|t| (*t, s.health.get(&t.id()).unwrap_or(&unseen)))
                    .collect();
                RouteEntry {
                    name: name.clone(),
                    strategy: m.strategy,
                    all_out: health::order(&with_health).1,
                    endpoints: with_health
                        .iter()
                        .map(|(t, h)| EndpointState {
                            provider: t.provider.clone(),
                            model_id: t.model_id.clone(),
                            health: h.health().into(),
                            breaker: h.breaker().as_str().into(),
                            cooldown_s: h.cooldown(&policy).map(|d| d.as_secs()),
                            last_error: h.last_error().map(String::from),
                            probe_ms: h.last_probe_ms.map(|ms| ms.round() as u64),
                            requests: h.requests,
                            errors: h.errors,
                            active: serving.contains(&display_id(t)),
                        })
                        .collect(),
                    serving,
                    last_switch: s.last_switch.get(name).cloned(),
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
            let notify = !current.same_shape(&table);
            table.updated_at = if notify {
                rfc3339(now_unix())
            } else {
                current.updated_at.clone()
            };
            if **current != table {
                *current = Arc::new(table);
            }
            notify
        });
    }

    /// The routes the daemon should hold now, from the health policy.
    fn desired(&self) -> BTreeMap<String, Route> {
        let setup = self.setup();
        let s = self.lock();
        let unseen = health::Endpoint::default();
        setup
            .config
            .models
            .iter()
            .map(|(name, m)| {
                let with_health: Vec<(&Target, &health::Endpoint)> = setup
                    .targets
                    .iter()
                    .filter(|t| &t.model == name)
                    .map(|t| (t, s.health.get(&t.id()).unwrap_or(&unseen)))
                    .collect();
                let (chosen, _) = health::order(&with_health);
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

    /// Why `model` moved from `previous` to `route`: each endpoint that left with its last error,
    /// each that came back with what restored it.
    fn switch(&self, setup: &Setup, model: &str, previous: &Route, route: &Route) -> Switch {
        let s = self.lock();
        let targets: Vec<&Target> = setup.targets.iter().filter(|t| t.model == model).collect();
        let strategy = setup
            .config
            .models
            .get(model)
            .map_or(Strategy::Priority, |m| m.strategy);
        let from = serving(&targets, previous, strategy);
        let to = serving(&targets, route, strategy);
        let name_of = |e: &RouteEndpoint| endpoint_name(&targets, e);
        let health_of = |e: &RouteEndpoint| s.health.get(&format!("{}:{}", e.provider, e.model_id));
        let mut why: Vec<String> = Vec::new();
        for e in previous
            .endpoints
            .iter()
            .filter(|e| !route.endpoints.contains(e))
        {
            let reason = health_of(e)
                .and_then(|h| h.last_error())
                .unwrap_or("no longer configured");
            why.push(format!("{} out ({reason})", name_of(e)));
        }
        for e in route
            .endpoints
            .iter()
            .filter(|e| !previous.endpoints.contains(e))
        {
            let reason = match health_of(e) {
                Some(h) if !h.usable() => "every endpoint is out; tried as the most likely to work",
                Some(h) if h.probes == 0 && h.requests == 0 => "newly configured",
                Some(h) => h.last_recovery().unwrap_or("healthy"),
                None => "configured",
            };
            why.push(format!("{} in ({reason})", name_of(e)));
        }
        if why.is_empty() {
            why.push(format!(
                "every endpoint is out; {} is the most likely to work",
                to.first().map_or("none", String::as_str)
            ));
        }
        Switch {
            at: rfc3339(now_unix()),
            from: from.join(", "),
            to: to.join(", "),
            why: why.join("; "),
        }
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
                    let switch = previous
                        .as_ref()
                        .filter(|p| p.endpoints != route.endpoints)
                        .map(|p| self.switch(&setup, &model, p, &route));
                    match &switch {
                        Some(sw) => tracing::info!(
                            model, route = %describe_route(&route), from = %sw.from, to = %sw.to,
                            why = %sw.why, "route switched"
                        ),
                        None => {
                            tracing::info!(model, route = %describe_route(&route), "route applied")
                        }
                    }
                    let mut s = self.lock();
                    if let Some(sw) = switch {
                        *s.switches.entry(model.clone()).or_default() += 1;
                        s.last_switch.insert(model.clone(), sw);
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
            s.health
                .values_mut()
                .for_each(health::Endpoint::reset_traffic);
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

    /// Starts one probe per upstream, except those whose last probe is still out (a stalled
    /// upstream is probed again only after its timeout). Probes run beside the loop, so a slow
    /// upstream never delays metrics polls or route changes.
    fn start_probes(
        &self,
        probes: &mut JoinSet<(String, probe::ProbeResult)>,
        out: &mut BTreeSet<String>,
    ) {
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
        for (provider, t) in upstreams {
            if !out.insert(provider.clone()) {
                continue;
            }
            let client = self.upstreams.clone();
            let upstream = t.upstream.clone();
            let key = upstream.resolve_key(&env);
            probes.spawn(async move {
                let result = probe::probe(&client, &upstream, key.as_deref(), timeout).await;
                (provider, result)
            });
        }
    }

    /// One upstream's probe result, for every endpoint it serves. Returns whether any endpoint's
    /// usability changed.
    fn finish_probe(&self, provider: &str, outcome: probe::ProbeResult) -> bool {
        let setup = self.setup();
        let now = Instant::now();
        let result = outcome.result.map_err(|e| e.to_string());
        let mut changed = false;
        let mut s = self.lock();
        for t in setup
            .targets
            .iter()
            .filter(|t| t.daemon_provider == provider)
        {
            let h = s.health.entry(t.id()).or_default();
            let was = h.probe_state();
            changed |= h.on_probe(&setup.options.health, now, result.clone(), outcome.latency);
            match (was, h.probe_state(), &result) {
                (ProbeState::Down, ProbeState::Down, _) => {}
                (_, ProbeState::Down, Err(e)) => {
                    tracing::warn!(endpoint = %t.id(), error = %e, "endpoint unhealthy (probe)");
                }
                (ProbeState::Down, ProbeState::Up, _) => {
                    tracing::info!(endpoint = %t.id(), "endpoint's listing recovered");
                }
                _ => {}
            }
        }
        changed
    }

    /// Reads the daemon's traffic counters into the health policy. Returns whether any
    /// endpoint's usability changed.
    fn absorb_metrics(&self, metrics: &Metrics) -> bool {
        let setup = self.setup();
        let policy = setup.options.health;
        let mut totals: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for by_endpoint in metrics.values() {
            for (id, c) in by_endpoint {
                let e = totals.entry(id.clone()).or_default();
                e.0 += c.total_requests;
                e.1 += c.total_errors;
            }
        }
        let rejections = self.rejections.take();
        let now = Instant::now();
        let mut s = self.lock();
        // Failures the log shows beyond those the metrics counted since the last poll go to every
        // endpoint of that provider (the line names no model).
        let endpoints: BTreeSet<(&str, String)> = setup
            .targets
            .iter()
            .map(|t| (t.daemon_provider.as_str(), t.id()))
            .collect();
        let mut counted: BTreeMap<&str, u64> = BTreeMap::new();
        for (provider, id) in &endpoints {
            let total = totals.get(id).map_or(0, |c| c.1);
            let before = s.log.metrics_errors.insert(id.clone(), total).unwrap_or(0);
            let new = if total >= before {
                total - before
            } else {
                total
            };
            *counted.entry(provider).or_default() += new;
        }
        for (provider, n) in &rejections {
            let missed = n.saturating_sub(counted.get(provider.as_str()).copied().unwrap_or(0));
            if missed == 0 {
                continue;
            }
            for (_, id) in endpoints.iter().filter(|(p, _)| p == provider) {
                *s.log.extra.entry(id.clone()).or_default() += missed;
            }
        }
        for (id, extra) in &s.log.extra {
            let e = totals.entry(id.clone()).or_default();
            e.0 += extra;
            e.1 += extra;
        }
        let mut changed = false;
        for (id, (requests, errors)) in totals {
            let Some(h) = s.health.get_mut(&id) else {
                continue;
            };
            let trips = h.trips;
            if h.on_traffic(&policy, now, requests, errors) {
                changed = true;
                if h.trips > trips {
                    tracing::warn!(
                        endpoint = %id,
                        error = h.last_error().unwrap_or_default(),
                        cooldown_s = h.cooldown(&policy).map(|d| d.as_secs()),
                        "endpoint out (failures in real traffic)"
                    );
                } else {
                    tracing::info!(endpoint = %id, why = h.last_recovery().unwrap_or_default(), "endpoint back");
                }
            }
        }
        changed
    }

    /// Sends a trial to every endpoint whose breaker cooldown is over.
    fn start_due_trials(&self, trials: &mut JoinSet<(String, probe::ProbeResult)>) {
        let setup = self.setup();
        let now = Instant::now();
        let due: Vec<Target> = {
            let mut s = self.lock();
            let mut due = Vec::new();
            for t in &setup.targets {
                if let Some(h) = s.health.get_mut(&t.id())
                    && h.trial_due(now)
                {
                    h.start_trial();
                    due.push(t.clone());
                }
            }
            due
        };
        if due.is_empty() {
            return;
        }
        let env = env_file::read(&self.home.env_file());
        // A completion takes longer than a listing; still bounded so a stall counts as failure.
        let timeout = setup
            .options
            .probe_interval
            .clamp(Duration::from_secs(5), Duration::from_secs(30));
        for t in due {
            let client = self.upstreams.clone();
            let key = t.upstream.resolve_key(&env);
            trials.spawn(async move {
                let result =
                    probe::trial(&client, &t.upstream, &t.model_id, key.as_deref(), timeout).await;
                (t.id(), result)
            });
        }
    }

    /// A trial's outcome. Returns whether the endpoint's usability changed.
    fn finish_trial(&self, id: &str, outcome: probe::ProbeResult) -> bool {
        let policy = self.setup().options.health;
        let result = outcome.result.map_err(|e| e.to_string());
        let mut s = self.lock();
        let Some(h) = s.health.get_mut(id) else {
            return false;
        };
        let changed = h.on_trial(&policy, Instant::now(), result.clone());
        match result {
            Ok(()) if changed => tracing::info!(
                endpoint = id,
                latency_ms = outcome.latency.as_millis() as u64,
                "trial request answered: endpoint back"
            ),
            Ok(()) => {}
            Err(e) => tracing::warn!(
                endpoint = id,
                error = %e,
                next_trial_in_s = h.cooldown(&policy).map(|d| d.as_secs()),
                "trial request failed: endpoint stays out"
            ),
        }
        changed
    }

    /// Whether route changes may be applied now (a supervised daemon must be up; the
    /// supervisor restores routes when it comes back).
    fn can_apply(&self) -> bool {
        !self.setup().config.auto_start || self.lock().daemon_healthy
    }

    /// Runs probes, metrics polling, trials, applying and reconciling until `shutdown`; follows
    /// config changes from `configs`.
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
        let mut trials = JoinSet::new();
        let mut probes = JoinSet::new();
        // Upstreams whose probe is out.
        let mut probing: BTreeSet<String> = BTreeSet::new();
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
                    if !restarts && self.can_apply() {
                        let _ = self.apply().await;
                    }
                }
                _ = probe_tick.tick() => {
                    self.start_probes(&mut probes, &mut probing);
                    self.start_due_trials(&mut trials);
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
                Some(joined) = probes.join_next(), if !probes.is_empty() => {
                    let Ok((provider, outcome)) = joined else {
                        // A probe task died (cannot tell whose): let every upstream be probed.
                        probing.clear();
                        continue;
                    };
                    probing.remove(&provider);
                    if self.finish_probe(&provider, outcome) && self.can_apply() {
                        let _ = self.apply().await;
                    } else {
                        self.publish();
                    }
                    // A listing that answers again may make a trial due.
                    self.start_due_trials(&mut trials);
                }
                _ = metrics_tick.tick(), if setup.options.metrics_interval.is_some() => {
                    self.start_due_trials(&mut trials);
                    if !self.lock().daemon_healthy {
                        continue;
                    }
                    if let Ok(m) = setup.client.metrics().await {
                        if self.absorb_metrics(&m) {
                            let _ = self.apply().await;
                        } else {
                            // Counters only: refreshed in place, nobody notified.
                            self.publish();
                        }
                    }
                }
                Some(joined) = trials.join_next(), if !trials.is_empty() => {
                    if let Ok((id, outcome)) = joined
                        && self.finish_trial(&id, outcome)
                        && self.can_apply()
                    {
                        let _ = self.apply().await;
                    } else {
                        self.publish();
                    }
                }
            }
        }
        probes.shutdown().await;
        trials.shutdown().await;
    }
}
