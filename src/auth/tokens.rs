//! Saved tokens: `<home>/.keys/<active prefix>/tokens/<name>.jwt`, raw JWT text, the same files
//! `bitrouter keygen --name` writes and `bitrouter keys` reads.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Serialize;

use super::jwt::{self, Claims};
use super::{AuthError, keystore, now_unix, rfc3339};
use crate::fsutil;
use crate::home::Home;

/// A saved token, described without its secret text.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TokenInfo {
    pub name: String,
    /// Prefix of the account whose directory holds it.
    pub account: String,
    /// `api` or `admin`; absent when the file does not hold a readable token.
    pub scope: Option<String>,
    /// Model allowlist; absent means every model.
    pub models: Option<Vec<String>>,
    /// Expiry in RFC 3339, or "never".
    pub expires: Option<String>,
    pub expired: bool,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Checks a token name: it becomes a file name, so no separators or dot-files.
pub fn validate_name(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::invalid(
            "name",
            format!(
                "\"{name}\" is not a valid token name: expected 1-64 characters of A-Z a-z 0-9 - _ . not starting with a dot"
            ),
        ))
    }
}

fn describe(account: &str, name: String, path: PathBuf, now: u64) -> (TokenInfo, Option<Claims>) {
    let parsed = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read: {e}"))
        .and_then(|t| jwt::decode_unverified(&t).map_err(|e| e.to_string()));
    let mut info = TokenInfo {
        name,
        account: account.to_string(),
        scope: None,
        models: None,
        expires: None,
        expired: false,
        path: path.display().to_string(),
        problem: None,
    };
    match parsed {
        Ok(claims) => {
            info.scope = Some(claims.scope.as_str().to_string());
            info.models = claims.models.clone();
            info.expires = Some(claims.exp.map_or_else(|| "never".into(), rfc3339));
            info.expired = claims.is_expired(now);
            (info, Some(claims))
        }
        Err(problem) => {
            info.problem = Some(problem);
            (info, None)
        }
    }
}

/// Names and paths of the active account's saved tokens, sorted by name.
fn files(home: &Home) -> Result<(String, Vec<(String, PathBuf)>), AuthError> {
    let (prefix, _) = keystore::load_active(home)?;
    let dir = home.tokens_dir(&prefix);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((prefix, Vec::new())),
        Err(e) => return Err(AuthError::io(format!("reading {}", dir.display()))(e)),
    };
    let mut out: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jwt"))
        .filter_map(|p| Some((p.file_stem()?.to_str()?.to_string(), p.clone())))
        .collect();
    out.sort();
    Ok((prefix, out))
}

/// The active account's saved tokens.
pub fn list(home: &Home) -> Result<(String, Vec<TokenInfo>), AuthError> {
    let now = now_unix();
    let (prefix, files) = files(home)?;
    let infos = files
        .into_iter()
        .map(|(name, path)| describe(&prefix, name, path, now).0)
        .collect();
    Ok((prefix, infos))
}

fn find(home: &Home, name: &str) -> Result<(String, String, PathBuf), AuthError> {
    validate_name(name)?;
    let (prefix, files) = files(home)?;
    let known = files
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    files
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(n, p)| (prefix.clone(), n, p))
        .ok_or_else(|| AuthError::NotFound {
            field: "name",
            message: format!(
                "no saved token \"{name}\" for account {prefix} (saved: {})",
                if known.is_empty() { "none" } else { &known }
            ),
        })
}

/// One saved token's description and claims.
pub fn show(home: &Home, name: &str) -> Result<(TokenInfo, Claims), AuthError> {
    let (prefix, name, path) = find(home, name)?;
    let (info, claims) = describe(&prefix, name, path.clone(), now_unix());
    let claims = claims.ok_or_else(|| AuthError::BadToken {
        path,
        reason: info.problem.clone().unwrap_or_default(),
    })?;
    Ok((info, claims))
}

/// Deletes one saved token and returns what it was.
pub fn remove(home: &Home, name: &str) -> Result<TokenInfo, AuthError> {
    let (prefix, name, path) = find(home, name)?;
    let (info, _) = describe(&prefix, name, path.clone(), now_unix());
    std::fs::remove_file(&path).map_err(AuthError::io(format!("removing {}", path.display())))?;
    Ok(info)
}

/// Saves a token under `name` for the account `prefix`; refuses to replace an existing one.
pub fn save(home: &Home, prefix: &str, name: &str, token: &str) -> Result<PathBuf, AuthError> {
    validate_name(name)?;
    let path = home.token_file(prefix, name);
    fsutil::create_private(&path, token.as_bytes()).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            AuthError::AlreadyExists {
                field: "name",
                message: format!(
                    "a token named \"{name}\" already exists; pick another name or remove it with bitrouter_keys"
                ),
            }
        } else {
            AuthError::io(format!("writing {}", path.display()))(e)
        }
    })?;
    Ok(path)
}
