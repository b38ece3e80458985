//! `auth login`: provider keys given as `NAME=value` (stdin lines, `--set` flags or answers to
//! prompts), checked, and merged into BitRouter's `.env`.
//!
//! Reading the terminal stays with the CLI: everything here takes the input as values, so it is
//! tested without one. Errors name the line, flag or variable, never a key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{PluginConfig, credentials, env_file};
use crate::home::Home;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("{origin}: expected NAME=value (e.g. OPENAI_API_KEY=sk-...)")]
    NotAPair { origin: String },
    #[error("{origin}: {reason}")]
    Invalid { origin: String, reason: String },
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Provider keys to save, by variable name; a later entry for a name replaces an earlier one.
/// Its `Debug` shows names only.
#[derive(Default)]
pub struct Keys(BTreeMap<String, String>);

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Keys {
    /// `NAME=value` lines as `auth login --stdin` reads them; blank lines and `#` comments are
    /// skipped. An error names the line's number.
    pub fn from_lines(text: &str) -> Result<Self, LoginError> {
        let mut keys = Self::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                keys.add(line, || format!("stdin line {}", i + 1))?;
            }
        }
        Ok(keys)
    }

    /// `--set NAME=value` flags.
    pub fn from_pairs(pairs: &[impl AsRef<str>]) -> Result<Self, LoginError> {
        let mut keys = Self::default();
        for pair in pairs {
            keys.add(pair.as_ref(), || "--set".to_string())?;
        }
        Ok(keys)
    }

    /// Answers to the prompts for [`prompts`], as (variable, answer); an empty answer skips
    /// that variable.
    pub fn from_answers(
        answers: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, LoginError> {
        let mut keys = Self::default();
        for (var, value) in answers {
            let value = value.trim();
            if !value.is_empty() {
                keys.insert(var.trim(), value, || var.clone())?;
            }
        }
        Ok(keys)
    }

    fn add(&mut self, pair: &str, origin: impl Fn() -> String) -> Result<(), LoginError> {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| LoginError::NotAPair { origin: origin() })?;
        self.insert(name.trim(), value.trim(), origin)
    }

    fn insert(
        &mut self,
        name: &str,
        value: &str,
        origin: impl Fn() -> String,
    ) -> Result<(), LoginError> {
        env_file::validate_entry(name, value).map_err(|reason| LoginError::Invalid {
            origin: origin(),
            reason,
        })?;
        self.0.insert(name.to_string(), value.to_string());
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The variables' names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// The variables a terminal login prompts for: each known provider's key variable, built-ins
/// first.
pub fn prompts(config: &PluginConfig) -> Vec<String> {
    credentials::login_vars(config)
}

/// Merges `keys` into `home`'s `.env` (atomically, mode 0600), replacing only these names and
/// keeping every other line. Returns the file's path.
pub fn save(home: &Home, keys: &Keys) -> Result<PathBuf, LoginError> {
    let path = home.env_file();
    env_file::update(&path, |k| keys.0.contains_key(k), &keys.0).map_err(|source| {
        LoginError::Write {
            path: path.clone(),
            source,
        }
    })?;
    Ok(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stdin_lines_skip_comments_and_name_the_bad_line_without_its_value() {
        let keys = Keys::from_lines("# mine\n\n OPENAI_API_KEY = sk-1 \nX_KEY=a=b\n").unwrap();
        assert_eq!(keys.names(), ["OPENAI_API_KEY", "X_KEY"]);
        assert_eq!(keys.0["OPENAI_API_KEY"], "sk-1");
        assert_eq!(keys.0["X_KEY"], "a=b");

        let e = Keys::from_lines("A_KEY=1\nsk-secret-only\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "stdin line 2: expected NAME=value (e.g. OPENAI_API_KEY=sk-...)"
        );
        let e = Keys::from_lines("lower=sk-secret").unwrap_err().to_string();
        assert!(e.starts_with("stdin line 1: the part before '='"), "{e}");
        assert!(!e.contains("sk-secret"), "{e}");
        let e = Keys::from_lines("EMPTY_KEY=  ").unwrap_err().to_string();
        assert_eq!(
            e,
            "stdin line 1: EMPTY_KEY: the key must be a non-empty single line"
        );
    }

    #[test]
    fn flags_and_answers() {
        let keys = Keys::from_pairs(&["A_KEY=1", "A_KEY=2"]).unwrap();
        assert_eq!(keys.0["A_KEY"], "2");
        assert!(matches!(
            Keys::from_pairs(&["nope"]),
            Err(LoginError::NotAPair { origin }) if origin == "--set"
        ));
        let keys = Keys::from_answers([
            ("OPENAI_API_KEY".to_string(), " sk-1 ".to_string()),
            ("ANTHROPIC_API_KEY".to_string(), String::new()),
        ])
        .unwrap();
        assert_eq!(keys.names(), ["OPENAI_API_KEY"]);
        assert_eq!(keys.0["OPENAI_API_KEY"], "sk-1");
        assert_eq!(format!("{keys:?}"), r#"["OPENAI_API_KEY"]"#);
    }

    #[test]
    fn save_replaces_only_its_names_privately() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        std::fs::create_dir_all(home.bitrouter_home()).unwrap();
        std::fs::write(home.env_file(), "KEEP=1\nOPENAI_API_KEY=old\n").unwrap();
        let path = save(&home, &Keys::from_lines("OPENAI_API_KEY=new").unwrap()).unwrap();
        let saved = env_file::read(&path);
        assert_eq!(saved["KEEP"], "1");
        assert_eq!(saved["OPENAI_API_KEY"], "new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn prompts_follow_the_config() {
        let names = prompts(&PluginConfig::default());
        assert!(names.iter().any(|n| n == "OPENAI_API_KEY"), "{names:?}");
    }
}
