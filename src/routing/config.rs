//! The plugin config (the seed plugin's table): camelCase, JSON or YAML, every field optional.
//!
//! Parsing rejects unknown keys by name; [`PluginConfig::validate`] then checks meaning and names
//! the path of every problem (`models.smart.endpoints[1].provider: unknown provider ...`).

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::endpoints::{builtin, builtin_names};

fn default_port() -> u16 {
    8787
}
fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_auto_start() -> bool {
    true
}
fn default_health_check_interval_ms() -> u64 {
    30_000
}
fn default_metrics_poll_ms() -> u64 {
    250
}

/// The whole config. Defaults are the seed plugin's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PluginConfig {
    /// Port the BitRouter daemon listens on (default 8787).
    #[serde(default = "default_port")]
    pub port: u16,
    /// Address the daemon binds to (default 127.0.0.1).
    #[serde(default = "default_host")]
    pub host: String,
    /// Start the daemon with the server (default true).
    #[serde(default = "default_auto_start")]
    pub auto_start: bool,
    /// Interval between health checks, in milliseconds (default 30000).
    #[serde(default = "default_health_check_interval_ms")]
    pub health_check_interval_ms: u64,
    /// Route every model through BitRouter, not only configured ones (default false).
    #[serde(default)]
    pub intercept_all_models: bool,
    /// How often the daemon's traffic counters are read to catch failing endpoints between
    /// health checks, in milliseconds (default 250; 0 turns it off).
    #[serde(default = "default_metrics_poll_ms")]
    pub metrics_poll_ms: u64,
    /// Also delete dynamic routes someone else added for model names not in `models` (default
    /// false: they are reported). Routes for configured models are always put back.
    #[serde(default)]
    pub enforce_routes: bool,
    /// Provider overrides and custom providers, by name.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Virtual models, by name.
    #[serde(default)]
    pub models: BTreeMap<String, ModelConfig>,
}

impl Default for PluginConfig {
    fn default() -> Self {
        Self {
            port: default_port(),
            host: default_host(),
            auto_start: default_auto_start(),
            health_check_interval_ms: default_health_check_interval_ms(),
            intercept_all_models: false,
            metrics_poll_ms: default_metrics_poll_ms(),
            enforce_routes: false,
            providers: BTreeMap::new(),
            models: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProviderConfig {
    /// A literal key (stored in BitRouter's `.env`, never in its yaml) or `${ENV_VAR}`.
    pub api_key: Option<String>,
    pub api_base: Option<String>,
    /// Env var prefix: `OPENAI` reads `OPENAI_API_KEY`.
    pub env_prefix: Option<String>,
    /// Built-in provider this one inherits from: openai, anthropic, google or openrouter.
    pub derives: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Endpoints in order: the first healthy one serves.
    #[default]
    Priority,
    /// Round-robin over healthy endpoints.
    LoadBalance,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Priority => "priority",
            Strategy::LoadBalance => "load_balance",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModelConfig {
    #[serde(default)]
    pub strategy: Strategy,
    pub endpoints: Vec<EndpointConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EndpointConfig {
    pub provider: String,
    pub model_id: String,
    /// Per-endpoint key override (literal or `${ENV_VAR}`).
    pub api_key: Option<String>,
    /// Per-endpoint base URL override.
    pub api_base: Option<String>,
}

/// Why a config could not be used. The message names the file or field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid config: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

impl PluginConfig {
    /// Reads a JSON or YAML config file and validates it.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses config text (JSON is read as the YAML subset it is) and validates it.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: PluginConfig = if text.trim().is_empty() {
            PluginConfig::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| ConfigError::Parse {
                path: "<inline>".into(),
                message: hide_values(&e.to_string()),
            })?
        };
        config.validate()?;
        Ok(config)
    }

    /// Every provider name a route may use: built-ins plus configured ones.
    pub fn known_providers(&self) -> Vec<String> {
        let mut names: Vec<String> = builtin_names().map(str::to_string).collect();
        for name in self.providers.keys() {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }

    /// `host:port` the daemon listens on.
    pub fn listen_addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Checks meaning; every problem is reported with its path.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        if self.port == 0 {
            errors.push("port: must be 1-65535".to_string());
        }
        if self.host.parse::<std::net::IpAddr>().is_err() && self.host != "localhost" {
            errors.push(format!(
                "host: \"{}\" is not an IP address or \"localhost\"",
                self.host
            ));
        }
        if self.metrics_poll_ms != 0 && !(50..=60_000).contains(&self.metrics_poll_ms) {
            errors.push(format!(
                "metricsPollMs: {} is out of range (expected 0 to turn off, or 50-60000)",
                self.metrics_poll_ms
            ));
        }
        if !(100..=86_400_000).contains(&self.health_check_interval_ms) {
            errors.push(format!(
                "healthCheckIntervalMs: {} is out of range (expected 100-86400000)",
                self.health_check_interval_ms
            ));
        }
        for (name, p) in &self.providers {
            let at = format!("providers.{name}");
            if !valid_ident(name) {
                errors.push(format!(
                    "{at}: provider names may use a-z, 0-9, - and _ only"
                ));
            }
            let builtins = builtin_names().collect::<Vec<_>>().join(", ");
            match &p.derives {
                Some(d) if builtin(d).is_none() => errors.push(format!(
                    "{at}.derives: unknown provider \"{d}\" (expected one of: {builtins})"
                )),
                None if builtin(name).is_none() => errors.push(format!(
                    "{at}.derives: required for a custom provider (one of: {builtins})"
                )),
                _ => {}
            }
            check_url(&mut errors, &format!("{at}.apiBase"), p.api_base.as_deref());
            check_key(&mut errors, &format!("{at}.apiKey"), p.api_key.as_deref());
            if let Some(prefix) = &p.env_prefix
                && (prefix.is_empty()
                    || !prefix
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            {
                errors.push(format!(
                    "{at}.envPrefix: \"{prefix}\" must be upper-case letters, digits and _"
                ));
            }
        }
        let known = self.known_providers();
        for (name, m) in &self.models {
            let at = format!("models.{name}");
            if name.is_empty() || name.contains(':') || name.chars().any(char::is_whitespace) {
                errors.push(format!(
                    "{at}: model names must be non-empty, without spaces or ':' (':' means direct provider:model routing)"
                ));
            }
            if m.endpoints.is_empty() {
                errors.push(format!("{at}.endpoints: at least one endpoint is required"));
            }
            for (i, e) in m.endpoints.iter().enumerate() {
                let at = format!("{at}.endpoints[{i}]");
                if !known.contains(&e.provider) {
                    errors.push(format!(
                        "{at}.provider: unknown provider \"{}\" (known: {})",
                        e.provider,
                        known.join(", ")
                    ));
                }
                if e.model_id.trim().is_empty() {
                    errors.push(format!("{at}.modelId: must not be empty"));
                }
                check_url(&mut errors, &format!("{at}.apiBase"), e.api_base.as_deref());
                check_key(&mut errors, &format!("{at}.apiKey"), e.api_key.as_deref());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(errors))
        }
    }
}

/// serde quotes the offending value (`invalid type: string "sk-…", expected …`); a value in the
/// wrong place may be a key, so errors name the place and the expected type only.
fn hide_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find("string \"") {
        out.push_str(&rest[..i]);
        out.push_str("a string");
        let after = &rest[i + "string \"".len()..];
        rest = match after.find('"') {
            Some(end) => &after[end + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

fn valid_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn check_url(errors: &mut Vec<String>, at: &str, url: Option<&str>) {
    if let Some(url) = url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        errors.push(format!("{at}: \"{url}\" is not an http:// or https:// URL"));
    }
}

fn check_key(errors: &mut Vec<String>, at: &str, key: Option<&str>) {
    // Never echo the key itself: it may be a literal secret.
    if let Some(key) = key
        && (key.trim().is_empty() || key.contains(['\n', '\r']))
    {
        errors.push(format!("{at}: must be a non-empty single line"));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn empty_config_has_seed_defaults() {
        let c = PluginConfig::parse("{}").unwrap();
        assert_eq!(c, PluginConfig::default());
        assert_eq!(c.listen_addr(), "127.0.0.1:8787");
        assert!(c.auto_start);
        assert_eq!(c.health_check_interval_ms, 30_000);
    }

    #[test]
    fn seed_example_parses_as_json_and_yaml() {
        let json = r#"{"port": 8787, "host": "127.0.0.1", "models": {
            "fast": {"strategy": "load_balance", "endpoints": [
                {"provider": "openai", "modelId": "gpt-4o-mini"},
                {"provider": "anthropic", "modelId": "claude-3.5-haiku"}]},
            "smart": {"strategy": "priority", "endpoints": [
                {"provider": "anthropic", "modelId": "claude-sonnet-4-20250514"},
                {"provider": "openai", "modelId": "gpt-4o"}]}}}"#;
        let c = PluginConfig::parse(json).unwrap();
        assert_eq!(c.models["fast"].strategy, Strategy::LoadBalance);
        assert_eq!(c.models["smart"].endpoints[1].model_id, "gpt-4o");
        let yaml = "models:\n  smart:\n    endpoints:\n      - provider: openai\n        modelId: gpt-4o\n";
        let y = PluginConfig::parse(yaml).unwrap();
        assert_eq!(y.models["smart"].strategy, Strategy::Priority);
    }

    #[test]
    fn a_value_in_the_wrong_place_is_not_quoted() {
        let err = PluginConfig::parse(r#"{"providers": {"pa": "sk-proj-abcdef123456"}}"#)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("sk-proj-abcdef123456"), "{err}");
        assert!(
            err.contains("providers.pa") || err.contains("providers"),
            "{err}"
        );
        let err = PluginConfig::parse(r#"{"port": "secret-in-port"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("secret-in-port") && err.contains("port"),
            "{err}"
        );
    }

    #[test]
    fn misspelt_key_is_named() {
        let err = PluginConfig::parse(r#"{"prot": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("prot"), "{err}");
    }

    #[test]
    fn unknown_endpoint_provider_names_the_path_and_the_known_ones() {
        let err = PluginConfig::parse(
            r#"{"models":{"smart":{"endpoints":[{"provider":"openai","modelId":"a"},{"provider":"opnai","modelId":"b"}]}}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(r#"models.smart.endpoints[1].provider: unknown provider "opnai" (known: openai, anthropic, google, openrouter)"#),
            "{err}"
        );
    }

    #[test]
    fn custom_provider_needs_derives_and_keys_are_not_echoed() {
        let err = PluginConfig::parse(
            r#"{"providers":{"myrouter":{"apiKey":"sk-secret\nx","apiBase":"ftp://x"}}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("providers.myrouter.derives: required"),
            "{err}"
        );
        assert!(err.contains("providers.myrouter.apiBase"), "{err}");
        assert!(err.contains("providers.myrouter.apiKey"), "{err}");
        assert!(!err.contains("sk-secret"), "{err}");
    }
}
