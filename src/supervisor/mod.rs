//! The BitRouter daemon's process lifecycle: find the binary, write the daemon's config, start it,
//! wait for `/health`, watch it, restart it with backoff when it dies or hangs, give up after a
//! crash loop, and stop it with the server. Agents observe it through `bitrouter_status`; nothing
//! here is reachable as an MCP tool. Only the server that owns the data dir ([`ownership`]) runs
//! any of it; the others wait for their turn.

pub mod binary;
pub mod install;
pub mod logs;
pub mod ownership;
pub mod policy;
pub mod process;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::binary::BinaryInfo;
use self::logs::RotatingLog;
use self::ownership::Ownership;
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
    /// Bumped on every status change (the owner publishes then).
    changes: watch::Sender<u64>,
}

/// Handle to the running supervisor; cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    shared: Arc<Shared>,
    log_path: PathBuf,
    ownership: Arc<Ownership>,
}

impl Supervisor {
    /// Starts supervising (when `config.auto_start`) until `shutdown`, once this server owns the
    /// data dir (`ownership`: it waits for that first); the returned task, one of `tasks`, ends
    /// after the daemon has been stopped.
    /// `plane`, when given, gets its routes re-applied after every (re)start before the daemon is
    /// reported healthy, and hears about health changes.
    pub fn start(
        home: Home,
        configs: watch::Receiver<Arc<PluginConfig>>,
        options: SupervisorOptions,
        plane: Option<Arc<RoutePlane>>,
        ownership: Arc<Ownership>,
        shutdown: CancellationToken,
        tasks: &TaskTracker,
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
            changes: watch::channel(0).0,
        });
        let me = Self {
            shared: shared.clone(),
            log_path,
            ownership: ownership.clone(),
        };
        let run = Run {
            shared,
            plane,
            home,
            configs,
            options,
            ownership,
            shutdown,
            tasks: tasks.clone(),
            holding: std::sync::atomic::AtomicBool::new(false),
        };
        (me, tasks.spawn(run.run()))
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

    /// Restarts the daemon now and clears a `failed` state (SIGHUP). Only the owner restarts
    /// anything; in a follower this does nothing.
    pub fn request_restart(&self) {
        if self.ownership.is_owner() {
            self.shared.restart.notify_one();
        }
    }

    /// Fires on every status change.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }
}

/// How one daemon run ended.
enum RunEnd {
    Shutdown,
    Requested,
    /// The config changed in a way the running daemon cannot take live.
    Reconfigured,
    Crashed(String),
    /// It stopped answering `/health`: SIGKILL at once, it would not heed SIGTERM either.
    Hung(String),
    /// It serves without authentication (its database cannot be opened): stopped, `failed`
    /// until the config changes or SIGHUP. Fail closed.
    Unsafe(String),
}

/// What the owner's loop does after a step.
enum Flow {
    /// Start the next round (re-reading the config).
    Next,
    Stop,
}

impl Flow {
    /// `pause`/`wait_for_restart` say false on shutdown.
    fn after_wait(go_on: bool) -> Self {
        if go_on { Flow::Next } else { Flow::Stop }
    }
}

/// A step that may end the round early with what to do next.
type Step<T> = Result<T, Flow>;

/// The daemon's files for one config, rendered once: what is written, and what the log masks.
struct DaemonFiles(daemon_config::DaemonConfig);

impl DaemonFiles {
    fn render(config: &PluginConfig) -> Self {
        Self(daemon_config::render(config))
    }

    /// Writes `bitrouter.yaml` and our `.env` entries (unchanged bytes are not rewritten).
    fn write(&self, home: &Home) -> std::io::Result<bool> {
        daemon_config::write(&self.0, &home.daemon_config_file(), &home.env_file())
    }

    /// Masks our literal keys and every value of the user's `.env` in the daemon's log.
    fn redactor(&self, home: &Home) -> Redactor {
        let from_file = env_file::read(&home.env_file()).into_values();
        Redactor::from_env_and(self.0.env.values().cloned().chain(from_file))
    }
}

/// What the owner keeps across rounds.
struct Owner {
    log: Arc<Mutex<RotatingLog>>,
    tracker: RestartTracker,
    install_started: bool,
}

impl Owner {
    /// A lifecycle line in the daemon's log.
    fn note(&self, message: &str) {
        if let Ok(mut l) = self.log.lock() {
            l.note(message);
        }
    }
}

struct Run {
    shared: Arc<Shared>,
    plane: Option<Arc<RoutePlane>>,
    home: Home,
    configs: watch::Receiver<Arc<PluginConfig>>,
    options: SupervisorOptions,
    ownership: Arc<Ownership>,
    shutdown: CancellationToken,
    /// The server's tasks; a background install joins them.
    tasks: TaskTracker,
    /// A new config waits for its port: the daemon keeps serving the old one, and the control
    /// plane (which already follows the new address) is told the daemon is not there.
    holding: std::sync::atomic::AtomicBool,
}

impl Run {
    fn update(&self, f: impl FnOnce(&mut DaemonStatus)) {
        let holding = self.holding.load(std::sync::atomic::Ordering::SeqCst);
        let healthy = match self.shared.status.write() {
            Ok(mut s) => {
                f(&mut s);
                s.healthy
            }
            Err(_) => return,
        };
        self.shared.changes.send_modify(|n| *n = n.wrapping_add(1));
        if let Some(plane) = &self.plane {
            plane.set_daemon_healthy(healthy && !holding);
        }
    }

    fn set_state(&self, state: DaemonState) {
        self.update(|s| {
            s.state = state;
            s.healthy = state == DaemonState::Healthy;
        });
    }

    fn fail(&self, state: DaemonState, message: String) {
        self.update(|s| {
            s.state = state;
            s.healthy = false;
            s.last_error = Some(message);
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

    async fn run(mut self) {
        // Only the owner of the data dir runs the daemon; a follower waits here for its turn and
        // never touches the daemon or its files before.
        if !self.ownership.acquire(&self.shutdown).await {
            return;
        }
        let config = self.configs.borrow().clone();
        let mut owner = Owner {
            log: Arc::new(Mutex::new(
                RotatingLog::new(
                    &self.home.logs_dir(),
                    self.options.log_max_bytes,
                    self.options.log_keep,
                    DaemonFiles::render(&config).redactor(&self.home),
                )
                .with_tap(self.plane.as_ref().map(|p| p.rejections())),
            )),
            tracker: RestartTracker::new(self.options.policy),
            install_started: false,
        };
        while !self.shutdown.is_cancelled() {
            let flow = match self.round(&mut owner).await {
                Ok(flow) | Err(flow) => flow,
            };
            if let Flow::Stop = flow {
                break;
            }
        }
        self.set_state(DaemonState::Stopped);
        owner.note("supervisor stopped");
    }

    /// One round: the current config, the binary, a free port, the daemon's files, then one
    /// daemon process from spawn to exit, and what to do after it.
    async fn round(&mut self, owner: &mut Owner) -> Step<Flow> {
        let config = self.configs.borrow_and_update().clone();
        let listen = config.listen_addr();
        self.update(|s| {
            s.managed = config.auto_start;
            s.listen = listen.clone();
        });
        if !config.auto_start {
            self.set_state(DaemonState::Stopped);
            return Ok(Flow::after_wait(self.wait_for_restart().await));
        }
        let poll = Duration::from_millis(config.health_check_interval_ms);
        let files = DaemonFiles::render(&config);
        if let Ok(mut l) = owner.log.lock() {
            l.set_redactor(files.redactor(&self.home));
        }
        let binary = self.find_binary(owner, poll).await?;
        self.stop_leftover(owner).await;
        self.claim_port(&listen, poll).await?;
        self.write_files(&files, poll).await?;
        let started = Instant::now();
        let end = self.run_daemon(&binary, &config, owner).await;
        Ok(self.after_run(end, started, owner).await)
    }

    /// Step 1, the binary: re-resolved every round, so an install while we run is picked up.
    /// Missing: reports it, starts a background build once, and waits.
    async fn find_binary(&self, owner: &mut Owner, poll: Duration) -> Step<PathBuf> {
        let info = binary::inspect(self.options.binary.as_deref()).await;
        self.update(|s| s.binary = Some(info.clone()));
        if let Some(path) = info.path.clone().filter(|_| info.version.is_some()) {
            if let Some(problem) = &info.problem {
                tracing::warn!(problem, "unexpected bitrouter version");
            }
            return Ok(PathBuf::from(path));
        }
        let install_started = owner.install_started;
        self.update(|s| {
            s.state = DaemonState::NotInstalled;
            s.healthy = false;
            // While a build runs, its progress is the message.
            if !install_started {
                s.last_error = info.problem.clone();
            }
        });
        if self.options.auto_install && self.options.binary.is_none() && !install_started {
            owner.install_started = true;
            self.install_in_background(owner.log.clone());
        }
        Err(Flow::after_wait(
            self.pause(poll.min(Duration::from_secs(5))).await,
        ))
    }

    /// Step 2, never two daemons on one home: stops one a server left behind where the kernel
    /// could not stop it with its owner (no `PR_SET_PDEATHSIG` outside Linux).
    async fn stop_leftover(&self, owner: &Owner) {
        if let Some(pid) = process::leftover_daemon(&self.home) {
            tracing::warn!(pid, "stopping a daemon left running on this home");
            owner.note(&format!("stopping leftover daemon pid {pid}"));
            process::stop_leftover(pid, self.options.stop_grace).await;
            process::remove_pid_file(&self.home);
        }
    }

    /// Step 3, the port must be free, or the daemon would die with a bind error. A daemon that
    /// just died (the previous owner's, at takeover) may hold it a moment longer.
    async fn claim_port(&self, listen: &str, poll: Duration) -> Step<()> {
        let deadline = Instant::now() + PORT_GRACE;
        while process::port_in_use(listen) {
            if Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            tracing::error!(%listen, "daemon port in use");
            self.fail(
                DaemonState::Failed,
                format!(
                    "port in use: {listen} is taken by another program; set `port` (or `host`) in the config to a free one"
                ),
            );
            return Err(Flow::after_wait(self.pause(poll).await));
        }
        Ok(())
    }

    /// Step 4, the daemon's config: `bitrouter.yaml` and our `.env` entries.
    async fn write_files(&self, files: &DaemonFiles, poll: Duration) -> Step<()> {
        if let Err(e) = files.write(&self.home) {
            self.fail(
                DaemonState::Failed,
                format!("cannot write the daemon config: {e}"),
            );
            return Err(Flow::after_wait(self.pause(poll).await));
        }
        Ok(())
    }

    /// Step 5, one daemon process: spawn, wait for health (routes restored first), watch, and
    /// stop it when it must end. Records its pid and how it ended.
    async fn run_daemon(&self, path: &Path, config: &PluginConfig, owner: &Owner) -> RunEnd {
        let listen = config.listen_addr();
        self.holding
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.set_state(DaemonState::Starting);
        let started = Instant::now();
        let mut daemon =
            match process::spawn(path, &self.home, &owner.log, self.ownership.lock_fd()) {
                Ok(daemon) => daemon,
                Err(e) => return RunEnd::Crashed(format!("cannot start {}: {e}", path.display())),
            };
        let pid = daemon.child.id();
        if let Some(pid) = pid {
            process::write_pid_file(&self.home, pid);
        }
        self.update(|s| s.pid = pid);
        owner.note(&format!(
            "started daemon pid {} (owner: server pid {}, {})",
            pid.unwrap_or(0),
            self.ownership.me().pid,
            self.ownership.me().transport
        ));
        tracing::info!(pid, %listen, "daemon started");
        let client = DaemonClient::new(&listen);
        let end = match self.await_ready(&mut daemon.child, &client, started).await {
            Ok(()) => self.watch(&mut daemon.child, &client, config).await,
            Err(end) => end,
        };
        // Never report a dying daemon as healthy, not even while it is stopped.
        self.set_state(match end {
            RunEnd::Shutdown => DaemonState::Stopped,
            _ => DaemonState::Restarting,
        });
        let exited = match &end {
            RunEnd::Crashed(_) => daemon.child.try_wait().ok().flatten(),
            _ => None,
        };
        let grace = match &end {
            RunEnd::Hung(_) | RunEnd::Unsafe(_) => Duration::ZERO,
            _ => self.options.stop_grace,
        };
        let exit = match exited {
            Some(status) => Some(status),
            None if grace.is_zero() => process::kill(&mut daemon.child).await,
            None => process::terminate(&mut daemon.child, grace).await,
        };
        daemon.drain_output().await;
        process::remove_pid_file(&self.home);
        let exit_text = exit.as_ref().map(process::describe_exit);
        owner.note(&format!(
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

    /// Step 6, what next: stop, restart at once, restart after a backoff, or give up.
    async fn after_run(&self, end: RunEnd, started: Instant, owner: &mut Owner) -> Flow {
        let was_healthy = match self.shared.became_healthy.write() {
            Ok(mut t) => t.take().is_some(),
            Err(_) => false,
        };
        match end {
            RunEnd::Shutdown => Flow::Stop,
            RunEnd::Requested => {
                owner.tracker.reset();
                self.update(|s| s.restart_count += 1);
                Flow::Next
            }
            RunEnd::Reconfigured => {
                owner.tracker.reset();
                owner.note("restarting with the new config");
                Flow::Next
            }
            RunEnd::Unsafe(reason) => {
                tracing::error!(reason, "daemon stopped: it serves without authentication");
                owner.note(&reason);
                self.fail(DaemonState::Failed, reason);
                let go_on = self.wait_for_restart().await;
                owner.tracker.reset();
                Flow::after_wait(go_on)
            }
            RunEnd::Crashed(reason) | RunEnd::Hung(reason) => {
                let tail = logs::tail(&self.home.logs_dir().join(logs::LOG_NAME), 5);
                tracing::warn!(reason, "daemon crashed");
                let jitter = f64::from(random_u16()) / f64::from(u16::MAX) * 0.999;
                // SIGKILL comes from outside (an operator, the OOM killer), not from the daemon.
                let killed = self
                    .shared
                    .status
                    .read()
                    .is_ok_and(|s| s.last_exit.as_deref() == Some("killed by signal 9"));
                match owner.tracker.on_crash(
                    Instant::now(),
                    started.elapsed(),
                    was_healthy,
                    killed,
                    jitter,
                ) {
                    Decision::RestartAfter(delay) => {
                        self.update(|s| {
                            s.state = DaemonState::Restarting;
                            s.healthy = false;
                            s.restart_count += 1;
                            s.last_error = Some(with_tail(&reason, &tail));
                        });
                        Flow::after_wait(self.pause(delay).await)
                    }
                    Decision::GiveUp(why) => {
                        tracing::error!(why, "daemon keeps crashing; giving up");
                        owner.note(&why);
                        self.fail(
                            DaemonState::Failed,
                            with_tail(&format!("{why}; last: {reason}"), &tail),
                        );
                        let go_on = self.wait_for_restart().await;
                        owner.tracker.reset();
                        Flow::after_wait(go_on)
                    }
                }
            }
        }
    }

    /// Polls `/health` until the daemon answers (then restores the routes and reports it
    /// healthy), it exits, or the startup timeout passes.
    async fn await_ready(
        &self,
        child: &mut tokio::process::Child,
        client: &DaemonClient,
        spawned: Instant,
    ) -> Result<(), RunEnd> {
        let deadline = tokio::time::Instant::now() + self.options.startup_timeout;
        loop {
            let probe = tokio::select! {
                status = child.wait() => {
                    let how = status.map(|s| process::describe_exit(&s)).unwrap_or_default();
                    return Err(RunEnd::Crashed(format!("daemon exited during startup ({how})")));
                }
                _ = self.shutdown.cancelled() => return Err(RunEnd::Shutdown),
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(RunEnd::Crashed(format!(
                        "daemon did not answer /health within {} s",
                        self.options.startup_timeout.as_secs()
                    )));
                }
                probe = async {
                    tokio::time::sleep(STARTUP_POLL).await;
                    client.health().await
                } => probe,
            };
            if probe.result.is_ok() {
                // Without its database the daemon lets anyone spend the provider keys.
                if client.serves_anonymously().await == Ok(true) {
                    return Err(RunEnd::Unsafe(OPEN_PROXY.to_string()));
                }
                // Dynamic routes live in the daemon's memory: put ours back before anyone is
                // told the daemon is healthy.
                let routes_applied = match &self.plane {
                    Some(plane) => self.restore_routes(plane).await,
                    None => true,
                };
                let startup = ms(spawned.elapsed());
                self.update(|s| s.startup_ms = Some(startup));
                // A fresh, healthy daemon: the previous one's problem is history (`last_exit`).
                self.mark_healthy(probe.latency, routes_applied);
                return Ok(());
            }
        }
    }

    /// Watches a healthy daemon until it exits, hangs, must restart or the server stops.
    async fn watch(
        &self,
        child: &mut tokio::process::Child,
        client: &DaemonClient,
        config: &PluginConfig,
    ) -> RunEnd {
        let poll = Duration::from_millis(config.health_check_interval_ms);
        // A probe may take as long as the interval (0.2 to 2 s): a hung daemon is noticed after
        // `max_health_failures` intervals of about twice that, not several times 2 s.
        let probe_timeout = poll.clamp(Duration::from_millis(200), Duration::from_secs(2));
        let mut configs = self.configs.clone();
        let keys_at_start = env_file::user_fingerprint(&self.home.env_file());
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
                    if changed.is_ok() {
                        let new = configs.borrow_and_update().clone();
                        if let Some(end) = self.config_changed(config, &new) {
                            return end;
                        }
                    }
                    continue;
                }
                probe = async {
                    tokio::time::sleep(poll).await;
                    client.health_within(probe_timeout).await
                } => probe,
            };
            // A config held back for its port: restart once the port is free.
            if self.holding.load(std::sync::atomic::Ordering::SeqCst)
                && !process::port_in_use(&self.configs.borrow().listen_addr())
            {
                return RunEnd::Reconfigured;
            }
            // Keys and tokens the `bitrouter` CLI writes while we serve (0644) become private.
            if let Err(e) = crate::fsutil::harden_tree(&self.home.keys_dir()) {
                tracing::debug!(error = %e, "cannot make the keys private");
            }
            // The daemon reads provider keys only at start (e.g. after `auth login`).
            if env_file::user_fingerprint(&self.home.env_file()) != keys_at_start {
                tracing::info!("provider keys changed; restarting the daemon to load them");
                return RunEnd::Reconfigured;
            }
            if let Some(end) = self.health_checked(probe, &mut failures) {
                return end;
            }
        }
    }

    /// A new config while the daemon runs: a restart, or (routes only) the plane applies it live
    /// and the yaml is rewritten for the next start.
    /// A new port that another program holds would leave nothing running: the working daemon
    /// keeps serving (on the old config) until that port is free.
    fn config_changed(&self, running: &PluginConfig, new: &PluginConfig) -> Option<RunEnd> {
        use std::sync::atomic::Ordering;
        if !new.auto_start || daemon_config::needs_restart(running, new) {
            let (old, next) = (running.listen_addr(), new.listen_addr());
            if new.auto_start && old != next && process::port_in_use(&next) {
                tracing::warn!(%next, "new daemon port in use; keeping the running daemon");
                self.holding.store(true, Ordering::SeqCst);
                self.update(|s| {
                    s.last_error = Some(format!(
                        "port in use: {next} (the new config's) is taken by another program; the daemon keeps serving on {old} with the previous config, and restarts on {next} once it is free (or set another `port`)"
                    ));
                });
                return None;
            }
            self.holding.store(false, Ordering::SeqCst);
            return Some(RunEnd::Reconfigured);
        }
        self.holding.store(false, Ordering::SeqCst);
        let _ = DaemonFiles::render(new).write(&self.home);
        None
    }

    /// One `/health` result of a running daemon; enough failures in a row count as a hang.
    fn health_checked(
        &self,
        probe: crate::daemon_api::HealthProbe,
        failures: &mut u32,
    ) -> Option<RunEnd> {
        match probe.result {
            Ok(()) => {
                // Back from unhealthy: the health failure is no longer the latest problem.
                let recovered = *failures > 0;
                *failures = 0;
                self.mark_healthy(probe.latency, recovered);
                None
            }
            Err(e) => {
                *failures += 1;
                tracing::warn!(error = %e, failures = *failures, "daemon health check failed");
                self.update(|s| {
                    s.state = DaemonState::Unhealthy;
                    s.healthy = false;
                    s.health_latency_ms = Some(ms(probe.latency));
                    s.last_error = Some(format!("health check failed: {e}"));
                });
                (*failures >= self.options.max_health_failures).then(|| {
                    RunEnd::Hung(format!(
                        "daemon stopped answering /health ({} checks in a row: {e})",
                        *failures
                    ))
                })
            }
        }
    }

    /// Builds the pinned daemon while MCP keeps serving; status shows the progress, and the
    /// supervisor starts the daemon as soon as the build is done. Shutdown abandons the build
    /// (the cargo child is killed with it) rather than wait minutes for it.
    fn install_in_background(&self, log: Arc<Mutex<RotatingLog>>) {
        let shared = self.shared.clone();
        let shutdown = self.shutdown.clone();
        let started = Instant::now();
        let set_error = move |shared: &Shared, text: String| {
            if let Ok(mut s) = shared.status.write() {
                s.last_error = Some(text);
            }
        };
        tracing::info!("bitrouter not found; building the pinned release in the background");
        self.tasks.spawn(async move {
            let install = install::install(|line| {
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
            });
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                result = install => result,
            };
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

    /// Returns whether the routes are applied.
    async fn restore_routes(&self, plane: &RoutePlane) -> bool {
        let mut last = Ok(());
        for _ in 0..5 {
            last = plane.restore().await;
            if last.is_ok() {
                return true;
            }
            tokio::time::sleep(STARTUP_POLL).await;
        }
        if let Err(e) = last {
            tracing::error!(error = %e, "cannot apply routes to the daemon");
            self.update(|s| s.last_error = Some(format!("routes not applied: {e}")));
        }
        false
    }

    /// Healthy now; `clear_error`: the latest problem is over.
    fn mark_healthy(&self, latency: Duration, clear_error: bool) {
        if let Ok(mut t) = self.shared.became_healthy.write()
            && t.is_none()
        {
            *t = Some(Instant::now());
        }
        self.update(|s| {
            s.state = DaemonState::Healthy;
            s.healthy = true;
            s.health_latency_ms = Some(ms(latency));
            if clear_error {
                s.last_error = None;
            }
        });
    }
}

/// Why a daemon that serves without a token is stopped.
const OPEN_PROXY: &str = "the daemon served a request without any token (its database could not be opened: \
     \"auth disabled\" in the daemon log), so anyone reaching its port could spend the provider keys; \
     stopped. Make <bitrouter-home>/bitrouter.db openable (a file this user can write), then edit the \
     config or send SIGHUP";

/// How often `/health` is polled while the daemon starts: readiness is noticed within this.
const STARTUP_POLL: Duration = Duration::from_millis(20);

/// How long a port may stay taken before it counts as taken by another program: a daemon that
/// just died can hold it a moment longer.
const PORT_GRACE: Duration = Duration::from_secs(1);

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
