//! Logs as a person reads them when stderr is captured into a file (OpenClaw, systemd,
//! `2>file`): the server's own log and the daemon's log carry no ANSI escape codes, and a SIGTERM
//! stops the daemon and ends the process promptly, saying so in order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{TestHome, free_port, kill, server_command, wait_for_port, wait_gone};
use serde_json::json;

const ESC: u8 = 0x1b;

/// The first line holding an escape code, for the failure message.
fn first_coloured(text: &[u8]) -> Option<String> {
    String::from_utf8_lossy(text)
        .lines()
        .find(|l| l.as_bytes().contains(&ESC))
        .map(|l| format!("{l:?}"))
}

#[tokio::test]
async fn logs_captured_in_files_carry_no_colour_and_sigterm_stops_in_order() {
    let home = TestHome::new();
    let daemon_port = free_port();
    let cfg = home.write_config(&json!({"port": daemon_port, "healthCheckIntervalMs": 200}));
    let stderr_path = home.server_stderr();
    let mut cmd = server_command(&home, &cfg, &[("BITROUTER_MCP_LOG", "info")]);
    // The terminal check alone must keep colour out (NO_COLOR is a user's extra switch).
    cmd.env_remove("NO_COLOR")
        .args(["serve", "--http", &format!("127.0.0.1:{}", free_port())])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .kill_on_drop(true);
    let mut server = cmd.spawn().unwrap();
    wait_for_port(daemon_port, Duration::from_secs(30)).await;
    let health = format!("http://127.0.0.1:{daemon_port}/health");
    let start = Instant::now();
    while !reqwest::get(&health)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "daemon never healthy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let daemon_pid: u32 = std::fs::read_to_string(home.home().pid_file())
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();

    kill(server.id().unwrap(), "TERM");
    let stopping = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(15), server.wait())
        .await
        .expect("the server exits within 15 s of SIGTERM")
        .unwrap();
    let took = stopping.elapsed();
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
    wait_gone(daemon_pid, Duration::from_secs(2)).await;
    assert!(!home.home().pid_file().exists(), "pid file removed");

    let stderr = std::fs::read(&stderr_path).unwrap();
    let text = String::from_utf8_lossy(&stderr);
    assert!(
        text.contains("daemon started"),
        "the server logged its daemon's start ({}):\n{text}",
        stderr_path.display()
    );
    assert_eq!(
        first_coloured(&stderr),
        None,
        "escape codes in the server's stderr ({})",
        stderr_path.display()
    );
    let daemon_log = home
        .home()
        .logs_dir()
        .join(bitrouter_mcp::supervisor::logs::LOG_NAME);
    let log = std::fs::read(&daemon_log).unwrap();
    assert!(
        log.len() > 100,
        "the daemon logged something: {}",
        daemon_log.display()
    );
    assert_eq!(
        first_coloured(&log),
        None,
        "escape codes in the daemon's log ({})",
        daemon_log.display()
    );
    eprintln!("SIGTERM to exit: {} ms", took.as_millis());
}
