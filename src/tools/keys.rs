//! `bitrouter_keys`: list, inspect and remove the active account's saved tokens.
//! `remove` is the only destructive action of all our tools.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ToolError, unused};
use crate::auth::jwt::Claims;
use crate::auth::tokens::{self, TokenInfo};
use crate::home::Home;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeysAction {
    /// Every saved token of the active account, without the token text.
    #[default]
    List,
    /// One token's decoded claims.
    Show,
    /// Delete one saved token file (cannot be undone; the token itself stays valid until it expires).
    Remove,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeysParams {
    /// "list" (default), "show" or "remove".
    #[serde(default)]
    pub action: KeysAction,
    /// The saved token's name, for "show" and "remove".
    #[serde(default)]
    #[schemars(with = "String")]
    pub name: Option<String>,
}

#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct KeysOutput {
    /// Prefix of the active account, whose tokens these are.
    pub account: String,
    /// For "list": the saved tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Vec<TokenInfo>>,
    /// For "show": the token's description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenInfo>,
    /// For "show": the decoded claims.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims: Option<Claims>,
    /// For "remove": what was removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<TokenInfo>,
}

fn required<'a>(name: &'a Option<String>, action: &str) -> Result<&'a str, ToolError> {
    name.as_deref().ok_or_else(|| {
        ToolError::arg(
            "name",
            format!(
                "is required for action \"{action}\": a saved token's name (see action \"list\")"
            ),
        )
    })
}

pub fn run(home: &Home, params: KeysParams) -> Result<KeysOutput, ToolError> {
    match params.action {
        KeysAction::List => {
            unused(&params.name, "name", "list")?;
            let (account, list) = tokens::list(home)?;
            Ok(KeysOutput {
                account,
                tokens: Some(list),
                ..Default::default()
            })
        }
        KeysAction::Show => {
            let (info, claims) = tokens::show(home, required(&params.name, "show")?)?;
            Ok(KeysOutput {
                account: info.account.clone(),
                token: Some(info),
                claims: Some(claims),
                ..Default::default()
            })
        }
        KeysAction::Remove => {
            let info = tokens::remove(home, required(&params.name, "remove")?)?;
            Ok(KeysOutput {
                account: info.account.clone(),
                removed: Some(info),
                ..Default::default()
            })
        }
    }
}
