//! Secret redaction for anything shown to people or agents: log tails, errors, status.
//!
//! Known secret values (provider keys from config, `.env` and the environment) are replaced
//! verbatim; shapes that look like secrets (JWTs, `Bearer …`, `sk-…` keys) are replaced by pattern.

const MASK: &str = "[REDACTED]";
/// Values shorter than this are not treated as secrets (too likely to match ordinary text).
const MIN_SECRET_LEN: usize = 6;

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .collect();
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// Secrets of this process's environment (`*_API_KEY`, `*_TOKEN`) plus `extra`.
    pub fn from_env_and(extra: impl IntoIterator<Item = String>) -> Self {
        let env = std::env::vars()
            .filter(|(k, _)| k.ends_with("_API_KEY") || k.ends_with("_TOKEN"))
            .map(|(_, v)| v);
        Self::new(env.chain(extra))
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        mask_after(&mut out, "Bearer ", 1);
        mask_after(&mut out, "sk-", 16);
        mask_jwts(&mut out);
        out
    }
}

/// Quoted values longer than this are cut in messages.
const MAX_QUOTED: usize = 64;
/// No message shown to an agent is longer than this.
const MAX_MESSAGE: usize = 2048;

/// Shortens a message for an agent or a log: every `"…"` or `` `…` `` quoted value longer than
/// 64 characters is cut to its start and length, and the whole message to 2 KB, so a 1 MB bad
/// argument is not sent back whole.
pub fn clip(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE + 64));
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest[open..].chars().next().unwrap_or('"');
        out.push_str(&rest[..=open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find(quote) else {
            rest = after;
            break;
        };
        let value = &after[..close];
        let len = value.chars().count();
        if len > MAX_QUOTED {
            out.extend(value.chars().take(MAX_QUOTED));
            out.push('…');
            out.push(quote);
            out.push_str(&format!(" ({len} characters)"));
        } else {
            out.push_str(value);
            out.push(quote);
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    if out.len() > MAX_MESSAGE {
        let total = out.chars().count();
        let cut: String = out.chars().take(MAX_MESSAGE).collect();
        return format!("{cut}… ({total} characters in all)");
    }
    out
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/' | '=')
}

/// Masks the run of token characters after each `marker` when it is at least `min` long.
fn mask_after(text: &mut String, marker: &str, min: usize) {
    let mut from = 0;
    while let Some(pos) = text[from..].find(marker) {
        let start = from + pos + marker.len();
        let len: usize = text[start..]
            .chars()
            .take_while(|c| is_token_char(*c))
            .map(char::len_utf8)
            .sum();
        if len >= min && &text[start..start + len] != MASK {
            text.replace_range(start..start + len, MASK);
            from = start + MASK.len();
        } else {
            from = start + len;
        }
    }
}

/// Masks `eyJ…` strings with three dot-separated parts (JWTs).
fn mask_jwts(text: &mut String) {
    let mut from = 0;
    while let Some(pos) = text[from..].find("eyJ") {
        let start = from + pos;
        let len: usize = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .map(char::len_utf8)
            .sum();
        if text[start..start + len].matches('.').count() >= 2 {
            text.replace_range(start..start + len, MASK);
            from = start + MASK.len();
        } else {
            from = start + len.max(3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_known_values_and_secret_shapes() {
        let r = Redactor::new(["k1".to_string(), "my-provider-key-42".to_string()]);
        let line = "key=my-provider-key-42 auth: Bearer abc.def.ghi sk-proj-ABCDEFGHIJKLMNOPQRST jwt eyJhbGciOi.eyJpc3Mi.c2ln k1";
        let out = r.redact(line);
        assert!(!out.contains("my-provider-key-42"), "{out}");
        assert!(!out.contains("abc.def.ghi"), "{out}");
        assert!(!out.contains("ABCDEFGHIJ"), "{out}");
        assert!(!out.contains("eyJpc3Mi"), "{out}");
        // Too short to be treated as a secret: left alone.
        assert!(out.ends_with(" k1"), "{out}");
        assert_eq!(r.redact("plain log line"), "plain log line");
    }

    #[test]
    fn clip_cuts_long_quoted_values_and_long_messages() {
        let long = "n".repeat(1_000_000);
        let out = clip(&format!(
            "argument `name`: \"{long}\" is not valid: expected 1-64 chars"
        ));
        assert!(out.len() < 300, "{out}");
        assert!(out.contains("(1000000 characters)"), "{out}");
        assert!(out.ends_with("is not valid: expected 1-64 chars"), "{out}");
        assert_eq!(clip("short \"value\" kept"), "short \"value\" kept");
        let out = clip(&"x".repeat(10_000));
        assert!(out.len() < 2200 && out.contains("10000 characters in all"));
        // An unclosed quote is left as it is, within the cap.
        assert_eq!(clip("odd \"tail"), "odd \"tail");
    }
}
