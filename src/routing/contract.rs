//! The config contract with the OpenClaw adapter, generated from the config model so the two
//! cannot drift: the manifest's `configSchema` (OpenClaw validates every config write with it and
//! fills in its defaults) and the server facts the adapter needs besides (built-in providers and
//! their key variables, the `${NAME}` grammar, limits a plain JSON Schema does not say).
//!
//! `tests/contract.rs` fails when `openclaw-adapter/openclaw.plugin.json` or
//! `openclaw-adapter/src/server-facts.json` differ from what this module generates; it rewrites
//! them with `UPDATE_SNAPSHOTS=1` (`make contract`).

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use super::config::{ENV_REFERENCE_PATTERN, METRICS_POLL_MS, PluginConfig};
use super::endpoints::BUILTINS;

fn default_mcp_port() -> u16 {
    8788
}

/// Keys only the adapter reads; it leaves them out of the server's own config file, which
/// refuses unknown keys.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // Only its schema is used.
struct AdapterKeys {
    /// Path of the bitrouter-mcp executable. Default: bitrouter-mcp on PATH, then
    /// ~/.cargo/bin/bitrouter-mcp.
    binary_path: Option<String>,
    /// Port of bitrouter-mcp's MCP endpoint (http://127.0.0.1:<mcpPort>/mcp).
    #[serde(default = "default_mcp_port")]
    #[schemars(range(min = 1))]
    mcp_port: u16,
    /// bitrouter-mcp data directory (BitRouter config, .env, keys, logs). Default: <OpenClaw
    /// state dir>/bitrouter/data.
    data_dir: Option<String>,
}

/// The schema of `T` the way the committed manifest has always been written: draft-07, every
/// definition inline (no `$ref`), no `format` or `title` annotations, optional fields typed as
/// their value (an absent key, not `null`, means "not set").
fn schema_of<T: JsonSchema>() -> Value {
    let mut settings = SchemaSettings::draft07();
    settings.inline_subschemas = true;
    settings.meta_schema = None;
    let mut schema = settings
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    tidy(&mut schema);
    schema
}

fn tidy(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("title");
            map.remove("format");
            if let Some(Value::Array(types)) = map.get("type") {
                let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                if let [one] = kept.as_slice() {
                    map.insert("type".into(), one.clone());
                }
            }
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            // Doc comments wrap at 100 columns; a description is one paragraph.
            if let Some(Value::String(d)) = map.get_mut("description") {
                *d = d.split_whitespace().collect::<Vec<_>>().join(" ");
            }
            map.values_mut().for_each(tidy);
        }
        Value::Array(items) => items.iter_mut().for_each(tidy),
        _ => {}
    }
}

/// The manifest's `configSchema`: the server's config plus the adapter's own keys, unknown keys
/// refused.
pub fn manifest_schema() -> Value {
    let mut schema = schema_of::<PluginConfig>();
    if let Some(root) = schema.as_object_mut() {
        root.remove("description"); // the type's doc, for Rust readers
    }
    let adapter = schema_of::<AdapterKeys>();
    if let (Some(Value::Object(props)), Some(Value::Object(extra))) = (
        schema.get_mut("properties"),
        adapter.get("properties").cloned(),
    ) {
        props.extend(extra);
    }
    // `derives` names a built-in provider: OpenClaw refuses anything else before the server sees it.
    if let Some(derives) =
        schema.pointer_mut("/properties/providers/additionalProperties/properties/derives")
        && let Some(d) = derives.as_object_mut()
    {
        d.insert(
            "enum".into(),
            BUILTINS.iter().map(|b| json!(b.name)).collect(),
        );
    }
    // A key that starts like `${` must be a whole `${NAME}` reference (the server refuses
    // anything else; OpenClaw now does so at `config set`).
    let key_pattern = format!(r"^(?!\$\{{)|{ENV_REFERENCE_PATTERN}");
    for at in [
        "/properties/providers/additionalProperties/properties/apiKey",
        "/properties/models/additionalProperties/properties/endpoints/items/properties/apiKey",
    ] {
        if let Some(Value::Object(key)) = schema.pointer_mut(at) {
            key.insert("pattern".into(), json!(key_pattern));
        }
    }
    schema
}

/// The keys the server's config file accepts.
pub fn server_config_keys() -> Vec<String> {
    schema_of::<PluginConfig>()
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// What the adapter needs to know about the server besides the schema
/// (`openclaw-adapter/src/server-facts.json`).
pub fn server_facts() -> Value {
    let providers: Vec<Value> = BUILTINS
        .iter()
        .map(|b| {
            json!({
                "name": b.name,
                "envPrefix": b.env_prefix,
                "envVar": format!("{}_API_KEY", b.env_prefix),
            })
        })
        .collect();
    let mut facts = Map::new();
    facts.insert(
        "$comment".into(),
        json!("Generated from the server's config model (src/routing/contract.rs); regenerate with `make contract`, do not edit."),
    );
    facts.insert("builtinProviders".into(), json!(providers));
    facts.insert("envReference".into(), json!(ENV_REFERENCE_PATTERN));
    facts.insert(
        "metricsPollMs".into(),
        json!({ "off": 0, "min": METRICS_POLL_MS.start(), "max": METRICS_POLL_MS.end() }),
    );
    facts.insert("serverConfigKeys".into(), json!(server_config_keys()));
    Value::Object(facts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_schema_has_the_seed_defaults_ranges_and_no_refs() {
        let s = manifest_schema();
        let text = s.to_string();
        assert!(
            !text.contains("$ref") && !text.contains("\"format\""),
            "{text}"
        );
        assert_eq!(s["additionalProperties"], json!(false));
        let p = &s["properties"];
        assert_eq!(p["port"]["default"], json!(8787));
        assert_eq!(p["port"]["minimum"], json!(1));
        assert_eq!(p["mcpPort"]["default"], json!(8788));
        assert_eq!(p["healthCheckIntervalMs"]["maximum"], json!(86_400_000));
        assert_eq!(p["binaryPath"]["type"], json!("string"));
        assert_eq!(
            p["models"]["additionalProperties"]["properties"]["endpoints"]["minItems"],
            json!(1)
        );
        assert_eq!(
            p["providers"]["additionalProperties"]["properties"]["derives"]["enum"],
            json!(["openai", "anthropic", "google", "openrouter"])
        );
        assert!(!server_config_keys().contains(&"mcpPort".to_string()));
        let key = &p["providers"]["additionalProperties"]["properties"]["apiKey"]["pattern"];
        assert_eq!(key, &json!(r"^(?!\$\{)|^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$"));
    }
}
