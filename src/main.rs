//! The `bitrouter-mcp` binary: parses the command line and wires the library together.

mod cli;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use bitrouter_mcp::home::Home;
use bitrouter_mcp::routing::PluginConfig;
use bitrouter_mcp::routing::login;
use bitrouter_mcp::routing::source::ConfigSource;
use bitrouter_mcp::server::{self, AppState, dashboard};
use bitrouter_mcp::supervisor::{Supervisor, SupervisorOptions, install};
use cli::{AuthCommand, Cli, Command, DaemonCommand, LoginArgs};
use std::io::Write;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    bitrouter_mcp::logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let home = match &cli.data_dir {
        Some(dir) => Home::new(dir),
        None => Home::new(
            Home::default_data_dir()
                .ok_or("cannot find the user's data directory: pass --data-dir")?,
        ),
    };
    let config = match &cli.config {
        Some(path) => PluginConfig::load(path).map_err(|e| e.to_string())?,
        None => PluginConfig::default(),
    };
    match cli.command {
        Command::Serve(args) => {
            if args.exit_with_parent {
                exit_with_parent()?;
            }
            // Seeds and keys written by other tools (the bitrouter CLI writes them 0644) become
            // private before anything serves them.
            let bitrouter_home = home.bitrouter_home();
            if let Err(e) = bitrouter_mcp::fsutil::harden_tree(&bitrouter_home) {
                tracing::warn!(path = %bitrouter_home.display(), error = %e, "cannot make private");
            }
            let shutdown = CancellationToken::new();
            let options = SupervisorOptions {
                binary: args.bitrouter.clone(),
                auto_install: std::env::var("BITROUTER_MCP_AUTO_INSTALL").as_deref() != Ok("0"),
                ..Default::default()
            };
            let transport = match args.http {
                Some(addr) => format!("http://{addr}/mcp"),
                None => "stdio".to_string(),
            };
            let (state, supervisor) = AppState::start(
                home,
                config,
                cli.config.clone(),
                transport,
                options,
                shutdown.clone(),
            );
            let state = Arc::new(state);
            tokio::spawn(handle_signals(
                shutdown.clone(),
                state.supervisor.clone(),
                state.config.clone(),
            ));
            let served = if let Some(addr) = args.http {
                let home = state.home.clone();
                let bound = std::sync::Mutex::new(None);
                let served =
                    server::http::serve(state, addr, args.auth_token, shutdown.clone(), |a| {
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
            } else {
                // Returns when the client closes stdin: that ends the server too.
                server::stdio::serve(state, shutdown.clone()).await
            };
            // Whatever ended serving, the daemon goes down with us.
            shutdown.cancel();
            let _ = supervisor.await;
            served.map_err(|e| e.to_string())
        }
        Command::Auth {
            command: AuthCommand::Login(args),
        } => auth_login(&home, &config, args),
        Command::Dashboard(args) => open_dashboard(&home, args.no_open).await,
        Command::Daemon {
            command: DaemonCommand::Install,
        } => {
            eprintln!(
                "installing bitrouter {} (about 5 minutes on 2 cores)...",
                bitrouter_mcp::PINNED_BITROUTER_VERSION
            );
            let started = std::time::Instant::now();
            let path = install::install(|line| {
                // One progress line per cargo step, with the elapsed time.
                eprintln!("[{:>4}s] {line}", started.elapsed().as_secs());
            })
            .await
            .map_err(|e| e.to_string())?;
            eprintln!("bitrouter installed at {}", path.display());
            Ok(())
        }
    }
}

/// glibc gives each thread that allocates its own arena and keeps what sessions freed in them;
/// two arenas hold RSS flat under many HTTP sessions at no measurable speed cost here.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Asks the kernel to send us SIGTERM when our parent dies; our SIGTERM handling then stops the
/// daemon in order.
#[cfg(target_os = "linux")]
fn exit_with_parent() -> Result<(), String> {
    // SAFETY: prctl and getppid have no memory-safety preconditions.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
            return Err("--exit-with-parent: prctl(PR_SET_PDEATHSIG) failed".into());
        }
        if libc::getppid() == 1 {
            return Err("--exit-with-parent: the parent process has already exited".into());
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn exit_with_parent() -> Result<(), String> {
    Err("--exit-with-parent is only supported on Linux".into())
}

/// `auth login`: reads the keys from where the flags say (the terminal is read here only) and
/// hands them to the library to check and save.
fn auth_login(home: &Home, config: &PluginConfig, args: LoginArgs) -> Result<(), String> {
    use std::io::{IsTerminal, Read};
    let keys = if args.stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("reading stdin: {e}"))?;
        login::Keys::from_lines(&text)
    } else if !args.set.is_empty() {
        login::Keys::from_pairs(&args.set)
    } else if std::io::stdin().is_terminal() {
        eprintln!("Enter provider API keys (input is hidden; press Enter to skip one).");
        let mut answers = Vec::new();
        for var in login::prompts(config) {
            let value = rpassword::prompt_password(format!("{var}: "))
                .map_err(|e| format!("reading {var}: {e}"))?;
            answers.push((var, value));
        }
        login::Keys::from_answers(answers)
    } else {
        return Err("no terminal to prompt on: pass keys with --stdin (NAME=value lines) or --set NAME=value".into());
    }
    .map_err(|e| e.to_string())?;
    if keys.is_empty() {
        eprintln!("nothing to save");
        return Ok(());
    }
    let path = login::save(home, &keys).map_err(|e| e.to_string())?;
    eprintln!("saved {} to {}", keys.names().join(", "), path.display());
    Ok(())
}

/// SIGINT or SIGTERM fire `shutdown`; SIGHUP re-reads the config and restarts the daemon (which
/// also clears `failed`).
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
        let _ = tokio::signal::ctrl_c().await;
        shutdown.cancel();
        return;
    };
    loop {
        tokio::select! {
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

/// `dashboard`: prints the page's URL of the HTTP server running on this data dir and opens it
/// in a browser where one can be opened.
async fn open_dashboard(home: &Home, no_open: bool) -> Result<(), String> {
    let none = || {
        format!(
            "no HTTP server is running on {}: start one with `bitrouter-mcp serve --http` (stdio \
             servers have no page)",
            home.data_dir().display()
        )
    };
    let url = dashboard::running_url(home).await.ok_or_else(none)?;
    writeln!(std::io::stdout(), "{url}").map_err(|e| format!("writing stdout: {e}"))?;
    if !no_open {
        open_in_browser(&url);
    }
    Ok(())
}

/// Best effort: `open` on macOS, `xdg-open` elsewhere when a display exists; silent otherwise.
fn open_in_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
    {
        "xdg-open"
    } else {
        return;
    };
    let spawned = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut child) = spawned {
        // Openers return at once; reap it so no zombie is left.
        std::thread::spawn(move || child.wait());
    }
}
