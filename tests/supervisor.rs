//! The supervisor on the real daemon: autostart, crash restart, crash-loop give-up, port conflict,
//! missing binary, and the daemon never outliving the server (SIGTERM, stdin EOF, SIGKILL).
//! Each test uses its own data dir and ports, so they run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{Mcp, TestHome, free_port, kill, wait_gone};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn managed_config(home: &TestHome, port: u16) -> std::path::PathBuf {
    home.write_config(&json!({"port": port, "healthCheckIntervalMs": 200}))
}

fn healthy(s: &Value) -> bool {
    s["daemon"]["state"] == "healthy"
}

fn pid(s: &Value) -> u32 {
    s["daemon"]["pid"].as_u64().expect("pid") as u32
}

#[tokio::test]
async fn autostart_brings_the_daemon_up_and_kill_9_brings_it_back() {
    let home = TestHome::new();
    let port = free_port();
    let cfg = managed_config(&home, port);
    let mcp = Mcp::stdio(&home, Some(&cfg)).await;
    let s = mcp.wait_status("healthy", WAIT, healthy).await;
    assert_eq!(s["daemon"]["managed"], true);
    assert_eq!(s["daemon"]["listen"], format!("127.0.0.1:{port}"));
    assert_eq!(s["binary"]["version"], "0.11.0");
    assert_eq!(s["daemon"]["restart_count"], 0);
    assert!(s["daemon"]["health_latency_ms"].as_f64().unwrap() >= 0.0);
    let yaml = std::fs::read_to_string(home.home().daemon_config_file()).unwrap();
    assert!(
        yaml.contains(&format!("listen: 127.0.0.1:{port}")),
        "{yaml}"
    );
    let first = pid(&s);
    assert_eq!(
        std::fs::read_to_string(home.home().pid_file())
            .unwrap()
            .lines()
            .next(),
        Some(first.to_string().as_str())
    );
    // The daemon answers on the configured port.
    let r = reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .unwrap();
    assert!(r.status().is_success());

    // Keys and tokens survive a crash.
    mcp.ok("bitrouter_account", json!({"action": "generate"}))
        .await;
    mcp.ok("bitrouter_keygen", json!({"name": "keep", "exp": "1h"}))
        .await;

    kill(first, "KILL");
    let s = mcp
        .wait_status("restarted and healthy", WAIT, |s| {
            healthy(s) && s["daemon"]["pid"].as_u64() != Some(u64::from(first))
        })
        .await;
    assert_eq!(s["daemon"]["restart_count"], 1, "{s:#}");
    assert_eq!(s["daemon"]["last_exit"], "killed by signal 9", "{s:#}");
    let keys = mcp.ok("bitrouter_keys", json!({})).await;
    assert_eq!(keys["tokens"][0]["name"], "keep");
    let log = std::path::PathBuf::from(s["daemon"]["log_file"].as_str().unwrap());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("server listening"), "daemon output is logged");
    assert!(!text.contains('\u{1b}'), "ANSI colour codes are stripped");

    // Closing stdin ends the server, and the daemon with it.
    let second = pid(&s);
    mcp.close().await;
    wait_gone(second, Duration::from_secs(10)).await;
    assert!(!home.home().pid_file().exists());
}

#[tokio::test]
async fn a_crash_loop_ends_in_failed_without_busy_looping() {
    let home = TestHome::new();
    // The real daemon, made to exit at once: an unknown flag after `serve`.
    let wrapper = home.dir.path().join("crashing-bitrouter");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \" $* \" in *\" serve \"*) exec '{0}' \"$@\" --no-such-flag;; *) exec '{0}' \"$@\";; esac\n",
            common::bitrouter_bin().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = managed_config(&home, free_port());
    let mcp = Mcp::stdio_env(
        &home,
        Some(&cfg),
        &[("BITROUTER_BIN", wrapper.to_str().unwrap())],
    )
    .await;
    let s = mcp
        .wait_status("failed", Duration::from_secs(40), |s| {
            s["daemon"]["state"] == "failed"
        })
        .await;
    let err = s["daemon"]["last_error"].as_str().unwrap();
    assert!(err.contains("crashed 6 times within 60 s"), "{err}");
    assert!(err.contains("exit code 2"), "{err}");
    assert!(
        err.contains("no-such-flag"),
        "reason quotes the log tail: {err}"
    );
    let restarts = s["daemon"]["restart_count"].as_u64().unwrap();
    assert_eq!(restarts, 5);
    // Given up: nothing restarts any more.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = mcp.ok("bitrouter_status", json!({})).await;
    assert_eq!(later["daemon"]["state"], "failed");
    assert_eq!(later["daemon"]["restart_count"].as_u64().unwrap(), restarts);
    mcp.close().await;
}

#[tokio::test]
async fn a_taken_port_is_named_with_what_to_change() {
    let home = TestHome::new();
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    let cfg = managed_config(&home, port);
    let mcp = Mcp::stdio(&home, Some(&cfg)).await;
    let s = mcp
        .wait_status("failed", WAIT, |s| s["daemon"]["state"] == "failed")
        .await;
    let err = s["daemon"]["last_error"].as_str().unwrap();
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("`port`"), "{err}");
    assert!(s["daemon"]["pid"].is_null());
    // Once the port is free the daemon starts by itself.
    drop(squatter);
    mcp.wait_status("healthy", WAIT, healthy).await;
    mcp.close().await;
}

#[tokio::test]
async fn a_missing_binary_is_reported_with_the_install_command() {
    let home = TestHome::new();
    let cfg = managed_config(&home, free_port());
    let mcp = Mcp::stdio_env(
        &home,
        Some(&cfg),
        &[("BITROUTER_BIN", "/nonexistent/bitrouter")],
    )
    .await;
    let s = mcp
        .wait_status("not-installed", WAIT, |s| {
            s["daemon"]["state"] == "not-installed"
        })
        .await;
    let err = s["daemon"]["last_error"].as_str().unwrap();
    assert!(err.contains("bitrouter-mcp daemon install"), "{err}");
    // The MCP side keeps working.
    mcp.ok("bitrouter_account", json!({"action": "generate"}))
        .await;
    mcp.close().await;
}

#[tokio::test]
async fn sigterm_stops_the_daemon_cleanly() {
    let home = TestHome::new();
    let cfg = managed_config(&home, free_port());
    let mut mcp = Mcp::http(&home, Some(&cfg)).await;
    let s = mcp.wait_status("healthy", WAIT, healthy).await;
    let daemon = pid(&s);
    kill(mcp.server_pid(), "TERM");
    let status = mcp.wait_server_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "server exits cleanly: {status:?}");
    wait_gone(daemon, Duration::from_secs(5)).await;
    assert!(!home.home().pid_file().exists());
}

#[tokio::test]
async fn sigkill_of_the_server_takes_the_daemon_with_it() {
    let home = TestHome::new();
    let cfg = managed_config(&home, free_port());
    let mut mcp = Mcp::http(&home, Some(&cfg)).await;
    let s = mcp.wait_status("healthy", WAIT, healthy).await;
    let daemon = pid(&s);
    kill(mcp.server_pid(), "KILL");
    mcp.wait_server_exit(Duration::from_secs(5)).await;
    wait_gone(daemon, Duration::from_secs(5)).await;
}
