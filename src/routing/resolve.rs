//! Resolves each virtual model's endpoints into where they really go: the provider name the
//! daemon knows them by, the upstream's protocol, base URL and key sources ([`Target`]). One
//! resolution serves the daemon config renderer, the health prober and the route applier, so
//! they never disagree.
//!
//! Named `resolve` (it was `endpoints`) because resolving is all it does: the endpoints
//! themselves are the config's (`config::EndpointConfig`), the provider facts it resolves
//! against are `providers`', the naming rules (synthetic providers, env prefixes) are the
//! config's; this module only puts them together.

use std::collections::BTreeMap;

use super::config::{PluginConfig, effective_env_prefix};
use super::env_file::{env_reference, managed_var};
use super::providers::{Protocol, builtin};

/// Where a key may come from, first match wins (BitRouter lets the env prefix override).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// An environment or `.env` variable.
    Var(String),
    /// A literal from the config (also stored in `.env`).
    Literal(String),
}

/// An upstream as the prober reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub protocol: Protocol,
    pub api_base: String,
    pub keys: Vec<KeySource>,
}

impl Upstream {
    /// The key the daemon would use, from the environment or the `.env` values given.
    pub fn resolve_key(&self, env_file: &BTreeMap<String, String>) -> Option<String> {
        self.keys.iter().find_map(|k| match k {
            KeySource::Var(v) => std::env::var(v)
                .ok()
                .filter(|s| !s.is_empty())
                .or_else(|| env_file.get(v).filter(|s| !s.is_empty()).cloned()),
            KeySource::Literal(s) => Some(s.clone()),
        })
    }
}

/// One endpoint of one virtual model, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub model: String,
    pub index: usize,
    /// The provider as configured.
    pub provider: String,
    /// The provider name in the daemon (synthetic for endpoints with overrides).
    pub daemon_provider: String,
    pub model_id: String,
    pub upstream: Upstream,
}

impl Target {
    /// `provider:model_id` as the daemon names the endpoint (routes, metrics).
    pub fn id(&self) -> String {
        format!("{}:{}", self.daemon_provider, self.model_id)
    }
}

fn explicit_key(key: &str) -> KeySource {
    match env_reference(key) {
        Some(var) => KeySource::Var(var.to_string()),
        None => KeySource::Literal(key.to_string()),
    }
}

/// How the daemon reaches a configured or built-in provider.
pub fn provider_upstream(config: &PluginConfig, name: &str) -> Upstream {
    let p = config.providers.get(name);
    let base = builtin(name).or_else(|| p.and_then(|p| p.derives.as_deref()).and_then(builtin));
    let mut keys = vec![KeySource::Var(format!(
        "{}_API_KEY",
        effective_env_prefix(name, p)
    ))];
    if let Some(k) = p.and_then(|p| p.api_key.as_deref()) {
        keys.push(explicit_key(k));
    }
    Upstream {
        protocol: base.map_or(Protocol::OpenAi, |b| b.protocol),
        api_base: p
            .and_then(|p| p.api_base.clone())
            .or_else(|| base.map(|b| b.api_base.to_string()))
            .unwrap_or_default(),
        keys,
    }
}

/// Every endpoint of every virtual model, in config order.
pub fn targets(config: &PluginConfig) -> Vec<Target> {
    let mut out = Vec::new();
    for (model, m) in &config.models {
        for (index, e) in m.endpoints.iter().enumerate() {
            let mut upstream = provider_upstream(config, &e.provider);
            let daemon_provider = e.daemon_provider(model, index);
            if let Some(base) = &e.api_base {
                upstream.api_base = base.clone();
            }
            if let Some(key) = &e.api_key {
                upstream.keys = vec![
                    KeySource::Var(format!("{}_API_KEY", managed_var(&[&daemon_provider]))),
                    explicit_key(key),
                ];
            }
            out.push(Target {
                model: model.clone(),
                index,
                provider: e.provider.clone(),
                daemon_provider,
                model_id: e.model_id.clone(),
                upstream,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_resolve_to_daemon_names_bases_and_key_sources() {
        let config = PluginConfig::parse(
            r#"{"providers": {"fast-up": {"derives": "anthropic", "apiBase": "http://127.0.0.1:1/x", "apiKey": "lit"}},
                "models": {"smart": {"endpoints": [
                    {"provider": "openai", "modelId": "gpt-4o"},
                    {"provider": "fast-up", "modelId": "c", "apiBase": "http://127.0.0.1:2/y", "apiKey": "${EP_KEY}"}]}}}"#,
        )
        .unwrap();
        let t = targets(&config);
        assert_eq!(t[0].id(), "openai:gpt-4o");
        assert_eq!(t[0].upstream.api_base, "https://api.openai.com/v1");
        assert_eq!(
            t[0].upstream.keys,
            [KeySource::Var("OPENAI_API_KEY".into())]
        );
        assert_eq!(t[1].daemon_provider, "fast-up__smart_1");
        assert_eq!(t[1].upstream.protocol, Protocol::Anthropic);
        assert_eq!(t[1].upstream.api_base, "http://127.0.0.1:2/y");
        assert_eq!(
            t[1].upstream.keys,
            [
                KeySource::Var("BITROUTER_MCP_FAST_UP__SMART_1_API_KEY".into()),
                KeySource::Var("EP_KEY".into())
            ]
        );
        let p = provider_upstream(&config, "fast-up");
        let env: BTreeMap<String, String> = [(
            "BITROUTER_MCP_FAST_UP_API_KEY".to_string(),
            "from-env-file".to_string(),
        )]
        .into();
        assert_eq!(p.resolve_key(&env).as_deref(), Some("from-env-file"));
        assert_eq!(p.resolve_key(&BTreeMap::new()).as_deref(), Some("lit"));
    }
}
