//! Where each provider's key comes from: a literal in config, a `${VAR}` reference, the provider's
//! env prefix (`OPENAI` → `OPENAI_API_KEY`), or BitRouter's `.env`. Reports names only, never keys.

use std::collections::BTreeSet;
use std::path::Path;

use schemars::JsonSchema;
use serde::Serialize;

use super::config::{PluginConfig, effective_env_prefix};
use super::env_file::env_reference;
use super::providers::builtin;
use crate::home::Home;

/// One provider as status shows it: no secret, just where its key would come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ProviderSummary {
    pub name: String,
    /// Built-in provider it inherits from, for custom providers.
    pub derives: Option<String>,
    pub api_base: Option<String>,
    /// Where the key comes from, e.g. `env OPENAI_API_KEY`, `literal (stored in .env)`, `none`.
    pub credential: String,
    pub has_credentials: bool,
    /// Whether it was named in the config (false: a built-in picked up from the environment).
    pub configured: bool,
}

/// Names of the variables set in a `.env` file (values are not kept).
pub fn env_file_keys(path: &Path) -> BTreeSet<String> {
    super::env_file::read(path).into_keys().collect()
}

/// The providers as status and the route table show them: credentials from this process's
/// environment and BitRouter's `.env`.
pub fn providers(home: &Home, config: &PluginConfig) -> Vec<ProviderSummary> {
    summarize(
        config,
        |var| std::env::var_os(var).is_some_and(|v| !v.is_empty()),
        &env_file_keys(&home.env_file()),
    )
}

/// The variables `auth login` asks for: each known provider's key variable, built-ins first.
pub fn login_vars(config: &PluginConfig) -> Vec<String> {
    config
        .known_providers()
        .into_iter()
        .filter(|name| {
            // A provider whose key is a `${VAR}` reference is asked for under that VAR.
            config
                .providers
                .get(name)
                .and_then(|p| p.api_key.as_deref())
                .is_none_or(|k| env_reference(k).is_some())
        })
        .map(|name| {
            let p = config.providers.get(&name);
            match p.and_then(|p| p.api_key.as_deref()).and_then(env_reference) {
                Some(var) => var.to_string(),
                None => format!("{}_API_KEY", effective_env_prefix(&name, p)),
            }
        })
        .collect()
}

/// Summarises every provider the daemon would know: built-ins and configured ones.
pub fn summarize(
    config: &PluginConfig,
    env: impl Fn(&str) -> bool,
    env_file: &BTreeSet<String>,
) -> Vec<ProviderSummary> {
    let is_set = |var: &str| env(var) || env_file.contains(var);
    let mut out = Vec::new();
    let names = config.known_providers();
    for name in names {
        let p = config.providers.get(&name);
        let (credential, has) = match p.and_then(|p| p.api_key.as_deref()) {
            Some(key) => match env_reference(key) {
                Some(var) if is_set(var) => (format!("env {var}"), true),
                Some(var) => (format!("env {var} (not set)"), false),
                None => ("literal key from config (stored in .env)".to_string(), true),
            },
            None => {
                let var = format!("{}_API_KEY", effective_env_prefix(&name, p));
                if is_set(&var) {
                    (format!("env {var}"), true)
                } else {
                    ("none".to_string(), false)
                }
            }
        };
        let builtin = builtin(&name).is_some();
        if !builtin || p.is_some() || has {
            out.push(ProviderSummary {
                derives: p.and_then(|p| p.derives.clone()),
                api_base: p.and_then(|p| p.api_base.clone()),
                configured: p.is_some(),
                name,
                credential,
                has_credentials: has,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn detects_env_keys_and_never_shows_literals() {
        let config = PluginConfig::parse(
            r#"{"providers":{"openrouter":{"derives":"openai","apiKey":"${OPENROUTER_API_KEY}"},
                "mine":{"derives":"anthropic","apiKey":"sk-literal-123"}}}"#,
        )
        .unwrap();
        let env = |v: &str| v == "OPENAI_API_KEY";
        let file: BTreeSet<String> = ["GOOGLE_API_KEY".to_string()].into();
        let s = summarize(&config, env, &file);
        let names: Vec<&str> = s.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["openai", "google", "openrouter", "mine"]);
        assert_eq!(s[0].credential, "env OPENAI_API_KEY");
        assert!(s[1].has_credentials);
        assert_eq!(s[2].credential, "env OPENROUTER_API_KEY (not set)");
        assert!(!s[2].has_credentials);
        assert_eq!(s[3].credential, "literal key from config (stored in .env)");
        let text = serde_json::to_string(&s).unwrap();
        assert!(!text.contains("sk-literal-123"));
    }
}
