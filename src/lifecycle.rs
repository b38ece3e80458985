//! One `serve` process's life, in one place: start the server's tasks, serve MCP, answer
//! signals, and shut down in a fixed order.
//!
//! Every task the server spawns runs on one [`TaskTracker`] and ends on one
//! [`CancellationToken`]; [`shut_down`] is the only code that ends them, and it says in which
//! order. Tasks scoped to one piece of work are joined by their owner instead (the daemon's
//! output pumps, the control plane's probe and trial sets, the stdio line feeder, a refused
//! connection's 403, which ends by itself within seconds).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::home::Home;
use crate::routing::PluginConfig;
use crate::routing::source::ConfigSource;
use crate::server::{self, AppState, ServeError, dashboard};
use crate::supervisor::ownership::Ownership;
use crate::supervisor::{Supervisor, SupervisorOptions};

/// How long shutdown waits for the server's tasks once the daemon is stopped; a task still
/// running then is dropped with the runtime.
const JOIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How `serve` was asked to run. (No `Debug`: it holds the bearer token.)
#[derive(Default)]
pub struct ServeOptions {
    /// Streamable HTTP at this address; stdio when `None`.
    pub http: Option<SocketAddr>,
    /// Bearer token HTTP clients must send.
    pub auth_token: Option<String>,
    /// Exit (stopping the daemon) when the process that started this one dies.
    pub exit_with_parent: bool,
    pub supervisor: SupervisorOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("--exit-with-parent: {0}")]
    ExitWithParent(&'static str),
}

/// Runs the MCP server until its client leaves (stdio), a signal, or a serving error; then
/// stops everything it started ([`shut_down`]) before returning.
pub async fn serve(
    home: Home,
    config: PluginConfig,
    config_file: Option<PathBuf>,
    options: ServeOptions,
) -> Result<(), LifecycleError> {
    if options.exit_with_parent {
        exit_with_parent()?;
    }
    // Seeds and keys written by other tools (the bitrouter CLI writes them 0644) become private
    // before anything serves them.
    let bitrouter_home = home.bitrouter_home();
    if let Err(e) = crate::fsutil::harden_tree(&bitrouter_home) {
        tracing::warn!(path = %bitrouter_home.display(), error = %e, "cannot make private");
    }
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let transport = match options.http {
        Some(addr) => format!("http://{addr}/mcp"),
        None => "stdio".to_string(),
    };
    let (state, supervised) = AppState::start(
        &tasks,
        home,
        config,
        config_file,
        transport,
        options.supervisor,
        shutdown.clone(),
    );
    let state = Arc::new(state);
    tasks.spawn(handle_signals(
        shutdown.clone(),
        state.supervisor.clone(),
        state.config.clone(),
    ));
    let (supervisor, ownership) = (state.supervisor.clone(), state.ownership.clone());
    let served = match options.http {
        Some(addr) => serve_http(state, addr, options.auth_token, &shutdown).await,
        // Returns when the client closes stdin: that ends the server too.
        None => server::stdio::serve(state, shutdown.clone()).await,
    };
    shut_down(shutdown, supervised, tasks, &supervisor, &ownership).await;
    Ok(served?)
}

/// Serves streamable HTTP until `shutdown`, with the bound address recorded for the
/// `dashboard` command meanwhile.
async fn serve_http(
    state: Arc<AppState>,
    addr: SocketAddr,
    auth_token: Option<String>,
    shutdown: &CancellationToken,
) -> Result<(), ServeError> {
    let home = state.home.clone();
    let bound = std::sync::Mutex::new(None);
    let served = server::http::serve(state, addr, auth_token, shutdown.clone(), |a| {
        dashboard::record_address(&home, a);
        if let Ok(mut b) = bound.lock() {
            *b = Some(a);
        }
    })
    .await;
    if let Some(a) = bound.lock().ok().and_then(|b| *b) {
        dashboard::forget_address(&home, a);
    }
    served
}

/// Stops the server, in this order:
///
/// 1. MCP has stopped already: serving returned (stdin closed, or the HTTP listener was shut
///    down by a signal and its address record forgotten), so no tool call starts any more.
/// 2. `shutdown` fires. Every task ends at its next await: signals, the config watcher, the
///    control plane (its probes and trials dropped with it), the publisher, the route-change
///    notifications; a follower stops waiting for the lock.
/// 3. The supervisor stops the daemon: SIGTERM, a grace period, SIGKILL; the daemon's last
///    output reaches its log and the pid file goes.
/// 4. Every task is joined (at most [`JOIN_TIMEOUT`]), so nothing publishes any more.
/// 5. The ownership is withdrawn: `owner.json` goes; the lock goes with this process, and a
///    waiting follower takes over.
async fn shut_down(
    shutdown: CancellationToken,
    supervised: JoinHandle<()>,
    tasks: TaskTracker,
    supervisor: &Supervisor,
    ownership: &Ownership,
) {
    tracing::info!("MCP stopped; stopping the daemon and the server's tasks");
    shutdown.cancel();
    if let Err(e) = supervised.await {
        tracing::error!(error = %e, "the supervisor task failed");
    }
    if ownership.is_owner() && supervisor.status().managed {
        tracing::info!("daemon stopped");
    }
    tasks.close();
    if tokio::time::timeout(JOIN_TIMEOUT, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            running = tasks.len(),
            "tasks still running after {JOIN_TIMEOUT:?}; leaving them"
        );
    }
    ownership.withdraw();
    tracing::info!("shutdown complete");
}

/// SIGINT or SIGTERM fire `shutdown`; SIGHUP re-reads the config and restarts the daemon (which
/// also clears `failed`). Ends on `shutdown` whatever fired it.
async fn handle_signals(
    shutdown: CancellationToken,
    supervisor: Supervisor,
    source: Arc<ConfigSource>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::warn!("cannot listen for SIGTERM/SIGHUP; only Ctrl-C stops the server");
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::signal::ctrl_c() => {}
        }
        shutdown.cancel();
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the config and restarting the daemon");
                if !source.reload() {
                    supervisor.request_restart();
                }
            }
        }
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}

/// Asks the kernel to send us SIGTERM when our parent dies; our SIGTERM handling then stops the
/// daemon in order.
#[cfg(target_os = "linux")]
fn exit_with_parent() -> Result<(), LifecycleError> {
    // SAFETY: prctl and getppid have no memory-safety preconditions.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
            return Err(LifecycleError::ExitWithParent(
                "prctl(PR_SET_PDEATHSIG) failed",
            ));
        }
        if libc::getppid() == 1 {
            return Err(LifecycleError::ExitWithParent(
                "the parent process has already exited",
            ));
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn exit_with_parent() -> Result<(), LifecycleError> {
    Err(LifecycleError::ExitWithParent("only supported on Linux"))
}
