//! The `bitrouter-mcp` binary: parses the command line and wires the library together.

mod cli;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use bitrouter_mcp::home::Home;
use bitrouter_mcp::routing::PluginConfig;
use bitrouter_mcp::server::{self, AppState};
use bitrouter_mcp::supervisor::{Supervisor, SupervisorOptions, install};
use cli::{Cli, Command, DaemonCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr: stdout is the MCP channel in stdio mode.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BITROUTER_MCP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
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
            let shutdown = CancellationToken::new();
            let options = SupervisorOptions {
                binary: args.bitrouter.clone(),
                ..Default::default()
            };
            let (state, supervisor) =
                AppState::start(home, config, cli.config.clone(), options, shutdown.clone());
            let state = Arc::new(state);
            tokio::spawn(handle_signals(shutdown.clone(), state.supervisor.clone()));
            let served = if let Some(addr) = args.http {
                server::http::serve(state, addr, args.auth_token, shutdown.clone(), |_| {}).await
            } else {
                // Returns when the client closes stdin: that ends the server too.
                server::stdio::serve(state, shutdown.clone()).await
            };
            // Whatever ended serving, the daemon goes down with us.
            shutdown.cancel();
            let _ = supervisor.await;
            served.map_err(|e| e.to_string())
        }
        Command::Daemon {
            command: DaemonCommand::Install,
        } => {
            eprintln!(
                "installing bitrouter {} (about 5 minutes on 2 cores)...",
                bitrouter_mcp::PINNED_BITROUTER_VERSION
            );
            let path = install::install().await.map_err(|e| e.to_string())?;
            eprintln!("bitrouter installed at {}", path.display());
            Ok(())
        }
    }
}

/// SIGINT or SIGTERM fire `shutdown`; SIGHUP restarts the daemon (and clears `failed`).
async fn handle_signals(shutdown: CancellationToken, supervisor: Supervisor) {
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
                tracing::info!("SIGHUP: restarting the daemon");
                supervisor.request_restart();
            }
        }
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}
