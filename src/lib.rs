//! bitrouter-mcp: an MCP server that makes a local BitRouter daemon an always-on, self-managing part
//! of an agent's toolbox.
//!
//! Module map:
//! - [`home`]: every path the project reads or writes, in one type.
//! - [`lifecycle`]: one `serve` process's life: its tasks, signals, and the shutdown order.
//! - [`logging`]: this process's own log (stderr, colour only on a terminal).
//! - [`redact`]: masking of secrets in anything shown.
//! - [`fsutil`]: atomic, private file writes (keys, tokens, `.env`).
//! - [`auth`]: BitRouter's on-disk accounts and JWTs, byte-compatible with `bitrouter` 0.11.0.
//! - [`routing`]: the user's provider/model config and the route table built from it.
//! - [`daemon_api`]: the only code that talks to the daemon's HTTP API.
//! - [`supervisor`]: the daemon's process lifecycle.
//! - [`tls`]: the process's one TLS setup (rustls + ring), installed before any HTTP client.
//! - [`spend_log`]: the daemon's spend log, read-only, mirrored incrementally in memory.
//! - [`tools`]: one module per MCP tool, plain functions over a [`home::Home`].
//! - [`server`]: the MCP protocol surface (stdio and streamable HTTP).

pub mod auth;
pub mod daemon_api;
pub mod fsutil;
pub mod home;
pub mod lifecycle;
pub mod logging;
pub mod redact;
pub mod routing;
pub mod server;
pub mod spend_log;
pub mod supervisor;
pub mod tls;
pub mod tools;

/// The BitRouter release this project is built and tested against.
pub const PINNED_BITROUTER_VERSION: &str = "0.11.0";
