//! The MCP tools as plain functions over a [`Home`](crate::home::Home): typed parameters in,
//! typed results out, errors as values. The server module only adapts them to MCP.

pub mod account;
pub mod keygen;
pub mod keys;
pub mod status;
pub mod usage;

use crate::auth::AuthError;

/// A tool failure an agent can act on: the message names the argument and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ToolError(pub String);

impl ToolError {
    pub fn arg(field: &str, message: impl std::fmt::Display) -> Self {
        Self(format!("argument `{field}`: {message}"))
    }
}

impl From<AuthError> for ToolError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidArgument { field, message } => Self::arg(field, message),
            other => Self(other.to_string()),
        }
    }
}

/// Rejects an argument given to an action that does not use it, so a typo'd call is not silently
/// half-applied.
fn unused<T>(value: &Option<T>, field: &str, action: &str) -> Result<(), ToolError> {
    if value.is_some() {
        return Err(ToolError::arg(
            field,
            format!("is not used by action \"{action}\"; remove it"),
        ));
    }
    Ok(())
}
