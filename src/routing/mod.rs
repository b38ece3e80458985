//! The routing control plane's model: the user's provider/model config, where provider credentials
//! come from, and the route table built from them.
//!
//! This module owns the config model; nothing else parses or validates it.

pub mod config;
pub mod contract;
pub mod control;
pub mod credentials;
pub mod daemon_config;
pub mod env_file;
pub mod health;
pub mod login;
pub mod probe;
pub mod providers;
pub mod rejections;
pub mod resolve;
pub mod source;
pub mod table;

pub use config::{
    ConfigError, EndpointConfig, ModelConfig, PluginConfig, ProviderConfig, Strategy,
};
pub use table::RouteTable;

#[cfg(test)]
mod tests {
    /// Each routing module's source without its tests, by name.
    const SOURCES: [(&str, &str); 14] = [
        ("config", include_str!("config.rs")),
        ("contract", include_str!("contract.rs")),
        ("control", include_str!("control.rs")),
        ("credentials", include_str!("credentials.rs")),
        ("daemon_config", include_str!("daemon_config.rs")),
        ("env_file", include_str!("env_file.rs")),
        ("health", include_str!("health.rs")),
        ("login", include_str!("login.rs")),
        ("probe", include_str!("probe.rs")),
        ("providers", include_str!("providers.rs")),
        ("rejections", include_str!("rejections.rs")),
        ("resolve", include_str!("resolve.rs")),
        ("source", include_str!("source.rs")),
        ("table", include_str!("table.rs")),
    ];

    /// The routing modules `source` names (`super::x`, `crate::routing::x`),
    /// test code left out.
    fn imports(source: &str) -> std::collections::BTreeSet<&'static str> {
        let code = source.split("#[cfg(test)]").next().unwrap_or_default();
        let words: Vec<&str> = code
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .collect();
        // Grouped imports (`use super::{config, env_file};`) name their modules inside braces.
        let grouped: Vec<&str> = ["super::{", "crate::routing::{"]
            .iter()
            .flat_map(|open| code.split(open).skip(1))
            .filter_map(|rest| rest.split('}').next())
            .flat_map(|group| group.split(','))
            .map(|item| item.trim().split("::").next().unwrap_or_default())
            .collect();
        let mut out = std::collections::BTreeSet::new();
        for (name, _) in SOURCES {
            let named = grouped.contains(&name)
                || words.iter().any(|w| {
                    w.starts_with(&format!("super::{name}"))
                        || w.starts_with(&format!("crate::routing::{name}"))
                });
            if named {
                out.insert(name);
            }
        }
        out
    }

    #[test]
    fn routing_modules_import_each_other_without_a_circle() {
        let graph: std::collections::BTreeMap<&str, _> = SOURCES
            .iter()
            .map(|(name, src)| (*name, imports(src)))
            .collect();
        // Facts at the bottom import nothing of routing.
        assert!(graph["providers"].is_empty(), "{:?}", graph["providers"]);
        assert!(graph["env_file"].is_empty(), "{:?}", graph["env_file"]);
        // Peel off modules whose imports are all placed; a circle is what is left.
        let mut placed: Vec<&str> = Vec::new();
        while placed.len() < graph.len() {
            let next: Vec<&str> = graph
                .iter()
                .filter(|(name, deps)| {
                    !placed.contains(name) && deps.iter().all(|d| placed.contains(d))
                })
                .map(|(name, _)| *name)
                .collect();
            let left: Vec<_> = graph
                .iter()
                .filter(|(name, _)| !placed.contains(name))
                .collect();
            assert!(!next.is_empty(), "routing modules in a circle: {left:?}");
            placed.extend(next);
        }
    }
}
