//! The BitRouter daemon's process lifecycle: find the binary, write the daemon's config, start it,
//! wait for `/health`, watch it, restart it with backoff when it dies or hangs, give up after a
//! crash loop, and stop it with the server. Agents observe it through `bitrouter_status`; nothing
//! here is reachable as an MCP tool.

pub mod binary;
pub mod install;
pub mod logs;
pub mod policy;
pub mod process;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use self::binary::BinaryInfo;
use self::logs::RotatingLog;
use self::policy::{Decision, RestartPolicy, RestartTracker};
use crate::daemon_api::DaemonClient;
use crate::home::Home;
use crate::redact::Redactor;
use crate::routing::PluginConfig;
use crate::routing::control::RoutePlane;
use crate::routing::{daemon_config, env_file};

/// Where the daemon is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DaemonState {
    NotInstalled,
    Starting,
    Healthy,
    Unhealthy,
    Restarting,
    Failed,
    Stopped,
}

/// What `bitrouter_status` shows about the daemon.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DaemonStatus {
    pub state: DaemonState,
    pub healthy: bool,
    /// Whether this server runs the daemon (false with `autoStart: false`).
    pub managed: bool,
    pub pid: Option<u32>,
    pub listen: String,
    /// Seconds since the current process became healthy.
    pub uptime_s: Option<u64>,
    /// Restarts since this server started (crashes, hangs and explicit restarts).
    pub restart_count: u32,
    /// How the previous daemon process ended, e.g. `killed by signal 9`.
    pub last_exit: Option<String>,
    /// The latest problem: health failure, crash reason, port conflict, missing binary.
    pub last_error: Option<String>,
    /// Round trip of the latest `/health` probe, in milliseconds.
    pub health_latency_ms: Option<f64>,
    /// How long the current process took from spawn to its first healthy probe, in milliseconds.
    pub startup_ms: Option<f64>,
    pub log_file: String,
    /// Last lines of the daemon's log, secrets masked.
    pub log_tail: Vec<String>,
    /// Shown as status's top-level `binary`.
    #[serde(skip)]
    pub binary: Option<BinaryInfo>,
}

/// Knobs of the supervisor; defaults suit production, tests shorten them.
#[derive(Debug, Clone)]
pub struct SupervisorOptions {
    pub binary: Option<PathBuf>,
    pub policy: RestartPolicy,
    pub startup_timeout: Duration,
    pub stop_grace: Duration,
    /// Consecutive failed health checks before a running daemon is restarted as hung.
    pub max_health_failures: u32,
    pub log_max_bytes: u64,
    pub log_keep: usize,
    /// Build the pinned daemon in the background when none is found (and no path was given).
    pub auto_install: bool,
}

impl Default for SupervisorOptions {
    fn default() -> Self {
        Self {
            binary: None,
            policy: RestartPolicy::default(),
            startup_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(5),
            max_health_failures: 3,
            log_max_bytes: 5 * 1024 * 1024,
            log_keep: 3,
            auto_install: false,
        }
    }
}

struct Shared {
    status: RwLock<DaemonStatus>,
    became_healthy: RwLock<Option<Instant>>,
    restart: Notify,
}

/// Handle to the running supervisor; cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    shared: Arc<Shared>,
    log_path: PathBuf,
}

impl Supervisor {
    /// Starts supervising (when `config.auto_start`) until `shutdown`; the returned task ends
    /// after the daemon has been stopped.
    /// `plane`, when given, gets its routes re-applied after every (re)start before the daemon is
    /// reported healthy, and hears about health changes.
    pub fn start(
        home: Home,
        configs: watch::Receiver<Arc<PluginConfig>>,
        options: SupervisorOptions,
        plane: Option<Arc<RoutePlane>>,
        shutdown: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let log_path = home.logs_dir().join(logs::LOG_NAME);
        let config = configs.borrow().clone();
        let shared = Arc::new(Shared {
            status: RwLock::new(DaemonStatus {
                state: DaemonState::Stopped,
                healthy: false,
                managed: config.auto_start,
                pid: None,
                listen: config.listen_addr(),
                uptime_s: None,
                restart_count: 0,
                last_exit: None,
                last_error: None,
                health_latency_ms: None,
                startup_ms: None,
                log_file: log_path.display().to_string(),
                log_tail: Vec::new(),
                binary: None,
            }),
            became_healthy: RwLock::new(None),
            restart: Notify::new(),
        });
        let me = Self {
            shared: shared.clone(),
            log_path,
        };
        let run = Run {
            shared,
            plane,
            home,
            configs,
            options,
            shutdown,
        };
        (me, tokio::spawn(run.run()))
    }

    /// The daemon's status now, with a fresh log tail and uptime.
    pub fn status(&self) -> DaemonStatus {
        let mut s = self
            .shared
            .status
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        s.uptime_s = self
            .shared
            .became_healthy
            .read()
            .ok()
            .and_then(|t| *t)
            .filter(|_| matches!(s.state, DaemonState::Healthy | DaemonState::Unhealthy))
            .map(|t| t.elapsed().as_secs());
        s.log_tail = logs::tail(&self.log_path, 10);
        s
    }

    /// Restarts the daemon now and clears a `failed` state (SIGHUP).
    pub fn request_restart(&self) {
        self.shared.restart.notify_one();
    }
}

/// How one daemon run ended.
enum RunEnd {
    Shutdown,
    Requested,
    /// The config changed in a way the running daemon cannot take live.
    Reconfigured,
    Crashed(String),
}

struct Run {
    shared: Arc<Shared>,
    plane: Option<Arc<RoutePlane>>,
    home: Home,
    configs: watch::Receiver<Arc<PluginConfig>>,
    options: SupervisorOptions,
    shutdown: CancellationToken,
}

impl Run {
    fn update(&self, f: impl FnOnce(&mut DaemonStatus)) {
        let healthy = match self.shared.status.write() {
            Ok(mut s) => {
                f(&mut s);
                s.healthy
            }
            Err(_) => return,
        };
        if let Some(plane) = &self.plane {
            plane.set_daemon_healthy(healthy);
        }
    }

    fn set_state(&self, state: DaemonState) {
        self.update(|s| {
            s.state = state;
            s.healthy = state == DaemonState::Healthy;
        });
    }

    /// Sleeps `d`; returns false on shutdown. A restart request or a config change ends the
    /// wait early.
    async fn pause(&self, d: Duration) -> bool {
        let mut configs = self.configs.clone();
        tokio::select! {
            _ = self.shutdown.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
            _ = self.shared.restart.notified() => true,
            _ = configs.changed() => true,
        }
    }

    /// Waits for an explicit restart or a config change (after giving up, or while `autoStart`
    /// is off); returns false on shutdown.
    async fn wait_for_restart(&self) -> bool {
        let mut configs = self.configs.clone();
        tokio::select! {
            _ = self.shutdown.cancelled() => false,
            _ = self.shared.restart.notified() => true,
            changed = configs.changed() => changed.is_ok(),
        }
    }

    fn redactor(&self, config: &PluginConfig) -> Redactor {
        let rendered = daemon_config::render(config);
        let from_file = env_file::read(&self.home.env_file()).into_values();
        Redactor::from_env_and(rendered.env.into_values().chain(from_file))
    }

    async fn run(mut self) {
        let log = Arc::new(Mutex::new(RotatingLog::new(
            &self.home.logs_dir(),
            self.options.log_max_bytes,
            self.options.log_keep,
            self.redactor(&self.configs.borrow().clone()),
        )));
        let note = |m: &str| {
            if let Ok(mut l) = log.lock() {
                l.note(m);
            }
        };
        let mut tracker = RestartTracker::new(self.options.policy);
        let mut install_started = false;

        loop {
            if self.shutdown.is_cancelled() {
                break;
            }
            let config = self.configs.borrow_and_update().clone();
            let listen = config.listen_addr();
            let client = DaemonClient::new(&listen);
            let poll = Duration::from_millis(config.health_check_interval_ms);
            self.update(|s| {
                s.managed = config.auto_start;
                s.listen = listen.clone();
            });
            if !config.auto_start {
                self.set_state(DaemonState::Stopped);
                if !self.wait_for_restart().await {
                    break;
                }
                continue;
            }
            if let Ok(mut l) = log.lock() {
                l.set_redactor(self.redactor(&config));
            }
            // 1. The binary: re-resolved every round, so an install while we run is picked up.
            let info = binary::inspect(self.options.binary.as_deref()).await;
            self.update(|s| s.binary = Some(info.clone()));
            let Some(path) = info
                .path
                .clone()
                .filter(|_| info.version.is_some())
                .map(PathBuf::from)
            else {
                self.update(|s| {
                    s.state = DaemonState::NotInstalled;
                    s.healthy = false;
                    // While a build runs, its progress is the message.
                    if !install_started {
                        s.last_error = info.problem.clone();
                    }
                });
                if self.options.auto_install && self.options.binary.is_none() && !install_started {
                    install_started = true;
                    self.install_in_background(log.clone());
                }
                if !self.pause(poll.min(Duration::from_secs(5))).await {
                    break;
                }
                continue;
            };
            if let Some(problem) = &info.problem {
                tracing::warn!(problem, "unexpected bitrouter version");
            }

            // 2. Never two daemons on one home: stop one an earlier server left behind.
            if let Some(pid) = process::leftover_daemon(&self.home) {
                tracing::warn!(pid, "stopping a daemon left running on this home");
                note(&format!("stopping leftover daemon pid {pid}"));
                process::stop_leftover(pid, self.options.stop_grace).await;
                process::remove_pid_file(&self.home);
            }

            // 3. The port must be free, or the daemon would die with a bind error.
            if process::port_in_use(&listen) {
                let msg = format!(
                    "port in use: {listen} is taken by another program; set `port` (or `host`) in the config to a free one"
                );
                tracing::error!(%listen, "daemon port in use");
                self.update(|s| {
                    s.state = DaemonState::Failed;
                    s.healthy = false;
                    s.last_error = Some(msg);
                });
                if !self.pause(poll).await {
                    break;
                }
                continue;
            }

            // 4. Its config.
            let rendered = daemon_config::render(&config);
            if let Err(e) = daemon_config::write(
                &rendered,
                &self.home.daemon_config_file(),
                &self.home.env_file(),
            ) {
                self.update(|s| {
                    s.state = DaemonState::Failed;
                    s.last_error = Some(format!("cannot write the daemon config: {e}"));
                });
                if !self.pause(poll).await {
                    break;
                }
                continue;
            }

            // 5. Spawn and wait for health.
            self.set_state(DaemonState::Starting);
            let started = Instant::now();
            let end = match process::spawn(&path, &self.home, &log) {
                Err(e) => RunEnd::Crashed(format!("cannot start {}: {e}", path.display())),
                Ok(mut daemon) => {
                    let child = &mut daemon.child;
                    let pid = child.id();
                    if let Some(pid) = pid {
                        process::write_pid_file(&self.home, pid);
                    }
                    self.update(|s| s.pid = pid);
                    note(&format!("started daemon pid {}", pid.unwrap_or(0)));
                    tracing::info!(pid, %listen, "daemon started");
                    let end = self.watch(child, &client, &config, started).await;
                    // Never report a dying daemon as healthy, not even while it is stopped.
                    let state = match end {
                        RunEnd::Shutdown => DaemonState::Stopped,
                        _ => DaemonState::Restarting,
                    };
                    self.set_state(state);
                    let exit = match &end {
                        RunEnd::Crashed(_) => child.try_wait().ok().flatten(),
                        _ => None,
                    };
                    let exit = match exit {
                        Some(status) => Some(status),
                        None => process::terminate(child, self.options.stop_grace).await,
                    };
                    daemon.drain_output().await;
                    process::remove_pid_file(&self.home);
                    let exit_text = exit.as_ref().map(process::describe_exit);
                    note(&format!(
                        "daemon pid {} ended: {}",
                        pid.unwrap_or(0),
                        exit_text.as_deref().unwrap_or("unknown")
                    ));
                    self.update(|s| {
                        s.pid = None;
                        s.last_exit = exit_text;
                    });
                    end
                }
            };
            let was_healthy = match self.shared.became_healthy.write() {
                Ok(mut t) => t.take().is_some(),
                Err(_) => false,
            };

            // 6. What next.
            match end {
                RunEnd::Shutdown => break,
                RunEnd::Requested => {
                    tracker.reset();
                    self.update(|s| s.restart_count += 1);
                }
                RunEnd::Reconfigured => {
                    tracker.reset();
                    note("restarting with the new config");
                }
                RunEnd::Crashed(reason) => {
                    let tail = logs::tail(&self.home.logs_dir().join(logs::LOG_NAME), 5);
                    tracing::warn!(reason, "daemon crashed");
                    let jitter = f64::from(random_u16()) / f64::from(u16::MAX) * 0.999;
                    match tracker.on_crash(Instant::now(), started.elapsed(), was_healthy, jitter) {
                        Decision::RestartAfter(delay) => {
                            self.update(|s| {
                                s.state = DaemonState::Restarting;
                                s.healthy = false;
                                s.restart_count += 1;
                                s.last_error = Some(with_tail(&reason, &tail));
                            });
                            if !self.pause(delay).await {
                                break;
                            }
                        }
                        Decision::GiveUp(why) => {
                            tracing::error!(why, "daemon keeps crashing; giving up");
                            note(&why);
                            self.update(|s| {
                                s.state = DaemonState::Failed;
                                s.healthy = false;
                                s.last_error =
                                    Some(with_tail(&format!("{why}; last: {reason}"), &tail));
                            });
                            if !self.wait_for_restart().await {
                                break;
                            }
                            tracker.reset();
                        }
                    }
                }
            }
        }
        self.set_state(DaemonState::Stopped);
        note("supervisor stopped");
    }

    /// Waits for the first healthy probe, then watches the process until it ends or must end.
    async fn watch(
        &self,
        child: &mut tokio::process::Child,
        client: &DaemonClient,
        config: &PluginConfig,
        spawned: Instant,
    ) -> RunEnd {
        let poll = Duration::from_millis(config.health_check_interval_ms);
        let mut configs = self.configs.clone();
        let keys_at_start = env_file::user_fingerprint(&self.home.env_file());
        let deadline = tokio::time::Instant::now() + self.options.startup_timeout;
        loop {
            let probe = tokio::select! {
                status = child.wait() => {
                    let how = status.map(|s| process::describe_exit(&s)).unwrap_or_default();
                    return RunEnd::Crashed(format!("daemon exited during startup ({how})"));
                }
                _ = self.shutdown.cancelled() => return RunEnd::Shutdown,
                _ = tokio::time::sleep_until(deadline) => {
                    return RunEnd::Crashed(format!(
                        "daemon did not answer /health within {} s",
                        self.options.startup_timeout.as_secs()
                    ));
                }
                probe = async {
                    tokio::time::sleep(STARTUP_POLL).await;
                    client.health().await
                } => probe,
            };
            if probe.result.is_ok() {
                // Dynamic routes live in the daemon's memory: put ours back before anyone is
                // told the daemon is healthy.
                if let Some(plane) = &self.plane {
                    self.restore_routes(plane).await;
                }
                let startup = ms(spawned.elapsed());
                self.update(|s| s.startup_ms = Some(startup));
                self.mark_healthy(probe.latency);
                break;
            }
        }
        let mut failures = 0u32;
        loop {
            let probe = tokio::select! {
                status = child.wait() => {
                    let how = status.map(|s| process::describe_exit(&s)).unwrap_or_default();
                    return RunEnd::Crashed(format!("daemon exited ({how})"));
                }
                _ = self.shutdown.cancelled() => return RunEnd::Shutdown,
                _ = self.shared.restart.notified() => return RunEnd::Requested,
                changed = configs.changed() => {
                    if changed.is_err() {
                        continue;
                    }
                    let new = configs.borrow_and_update().clone();
                    if !new.auto_start || daemon_config::needs_restart(config, &new) {
                        return RunEnd::Reconfigured;
                    }
                    // Routes only: the plane applies them live; the yaml is for the next start.
                    let _ = daemon_config::write(
                        &daemon_config::render(&new),
                        &self.home.daemon_config_file(),
                        &self.home.env_file(),
                    );
                    continue;
                }
                probe = async {
                    tokio::time::sleep(poll).await;
                    client.health().await
                } => probe,
            };
            // The daemon reads provider keys only at start (e.g. after `auth login`).
            if env_file::user_fingerprint(&self.home.env_file()) != keys_at_start {
                tracing::info!("provider keys changed; restarting the daemon to load them");
                return RunEnd::Reconfigured;
            }
            match probe.result {
                Ok(()) => {
                    failures = 0;
                    self.mark_healthy(probe.latency);
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, failures, "daemon health check failed");
                    self.update(|s| {
                        s.state = DaemonState::Unhealthy;
                        s.healthy = false;
                        s.health_latency_ms = Some(ms(probe.latency));
                        s.last_error = Some(format!("health check failed: {e}"));
                    });
                    if failures >= self.options.max_health_failures {
                        return RunEnd::Crashed(format!(
                            "daemon stopped answering /health ({failures} checks in a row: {e})"
                        ));
                    }
                }
            }
        }
    }

    /// Builds the pinned daemon while MCP keeps serving; status shows the progress, and the
    /// supervisor starts the daemon as soon as the build is done.
    fn install_in_background(&self, log: Arc<Mutex<RotatingLog>>) {
        let shared = self.shared.clone();
        let started = Instant::now();
        let set_error = move |shared: &Shared, text: String| {
            if let Ok(mut s) = shared.status.write() {
                s.last_error = Some(text);
            }
        };
        tracing::info!("bitrouter not found; building the pinned release in the background");
        tokio::spawn(async move {
            let result = install::install(|line| {
                set_error(
                    &shared,
                    format!(
                        "installing bitrouter {} ({} s): {line}",
                        crate::PINNED_BITROUTER_VERSION,
                        started.elapsed().as_secs()
                    ),
                );
                if let Ok(mut l) = log.lock() {
                    l.note(&format!("install: {line}"));
                }
            })
            .await;
            match result {
                Ok(path) => {
                    tracing::info!(path = %path.display(), "bitrouter installed");
                    shared.restart.notify_one();
                }
                Err(e) => {
                    tracing::error!(error = %e, "bitrouter install failed");
                    set_error(
                        &shared,
                        format!(
                            "automatic install failed: {e}; run `bitrouter-mcp daemon install`"
                        ),
                    );
                }
            }
        });
    }

    async fn restore_routes(&self, plane: &RoutePlane) {
        let mut last = Ok(());
        for _ in 0..5 {
            last = plane.restore().await;
            if last.is_ok() {
                return;
            }
            tokio::time::sleep(STARTUP_POLL).await;
        }
        if let Err(e) = last {
            tracing::error!(error = %e, "cannot apply routes to the daemon");
            self.update(|s| s.last_error = Some(format!("routes not applied: {e}")));
        }
    }

    fn mark_healthy(&self, latency: Duration) {
        if let Ok(mut t) = self.shared.became_healthy.write()
            && t.is_none()
        {
            *t = Some(Instant::now());
        }
        self.update(|s| {
            s.state = DaemonState::Healthy;
            s.healthy = true;
            s.health_latency_ms = Some(ms(latency));
        });
    }
}

/// How often `/health` is polled while the daemon starts: readiness is noticed within this.
const STARTUP_POLL: Duration = Duration::from_millis(20);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn with_tail(reason: &str, tail: &[String]) -> String {
    if tail.is_empty() {
        reason.to_string()
    } else {
        format!("{reason}; log tail: {}", tail.join(" | "))
    }
}

fn random_u16() -> u16 {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    u16::from_le_bytes(b)
}
