//! Where each virtual model's endpoints really go: the provider name the daemon knows them by,
//! the upstream's protocol, base URL and key sources. One resolution serves the daemon config
//! renderer, the health prober and the route applier, so they never disagree.
//!
//! BitRouter's dynamic routes carry only `provider` + `model_id`, so an endpoint with its own
//! `apiKey`/`apiBase` becomes a synthetic provider `<provider>__<model>_<index>` deriving from its
//! provider.

use std::collections::BTreeMap;

use super::config::{PluginConfig, ProviderConfig};
use super::credentials::env_reference;
use super::daemon_config::MANAGED_PREFIX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    OpenAi,
    Anthropic,
    Google,
}

/// A provider BitRouter 0.11.0 ships.
#[derive(Debug)]
pub struct Builtin {
    pub name: &'static str,
    pub protocol: Protocol,
    pub api_base: &'static str,
    pub env_prefix: &'static str,
}

/// BitRouter 0.11.0's built-in providers (`bitrouter-config/providers/*.yaml`).
pub const BUILTINS: [Builtin; 4] = [
    Builtin {
        name: "openai",
        protocol: Protocol::OpenAi,
        api_base: "https://api.openai.com/v1",
        env_prefix: "OPENAI",
    },
    Builtin {
        name: "anthropic",
        protocol: Protocol::Anthropic,
        api_base: "https://api.anthropic.com",
        env_prefix: "ANTHROPIC",
    },
    Builtin {
        name: "google",
        protocol: Protocol::Google,
        api_base: "https://generativelanguage.googleapis.com",
        env_prefix: "GOOGLE",
    },
    Builtin {
        name: "openrouter",
        protocol: Protocol::OpenAi,
        api_base: "https://openrouter.ai/api/v1",
        env_prefix: "OPENROUTER",
    },
];

pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|b| b.name)
}

pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

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

/// `BITROUTER_MCP_<PARTS>` with non-alphanumerics as `_`.
pub fn managed_var(parts: &[&str]) -> String {
    let mut s = String::from(MANAGED_PREFIX);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            s.push('_');
        }
        s.extend(p.chars().map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        }));
    }
    s
}

/// The env prefix the daemon config gives a configured provider (see `daemon_config`): the
/// user's, ours when a key is configured (so it wins over an inherited prefix), the built-in's,
/// or the provider's own name.
pub fn effective_env_prefix(name: &str, p: Option<&ProviderConfig>) -> String {
    match p {
        Some(ProviderConfig {
            env_prefix: Some(prefix),
            ..
        }) => prefix.clone(),
        Some(ProviderConfig {
            api_key: Some(_), ..
        }) => managed_var(&[name]),
        _ => match builtin(name) {
            Some(b) => b.env_prefix.to_string(),
            None => name.to_ascii_uppercase().replace('-', "_"),
        },
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

/// The synthetic provider name for an endpoint with its own key or base URL:
/// `<provider>__<model>_<index>`. Model names are free text but provider names and `.env`
/// variables are not (lower-case, and `-` becomes `_` in a variable), so a model name that does
/// not survive that unchanged (`team_a`, `Smart`) gets a hash of its exact spelling appended:
/// `team-a` and `team_a`, or `Smart` and `smart`, never share a provider or a key.
/// [`PluginConfig::validate`] still refuses any generated name that collides, naming both.
pub fn synthetic_provider(provider: &str, model: &str, index: usize) -> String {
    let slug: String = model
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let lossless = model
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if lossless {
        format!("{provider}__{slug}_{index}")
    } else {
        format!("{provider}__{slug}_{:08x}_{index}", fnv1a(model.as_bytes()))
    }
}

/// FNV-1a, 32 bits: a stable hash (the std hasher may change between Rust releases, which
/// would rename providers on an upgrade).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// Every endpoint of every virtual model, in config order.
pub fn targets(config: &PluginConfig) -> Vec<Target> {
    let mut out = Vec::new();
    for (model, m) in &config.models {
        for (index, e) in m.endpoints.iter().enumerate() {
            let mut upstream = provider_upstream(config, &e.provider);
            let overridden = e.api_key.is_some() || e.api_base.is_some();
            let daemon_provider = if overridden {
                synthetic_provider(&e.provider, model, index)
            } else {
                e.provider.clone()
            };
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

/// Generated names that would collide: two endpoints or providers sharing a daemon provider or
/// a key variable would send one upstream the other's key. Each problem names both.
pub fn name_collisions(config: &PluginConfig) -> Vec<String> {
    use super::config::shown;
    let label_provider = |name: &str| {
        if super::config::may_be_secret(name) {
            format!("providers.<{}>", shown(name))
        } else {
            format!("providers.{name}")
        }
    };
    let mut errors = Vec::new();
    // Key variable prefixes: generated ones must be unique, and not equal a prefix the user
    // gave another provider.
    let mut prefixes: BTreeMap<String, String> = BTreeMap::new();
    for (name, p) in &config.providers {
        if let Some(prefix) = &p.env_prefix {
            prefixes
                .entry(prefix.clone())
                .or_insert_with(|| label_provider(name));
        }
    }
    let mut claim =
        |prefix: String, who: String, errors: &mut Vec<String>| match prefixes.get(&prefix) {
            Some(other) if *other != who => errors.push(format!(
                "{other} and {who} would share the key variable {prefix}_API_KEY, so one \
                 upstream would get the other's key: rename one of them"
            )),
            Some(_) => {}
            None => {
                prefixes.insert(prefix, who);
            }
        };
    for (name, p) in &config.providers {
        if p.env_prefix.is_none() && (p.api_key.is_some() || builtin(name).is_none()) {
            claim(
                effective_env_prefix(name, Some(p)),
                label_provider(name),
                &mut errors,
            );
        }
    }
    let mut daemon_names: BTreeMap<String, String> = builtin_names()
        .map(|n| (n.to_string(), format!("the built-in provider {n}")))
        .collect();
    for name in config.providers.keys() {
        daemon_names.insert(name.clone(), label_provider(name));
    }
    for t in targets(config) {
        if t.daemon_provider == t.provider {
            continue;
        }
        let model = if super::config::may_be_secret(&t.model) {
            format!("<{}>", shown(&t.model))
        } else {
            t.model.clone()
        };
        let who = format!("models.{model}.endpoints[{}]", t.index);
        match daemon_names.get(&t.daemon_provider) {
            Some(other) => errors.push(format!(
                "{other} and {who} would share the daemon provider {}: rename one of them",
                t.daemon_provider
            )),
            None => {
                daemon_names.insert(t.daemon_provider.clone(), who.clone());
            }
        }
        if config.models[&t.model].endpoints[t.index].api_key.is_some() {
            claim(managed_var(&[&t.daemon_provider]), who, &mut errors);
        }
    }
    errors
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

    #[test]
    fn generated_names_never_merge_models_that_differ() {
        let config = PluginConfig::parse(
            r#"{"models": {
                "team-a": {"endpoints": [{"provider": "openai", "modelId": "m", "apiKey": "key-dash"}]},
                "team_a": {"endpoints": [{"provider": "openai", "modelId": "m", "apiKey": "key-under"}]},
                "Smart": {"endpoints": [{"provider": "openai", "modelId": "m", "apiKey": "key-upper"}]},
                "smart": {"endpoints": [{"provider": "openai", "modelId": "m", "apiKey": "key-lower"}]}}}"#,
        )
        .unwrap();
        let t = targets(&config);
        let names: std::collections::BTreeSet<&str> =
            t.iter().map(|t| t.daemon_provider.as_str()).collect();
        assert_eq!(names.len(), 4, "{names:?}");
        let vars: std::collections::BTreeSet<String> =
            names.iter().map(|n| managed_var(&[n])).collect();
        assert_eq!(vars.len(), 4, "{vars:?}");
        // Plain lower-case names keep the readable form.
        assert!(names.contains("openai__smart_0"), "{names:?}");
        let rendered = super::super::daemon_config::render(&config);
        let keys: std::collections::BTreeSet<&str> =
            rendered.env.values().map(String::as_str).collect();
        assert_eq!(
            keys.len(),
            4,
            "each key kept under its own variable: {:?}",
            rendered.env
        );
        assert!(name_collisions(&config).is_empty());
    }
}
