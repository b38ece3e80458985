//! Renders the daemon's `bitrouter.yaml` and the managed part of its `.env` from the plugin config.
//!
//! Output is deterministic (sorted maps) so an unchanged config rewrites identical bytes. Literal
//! keys never enter the yaml: they go to `.env` as `BITROUTER_MCP_*` variables that the yaml
//! references as `${VAR}`. Each provider gets an `env_prefix` of its own, because BitRouter lets an
//! inherited prefix (`OPENAI` for anything deriving openai) override an explicit key — which would
//! send the user's OpenAI key to a custom provider.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::config::PluginConfig;
use super::credentials::env_reference;
use super::endpoints::{self, builtin, effective_env_prefix, managed_var};
use super::env_file;
use crate::fsutil;

/// Prefix of every `.env` variable this project manages; other lines are the user's.
pub const MANAGED_PREFIX: &str = "BITROUTER_MCP_";

#[derive(Debug, Serialize)]
struct Yaml {
    server: Server,
    providers: BTreeMap<String, Provider>,
    models: BTreeMap<String, Model>,
}

#[derive(Debug, Serialize)]
struct Server {
    listen: String,
}

#[derive(Debug, Serialize)]
struct Provider {
    #[serde(skip_serializing_if = "Option::is_none")]
    derives: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_base: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    env_prefix: Option<String>,
}

#[derive(Debug, Serialize)]
struct Model {
    strategy: &'static str,
    endpoints: Vec<Endpoint>,
}

#[derive(Debug, Serialize)]
struct Endpoint {
    provider: String,
    model_id: String,
}

/// What the daemon is given: its yaml and our `.env` variables (name → secret value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConfig {
    pub yaml: String,
    pub env: BTreeMap<String, String>,
}

/// A key as the yaml sees it: `${VAR}` as given, or a literal moved to `.env` under `var`.
fn key_ref(key: &str, var: String, env: &mut BTreeMap<String, String>) -> String {
    match env_reference(key) {
        Some(_) => key.to_string(),
        None => {
            env.insert(var.clone(), key.to_string());
            format!("${{{var}}}")
        }
    }
}

/// Renders the daemon's files for `config`.
pub fn render(config: &PluginConfig) -> DaemonConfig {
    let mut env = BTreeMap::new();
    let mut providers = BTreeMap::new();
    for (name, p) in &config.providers {
        let explicit_prefix =
            p.env_prefix.is_some() || p.api_key.is_some() || builtin(name).is_none();
        let env_prefix = explicit_prefix.then(|| effective_env_prefix(name, Some(p)));
        providers.insert(
            name.clone(),
            Provider {
                derives: p.derives.clone(),
                api_base: p.api_base.clone(),
                api_key: p
                    .api_key
                    .as_deref()
                    .map(|k| key_ref(k, format!("{}_API_KEY", managed_var(&[name])), &mut env)),
                env_prefix,
            },
        );
    }
    let mut models: BTreeMap<String, Model> = BTreeMap::new();
    let targets = endpoints::targets(config);
    for t in &targets {
        if t.daemon_provider != t.provider {
            // An endpoint with its own key or base: a provider of its own deriving from its
            // provider. With its own key it gets its own prefix so that key wins.
            let e = &config.models[&t.model].endpoints[t.index];
            let own = managed_var(&[&t.daemon_provider]);
            providers.insert(
                t.daemon_provider.clone(),
                Provider {
                    derives: Some(t.provider.clone()),
                    api_base: e.api_base.clone(),
                    api_key: e
                        .api_key
                        .as_deref()
                        .map(|k| key_ref(k, format!("{own}_API_KEY"), &mut env)),
                    env_prefix: e.api_key.as_ref().map(|_| own),
                },
            );
        }
        let m = &config.models[&t.model];
        models
            .entry(t.model.clone())
            .or_insert_with(|| Model {
                strategy: m.strategy.as_str(),
                endpoints: Vec::new(),
            })
            .endpoints
            .push(Endpoint {
                provider: t.daemon_provider.clone(),
                model_id: t.model_id.clone(),
            });
    }
    let host = if config.host == "localhost" {
        "127.0.0.1"
    } else {
        &config.host
    };
    let listen = if host.contains(':') {
        format!("[{host}]:{}", config.port)
    } else {
        format!("{host}:{}", config.port)
    };
    let yaml = Yaml {
        server: Server { listen },
        providers,
        models,
    };
    let body = serde_yaml::to_string(&yaml).unwrap_or_default();
    DaemonConfig {
        yaml: format!(
            "# Generated by bitrouter-mcp from its config; edits are overwritten.\n{body}"
        ),
        env,
    }
}

/// Whether going from `old` to `new` needs a daemon restart: anything but routes changed
/// (listen address, providers, keys), or a model was removed (its config route would linger).
/// Added or changed models are applied live through dynamic routes.
pub fn needs_restart(old: &PluginConfig, new: &PluginConfig) -> bool {
    let (a, b) = (render(old), render(new));
    let head = |y: &str| y.split("\nmodels:").next().unwrap_or_default().to_string();
    head(&a.yaml) != head(&b.yaml)
        || a.env != b.env
        || old.models.keys().any(|m| !new.models.contains_key(m))
}

/// Writes the yaml (0600: it names env vars only, but stays private anyway) and merges our
/// variables into `.env`. Returns whether anything changed on disk.
pub fn write(rendered: &DaemonConfig, yaml_path: &Path, env_path: &Path) -> std::io::Result<bool> {
    let mut changed = false;
    if std::fs::read_to_string(yaml_path).ok().as_deref() != Some(rendered.yaml.as_str()) {
        fsutil::write_private(yaml_path, rendered.yaml.as_bytes())?;
        changed = true;
    }
    changed |= env_file::update(env_path, |k| k.starts_with(MANAGED_PREFIX), &rendered.env)?;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn literal_keys_go_to_env_and_custom_providers_get_their_own_prefix() {
        let config = PluginConfig::parse(
            r#"{"port": 9000, "providers": {
                 "openrouter": {"derives": "openai", "apiBase": "https://or.example/v1", "apiKey": "sk-lit-1"},
                 "mine": {"derives": "anthropic"},
                 "openai": {"apiKey": "${MY_OPENAI}"}},
               "models": {"smart": {"endpoints": [
                 {"provider": "openrouter", "modelId": "a", "apiKey": "sk-ep-2"},
                 {"provider": "openai", "modelId": "gpt-4o"}]}}}"#,
        )
        .unwrap();
        let r = render(&config);
        assert!(
            !r.yaml.contains("sk-lit-1") && !r.yaml.contains("sk-ep-2"),
            "{}",
            r.yaml
        );
        assert_eq!(r.env["BITROUTER_MCP_OPENROUTER_API_KEY"], "sk-lit-1");
        assert_eq!(
            r.env["BITROUTER_MCP_OPENROUTER__SMART_0_API_KEY"],
            "sk-ep-2"
        );
        assert_eq!(r.env.len(), 2);
        let y: serde_yaml::Value = serde_yaml::from_str(&r.yaml).unwrap();
        assert_eq!(y["server"]["listen"], "127.0.0.1:9000");
        let or = &y["providers"]["openrouter"];
        assert_eq!(or["api_key"], "${BITROUTER_MCP_OPENROUTER_API_KEY}");
        assert_eq!(or["env_prefix"], "BITROUTER_MCP_OPENROUTER");
        assert_eq!(y["providers"]["mine"]["env_prefix"], "MINE");
        assert_eq!(y["providers"]["openai"]["api_key"], "${MY_OPENAI}");
        assert_eq!(y["models"]["smart"]["strategy"], "priority");
        // The endpoint with its own key routes through a provider of its own.
        assert_eq!(
            y["models"]["smart"]["endpoints"][0]["provider"],
            "openrouter__smart_0"
        );
        let own = &y["providers"]["openrouter__smart_0"];
        assert_eq!(own["derives"], "openrouter");
        assert_eq!(
            own["api_key"],
            "${BITROUTER_MCP_OPENROUTER__SMART_0_API_KEY}"
        );
        assert_eq!(own["env_prefix"], "BITROUTER_MCP_OPENROUTER__SMART_0");
        assert_eq!(render(&config), r, "deterministic");
    }

    #[test]
    fn only_route_additions_and_changes_are_live() {
        let base = PluginConfig::parse(
            r#"{"models":{"a":{"endpoints":[{"provider":"openai","modelId":"x"}]}}}"#,
        )
        .unwrap();
        let mut more = base.clone();
        more.models.insert("b".into(), base.models["a"].clone());
        assert!(!needs_restart(&base, &more), "a new model is applied live");
        assert!(
            needs_restart(&more, &base),
            "a removed model needs a restart"
        );
        let mut port = base.clone();
        port.port = 9999;
        assert!(needs_restart(&base, &port));
        let mut key = base.clone();
        key.providers.insert(
            "openai".into(),
            super::super::ProviderConfig {
                api_key: Some("sk-new".into()),
                ..Default::default()
            },
        );
        assert!(needs_restart(&base, &key));
    }

    #[test]
    fn writing_keeps_user_keys_and_replaces_ours() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join(".env");
        std::fs::write(
            &env,
            "OPENAI_API_KEY=sk-user\nBITROUTER_MCP_GONE_API_KEY=1\n",
        )
        .unwrap();
        let config =
            PluginConfig::parse(r#"{"providers":{"x":{"derives":"openai","apiKey":"lit-value"}}}"#)
                .unwrap();
        let yaml = dir.path().join("bitrouter.yaml");
        assert!(write(&render(&config), &yaml, &env).unwrap());
        assert_eq!(
            std::fs::read_to_string(&env).unwrap(),
            "OPENAI_API_KEY=sk-user\nBITROUTER_MCP_X_API_KEY=lit-value\n"
        );
        assert!(
            !write(&render(&config), &yaml, &env).unwrap(),
            "unchanged config, no write"
        );
    }
}
