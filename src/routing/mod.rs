//! The routing control plane's model: the user's provider/model config, where provider credentials
//! come from, and the route table built from them.
//!
//! This module owns the config model; nothing else parses or validates it.

pub mod config;
pub mod contract;
pub mod control;
pub mod credentials;
pub mod daemon_config;
pub mod endpoints;
pub mod env_file;
pub mod health;
pub mod probe;
pub mod source;
pub mod table;

pub use config::{
    ConfigError, EndpointConfig, ModelConfig, PluginConfig, ProviderConfig, Strategy,
};
pub use table::RouteTable;
