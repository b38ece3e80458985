//! The MCP tools as plain functions over a [`Home`](crate::home::Home): typed parameters in,
//! typed results out, errors as values. The server module only adapts them to MCP.

pub mod account;
pub mod keygen;
pub mod keys;
pub mod status;
pub mod usage;

use serde::Serialize;

use crate::auth::AuthError;

/// What kind of failure a tool error is, as a stable name a program can branch on (the message is
/// for people and may change). The server sends it beside the message as
/// `_meta["bitrouter/error"].code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// An argument is missing, malformed, out of range or not used by the action; `field` names it.
    InvalidArgument,
    /// Signing needs an active account and there is none.
    NoActiveAccount,
    /// Something with that name exists already (a saved token); `field` names the argument.
    AlreadyExists,
    /// The named thing does not exist (saved token, account, virtual model); `field` names the
    /// argument.
    NotFound,
    /// A stored account or token is unreadable or damaged.
    CorruptData,
    /// The daemon's spend log could not be read.
    SpendLogUnavailable,
    /// Reading or writing a file failed (permissions, disk full).
    Io,
    /// A failure inside the server (e.g. a worker task died).
    Internal,
}

impl ErrorCode {
    /// Every code, for documentation checks.
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::InvalidArgument,
        ErrorCode::NoActiveAccount,
        ErrorCode::AlreadyExists,
        ErrorCode::NotFound,
        ErrorCode::CorruptData,
        ErrorCode::SpendLogUnavailable,
        ErrorCode::Io,
        ErrorCode::Internal,
    ];

    /// The code as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::NoActiveAccount => "no_active_account",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::NotFound => "not_found",
            ErrorCode::CorruptData => "corrupt_data",
            ErrorCode::SpendLogUnavailable => "spend_log_unavailable",
            ErrorCode::Io => "io",
            ErrorCode::Internal => "internal",
        }
    }
}

/// A tool failure an agent can act on: the message names the argument and what was expected; the
/// code and field say the same to a program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    pub code: ErrorCode,
    /// The argument at fault, when there is one.
    pub field: Option<&'static str>,
    pub message: String,
}

impl ToolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            field: None,
            message: message.into(),
        }
    }

    /// A failure tied to one argument: the message starts with its name.
    pub fn at(code: ErrorCode, field: &'static str, message: impl std::fmt::Display) -> Self {
        Self {
            code,
            field: Some(field),
            message: format!("argument `{field}`: {message}"),
        }
    }

    /// A bad argument.
    pub fn arg(field: &'static str, message: impl std::fmt::Display) -> Self {
        Self::at(ErrorCode::InvalidArgument, field, message)
    }
}

impl From<AuthError> for ToolError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidArgument { field, message } => Self::arg(field, message),
            AuthError::AlreadyExists { field, message } => {
                Self::at(ErrorCode::AlreadyExists, field, message)
            }
            AuthError::NotFound { field, message } => Self::at(ErrorCode::NotFound, field, message),
            AuthError::NoActiveAccount => Self::new(ErrorCode::NoActiveAccount, e.to_string()),
            AuthError::BadAccount { .. } | AuthError::BadToken { .. } | AuthError::Malformed(_) => {
                Self::new(ErrorCode::CorruptData, e.to_string())
            }
            AuthError::Io { .. } => Self::new(ErrorCode::Io, e.to_string()),
        }
    }
}

/// Rejects an argument given to an action that does not use it, so a typo'd call is not silently
/// half-applied.
fn unused<T>(value: &Option<T>, field: &'static str, action: &str) -> Result<(), ToolError> {
    if value.is_some() {
        return Err(ToolError::arg(
            field,
            format!("is not used by action \"{action}\"; remove it"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn codes_are_their_serde_names_and_documented_in_the_readme() {
        let readme = include_str!("../../README.md");
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
            assert!(
                readme.contains(&format!("| `{}` |", code.as_str())),
                "README's table of tool error codes lacks {}",
                code.as_str()
            );
        }
    }
}
