//! `bitrouter_keygen`: mint a JWT signed by the active account, optionally saved by name.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ToolError;
use crate::auth::jwt::{self, BudgetScope, Claims, Scope};
use crate::auth::{keystore, now_unix, rfc3339, tokens};
use crate::home::Home;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeygenParams {
    /// Expiry: "30m", "12h", "30d", "1y" (units s/m/h/d/y), "never", or a future Unix timestamp.
    /// Default "never" for api tokens; admin tokens must expire.
    #[serde(default)]
    #[schemars(with = "String")]
    pub exp: Option<String>,
    /// "api" (default: calls models) or "admin" (also manages the daemon's routes).
    #[serde(default)]
    #[schemars(with = "Scope")]
    pub scope: Option<Scope>,
    /// Models the token may call, as patterns like "openai:*", "anthropic:claude-*" or a virtual model name. Omit for all models.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub models: Option<Vec<String>>,
    /// Spending limit in micro-USD (1000000 = 1 USD).
    #[serde(default)]
    #[schemars(with = "u64")]
    pub budget: Option<u64>,
    /// What the budget applies to: "session" or "account".
    #[serde(default)]
    #[schemars(with = "BudgetScope")]
    pub budget_scope: Option<BudgetScope>,
    /// Budget window: "rounds:N" or "duration:Ns".
    #[serde(default)]
    #[schemars(with = "String")]
    pub budget_range: Option<String>,
    /// Save the token as tokens/<name>.jwt of the active account (1-64 of A-Z a-z 0-9 - _ .). An existing name is not replaced.
    #[serde(default)]
    #[schemars(with = "String")]
    pub name: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct KeygenOutput {
    /// The JWT: send it as `Authorization: Bearer <token>` to the daemon.
    pub token: String,
    pub claims: Claims,
    /// Prefix of the account that signed it.
    pub account: String,
    /// Expiry in RFC 3339, or "never".
    pub expires: String,
    /// File the token was saved to, when a name was given.
    pub saved_to: Option<String>,
}

pub fn run(home: &Home, params: KeygenParams) -> Result<KeygenOutput, ToolError> {
    let now = now_unix();
    let scope = params.scope.unwrap_or_default();
    let exp = match params.exp.as_deref() {
        Some(s) => jwt::parse_expiration(s, now)?,
        None => None,
    };
    if scope == Scope::Admin && exp.is_none() {
        return Err(ToolError::arg(
            "exp",
            "admin-scope tokens must expire: give a duration such as \"5m\" or \"1h\"",
        ));
    }
    if let Some(models) = &params.models {
        if models.is_empty() {
            return Err(ToolError::arg(
                "models",
                "must not be empty: omit it to allow every model",
            ));
        }
        if let Some(bad) = models
            .iter()
            .find(|m| m.trim().is_empty() || m.chars().any(char::is_whitespace))
        {
            return Err(ToolError::arg(
                "models",
                format!(
                    "\"{bad}\" is not a model pattern: expected e.g. \"openai:*\" or \"smart\""
                ),
            ));
        }
    }
    let budget_range = params
        .budget_range
        .as_deref()
        .map(jwt::parse_budget_range)
        .transpose()?;
    if let Some(name) = &params.name {
        tokens::validate_name(name)?;
    }
    let (prefix, key) = keystore::load_active(home)?;
    let claims = Claims {
        iss: jwt::issuer(&key.verifying_key()),
        chain: jwt::SOLANA_MAINNET.into(),
        iat: Some(now),
        exp,
        scope,
        models: params.models,
        budget: params.budget,
        budget_scope: params.budget_scope,
        budget_range,
    };
    let token = jwt::sign(&claims, &key)?;
    let saved_to = match &params.name {
        Some(name) => Some(
            tokens::save(home, &prefix, name, &token)?
                .display()
                .to_string(),
        ),
        None => None,
    };
    Ok(KeygenOutput {
        token,
        expires: exp.map_or_else(|| "never".into(), rfc3339),
        claims,
        account: prefix,
        saved_to,
    })
}
