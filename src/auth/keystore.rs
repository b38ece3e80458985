//! Accounts: `<home>/.keys/<prefix>/master.json` (`{"algorithm":"web3","seed":"<base64url>"}`) and
//! `<home>/.keys/active` naming the active prefix (first 16 base58 chars of the public key).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AuthError;
use crate::fsutil;
use crate::home::Home;

const PREFIX_LEN: usize = 16;

/// One account as shown to agents: never the seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Account {
    /// Position in the list, sorted by prefix, as `bitrouter account --list` numbers them.
    pub index: usize,
    /// First 16 characters of the public key; names the account's directory.
    pub prefix: String,
    /// Base58 Ed25519 public key (Solana style); absent when `master.json` cannot be read.
    pub public_key: Option<String>,
    pub active: bool,
    /// Why the account cannot be used, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct MasterKeyJson {
    algorithm: String,
    seed: String,
}

/// How an agent names an account: its list index or a unique prefix of its public key.
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged)]
pub enum AccountRef {
    Index(usize),
    Prefix(String),
}

/// What a bad `account` value is told (serde's untagged enums only say "did not match any
/// variant").
const ACCOUNT_FORMS: &str =
    "an account index from the list (a number such as 0) or a public-key prefix (a string)";

impl<'de> Deserialize<'de> for AccountRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = AccountRef;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(ACCOUNT_FORMS)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<AccountRef, E> {
                usize::try_from(v).map(AccountRef::Index).map_err(|_| {
                    E::custom(format!("index {v} is too large: expected {ACCOUNT_FORMS}"))
                })
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<AccountRef, E> {
                u64::try_from(v)
                    .map_err(|_| {
                        E::custom(format!("index {v} is negative: expected {ACCOUNT_FORMS}"))
                    })
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<AccountRef, E> {
                Ok(AccountRef::Prefix(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

fn public_key_b58(key: &SigningKey) -> String {
    bs58::encode(key.verifying_key().as_bytes()).into_string()
}

fn prefix_of(public_key: &str) -> String {
    public_key.chars().take(PREFIX_LEN).collect()
}

/// Loads an account's signing key.
pub fn load_key(home: &Home, prefix: &str) -> Result<SigningKey, AuthError> {
    let bad = |reason: String| AuthError::BadAccount {
        prefix: prefix.to_string(),
        reason,
    };
    let text = std::fs::read_to_string(home.master_key_file(prefix))
        .map_err(|e| bad(format!("cannot read master.json: {e}")))?;
    let json: MasterKeyJson =
        serde_json::from_str(&text).map_err(|e| bad(format!("invalid master.json: {e}")))?;
    if json.algorithm != "web3" {
        return Err(bad(format!(
            "unsupported algorithm \"{}\" (expected \"web3\")",
            json.algorithm
        )));
    }
    let seed: [u8; 32] = URL_SAFE_NO_PAD
        .decode(json.seed.as_bytes())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("seed is not 32 base64url bytes".into()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The active account's prefix, if one is set.
pub fn active_prefix(home: &Home) -> Option<String> {
    std::fs::read_to_string(home.active_file())
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// All accounts, sorted by prefix.
pub fn list(home: &Home) -> Result<Vec<Account>, AuthError> {
    let dir = home.keys_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AuthError::io(format!("reading {}", dir.display()))(e)),
    };
    let mut prefixes: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join("master.json").is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    prefixes.sort();
    let active = active_prefix(home);
    Ok(prefixes
        .into_iter()
        .enumerate()
        .map(|(index, prefix)| {
            let (public_key, problem) = match load_key(home, &prefix) {
                Ok(key) => (Some(public_key_b58(&key)), None),
                Err(e) => (None, Some(e.to_string())),
            };
            Account {
                index,
                active: active.as_deref() == Some(prefix.as_str()),
                prefix,
                public_key,
                problem,
            }
        })
        .collect())
}

/// Creates a new account from a fresh random seed; makes it active when asked.
pub fn generate(home: &Home, make_active: bool) -> Result<Account, AuthError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| AuthError::Io {
        context: "reading the system's random source".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let key = SigningKey::from_bytes(&seed);
    let public_key = public_key_b58(&key);
    let prefix = prefix_of(&public_key);
    let json = serde_json::to_string_pretty(&MasterKeyJson {
        algorithm: "web3".into(),
        seed: URL_SAFE_NO_PAD.encode(seed),
    })
    .map_err(|e| AuthError::Malformed(e.to_string()))?;
    fsutil::ensure_private_dir(&home.keys_dir())
        .map_err(AuthError::io("creating the keys directory"))?;
    fsutil::create_private(&home.master_key_file(&prefix), json.as_bytes())
        .map_err(AuthError::io(format!("writing account {prefix}")))?;
    fsutil::ensure_private_dir(&home.tokens_dir(&prefix))
        .map_err(AuthError::io("creating the tokens directory"))?;
    if make_active {
        write_active(home, &prefix)?;
    }
    let accounts = list(home)?;
    accounts
        .into_iter()
        .find(|a| a.prefix == prefix)
        .ok_or_else(|| AuthError::BadAccount {
            prefix,
            reason: "vanished right after it was written".into(),
        })
}

fn write_active(home: &Home, prefix: &str) -> Result<(), AuthError> {
    fsutil::write_private(&home.active_file(), prefix.as_bytes())
        .map_err(AuthError::io("writing the active account marker"))
}

/// Makes the account named by `which` active.
pub fn set_active(home: &Home, which: &AccountRef) -> Result<Account, AuthError> {
    let accounts = list(home)?;
    let known = || {
        accounts
            .iter()
            .map(|a| format!("{} ({})", a.index, a.prefix))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if accounts.is_empty() {
        return Err(AuthError::NotFound {
            field: "account",
            message: "there are no accounts yet: use action \"generate\" first".into(),
        });
    }
    let found = match which {
        AccountRef::Index(i) => accounts.get(*i).ok_or_else(|| AuthError::NotFound {
            field: "account",
            message: format!("index {i} is out of range (known: {})", known()),
        })?,
        AccountRef::Prefix(p) => {
            let p = p.trim();
            if p.is_empty() {
                return Err(AuthError::invalid(
                    "account",
                    format!("must not be empty (known: {})", known()),
                ));
            }
            let matches: Vec<&Account> = accounts
                .iter()
                .filter(|a| {
                    a.prefix.starts_with(p) || a.public_key.as_deref().is_some_and(|k| k == p)
                })
                .collect();
            match matches.as_slice() {
                [one] => *one,
                [] => {
                    return Err(AuthError::NotFound {
                        field: "account",
                        message: format!("no account matches \"{p}\" (known: {})", known()),
                    });
                }
                many => {
                    return Err(AuthError::invalid(
                        "account",
                        format!(
                            "\"{p}\" matches {} accounts; give a longer prefix",
                            many.len()
                        ),
                    ));
                }
            }
        }
    };
    if let Some(problem) = &found.problem {
        return Err(AuthError::BadAccount {
            prefix: found.prefix.clone(),
            reason: problem.clone(),
        });
    }
    write_active(home, &found.prefix)?;
    Ok(Account {
        active: true,
        ..found.clone()
    })
}

/// The active account's prefix and signing key.
pub fn load_active(home: &Home) -> Result<(String, SigningKey), AuthError> {
    let prefix = active_prefix(home).ok_or(AuthError::NoActiveAccount)?;
    let key = load_key(home, &prefix)?;
    Ok((prefix, key))
}
