//! Finds the `bitrouter` binary: configured path, then the project's pinned cache, then `PATH`,
//! and checks its version against the pinned release.

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
    /// Where it was found: `configured`, `cache` or `PATH`.
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

/// Resolution order: configured path, pinned cache, `PATH`.
pub fn locate(configured: Option<&Path>) -> Option<(PathBuf, &'static str)> {
    if let Some(p) = configured {
        return Some((p.to_path_buf(), "configured"));
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
