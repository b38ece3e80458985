//! Logs as a person reads them when stderr is captured into a file (OpenClaw, systemd,
//! `2>file`): the server's own log and the daemon's log carry no ANSI escape codes. And the end
//! of a server as that log tells it: a SIGTERM or the stdio client leaving stops the daemon, joins
//! every task, and ends the process at once, in the documented order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{TestHome, free_port, kill, server_command, wait_for_port, wait_gone};
use serde_json::json;
use tokio::io::AsyncWriteExt;

const ESC: u8 = 0x1b;

/// The first line holding an escape code, for the failure message.
fn first_coloured(text: &[u8]) -> Option<String> {
    String::from_utf8_lossy(text)
        .lines()
        .find(|l| l.as_bytes().contains(&ESC))
        .map(|l| format!("{l:?}"))
}

/// A real server (`serve_args`) with a managed daemon, its stderr in a file, started and waited
/// for until its daemon answers `/health`. Returns the server, its daemon's pid and the file.
async fn start(home: &TestHome, serve_args: &[&str]) -> (tokio::process::Child, u32, PathBuf) {
    let daemon_port = free_port();
    let cfg = home.write_config(&json!({"port": daemon_port, "healthCheckIntervalMs": 200}));
    let stderr_path = home.server_stderr();
    let mut cmd = server_command(home, &cfg, &[("BITROUTER_MCP_LOG", "info")]);
    // The terminal check alone must keep colour out (NO_COLOR is a user's extra switch).
    cmd.env_remove("NO_COLOR")
        .arg("serve")
        .args(serve_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .kill_on_drop(true);
    let server = cmd.spawn().unwrap();
    wait_for_port(daemon_port, Duration::from_secs(30)).await;
    let health = format!("http://127.0.0.1:{daemon_port}/health");
    let start = Instant::now();
    while !reqwest::get(&health)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "daemon never healthy ({})",
            stderr_path.display()
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
    (server, daemon_pid, stderr_path)
}

/// Waits for the server's clean exit after it was told to stop; checks the daemon went with
/// it, and that its log tells the shutdown in order with every task joined. Returns the log.
async fn stopped_in_order(
    home: &TestHome,
    mut server: tokio::process::Child,
    daemon_pid: u32,
    stderr_path: &PathBuf,
    first: &str,
) -> Vec<u8> {
    let stopping = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(15), server.wait())
        .await
        .expect("the server exits within 15 s")
        .unwrap();
    eprintln!(
        "told to stop -> exit: {} ms",
        stopping.elapsed().as_millis()
    );
    assert!(status.success(), "clean exit: {status:?}");
    wait_gone(daemon_pid, Duration::from_secs(2)).await;
    assert!(!home.home().pid_file().exists(), "pid file removed");

    let stderr = std::fs::read(stderr_path).unwrap();
    let text = String::from_utf8_lossy(&stderr);
    let at = |what: &str| {
        text.find(what).unwrap_or_else(|| {
            panic!(
                "stderr never said {what:?} ({}):\n{text}",
                stderr_path.display()
            )
        })
    };
    let order = [
        "daemon started",
        first,
        "daemon stopped",
        "shutdown complete",
    ]
    .map(at);
    assert!(
        order.is_sorted(),
        "shutdown told in order (stop asked, daemon stopped, tasks joined):\n{text}"
    );
    // A task that ignored the shutdown would hold the exit until the join timeout.
    assert!(!text.contains("still running"), "a task was left:\n{text}");
    stderr
}

#[tokio::test]
async fn logs_captured_in_files_carry_no_colour_and_sigterm_stops_in_order() {
    let home = TestHome::new();
    let mcp = format!("127.0.0.1:{}", free_port());
    let (server, daemon_pid, stderr_path) = start(&home, &["--http", &mcp]).await;

    kill(server.id().unwrap(), "TERM");
    let stderr = stopped_in_order(&home, server, daemon_pid, &stderr_path, "shutting down").await;
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
}

#[tokio::test]
async fn the_stdio_client_leaving_stops_the_daemon_and_joins_every_task() {
    let home = TestHome::new();
    let (mut server, daemon_pid, stderr_path) = start(&home, &["--stdio"]).await;
    // An agent's session: initialize, then it exits and our stdin closes.
    let mut stdin = server.stdin.take().unwrap();
    let hello = concat!(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","#,
        r#""capabilities":{},"clientInfo":{"name":"agent","version":"1"}}}"#,
        "\n",
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        "\n"
    );
    stdin.write_all(hello.as_bytes()).await.unwrap();
    drop(stdin);
    stopped_in_order(&home, server, daemon_pid, &stderr_path, "MCP stopped").await;
}
