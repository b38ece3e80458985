//! The BitRouter daemon's process lifecycle: finding the binary, and (growing) starting, watching,
//! restarting and stopping it. Agents observe it through `bitrouter_status`; nothing here is
//! reachable as an MCP tool.

pub mod binary;
pub mod install;
