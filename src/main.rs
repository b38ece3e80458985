//! The `bitrouter-mcp` binary: parses the command line and wires the library together.

mod cli;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use bitrouter_mcp::home::Home;
use bitrouter_mcp::routing::PluginConfig;
use bitrouter_mcp::server::{self, AppState};
use bitrouter_mcp::supervisor::install;
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
            let state = Arc::new(AppState::new(home, config, cli.config.clone()));
            let shutdown = CancellationToken::new();
            tokio::spawn(cancel_on_signal(shutdown.clone()));
            if let Some(addr) = args.http {
                server::http::serve(state, addr, args.auth_token, shutdown, |_| {})
                    .await
                    .map_err(|e| e.to_string())
            } else {
                server::stdio::serve(state, shutdown)
                    .await
                    .map_err(|e| e.to_string())
            }
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

/// Fires `shutdown` on SIGINT or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            shutdown.cancel();
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}
