//! Builds the pinned BitRouter release into the project's cache with `cargo install`, reusing an
//! existing build. The same recipe as `scripts/install-bitrouter.sh`.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use super::binary;
use crate::PINNED_BITROUTER_VERSION;

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("no cache directory: set BITROUTER_MCP_CACHE or HOME")]
    NoCache,
    #[error("cannot run cargo (is the Rust toolchain installed?): {0}")]
    Cargo(std::io::Error),
    #[error("`cargo install bitrouter --version {PINNED_BITROUTER_VERSION}` failed with {0}:\n{1}")]
    Failed(std::process::ExitStatus, String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Installs the pinned daemon unless the cache already holds it; returns the binary path.
/// Each line of cargo's progress (`Compiling …`) is handed to `progress`.
pub async fn install(mut progress: impl FnMut(&str) + Send) -> Result<PathBuf, InstallError> {
    let target = binary::cached_binary().ok_or(InstallError::NoCache)?;
    if target.is_file()
        && binary::version_of(&target).await.ok().as_deref() == Some(PINNED_BITROUTER_VERSION)
    {
        return Ok(target);
    }
    let cache = binary::cache_dir().ok_or(InstallError::NoCache)?;
    std::fs::create_dir_all(&cache)?;
    // Build into a scratch root, then move it into place: an interrupted build never looks installed.
    let scratch = tempfile::Builder::new()
        .prefix(".build-")
        .tempdir_in(&cache)?;
    let mut child =
        tokio::process::Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()))
            .args([
                "install",
                "bitrouter",
                "--version",
                PINNED_BITROUTER_VERSION,
                "--locked",
                "--no-default-features",
                "--features",
                "sqlite",
                "--root",
            ])
            .arg(scratch.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(InstallError::Cargo)?;
    let mut tail = std::collections::VecDeque::new();
    if let Some(stderr) = child.stderr.take() {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            progress(line.trim());
            if tail.len() == 8 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
    let status = child.wait().await.map_err(InstallError::Cargo)?;
    if !status.success() {
        return Err(InstallError::Failed(
            status,
            tail.into_iter().collect::<Vec<_>>().join("\n"),
        ));
    }
    let root = target
        .parent()
        .and_then(|bin| bin.parent())
        .ok_or(InstallError::NoCache)?;
    if root.exists() {
        std::fs::remove_dir_all(root)?;
    }
    std::fs::rename(scratch.keep(), root)?;
    Ok(target)
}
