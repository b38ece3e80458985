//! `bitrouter_account`: list accounts, generate one, choose the active one. Never returns a seed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ToolError, unused};
use crate::auth::keystore::{self, Account, AccountRef};
use crate::home::Home;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountAction {
    /// Show every account and which one is active.
    #[default]
    List,
    /// Create a new Ed25519 account.
    Generate,
    /// Make an existing account the one that signs new tokens.
    SetActive,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountParams {
    /// "list" (default), "generate" or "set_active".
    #[serde(default)]
    pub action: AccountAction,
    /// For "set_active": the account's index in the list (e.g. 0) or a unique prefix of its public key.
    #[serde(default)]
    #[schemars(with = "AccountRef")]
    pub account: Option<AccountRef>,
    /// For "generate": make the new account active (default true, as `bitrouter account --generate-key` does).
    #[serde(default)]
    #[schemars(with = "bool")]
    pub set_active: Option<bool>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AccountOutput {
    /// All accounts, sorted by prefix.
    pub accounts: Vec<Account>,
    /// Prefix of the active account, if any.
    pub active: Option<String>,
    /// The account that was generated or made active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<Account>,
    pub message: String,
}

pub fn run(home: &Home, params: AccountParams) -> Result<AccountOutput, ToolError> {
    let (changed, message) = match params.action {
        AccountAction::List => {
            unused(&params.account, "account", "list")?;
            unused(&params.set_active, "set_active", "list")?;
            (None, String::new())
        }
        AccountAction::Generate => {
            unused(&params.account, "account", "generate")?;
            let make_active = params.set_active.unwrap_or(true);
            let account = keystore::generate(home, make_active)?;
            let message = format!(
                "generated account {}{}",
                account.prefix,
                if make_active { " (now active)" } else { "" }
            );
            (Some(account), message)
        }
        AccountAction::SetActive => {
            unused(&params.set_active, "set_active", "set_active")?;
            let which = params.account.as_ref().ok_or_else(|| {
                ToolError::arg(
                    "account",
                    "is required for action \"set_active\": an index from the list (e.g. 0) or a public key prefix",
                )
            })?;
            let account = keystore::set_active(home, which)?;
            let message = format!("account {} is now active", account.prefix);
            (Some(account), message)
        }
    };
    let accounts = keystore::list(home)?;
    let active = accounts.iter().find(|a| a.active).map(|a| a.prefix.clone());
    let message = if message.is_empty() {
        match accounts.len() {
            0 => "no accounts yet: call with action \"generate\" to create one".to_string(),
            n => format!("{n} account(s)"),
        }
    } else {
        message
    };
    Ok(AccountOutput {
        accounts,
        active,
        changed,
        message,
    })
}
