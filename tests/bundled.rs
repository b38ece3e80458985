//! The npm packages' layout: `bitrouter` sits beside `bitrouter-mcp`, reached through a `bin`
//! symlink, on a machine with no `BITROUTER_BIN`, an empty cache and no `bitrouter` on `PATH`. The
//! server must start that daemon and say where it came from, with no build.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{TestHome, free_port};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use serde_json::json;

#[cfg(unix)]
#[tokio::test]
async fn the_daemon_beside_the_server_is_used_with_no_flag_cache_or_path() {
    let home = TestHome::new();
    // The platform package: bin/bitrouter-mcp and bin/bitrouter side by side.
    let pkg_bin = home.dir.path().join("pkg/bin");
    std::fs::create_dir_all(&pkg_bin).unwrap();
    std::fs::copy(common::SERVER_BIN, pkg_bin.join("bitrouter-mcp")).unwrap();
    std::os::unix::fs::symlink(common::bitrouter_bin(), pkg_bin.join("bitrouter")).unwrap();
    // What a package manager puts on PATH: a symlink to the real executable.
    let dot_bin = home.dir.path().join("node_modules/.bin");
    std::fs::create_dir_all(&dot_bin).unwrap();
    std::os::unix::fs::symlink(pkg_bin.join("bitrouter-mcp"), dot_bin.join("bitrouter-mcp"))
        .unwrap();
    let empty_cache = home.dir.path().join("empty-cache");

    let config = home.write_config(&json!({"port": free_port(), "healthCheckIntervalMs": 500}));
    let mut cmd = tokio::process::Command::new(dot_bin.join("bitrouter-mcp"));
    cmd.arg("--data-dir")
        .arg(home.data_dir())
        .arg("--config")
        .arg(&config)
        .args(["serve", "--stdio"])
        .env_remove("BITROUTER_BIN")
        .env("BITROUTER_MCP_CACHE", &empty_cache)
        .env("BITROUTER_MCP_AUTO_INSTALL", "0")
        .env("BITROUTER_MCP_LOG", "warn")
        .env("PATH", path_without_bitrouter());
    let client = ().serve(TokioChildProcess::new(cmd).unwrap()).await.unwrap();

    let start = std::time::Instant::now();
    let status = loop {
        let s = client
            .call_tool(CallToolRequestParams::new("bitrouter_status"))
            .await
            .unwrap()
            .structured_content
            .unwrap();
        if s["daemon"]["state"] == "healthy" {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the daemon never became healthy: {s:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status["binary"]["source"], "bundled", "{status:#}");
    let path = status["binary"]["path"].as_str().unwrap();
    assert_eq!(
        Path::new(path),
        pkg_bin.canonicalize().unwrap().join("bitrouter"),
        "the daemon beside the real executable, not beside the symlink"
    );
    assert_eq!(status["binary"]["problem"], serde_json::Value::Null);
    assert!(
        !empty_cache.exists(),
        "nothing was built or installed into the cache"
    );
    let _ = client.cancel().await;
}

/// `PATH` of this test minus every directory that holds a `bitrouter`.
fn path_without_bitrouter() -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).filter(|d| !d.join("bitrouter").exists());
    std::env::join_paths(dirs).unwrap()
}
