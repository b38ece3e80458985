//! The plugin config (the seed plugin's table): camelCase, JSON or YAML, every field optional.
//!
//! Parsing rejects unknown keys by name; [`PluginConfig::validate`] then checks meaning and names
//! the path of every problem (`models.smart.endpoints[1].provider: unknown provider ...`).

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
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

/// Accepted `healthCheckIntervalMs` (validation, manifest and adapter read it from here).
pub const HEALTH_CHECK_INTERVAL_MS: RangeInclusive<u64> = 100..=86_400_000;
/// Accepted `metricsPollMs` other than 0 (off).
pub const METRICS_POLL_MS: RangeInclusive<u64> = 50..=60_000;

/// The whole config. Defaults are the seed plugin's. Field docs become the descriptions of the
/// OpenClaw manifest's `configSchema` (see `routing::contract`): they are written for users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PluginConfig {
    /// Port for BitRouter to listen on.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1))]
    pub port: u16,
    /// Host address for BitRouter to bind to. Anything but loopback needs exposeToNetwork.
    #[serde(default = "default_host")]
    #[schemars(length(min = 1))]
    pub host: String,
    /// Allow a non-loopback host. BitRouter accepts any self-signed token, so everyone who can
    /// reach its port can spend your provider keys; leave off unless a firewall limits who can
    /// connect.
    #[serde(default)]
    pub expose_to_network: bool,
    /// Auto-start BitRouter (through bitrouter-mcp) when OpenClaw's gateway starts.
    #[serde(default = "default_auto_start")]
    pub auto_start: bool,
    /// Interval between BitRouter's health checks of the upstream endpoints (ms, 100-86400000).
    /// The plugin re-reads the route table at the same interval, but not more often than once a
    /// second.
    #[serde(default = "default_health_check_interval_ms")]
    #[schemars(range(min = *HEALTH_CHECK_INTERVAL_MS.start(), max = *HEALTH_CHECK_INTERVAL_MS.end()))]
    pub health_check_interval_ms: u64,
    /// When true, route ALL model requests through BitRouter. When false, only models with
    /// configured routes.
    #[serde(default)]
    pub intercept_all_models: bool,
    /// How often BitRouter reads the daemon's traffic counters to catch a failing endpoint
    /// between health checks (ms). 0 turns it off; otherwise 50-60000 (the plugin raises 1-49
    /// to 50).
    #[serde(default = "default_metrics_poll_ms")]
    #[schemars(range(min = 0, max = *METRICS_POLL_MS.end()))]
    pub metrics_poll_ms: u64,
    /// Also delete dynamic routes someone else added to the daemon for model names not in
    /// models (default: they are only reported). Routes for configured models are always put
    /// back.
    #[serde(default)]
    pub enforce_routes: bool,
    /// Provider overrides and custom providers, by name. Built-in providers need no entry: their
    /// keys are read from the environment (e.g. OPENAI_API_KEY).
    #[serde(default, deserialize_with = "unique_keys")]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Virtual model names with routing strategies.
    #[serde(default, deserialize_with = "unique_keys")]
    pub models: BTreeMap<String, ModelConfig>,
}

impl Default for PluginConfig {
    fn default() -> Self {
        Self {
            port: default_port(),
            host: default_host(),
            expose_to_network: false,
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
    /// API key or env var reference ("${OPENAI_API_KEY}"). Literal keys are stored in
    /// BitRouter's .env, never in its yaml.
    pub api_key: Option<String>,
    /// Custom API base URL.
    pub api_base: Option<String>,
    /// Env var prefix for auto-loading ("OPENAI" reads OPENAI_API_KEY).
    pub env_prefix: Option<String>,
    /// Inherit defaults from a built-in provider (required for a custom provider).
    pub derives: Option<String>,
}

/// priority: try endpoints in order, fail over to the next; load_balance: round-robin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    // Variants carry no doc comment: it would turn the schema's plain `enum` into a `oneOf`.
    #[default]
    Priority,
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
    #[schemars(length(min = 1))]
    pub endpoints: Vec<EndpointConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EndpointConfig {
    #[schemars(length(min = 1))]
    pub provider: String,
    #[schemars(length(min = 1))]
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
        Self::parse_file(path, &text)
    }

    /// Parses the text of the config file at `path` (named in errors).
    pub fn parse_file(path: &Path, text: &str) -> Result<Self, ConfigError> {
        Self::parse(text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses config text (JSON is read as the YAML subset it is) and validates it. Empty text
    /// is an error, not "all defaults": it is what a file looks like while it is being
    /// rewritten, and applying it would stop a working daemon.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let empty = text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
        if empty {
            return Err(ConfigError::Parse {
                path: "<inline>".into(),
                message:
                    "the file is empty: expected a JSON or YAML object (`{}` for all defaults)"
                        .into(),
            });
        }
        let config: PluginConfig = serde_yaml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "<inline>".into(),
            message: hide_values(&e.to_string()),
        })?;
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

    /// Whether the daemon listens on a loopback address only.
    pub fn host_is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Checks meaning; every problem is reported with its path. Values that could be a key
    /// pasted into the wrong field are never quoted whole (see [`shown`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        if self.port == 0 {
            errors.push("port: must be 1-65535".to_string());
        }
        if self.host.parse::<std::net::IpAddr>().is_err() && self.host != "localhost" {
            errors.push(format!(
                "host: {} is not an IP address or \"localhost\"",
                shown(&self.host)
            ));
        } else if !self.host_is_loopback() && !self.expose_to_network {
            errors.push(format!(
                "host: {} is not a loopback address: the daemon accepts any self-signed token, so \
                 everyone who can reach it could spend your provider keys; set \"exposeToNetwork\": \
                 true to allow it",
                shown(&self.host)
            ));
        }
        if self.metrics_poll_ms != 0 && !METRICS_POLL_MS.contains(&self.metrics_poll_ms) {
            errors.push(format!(
                "metricsPollMs: {} is out of range (expected 0 to turn off, or {}-{})",
                self.metrics_poll_ms,
                METRICS_POLL_MS.start(),
                METRICS_POLL_MS.end()
            ));
        }
        if !HEALTH_CHECK_INTERVAL_MS.contains(&self.health_check_interval_ms) {
            errors.push(format!(
                "healthCheckIntervalMs: {} is out of range (expected {}-{})",
                self.health_check_interval_ms,
                HEALTH_CHECK_INTERVAL_MS.start(),
                HEALTH_CHECK_INTERVAL_MS.end()
            ));
        }
        for (name, p) in &self.providers {
            let at = format!("providers.{}", name_in_path(name));
            if !valid_ident(name) {
                errors.push(format!(
                    "{at}: provider names may use a-z, 0-9, - and _ only"
                ));
            }
            let builtins = builtin_names().collect::<Vec<_>>().join(", ");
            match &p.derives {
                Some(d) if builtin(d).is_none() => errors.push(format!(
                    "{at}.derives: unknown provider {} (expected one of: {builtins})",
                    shown(d)
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
                    "{at}.envPrefix: {} must be upper-case letters, digits and _ (e.g. \"OPENAI\")",
                    shown(prefix)
                ));
            }
        }
        let known = self.known_providers();
        for (name, m) in &self.models {
            let at = format!("models.{}", name_in_path(name));
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
                        "{at}.provider: unknown provider {} (known: {})",
                        shown(&e.provider),
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
            // Only a config that is otherwise valid has meaningful generated names.
            errors.extend(super::endpoints::name_collisions(self));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(errors))
        }
    }
}

/// Values longer than this are cut in error messages (a 1 MB value is not echoed back).
const MAX_SHOWN: usize = 64;

/// Prefixes of provider keys and tokens as issued (OpenAI, Anthropic, OpenRouter, Google, Groq,
/// xAI, Perplexity, Hugging Face, Fireworks, JWTs).
const KEY_PREFIXES: [&str; 10] = [
    "sk-", "sk_", "AIza", "gsk_", "xai-", "pplx-", "hf_", "fw_", "eyJ", "Bearer ",
];

/// Whether a config value could be a credential: a known key prefix, or a run of 20 or more
/// letters and digits (names, hosts and URLs have separators long before that).
pub fn may_be_secret(value: &str) -> bool {
    if KEY_PREFIXES.iter().any(|p| value.starts_with(p)) {
        return true;
    }
    let mut run = 0;
    for c in value.chars() {
        if c.is_ascii_alphanumeric() {
            run += 1;
            if run >= 20 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// A config value as an error may quote it: in full (and quoted) when it cannot be a key and is
/// short, else only its first characters and its length.
pub fn shown(value: &str) -> String {
    let len = value.chars().count();
    if may_be_secret(value) {
        let head: String = value.chars().take(4).collect();
        format!("\"{head}…\" ({len} characters, not shown: it may be a key)")
    } else if len > MAX_SHOWN {
        let head: String = value.chars().take(MAX_SHOWN).collect();
        format!("\"{head}…\" ({len} characters)")
    } else {
        format!("{value:?}")
    }
}

/// A map key (provider or model name) as it appears in an error path.
fn name_in_path(name: &str) -> String {
    if may_be_secret(name) || name.chars().count() > MAX_SHOWN {
        format!("<{}>", shown(name))
    } else {
        name.to_string()
    }
}

/// serde quotes the offending value (`invalid type: string "sk-…", expected …`, `unknown
/// variant `sk-…``); a value in the wrong place may be a key, so errors name the place and the
/// expected type, and quote a value only when it cannot be a key (see [`shown`]).
fn hide_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(4096));
    let mut rest = message;
    loop {
        let string = rest.find("string \"");
        let backtick = rest.find('`');
        match (string, backtick) {
            (Some(i), b) if b.is_none_or(|b| i < b) => {
                out.push_str(&rest[..i]);
                out.push_str("a string");
                let after = &rest[i + "string \"".len()..];
                rest = match after.find('"') {
                    Some(end) => &after[end + 1..],
                    None => "",
                };
            }
            (_, Some(b)) => {
                out.push_str(&rest[..b]);
                let after = &rest[b + 1..];
                match after.find('`') {
                    Some(end) => {
                        let value = &after[..end];
                        if may_be_secret(value) || value.chars().count() > MAX_SHOWN {
                            out.push_str(&shown(value));
                        } else {
                            out.push('`');
                            out.push_str(value);
                            out.push('`');
                        }
                        rest = &after[end + 1..];
                    }
                    None => {
                        rest = after;
                    }
                }
            }
            _ => break,
        }
    }
    out.push_str(rest);
    out
}

/// A map that refuses a key given twice (serde's maps keep the last one silently; serde's
/// structs already refuse a field given twice).
fn unique_keys<'de, D, V>(deserializer: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Unique<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Unique<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map of names")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!(
                        "{} is given twice (each name may appear once)",
                        name_in_path(&key)
                    )));
                }
                let value = map.next_value()?;
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Unique(std::marker::PhantomData))
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
        errors.push(format!(
            "{at}: {} is not an http:// or https:// URL",
            shown(url)
        ));
    }
}

fn check_key(errors: &mut Vec<String>, at: &str, key: Option<&str>) {
    // Never echo the key itself: it may be a literal secret.
    if let Some(key) = key
        && (key.trim().is_empty() || key.contains(['\n', '\r']))
    {
        errors.push(format!("{at}: must be a non-empty single line"));
    }
    if let Some(problem) = key.and_then(env_reference_problem) {
        errors.push(format!("{at}: {problem}"));
    }
}

/// The `${NAME}` grammar of a key that names a variable, as a JavaScript/JSON Schema pattern
/// (the adapter matches with it): the whole value, NAME as in a shell.
pub const ENV_REFERENCE_PATTERN: &str = r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$";

/// Why a key that starts like a `${NAME}` reference is not one (it would otherwise be sent to
/// the provider as a literal key). The value is not quoted: it may be a secret.
pub fn env_reference_problem(key: &str) -> Option<&'static str> {
    let name = key.strip_prefix("${")?.strip_suffix('}');
    let valid = name.is_some_and(|n| {
        n.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    (!valid).then_some(
        "starts with \"${\" but is not a variable reference: expected ${NAME} with NAME made of \
         letters, digits and _ (e.g. \"${OPENAI_API_KEY}\")",
    )
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

    #[test]
    fn an_empty_file_is_an_error_not_all_defaults() {
        for text in ["", "   \n", "# only a comment\n"] {
            let err = PluginConfig::parse(text).unwrap_err().to_string();
            assert!(err.contains("empty"), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_key_pasted_into_any_field_is_never_quoted() {
        // Shapes of real keys: with a known prefix, and a bare 32-character one.
        for key in [
            "sk-proj-Plant3dKeyAbcdef0123456789",
            "Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lm",
        ] {
            let configs = [
                format!(r#"{{"host": "{key}"}}"#),
                format!(r#"{{"models": {{"m": {{"strategy": "{key}", "endpoints": []}}}}}}"#),
                format!(r#"{{"providers": {{"x": {{"derives": "openai", "apiBase": "{key}"}}}}}}"#),
                format!(
                    r#"{{"providers": {{"x": {{"derives": "openai", "envPrefix": "{key}"}}}}}}"#
                ),
                format!(r#"{{"providers": {{"x": {{"derives": "{key}"}}}}}}"#),
                format!(r#"{{"providers": {{"{key}": {{"derives": "openai"}}}}}}"#),
                format!(
                    r#"{{"models": {{"m": {{"endpoints": [{{"provider": "{key}", "modelId": "a"}}]}}}}}}"#
                ),
                format!(
                    r#"{{"models": {{"m": {{"endpoints": [{{"provider": "openai", "modelId": "a", "apiBase": "{key}"}}]}}}}}}"#
                ),
            ];
            for text in &configs {
                let err = PluginConfig::parse(text).unwrap_err().to_string();
                assert!(!err.contains(key), "{text}\n-> {err}");
                let head: String = key.chars().take(4).collect();
                assert!(err.contains(&head) || err.contains("strategy"), "{err}");
            }
        }
        // An ordinary typo is still quoted, so it can be found.
        let err = PluginConfig::parse(r#"{"providers": {"x": {"derives": "opnai"}}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains(r#""opnai""#), "{err}");
    }

    #[test]
    fn duplicate_names_are_refused_by_name() {
        let json = r#"{"models": {"smart": {"endpoints": [{"provider": "openai", "modelId": "a"}]},
                                  "smart": {"endpoints": [{"provider": "openai", "modelId": "b"}]}}}"#;
        let err = PluginConfig::parse(json).unwrap_err().to_string();
        assert!(err.contains("smart") && err.contains("twice"), "{err}");
        let yaml = "providers:\n  mine:\n    derives: openai\n  mine:\n    derives: google\n";
        let err = PluginConfig::parse(yaml).unwrap_err().to_string();
        assert!(err.contains("mine") && err.contains("twice"), "{err}");
        let err = PluginConfig::parse(r#"{"port": 1, "port": 2}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("port"), "{err}");
    }

    #[test]
    fn a_huge_bad_value_is_cut_in_the_error() {
        let big = "h".repeat(1_000_000);
        let err = PluginConfig::parse(&format!(r#"{{"host": "{big}"}}"#))
            .unwrap_err()
            .to_string();
        assert!(err.len() < 1000, "{} bytes", err.len());
        assert!(
            err.contains("host") && err.contains("1000000 characters"),
            "{err}"
        );
    }

    #[test]
    fn a_non_loopback_host_needs_the_opt_in() {
        let err = PluginConfig::parse(r#"{"host": "0.0.0.0"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("exposeToNetwork"), "{err}");
        let c = PluginConfig::parse(r#"{"host": "0.0.0.0", "exposeToNetwork": true}"#).unwrap();
        assert!(c.expose_to_network && !c.host_is_loopback());
        for host in ["127.0.0.1", "127.0.0.2", "::1", "localhost"] {
            let c = PluginConfig::parse(&format!(r#"{{"host": "{host}"}}"#)).unwrap();
            assert!(c.host_is_loopback(), "{host}");
        }
    }

    #[test]
    fn colliding_generated_provider_names_and_variables_are_refused_naming_both() {
        // Two custom providers whose key variables would be the same.
        let err = PluginConfig::parse(
            r#"{"providers": {"my-up": {"derives": "openai"}, "my_up": {"derives": "openai"}}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("providers.my-up")
                && err.contains("providers.my_up")
                && err.contains("MY_UP_API_KEY"),
            "{err}"
        );
        // A provider named like an endpoint's generated one.
        let err = PluginConfig::parse(
            r#"{"providers": {"openai__smart_0": {"derives": "openai"}},
                "models": {"smart": {"endpoints": [{"provider": "openai", "modelId": "a", "apiKey": "k-1"}]}}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("providers.openai__smart_0") && err.contains("models.smart.endpoints[0]"),
            "{err}"
        );
    }
}
