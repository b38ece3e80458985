//! The `bitrouter-mcp` binary: parses the command line and wires the library together.

mod cli;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use bitrouter_mcp::home::Home;
use bitrouter_mcp::routing::PluginConfig;
use bitrouter_mcp::routing::source::ConfigSource;
use bitrouter_mcp::routing::{credentials, env_file};
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

/// `auth login`: collects NAME=value pairs (prompt, stdin or flags) and merges them into `.env`.
fn auth_login(home: &Home, config: &PluginConfig, args: LoginArgs) -> Result<(), String> {
    use std::io::{BufRead, IsTerminal};
    let mut entries = std::collections::BTreeMap::new();
    let mut add = |pair: &str, origin: &str| -> Result<(), String> {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{origin}: expected NAME=value (e.g. OPENAI_API_KEY=sk-...)"))?;
        let (name, value) = (name.trim(), value.trim());
        env_file::validate_entry(name, value).map_err(|e| format!("{origin}: {e}"))?;
        entries.insert(name.to_string(), value.to_string());
        Ok(())
    };
    if args.stdin {
        for (i, line) in std::io::stdin().lock().lines().enumerate() {
            let line = line.map_err(|e| format!("reading stdin: {e}"))?;
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                add(line, &format!("stdin line {}", i + 1))?;
            }
        }
    } else if !args.set.is_empty() {
        for pair in &args.set {
            add(pair, "--set")?;
        }
    } else if std::io::stdin().is_terminal() {
        let vars = credentials::login_vars(config);
        eprintln!("Enter provider API keys (input is hidden; press Enter to skip one).");
        for var in vars {
            let value = rpassword::prompt_password(format!("{var}: "))
                .map_err(|e| format!("reading {var}: {e}"))?;
            if !value.trim().is_empty() {
                add(&format!("{var}={}", value.trim()), &var)?;
            }
        }
    } else {
        return Err("no terminal to prompt on: pass keys with --stdin (NAME=value lines) or --set NAME=value".into());
    }
    if entries.is_empty() {
        eprintln!("nothing to save");
        return Ok(());
    }
    let path = home.env_file();
    env_file::update(&path, |k| entries.contains_key(k), &entries)
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    let names: Vec<&str> = entries.keys().map(String::as_str).collect();
    eprintln!("saved {} to {}", names.join(", "), path.display());
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
    let addr = dashboard::recorded_address(home).ok_or_else(none)?;
    let url = dashboard::url(addr);
    let probe = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let reachable = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        tokio::net::TcpStream::connect(probe),
    )
    .await;
    if !matches!(reachable, Ok(Ok(_))) {
        return Err(none());
    }
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
