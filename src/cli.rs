//! Command-line interface, kept apart from the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// MCP server that installs, supervises and routes through a local BitRouter daemon.
#[derive(Debug, Parser)]
#[command(name = "bitrouter-mcp", version, propagate_version = true)]
pub struct Cli {
    /// Plugin config (JSON or YAML, camelCase: port, host, autoStart, healthCheckIntervalMs,
    /// interceptAllModels, providers, models). Every field is optional.
    #[arg(long, global = true, env = "BITROUTER_MCP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where this server keeps its state; BitRouter's home is <data-dir>/bitrouter.
    /// [default: the user's data directory + /bitrouter-mcp]
    #[arg(
        long,
        global = true,
        env = "BITROUTER_MCP_DATA_DIR",
        value_name = "DIR"
    )]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the MCP server over stdio or streamable HTTP.
    Serve(ServeArgs),
    /// Manage the BitRouter daemon binary.
    Daemon {
        #[command(subcommand)]
        command: DaemonCommand,
    },
    /// Print the live dashboard's URL of the HTTP server running on this data dir, and open it
    /// in a browser when one is available.
    Dashboard(DashboardArgs),
    /// Store provider API keys in BitRouter's .env.
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Save provider keys (OPENAI_API_KEY, ANTHROPIC_API_KEY, GOOGLE_API_KEY, ...) to
    /// <data-dir>/bitrouter/.env, mode 0600. On a terminal it prompts (input hidden, empty skips);
    /// scripts use --stdin or --set. A running server restarts its daemon to load them.
    Login(LoginArgs),
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Read NAME=value lines from stdin instead of prompting.
    #[arg(long, conflicts_with = "set")]
    pub stdin: bool,
    /// NAME=value to save (repeatable). Visible to other local users in the process list:
    /// prefer --stdin for real keys.
    #[arg(long, value_name = "NAME=VALUE")]
    pub set: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Serve MCP on stdin/stdout (for agents that spawn the server).
    #[arg(long, conflicts_with = "http", required_unless_present = "http")]
    pub stdio: bool,
    /// Serve MCP over streamable HTTP at http://ADDR/mcp (default 127.0.0.1:8788: loopback only;
    /// another address needs --auth-token).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8788")]
    pub http: Option<SocketAddr>,
    /// The bitrouter binary to run, instead of the pinned cache or PATH.
    #[arg(long, env = "BITROUTER_BIN", value_name = "PATH")]
    pub bitrouter: Option<PathBuf>,
    /// Exit (stopping the daemon) when the process that started this server dies; for
    /// launchers such as the OpenClaw adapter.
    #[arg(long)]
    pub exit_with_parent: bool,
    /// Bearer token HTTP clients must send; required for a non-loopback --http address.
    #[arg(
        long,
        env = "BITROUTER_MCP_AUTH_TOKEN",
        hide_env_values = true,
        requires = "http"
    )]
    pub auth_token: Option<String>,
}

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Only print the URL.
    #[arg(long)]
    pub no_open: bool,
}

#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Build the pinned BitRouter release into the cache (reused when present).
    Install,
}
