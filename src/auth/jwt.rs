//! BitRouter's JWT dialect: header `{"alg":"SOL_EDDSA","typ":"JWT"}`, Ed25519 over
//! `header_b64.claims_b64`, base64url without padding, issuer in CAIP-10 form.
//!
//! `jsonwebtoken` cannot represent the `SOL_EDDSA` algorithm (its `Algorithm` enum rejects the
//! header), so signing and decoding are done here with `ed25519-dalek`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AuthError;

/// CAIP-2 id of Solana mainnet, the chain BitRouter's Ed25519 tokens name.
pub const SOLANA_MAINNET: &str = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp";
const HEADER_SOL_EDDSA: &str = r#"{"alg":"SOL_EDDSA","typ":"JWT"}"#;

/// What a token may be used for. The daemon's `/v1/*` routes accept either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[default]
    Api,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Api => "api",
            Scope::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BudgetScope {
    Session,
    Account,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum BudgetRange {
    Rounds { count: u32 },
    Duration { seconds: u64 },
}

/// The claims BitRouter 0.11.0 reads, in its field order and spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Claims {
    /// CAIP-10 issuer: `solana:<genesis>:<base58 public key>`.
    pub iss: String,
    /// CAIP-2 chain id.
    pub chain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Expiry (Unix seconds); absent means the token never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    pub scope: Scope,
    /// Model patterns this token may call, e.g. `openai:*`; absent means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_scope: Option<BudgetScope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_range: Option<BudgetRange>,
}

impl Claims {
    pub fn is_expired(&self, now: u64) -> bool {
        self.exp.is_some_and(|exp| exp <= now)
    }
}

/// The CAIP-10 issuer string for a public key.
pub fn issuer(key: &VerifyingKey) -> String {
    format!(
        "{SOLANA_MAINNET}:{}",
        bs58::encode(key.as_bytes()).into_string()
    )
}

/// Signs `claims` with `key` the way `bitrouter keygen` does.
pub fn sign(claims: &Claims, key: &SigningKey) -> Result<String, AuthError> {
    let payload = serde_json::to_vec(claims).map_err(|e| AuthError::Malformed(e.to_string()))?;
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER_SOL_EDDSA),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = key.sign(signing_input.as_bytes());
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    ))
}

fn split(token: &str) -> Result<(&str, &str, &str), AuthError> {
    let mut parts = token.trim().split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(c), Some(s), None) => Ok((h, c, s)),
        _ => Err(AuthError::Malformed(
            "expected three dot-separated parts".into(),
        )),
    }
}

fn b64(part: &str, what: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| AuthError::Malformed(format!("{what} is not base64url: {e}")))
}

/// Reads the claims without checking the signature (as `bitrouter keys --show` does).
pub fn decode_unverified(token: &str) -> Result<Claims, AuthError> {
    let (_, claims, _) = split(token)?;
    serde_json::from_slice(&b64(claims, "claims")?)
        .map_err(|e| AuthError::Malformed(format!("claims: {e}")))
}

/// Checks a `SOL_EDDSA` token's signature against the key named in its `iss` and returns its claims.
pub fn verify(token: &str) -> Result<Claims, AuthError> {
    let (header_b64, claims_b64, sig) = split(token)?;
    let header: serde_json::Value = serde_json::from_slice(&b64(header_b64, "header")?)
        .map_err(|e| AuthError::Malformed(format!("header: {e}")))?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("SOL_EDDSA") {
        return Err(AuthError::Malformed("algorithm is not SOL_EDDSA".into()));
    }
    let claims = decode_unverified(token)?;
    let pubkey_b58 = claims
        .iss
        .strip_prefix(SOLANA_MAINNET)
        .and_then(|rest| rest.strip_prefix(':'))
        .ok_or_else(|| AuthError::Malformed("issuer is not a Solana CAIP-10 id".into()))?;
    let pubkey: [u8; 32] = bs58::decode(pubkey_b58)
        .into_vec()
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| AuthError::Malformed("issuer public key is not 32 base58 bytes".into()))?;
    let key = VerifyingKey::from_bytes(&pubkey)
        .map_err(|e| AuthError::Malformed(format!("issuer public key: {e}")))?;
    let sig: [u8; 64] = b64(sig, "signature")?
        .try_into()
        .map_err(|_| AuthError::Malformed("signature is not 64 bytes".into()))?;
    let signing_input = format!("{header_b64}.{claims_b64}");
    key.verify(signing_input.as_bytes(), &Signature::from_bytes(&sig))
        .map_err(|_| AuthError::Malformed("signature does not match the issuer".into()))?;
    Ok(claims)
}

/// Parses an expiry as `bitrouter keygen --exp` does: `never`, `<n>s|m|h|d|y`, or a Unix timestamp.
/// Returns the absolute expiry, `None` for never.
pub fn parse_expiration(input: &str, now: u64) -> Result<Option<u64>, AuthError> {
    const EXPECTED: &str = "expected \"never\", a duration like \"30m\", \"12h\", \"30d\", \"1y\" (units s/m/h/d/y), or a Unix timestamp";
    let s = input.trim();
    if s == "never" {
        return Ok(None);
    }
    let too_far = || {
        AuthError::invalid(
            "exp",
            format!("\"{input}\" is too far in the future (the latest is the end of year 9999)"),
        )
    };
    if let Ok(ts) = s.parse::<u64>() {
        if ts > super::MAX_RFC3339_UNIX {
            return Err(too_far());
        }
        if ts <= now {
            // A token that is dead when minted is never what was meant.
            return Err(AuthError::invalid(
                "exp",
                format!(
                    "Unix time {ts} ({}) is not in the future (now is {now}): give a later \
                     timestamp, a duration such as \"30d\", or \"never\"",
                    super::rfc3339(ts)
                ),
            ));
        }
        return Ok(Some(ts));
    }
    let bad = || AuthError::invalid("exp", format!("\"{input}\" is not valid: {EXPECTED}"));
    let unit_at = s.len().checked_sub(1).ok_or_else(bad)?;
    if !s.is_char_boundary(unit_at) {
        return Err(bad());
    }
    let (num, unit) = s.split_at(unit_at);
    let num: u64 = num.parse().map_err(|_| bad())?;
    let per_unit: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "y" => 365 * 86_400,
        _ => return Err(bad()),
    };
    if num == 0 {
        return Err(AuthError::invalid(
            "exp",
            format!("\"{s}\" would expire at once: give a positive duration or \"never\""),
        ));
    }
    num.checked_mul(per_unit)
        .and_then(|secs| secs.checked_add(now))
        .filter(|exp| *exp <= super::MAX_RFC3339_UNIX)
        .map(Some)
        .ok_or_else(too_far)
}

/// Parses `rounds:N` or `duration:Ns` as `bitrouter keygen --budget-range` does.
pub fn parse_budget_range(input: &str) -> Result<BudgetRange, AuthError> {
    let bad = || {
        AuthError::invalid(
            "budget_range",
            format!("\"{input}\" is not valid: expected \"rounds:N\" or \"duration:Ns\""),
        )
    };
    if let Some(count) = input.strip_prefix("rounds:") {
        return Ok(BudgetRange::Rounds {
            count: count.parse().map_err(|_| bad())?,
        });
    }
    if let Some(rest) = input.strip_prefix("duration:") {
        let secs = rest.strip_suffix('s').unwrap_or(rest);
        return Ok(BudgetRange::Duration {
            seconds: secs.parse().map_err(|_| bad())?,
        });
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn claims(key: &SigningKey) -> Claims {
        Claims {
            iss: issuer(&key.verifying_key()),
            chain: SOLANA_MAINNET.into(),
            iat: Some(1),
            exp: None,
            scope: Scope::Api,
            models: Some(vec!["openai:*".into()]),
            budget: None,
            budget_scope: None,
            budget_range: None,
        }
    }

    #[test]
    fn signed_token_verifies_and_tampering_is_caught() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let token = sign(&claims(&key), &key).unwrap();
        assert_eq!(verify(&token).unwrap(), claims(&key));
        let header = token.split('.').next().unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(header).unwrap(),
            HEADER_SOL_EDDSA.as_bytes()
        );
        let mut other = claims(&key);
        other.scope = Scope::Admin;
        let forged_claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
        assert!(verify(&forged).is_err());
    }

    #[test]
    fn expiration_matches_the_cli() {
        assert_eq!(parse_expiration("never", 100).unwrap(), None);
        assert_eq!(parse_expiration("30m", 100).unwrap(), Some(1900));
        assert_eq!(parse_expiration("12h", 0).unwrap(), Some(43_200));
        assert_eq!(parse_expiration("30d", 0).unwrap(), Some(2_592_000));
        assert_eq!(
            parse_expiration("1700000000", 0).unwrap(),
            Some(1_700_000_000)
        );
        for bad in [
            "",
            "m",
            "5w",
            "-5m",
            "ä",
            "99999999999999999999y",
            "10000y",
            "253402300800",
            "18446744073709551615",
        ] {
            let err = parse_expiration(bad, 0).unwrap_err().to_string();
            assert!(err.starts_with("exp:"), "{bad}: {err}");
        }
    }

    #[test]
    fn budget_range_forms() {
        assert_eq!(
            parse_budget_range("rounds:10").unwrap(),
            BudgetRange::Rounds { count: 10 }
        );
        assert_eq!(
            parse_budget_range("duration:60s").unwrap(),
            BudgetRange::Duration { seconds: 60 }
        );
        assert!(parse_budget_range("weekly").is_err());
    }
}
