//! BitRouter's `.env` (`<home>/.env`): provider keys the daemon loads at startup.
//!
//! Two writers share it: `auth login` (the user's keys, e.g. `OPENAI_API_KEY`) and the daemon
//! config renderer (`BITROUTER_MCP_*` literals from config). Each replaces only its own names and
//! keeps every other line. Writes are atomic, mode 0600.
//!
//! The names in it are settled here too: [`MANAGED_PREFIX`] marks ours, [`managed_var`] makes
//! one, [`env_reference`] reads a `${VAR}` reference out of a config value.

use std::collections::BTreeMap;
use std::path::Path;

use crate::fsutil;

/// Prefix of every `.env` variable this project manages; other lines are the user's.
pub const MANAGED_PREFIX: &str = "BITROUTER_MCP_";

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

/// The env var holding a `${VAR}` reference, if the value is one.
pub fn env_reference(value: &str) -> Option<&str> {
    value
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
        .filter(|v| !v.is_empty())
}

/// Names set in a `.env` text, with values.
pub fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

/// Reads a `.env` file; a missing file is empty.
pub fn read(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .map(|t| parse(&t))
        .unwrap_or_default()
}

/// `existing` with every line whose name `owned` claims removed, then `entries` appended.
pub fn merge(
    existing: &str,
    owned: impl Fn(&str) -> bool,
    entries: &BTreeMap<String, String>,
) -> String {
    let mut out: Vec<String> = existing
        .lines()
        .filter(|l| l.split_once('=').is_none_or(|(k, _)| !owned(k.trim())))
        .map(str::to_string)
        .collect();
    out.extend(entries.iter().map(|(k, v)| format!("{k}={v}")));
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// Merges `entries` into the file at `path` (see [`merge`]); returns whether it changed.
pub fn update(
    path: &Path,
    owned: impl Fn(&str) -> bool,
    entries: &BTreeMap<String, String>,
) -> std::io::Result<bool> {
    let existing = match std::fs::read_to_string(path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let merged = merge(existing.as_deref().unwrap_or(""), owned, entries);
    let unchanged = match &existing {
        Some(old) => *old == merged,
        None => entries.is_empty(),
    };
    if !unchanged {
        fsutil::write_private(path, merged.as_bytes())?;
    }
    Ok(!unchanged)
}

/// A fingerprint of the user's entries (everything but `BITROUTER_MCP_*`): changes when
/// `auth login` or an edit changes a provider key, not when the config renderer writes.
pub fn user_fingerprint(path: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for (k, v) in read(path) {
        if !k.starts_with(MANAGED_PREFIX) {
            (k, v).hash(&mut h);
        }
    }
    h.finish()
}

/// Checks a variable name and value for `.env`; the message names the variable, never the value.
pub fn validate_entry(name: &str, value: &str) -> Result<(), String> {
    let name_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !name_ok {
        // Not quoted: a pasted key whose padding holds a '=' would land here.
        return Err(
            "the part before '=' is not a variable name: expected upper-case letters, digits and _ (e.g. OPENAI_API_KEY=sk-...)"
                .to_string(),
        );
    }
    if value.trim().is_empty() || value.contains(['\n', '\r']) {
        return Err(format!("{name}: the key must be a non-empty single line"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_other_lines_and_replaces_owned_names() {
        let ours: BTreeMap<String, String> =
            [("OPENAI_API_KEY".to_string(), "new".to_string())].into();
        let merged = merge(
            "# keys\nOPENAI_API_KEY=old\nBITROUTER_MCP_X_API_KEY=lit\n",
            |k| k == "OPENAI_API_KEY",
            &ours,
        );
        assert_eq!(
            merged,
            "# keys\nBITROUTER_MCP_X_API_KEY=lit\nOPENAI_API_KEY=new\n"
        );
        assert_eq!(parse(&merged)["OPENAI_API_KEY"], "new");
    }

    #[test]
    fn entries_are_validated_without_echoing_the_value() {
        assert!(validate_entry("OPENAI_API_KEY", "sk-1").is_ok());
        let e = validate_entry("openai", "sk-secret").unwrap_err();
        assert!(e.contains("not a variable name") && !e.contains("sk-secret"));
        let e = validate_entry("dGhpcyBpcyBhIGtleQ", "=").unwrap_err();
        assert!(!e.contains("dGhpcyBpcyBhIGtleQ"), "{e}");
        let e = validate_entry("X_API_KEY", "sk-a\nb").unwrap_err();
        assert!(!e.contains("sk-a"));
    }
}
