//! The config contract between the server and the OpenClaw adapter has one owner, the server's
//! config model: the manifest's `configSchema` and the adapter's server facts are generated from
//! it, and the `${NAME}` grammar and the key variables `auth login` asks for are checked against
//! one table that the adapter's node tests check too (`tests/fixtures/config-contract.json`).
//!
//! Regenerate the adapter files with `UPDATE_SNAPSHOTS=1 cargo test --test contract`
//! (`make contract`) and review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use bitrouter_mcp::routing::PluginConfig;
use bitrouter_mcp::routing::contract::{manifest_schema, server_facts};
use bitrouter_mcp::routing::credentials::{env_reference, login_vars};
use serde_json::Value;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Checks (or with UPDATE_SNAPSHOTS rewrites) a generated file.
fn check_generated(path: &Path, current: &str) {
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, current).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == current,
        "{} is not what the config model generates; review the diff and regenerate it with \
         UPDATE_SNAPSHOTS=1 cargo test --test contract\n--- committed\n{committed}\n--- generated\n{current}",
        path.display()
    );
}

/// `text` with the value of its top-level `"configSchema"` replaced by `schema`, everything else
/// (field order, the hand-kept layout of uiHints) as it is.
fn splice_config_schema(text: &str, schema: &Value) -> String {
    let key = "\n  \"configSchema\": ";
    let start = text
        .find(key)
        .expect("the manifest has a top-level configSchema")
        + key.len();
    // The value ends at the brace that closes the one it opens with.
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut end = None;
    for (i, c) in text[start..].char_indices() {
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_string = false,
            (true, false, _) => {}
            (false, _, '"') => in_string = true,
            (false, _, '{') => depth += 1,
            (false, _, '}') => {
                depth -= 1;
                if depth == 0 {
                    end = Some(start + i + 1);
                    break;
                }
            }
            _ => {}
        }
    }
    let end = end.expect("configSchema's object is closed");
    let pretty = serde_json::to_string_pretty(schema)
        .unwrap()
        .replace('\n', "\n  ");
    format!("{}{pretty}{}", &text[..start], &text[end..])
}

#[test]
fn manifest_config_schema_is_generated_from_the_config_model() {
    let path = repo("openclaw-adapter/openclaw.plugin.json");
    let committed = std::fs::read_to_string(&path).unwrap();
    let current = splice_config_schema(&committed, &manifest_schema());
    // Still a manifest: the fields OpenClaw reads besides the schema are kept.
    let parsed: Value = serde_json::from_str(&current).unwrap();
    assert_eq!(parsed["id"], "bitrouter");
    assert_eq!(parsed["configSchema"], manifest_schema());
    let hinted: Vec<&String> = parsed["uiHints"].as_object().unwrap().keys().collect();
    let keys: Vec<&String> = parsed["configSchema"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    let mut hinted_sorted = hinted.clone();
    hinted_sorted.sort();
    assert_eq!(hinted_sorted, keys, "every config key has a uiHint");
    check_generated(&path, &current);
}

#[test]
fn adapter_server_facts_are_generated_from_the_config_model() {
    let mut current = serde_json::to_string_pretty(&server_facts()).unwrap();
    current.push('\n');
    check_generated(&repo("openclaw-adapter/src/server-facts.json"), &current);
}

fn fixture() -> Value {
    let text = std::fs::read_to_string(repo("tests/fixtures/config-contract.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Each value of the shared table as a provider key: a valid config whose key is the variable
/// named (or a literal), or a config refused naming the field. The adapter's node test holds its
/// matcher to the same table.
#[test]
fn env_references_follow_the_shared_table() {
    let fixture = fixture();
    let cases = fixture["envReferences"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let value = case["value"].as_str().unwrap();
        let expected = case["reference"].as_str();
        let config =
            serde_json::json!({"providers": {"mine": {"derives": "openai", "apiKey": value}}});
        let parsed = PluginConfig::parse(&config.to_string());
        if case["valid"].as_bool().unwrap() {
            let parsed = parsed.unwrap_or_else(|e| panic!("{value:?}: {e}"));
            let key = parsed.providers["mine"].api_key.as_deref().unwrap();
            assert_eq!(env_reference(key), expected, "{value:?}");
        } else {
            let err = parsed
                .expect_err(&format!("{value:?} must be refused"))
                .to_string();
            assert!(
                err.contains("providers.mine.apiKey") && err.contains("${NAME}"),
                "{value:?}: {err}"
            );
            assert_eq!(expected, None, "an invalid value references nothing");
        }
    }
}

/// The key variables `bitrouter-mcp auth login` asks for, per config; the adapter's prompt asks
/// for the same ones.
#[test]
fn login_vars_follow_the_shared_table() {
    let fixture = fixture();
    for case in fixture["loginVars"].as_array().unwrap() {
        let config = PluginConfig::parse(&case["config"].to_string()).unwrap();
        let expected: Vec<String> = serde_json::from_value(case["vars"].clone()).unwrap();
        assert_eq!(login_vars(&config), expected, "{}", case["config"]);
    }
}
