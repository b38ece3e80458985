//! Finds the `bitrouter` binary: configured path, then beside this server's own executable (where
//! the npm packages put the pinned daemon), then the project's pinned cache, then `PATH`, and checks
//! its version against the pinned release.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Serialize;

use crate::PINNED_BITROUTER_VERSION;

/// Command that installs the pinned daemon.
pub const INSTALL_COMMAND: &str = "bitrouter-mcp daemon install";

/// What status reports about the binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct BinaryInfo {
    pub path: Option<String>,
    /// Where it was found: `configured`, `bundled` (beside this server, as npm ships it), `cache` or `PATH`.
    pub source: Option<String>,
    pub version: Option<String>,
    pub pinned_version: String,
    /// A problem a user must act on (missing, wrong version), with the command that fixes it.
    pub problem: Option<String>,
}

/// The project's cache: `$BITROUTER_MCP_CACHE` or `~/.cache/bitrouter-mcp`.
pub fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("BITROUTER_MCP_CACHE")
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("bitrouter-mcp")))
}

/// Where the install script puts the pinned binary.
pub fn cached_binary() -> Option<PathBuf> {
    cache_dir().map(|d| {
        d.join(format!("bitrouter-{PINNED_BITROUTER_VERSION}"))
            .join("bin")
            .join("bitrouter")
    })
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `bitrouter` in the directory of this process's executable (symlinks resolved, so a `bin` link
/// in `node_modules/.bin` or `~/.local/bin` still leads to the package that holds both binaries).
pub fn bundled_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let exe = exe.canonicalize().unwrap_or(exe);
    Some(bundled_in(exe.parent()?))
}

fn bundled_in(dir: &Path) -> PathBuf {
    dir.join(format!("bitrouter{}", std::env::consts::EXE_SUFFIX))
}

/// Resolution order: configured path, beside the server, pinned cache, `PATH`.
///
/// An explicit `--bitrouter`/`BITROUTER_BIN` wins because the user chose it; the bundled binary
/// comes next because it is the pinned release shipped with this very server, so an npm install
/// needs no build and is not shadowed by an older `bitrouter` on `PATH`.
pub fn locate(configured: Option<&Path>) -> Option<(PathBuf, &'static str)> {
    locate_from(configured, bundled_binary().as_deref())
}

fn locate_from(
    configured: Option<&Path>,
    bundled: Option<&Path>,
) -> Option<(PathBuf, &'static str)> {
    if let Some(p) = configured {
        return Some((p.to_path_buf(), "configured"));
    }
    if let Some(p) = bundled.filter(|p| p.is_file()) {
        return Some((p.to_path_buf(), "bundled"));
    }
    if let Some(p) = cached_binary().filter(|p| p.is_file()) {
        return Some((p, "cache"));
    }
    on_path("bitrouter").map(|p| (p, "PATH"))
}

/// Runs `bitrouter --version` and parses `bitrouter X.Y.Z`.
pub async fn version_of(path: &Path) -> Result<String, String> {
    let out = tokio::process::Command::new(path)
        .arg("--version")
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(1)
        .map(str::to_string)
        .ok_or_else(|| format!("unexpected `--version` output: {}", text.trim()))
}

/// Locates and checks the binary.
pub async fn inspect(configured: Option<&Path>) -> BinaryInfo {
    let mut info = BinaryInfo {
        path: None,
        source: None,
        version: None,
        pinned_version: PINNED_BITROUTER_VERSION.into(),
        problem: None,
    };
    let Some((path, source)) = locate(configured) else {
        info.problem = Some(format!(
            "binary not found: install the pinned bitrouter {PINNED_BITROUTER_VERSION} with `{INSTALL_COMMAND}`"
        ));
        return info;
    };
    info.path = Some(path.display().to_string());
    info.source = Some(source.into());
    if !path.is_file() {
        info.problem = Some(format!(
            "binary not found at {} (set by --bitrouter or BITROUTER_BIN): fix the path, or unset it and install the pinned bitrouter {PINNED_BITROUTER_VERSION} with `{INSTALL_COMMAND}`",
            path.display()
        ));
        return info;
    }
    match version_of(&path).await {
        Ok(v) => {
            if v != PINNED_BITROUTER_VERSION {
                info.problem = Some(format!(
                    "bitrouter {v} found at {}, but this server is built for {PINNED_BITROUTER_VERSION}; install it with `{INSTALL_COMMAND}`",
                    path.display()
                ));
            }
            info.version = Some(v);
        }
        Err(e) => info.problem = Some(e),
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }

    #[test]
    fn the_binary_beside_the_server_comes_before_cache_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let bundled = bundled_in(&dir.path().join("pkg/bin"));
        touch(&bundled);
        assert_eq!(
            locate_from(None, Some(&bundled)),
            Some((bundled.clone(), "bundled"))
        );
    }

    #[test]
    fn an_explicit_path_still_wins_over_the_bundled_binary() {
        let dir = tempfile::tempdir().unwrap();
        let bundled = bundled_in(dir.path());
        touch(&bundled);
        let chosen = dir.path().join("custom/bitrouter");
        assert_eq!(
            locate_from(Some(&chosen), Some(&bundled)),
            Some((chosen.clone(), "configured"))
        );
    }

    #[test]
    fn a_missing_bundled_binary_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let absent = bundled_in(dir.path());
        let found = locate_from(None, Some(&absent));
        assert_ne!(found.map(|(_, s)| s), Some("bundled"));
    }
}
