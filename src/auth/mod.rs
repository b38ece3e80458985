//! BitRouter identities on disk: Ed25519 accounts under `<home>/.keys` and the JWTs they sign.
//!
//! Byte-compatible with `bitrouter` 0.11.0: accounts made by `bitrouter account --generate-key` are
//! ours and vice versa; tokens we mint are accepted by the daemon and shown by `bitrouter keys`.
//! This module owns the file formats; it never logs or returns a seed.

pub mod jwt;
pub mod keystore;
pub mod tokens;

use std::path::PathBuf;

/// What can go wrong with accounts and tokens. Messages name the argument at fault.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no active account: generate one with bitrouter_account action \"generate\" (or `bitrouter account --generate-key`)"
    )]
    NoActiveAccount,
    #[error("{field}: {message}")]
    InvalidArgument {
        field: &'static str,
        message: String,
    },
    /// Refused because it exists already (a token name taken).
    #[error("{field}: {message}")]
    AlreadyExists {
        field: &'static str,
        message: String,
    },
    /// What an argument names does not exist (a saved token, an account).
    #[error("{field}: {message}")]
    NotFound {
        field: &'static str,
        message: String,
    },
    #[error("account {prefix}: {reason}")]
    BadAccount { prefix: String, reason: String },
    #[error("token file {path}: {reason}")]
    BadToken { path: PathBuf, reason: String },
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl AuthError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            message: message.into(),
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The last second RFC 3339 can write (9999-12-31T23:59:59Z).
pub const MAX_RFC3339_UNIX: u64 = 253_402_300_799;

/// RFC 3339 rendering of a Unix timestamp, for humans and agents. Times past year 9999 (which
/// tokens minted elsewhere may carry) are shown as the raw number instead.
pub fn rfc3339(unix: u64) -> String {
    if unix > MAX_RFC3339_UNIX {
        return format!("unix time {unix} (after year 9999)");
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix);
    humantime::format_rfc3339_seconds(t).to_string()
}
