//! Chaos under load: while a client keeps calling tools and sending chat completions through the
//! daemon, the daemon is killed with SIGKILL twenty times. Every time it comes back (with a new
//! pid), the MCP server never stops answering, no account, token, config or provider key changes
//! by a single byte, and chats succeed again after the last restart. Failed chats per gap are
//! printed, not asserted: requests in flight while the daemon is dead are expected to fail.
//!
//! The supervisor gives up on a crash loop (more than five crashes within 60 s), but only runs that
//! never became healthy count: a daemon killed after it served is restarted every time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::upstream::Upstream;
use common::{Mcp, TestHome, chat, free_port, kill, process_gone, snapshot, wait_gone};
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

const KILLS: usize = 20;
const UPSTREAM_KEY: &str = "chaos-literal-upstream-key-5b1e";
const USER_KEY_LINE: &str = "OPENAI_API_KEY=sk-chaos-user-dotenv-key-8c2f44";
const BACK_WITHIN: Duration = Duration::from_secs(60);

fn healthy(s: &Value) -> bool {
    s["daemon"]["state"] == "healthy"
}

fn pid(s: &Value) -> Option<u32> {
    s["daemon"]["pid"].as_u64().map(|p| p as u32)
}

/// `bitrouter-mcp auth login --stdin`, as a user stores a provider key.
fn auth_login(home: &TestHome, lines: &str) {
    let (ok, printed) = common::auth_login(home, lines);
    assert!(ok, "auth login failed: {printed}");
}

/// Chat outcomes of one gap: the time from one event (kill, SIGHUP) to the next.
#[derive(Default)]
struct Gap {
    label: String,
    ok: usize,
    failed: BTreeMap<u16, usize>,
}

struct Phases {
    gaps: Mutex<Vec<Gap>>,
}

impl Phases {
    fn start(&self, label: String) {
        self.gaps.lock().unwrap().push(Gap {
            label,
            ..Default::default()
        });
    }
    fn record(&self, status: u16) {
        let mut gaps = self.gaps.lock().unwrap();
        let gap = gaps.last_mut().unwrap();
        if status == 200 {
            gap.ok += 1;
        } else {
            *gap.failed.entry(status).or_default() += 1;
        }
    }
}

/// The durable state a user would hate to lose, byte for byte.
#[derive(Debug, PartialEq)]
struct Durable {
    keys_tree: BTreeMap<String, Vec<u8>>,
    plugin_config: Vec<u8>,
    daemon_yaml: Vec<u8>,
    env_file: Vec<u8>,
}

fn durable(home: &TestHome, config: &PathBuf) -> Durable {
    let h = home.home();
    Durable {
        keys_tree: snapshot(&h.keys_dir()),
        plugin_config: std::fs::read(config).unwrap(),
        daemon_yaml: std::fs::read(h.daemon_config_file()).unwrap(),
        env_file: std::fs::read(h.env_file()).unwrap(),
    }
}

fn describe_diff(before: &Durable, after: &Durable) -> String {
    let mut out = Vec::new();
    for (k, v) in &before.keys_tree {
        match after.keys_tree.get(k) {
            None => out.push(format!("lost {k}")),
            Some(w) if w != v => out.push(format!(
                "changed {k}: {:?} -> {:?}",
                String::from_utf8_lossy(v),
                String::from_utf8_lossy(w)
            )),
            _ => {}
        }
    }
    for k in after.keys_tree.keys() {
        if !before.keys_tree.contains_key(k) {
            out.push(format!("new file {k}"));
        }
    }
    for (name, a, b) in [
        ("plugin config", &before.plugin_config, &after.plugin_config),
        ("bitrouter.yaml", &before.daemon_yaml, &after.daemon_yaml),
        (".env", &before.env_file, &after.env_file),
    ] {
        if a != b {
            out.push(format!(
                "{name} changed:\n--- before\n{}\n--- after\n{}",
                String::from_utf8_lossy(a),
                String::from_utf8_lossy(b)
            ));
        }
    }
    out.join("\n")
}

fn tmp_leftovers(dir: &Path) -> Vec<String> {
    snapshot(dir)
        .into_keys()
        .filter(|k| {
            Path::new(k)
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".tmp-"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_sigkills_under_load_lose_nothing_and_the_daemon_always_comes_back() {
    let started = Instant::now();
    let home = TestHome::new();
    let upstream = Upstream::start("up").await;
    auth_login(&home, &format!("{USER_KEY_LINE}\n"));
    let port = free_port();
    let cfg = home.write_config(&json!({
        "port": port,
        "healthCheckIntervalMs": 300,
        "providers": {
            "up": {"derives": "openai", "apiBase": upstream.api_base(), "apiKey": UPSTREAM_KEY}
        },
        "models": {
            "smart": {"strategy": "priority", "endpoints": [{"provider": "up", "modelId": "m1"}]}
        }
    }));
    let mcp = Mcp::http(&home, Some(&cfg)).await;
    let server_pid = mcp.server_pid();
    let mut s = mcp.wait_status("healthy", BACK_WITHIN, healthy).await;

    // Two accounts with saved tokens, one of them active; a token for chats.
    let other = mcp
        .ok("bitrouter_account", json!({"action": "generate"}))
        .await["changed"]["prefix"]
        .as_str()
        .unwrap()
        .to_string();
    mcp.ok("bitrouter_keygen", json!({"name": "other-1", "exp": "30d"}))
        .await;
    let main = mcp
        .ok("bitrouter_account", json!({"action": "generate"}))
        .await["changed"]["prefix"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(main, other);
    for (name, extra) in [
        ("alpha", json!({"exp": "1y"})),
        ("beta", json!({"exp": "30d", "models": ["smart", "up:*"]})),
        (
            "gamma",
            json!({"exp": "1h", "scope": "admin", "budget": 1000, "budget_range": "rounds:3"}),
        ),
    ] {
        let mut args = extra;
        args["name"] = json!(name);
        mcp.ok("bitrouter_keygen", args).await;
    }
    let token = mcp
        .ok(
            "bitrouter_keygen",
            json!({"exp": "1d", "models": ["smart"]}),
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = chat(port, &token, "smart").await;
    assert_eq!(status, 200, "chat before any kill: {body}");

    let accounts_before = mcp.ok("bitrouter_account", json!({})).await;
    let keys_before = mcp.ok("bitrouter_keys", json!({})).await;
    let names_before: Vec<Value> = keys_before["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(
        names_before,
        [json!("alpha"), json!("beta"), json!("gamma")]
    );
    let before = durable(&home, &cfg);
    let env_text = String::from_utf8_lossy(&before.env_file).into_owned();
    assert!(
        env_text.lines().any(|l| l == USER_KEY_LINE),
        "the user's key is in .env: {env_text}"
    );

    // Steady load: tool calls on one task, chats through the daemon on another.
    let stop = Arc::new(AtomicBool::new(false));
    let phases = Arc::new(Phases {
        gaps: Mutex::new(Vec::new()),
    });
    phases.start("before the first kill".into());
    let mcp_calls = Arc::new(AtomicUsize::new(0));
    let mcp_failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let tools = {
        let peer = mcp.client.peer().clone();
        let stop = stop.clone();
        let phases = phases.clone();
        let calls = mcp_calls.clone();
        let failures = mcp_failures.clone();
        let expected = names_before.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                for tool in ["bitrouter_status", "bitrouter_keys"] {
                    let phase = phases.gaps.lock().unwrap().last().unwrap().label.clone();
                    let r = tokio::time::timeout(
                        Duration::from_secs(15),
                        peer.call_tool(CallToolRequestParams::new(tool)),
                    )
                    .await;
                    calls.fetch_add(1, Ordering::SeqCst);
                    let problem = match r {
                        Err(_) => Some("no answer within 15 s".to_string()),
                        Ok(Err(e)) => Some(format!("transport/protocol error: {e}")),
                        Ok(Ok(r)) if r.is_error == Some(true) => {
                            Some(format!("tool error: {:?}", r.content))
                        }
                        Ok(Ok(r)) if tool == "bitrouter_keys" => {
                            let names: Vec<Value> =
                                r.structured_content.as_ref().unwrap()["tokens"]
                                    .as_array()
                                    .cloned()
                                    .unwrap_or_default()
                                    .iter()
                                    .map(|t| t["name"].clone())
                                    .collect();
                            (names != expected).then(|| format!("token list changed: {names:?}"))
                        }
                        Ok(Ok(_)) => None,
                    };
                    if let Some(p) = problem {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{phase}: {tool}: {p}"));
                    }
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };
    let chats = {
        let stop = stop.clone();
        let phases = phases.clone();
        let token = token.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let (status, _) = chat(port, &token, "smart").await;
                phases.record(status);
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };

    // Twenty SIGKILLs; each time the daemon must come back healthy as a new process.
    let mut restarts_expected = 0u64;
    for i in 1..=KILLS {
        let old = pid(&s).unwrap_or_else(|| panic!("kill {i}: no daemon pid in {s:#}"));
        phases.start(format!("kill {i:>2}"));
        let killed_at = Instant::now();
        kill(old, "KILL");
        restarts_expected += 1;
        wait_gone(old, Duration::from_secs(10)).await;
        s = mcp
            .wait_status(
                &format!("the daemon healthy again with a new pid after kill {i}"),
                BACK_WITHIN,
                |s| healthy(s) && pid(s).is_some_and(|p| p != old),
            )
            .await;
        eprintln!(
            "kill {i:>2}: pid {old} -> {} back after {:.1} s (restart_count {})",
            pid(&s).unwrap(),
            killed_at.elapsed().as_secs_f64(),
            s["daemon"]["restart_count"]
        );
    }
    phases.start("after the last restart".into());

    // After the last restart chats work again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = chat(port, &token, "smart").await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no chat succeeded within 30 s of the last restart: {status} {body}; status {s:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for n in 0..5 {
        let (status, body) = chat(port, &token, "smart").await;
        assert_eq!(status, 200, "chat {n} after the last restart: {body}");
        assert!(body.contains("hello from up"), "{body}");
    }

    stop.store(true, Ordering::SeqCst);
    tools.await.unwrap();
    chats.await.unwrap();

    eprintln!("failed chats per gap (status 0 = no connection):");
    for g in phases.gaps.lock().unwrap().iter() {
        let failed: usize = g.failed.values().sum();
        eprintln!(
            "  {:<24} ok {:>4}  failed {:>3}  {:?}",
            g.label, g.ok, failed, g.failed
        );
    }
    let calls = mcp_calls.load(Ordering::SeqCst);
    let failures = mcp_failures.lock().unwrap().clone();
    eprintln!(
        "MCP tool calls during the kills: {calls}, failed: {}",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "the MCP server stopped answering or changed answers:\n{}",
        failures.join("\n")
    );
    assert!(
        calls >= 2 * KILLS,
        "the tool load barely ran ({calls} calls): the test proves nothing"
    );
    assert!(!process_gone(server_pid), "the MCP server is still running");

    // Nothing lost or corrupted.
    let after = durable(&home, &cfg);
    assert!(
        before == after,
        "durable state changed across {KILLS} kills:\n{}",
        describe_diff(&before, &after)
    );
    let accounts_after = mcp.ok("bitrouter_account", json!({})).await;
    assert_eq!(
        accounts_before["accounts"], accounts_after["accounts"],
        "account list before/after"
    );
    assert_eq!(accounts_after["active"], main.as_str());
    let keys_after = mcp.ok("bitrouter_keys", json!({})).await;
    assert_eq!(
        keys_before["tokens"], keys_after["tokens"],
        "token list before/after"
    );
    let h = home.home();
    for prefix in [&main, &other] {
        bitrouter_mcp::auth::keystore::load_key(&h, prefix)
            .unwrap_or_else(|e| panic!("account {prefix} unusable after the kills: {e}"));
    }
    for (prefix, name) in [
        (&main, "alpha"),
        (&main, "beta"),
        (&main, "gamma"),
        (&other, "other-1"),
    ] {
        let text = std::fs::read_to_string(h.token_file(prefix, name)).unwrap();
        bitrouter_mcp::auth::jwt::verify(&text)
            .unwrap_or_else(|e| panic!("token {name} does not verify after the kills: {e}"));
    }
    assert_eq!(
        tmp_leftovers(&h.bitrouter_home()),
        Vec::<String>::new(),
        "temp files left in BitRouter's home"
    );

    let s = mcp.ok("bitrouter_status", json!({})).await;
    assert_eq!(s["daemon"]["last_exit"], "killed by signal 9", "{s:#}");
    assert!(
        s["daemon"]["restart_count"].as_u64().unwrap() >= restarts_expected,
        "restart_count counts every kill ({restarts_expected}): {s:#}"
    );
    let current = pid(&s).unwrap();
    assert_eq!(
        std::fs::read_to_string(h.pid_file())
            .unwrap()
            .lines()
            .next(),
        Some(current.to_string().as_str()),
        "pid file names the running daemon"
    );
    eprintln!(
        "restart_count {}, whole test {:.1} s",
        s["daemon"]["restart_count"],
        started.elapsed().as_secs_f64()
    );
    mcp.close().await;
    wait_gone(current, Duration::from_secs(10)).await;
}
