//! Daemon faults on the real BitRouter 0.11.0, and how the supervisor ends them: a hung daemon
//! (SIGSTOP) is killed and replaced within a few health intervals, a daemon that would serve
//! without authentication is stopped and reported instead of called healthy, and a recovered
//! daemon carries no stale error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Mcp, TestHome, free_port, kill, wait_gone};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn healthy(s: &Value) -> bool {
    s["daemon"]["state"] == "healthy"
}

fn pid(s: &Value) -> Option<u32> {
    s["daemon"]["pid"].as_u64().map(|p| p as u32)
}

#[tokio::test]
async fn a_hung_daemon_is_killed_and_replaced_within_a_few_intervals() {
    let home = TestHome::new();
    let cfg = home.write_config(&json!({"port": free_port(), "healthCheckIntervalMs": 500}));
    let mcp = Mcp::stdio(&home, Some(&cfg)).await;
    let s = mcp.wait_status("healthy", WAIT, healthy).await;
    let hung = pid(&s).unwrap();

    let stopped = Instant::now();
    kill(hung, "STOP");
    let s = mcp
        .wait_status("a new daemon healthy", WAIT, |s| {
            healthy(s) && pid(s).is_some_and(|p| p != hung)
        })
        .await;
    let took = stopped.elapsed();
    eprintln!("SIGSTOP -> new daemon healthy: {:.2} s", took.as_secs_f64());
    // Three failed checks of at most 0.5 s + 0.5 s each, SIGKILL, 0.25 s backoff, start: ~3.5 s.
    // (Before: 2 s probe timeouts and a 5 s SIGTERM grace, 11.5 s.)
    assert!(
        took < Duration::from_secs(7),
        "hang noticed and replaced in {took:?}"
    );
    assert_eq!(s["daemon"]["last_exit"], "killed by signal 9", "{s:#}");
    wait_gone(hung, Duration::from_secs(5)).await;
    // Recovered: the hang is history, not the current error.
    assert_eq!(s["daemon"]["last_error"], Value::Null, "{s:#}");

    // The same after a crash.
    let current = pid(&s).unwrap();
    kill(current, "KILL");
    let s = mcp
        .wait_status("healthy after kill -9", WAIT, |s| {
            healthy(s) && pid(s).is_some_and(|p| p != current)
        })
        .await;
    assert_eq!(s["daemon"]["last_error"], Value::Null, "{s:#}");
    assert_eq!(s["daemon"]["restart_count"], 2, "{s:#}");
    let current = pid(&s).unwrap();
    mcp.close().await;
    wait_gone(current, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn a_daemon_that_would_serve_without_a_token_is_stopped_and_reported() {
    let home = TestHome::new();
    // The daemon cannot open its database (a directory stands where the file goes): BitRouter
    // 0.11.0 then serves every request without a token.
    let db = home.bitrouter_home().join("bitrouter.db");
    std::fs::create_dir_all(&db).unwrap();
    let port = free_port();
    let cfg = home.write_config(&json!({"port": port, "healthCheckIntervalMs": 200}));
    let mut mcp = Mcp::http(&home, Some(&cfg)).await;
    let s = mcp
        .wait_status("failed", WAIT, |s| s["daemon"]["state"] == "failed")
        .await;
    let err = s["daemon"]["last_error"].as_str().unwrap();
    assert!(err.contains("without any token"), "{err}");
    assert!(err.contains("bitrouter.db"), "names what to fix: {err}");
    assert_eq!(s["daemon"]["healthy"], false);
    assert!(pid(&s).is_none(), "{s:#}");
    // Nothing answers on the port: no open proxy is left running.
    let open = reqwest::get(format!("http://127.0.0.1:{port}/admin/routes")).await;
    assert!(open.is_err(), "the port still answers: {open:?}");
    // It stays failed (no restart loop) ...
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s = mcp.ok("bitrouter_status", json!({})).await;
    assert_eq!(s["daemon"]["state"], "failed");
    assert_eq!(s["daemon"]["restart_count"], 0);

    // ... until the cause is fixed and the server is told (SIGHUP).
    std::fs::remove_dir(&db).unwrap();
    kill(mcp.server_pid(), "HUP");
    let s = mcp.wait_status("healthy", WAIT, healthy).await;
    assert_eq!(s["daemon"]["last_error"], Value::Null, "{s:#}");
    let r = reqwest::get(format!("http://127.0.0.1:{port}/admin/routes"))
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a token is required again");
    let daemon = pid(&s).unwrap();
    kill(mcp.server_pid(), "TERM");
    mcp.wait_server_exit(Duration::from_secs(15)).await;
    wait_gone(daemon, Duration::from_secs(5)).await;
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn files_made_while_serving_are_private() {
    let home = TestHome::new();
    let cfg = home.write_config(&json!({"port": free_port(), "healthCheckIntervalMs": 200}));
    let mcp = Mcp::stdio(&home, Some(&cfg)).await;
    let s = mcp.wait_status("healthy", WAIT, healthy).await;
    let h = home.home();
    // The daemon's own files (its database holds accounts and spend) and our log of it.
    assert_eq!(mode(&h.bitrouter_home().join("bitrouter.db")), 0o600);
    assert_eq!(mode(&h.logs_dir().join("daemon.log")), 0o600);
    // A token the `bitrouter` CLI saves while we serve (it writes 0644) becomes private.
    let prefix = mcp
        .ok("bitrouter_account", json!({"action": "generate"}))
        .await["changed"]["prefix"]
        .as_str()
        .unwrap()
        .to_string();
    home.bitrouter(&["keygen", "--name", "cli-made", "--exp", "1h"]);
    let token = h.token_file(&prefix, "cli-made");
    let start = Instant::now();
    while mode(&token) != 0o600 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{} stays {:o}",
            token.display(),
            mode(&token)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let daemon = pid(&s).unwrap();
    mcp.close().await;
    wait_gone(daemon, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn a_daemon_that_dies_by_itself_after_every_healthy_start_ends_in_failed() {
    use std::os::unix::fs::PermissionsExt;
    let home = TestHome::new();
    // The real daemon, which exits with an error a second after it starts serving.
    let wrapper = home.dir.path().join("short-lived-bitrouter");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \" $* \" in *\" serve \"*) '{0}' \"$@\" & d=$!; sleep 1; kill -TERM $d; wait $d; exit 3;; *) exec '{0}' \"$@\";; esac\n",
            common::bitrouter_bin().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = home.write_config(&json!({"port": free_port(), "healthCheckIntervalMs": 200}));
    let mcp = Mcp::stdio_env(
        &home,
        Some(&cfg),
        &[("BITROUTER_BIN", wrapper.to_str().unwrap())],
    )
    .await;
    mcp.wait_status("healthy once", WAIT, healthy).await;
    let s = mcp
        .wait_status("failed", Duration::from_secs(60), |s| {
            s["daemon"]["state"] == "failed"
        })
        .await;
    let err = s["daemon"]["last_error"].as_str().unwrap();
    assert!(err.contains("crashed 6 times within 60 s"), "{err}");
    assert_eq!(s["daemon"]["last_exit"], "exit code 3", "{s:#}");
    mcp.close().await;
}

#[tokio::test]
async fn a_flood_of_refused_requests_does_not_flood_the_daemon_log() {
    let home = TestHome::new();
    let port = free_port();
    let cfg = home.write_config(&json!({"port": port, "healthCheckIntervalMs": 200}));
    let mcp = Mcp::stdio(&home, Some(&cfg)).await;
    let s = mcp.wait_status("healthy", WAIT, healthy).await;
    // 500 requests with a bad token, 10 at a time.
    let mut refused = 0;
    for _ in 0..50 {
        let mut batch = tokio::task::JoinSet::new();
        for _ in 0..10 {
            batch.spawn(common::chat(port, "not-a-token", "smart"));
        }
        while let Some(r) = batch.join_next().await {
            refused += usize::from(r.unwrap().0 == 401);
        }
    }
    assert_eq!(refused, 500);
    // The next lifecycle line comes after the count.
    let daemon = pid(&s).unwrap();
    kill(daemon, "KILL");
    let s = mcp
        .wait_status("healthy again", WAIT, |s| {
            healthy(s) && pid(s).is_some_and(|p| p != daemon)
        })
        .await;
    let log = std::fs::read_to_string(home.home().logs_dir().join("daemon.log")).unwrap();
    let lines_401 = log.lines().filter(|l| l.contains("status=401")).count();
    assert!(lines_401 <= 2, "{lines_401} lines for 401s:\n{log}");
    let counted: u64 = log
        .lines()
        .filter_map(|l| {
            l.split("and ")
                .nth(1)?
                .split(" more requests refused")
                .next()
        })
        .filter_map(|n| n.parse::<u64>().ok())
        .sum();
    assert!(counted >= 498, "counted {counted}:\n{log}");
    assert!(log.lines().count() < 100, "log:\n{log}");
    let current = pid(&s).unwrap();
    mcp.close().await;
    wait_gone(current, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn a_new_port_that_is_taken_does_not_stop_the_working_daemon() {
    let home = TestHome::new();
    let old_port = free_port();
    let cfg = home.write_config(&json!({"port": old_port, "healthCheckIntervalMs": 200}));
    let mcp = Mcp::stdio(&home, Some(&cfg)).await;
    let s = mcp.wait_status("healthy", WAIT, healthy).await;
    let daemon = pid(&s).unwrap();
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let new_port = squatter.local_addr().unwrap().port();
    // The config file is polled every second by mtime: make sure the edit is seen as one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    home.write_config(&json!({"port": new_port, "healthCheckIntervalMs": 200}));
    let s = mcp
        .wait_status("the taken port reported", WAIT, |s| {
            s["daemon"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains(&format!("127.0.0.1:{new_port}")))
        })
        .await;
    assert!(healthy(&s), "{s:#}");
    assert_eq!(pid(&s), Some(daemon), "the working daemon was kept");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let r = reqwest::get(format!("http://127.0.0.1:{old_port}/health"))
        .await
        .unwrap();
    assert!(r.status().is_success(), "still serving on the old port");
    let s = mcp.ok("bitrouter_status", json!({})).await;
    assert_eq!(pid(&s), Some(daemon));

    // Once the port is free, the new config applies.
    drop(squatter);
    let s = mcp
        .wait_status("healthy on the new port", WAIT, |s| {
            healthy(s) && s["daemon"]["listen"] == format!("127.0.0.1:{new_port}")
        })
        .await;
    assert_ne!(pid(&s), Some(daemon));
    assert_eq!(s["daemon"]["last_error"], Value::Null, "{s:#}");
    let current = pid(&s).unwrap();
    mcp.close().await;
    wait_gone(current, Duration::from_secs(10)).await;
}
