//! Several servers on one data dir, as users run them (OpenClaw's server, another agent's stdio
//! server, the Inspector), on the real daemon: one owner runs the one daemon, the others follow
//! and show its live state, a follower exiting changes nothing, the owner dying hands the daemon
//! to exactly one follower, and the last server leaves no daemon behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::upstream::Upstream;
use common::{Mcp, TestHome, chat, free_port, kill, process_gone, snapshot, wait_gone};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// Pids of every live `bitrouter … serve` process on this test's BitRouter home.
fn daemons(home: &TestHome) -> Vec<u32> {
    daemons_matching(&home.bitrouter_home().display().to_string())
}

/// Samples the daemons of `home` every 10 ms until stopped; remembers every pid seen and any
/// moment with more than one.
struct DaemonWatch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<u32>>>,
    doubles: Arc<Mutex<Vec<Vec<u32>>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl DaemonWatch {
    fn start(home: &TestHome) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let doubles = Arc::new(Mutex::new(Vec::new()));
        let home_arg = home.bitrouter_home().display().to_string();
        let task = {
            let (stop, seen, doubles) = (stop.clone(), seen.clone(), doubles.clone());
            tokio::task::spawn_blocking(move || {
                while !stop.load(Ordering::SeqCst) {
                    let now = daemons_matching(&home_arg);
                    {
                        let mut seen = seen.lock().unwrap();
                        for p in &now {
                            if !seen.contains(p) {
                                seen.push(*p);
                            }
                        }
                    }
                    if now.len() > 1 {
                        doubles.lock().unwrap().push(now);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        Self {
            stop,
            seen,
            doubles,
            task: Mutex::new(Some(task)),
        }
    }

    fn seen(&self) -> Vec<u32> {
        self.seen.lock().unwrap().clone()
    }

    async fn finish(self) -> (Vec<u32>, Vec<Vec<u32>>) {
        self.stop.store(true, Ordering::SeqCst);
        let seen = self.seen.clone();
        let doubles = self.doubles.clone();
        let task = self.task.lock().unwrap().take();
        if let Some(task) = task {
            task.await.unwrap();
        }
        let seen = seen.lock().unwrap().clone();
        let doubles = doubles.lock().unwrap().clone();
        (seen, doubles)
    }
}

/// A failed assertion must not leave the sampling thread running (the runtime would wait for it).
impl Drop for DaemonWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn daemons_matching(home_arg: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in rd.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first().is_some_and(|a| a.ends_with("bitrouter"))
            && args.iter().any(|a| a == home_arg)
            && args.iter().any(|a| a == "serve")
            && !process_gone(pid)
        {
            out.push(pid);
        }
    }
    out
}

/// Chats through the daemon at about 10 requests/s until stopped; counts outcomes.
struct Traffic {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Traffic {
    fn start(port: u16, token: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(Mutex::new(Vec::new()));
        let task = {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let (status, body) = chat(port, &token, "smart").await;
                    if status == 200 {
                        ok.fetch_add(1, Ordering::SeqCst);
                    } else {
                        failed.lock().unwrap().push(format!("{status}: {body}"));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        Self {
            stop,
            ok,
            failed,
            task,
        }
    }

    fn counts(&self) -> (usize, Vec<String>) {
        (
            self.ok.load(Ordering::SeqCst),
            self.failed.lock().unwrap().clone(),
        )
    }

    /// Forgets failures so far (e.g. those of a takeover gap).
    fn reset(&self) {
        self.failed.lock().unwrap().clear();
    }

    async fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let Self {
            ok, failed, task, ..
        } = self;
        task.await.unwrap();
        let failed = failed.lock().unwrap().clone();
        (ok.load(Ordering::SeqCst), failed)
    }
}

fn config(home: &TestHome, name: &str, port: u16, upstream: &Upstream, models: &[&str]) -> PathBuf {
    let mut m = serde_json::Map::new();
    for model in models {
        m.insert(
            model.to_string(),
            json!({"strategy": "priority", "endpoints": [{"provider": "up", "modelId": "m1"}]}),
        );
    }
    home.write_config_as(
        name,
        &json!({
            "port": port,
            "healthCheckIntervalMs": 200,
            "providers": {"up": {"derives": "openai", "apiBase": upstream.api_base(), "apiKey": "sk-owner-test"}},
            "models": m,
        }),
    )
}

fn daemon_pid(s: &Value) -> Option<u32> {
    s["daemon"]["pid"].as_u64().map(|p| p as u32)
}

fn this_pid(s: &Value) -> u32 {
    s["ownership"]["this_server"]["pid"].as_u64().unwrap() as u32
}

fn owner_pid(s: &Value) -> Option<u32> {
    s["ownership"]["owner"]["pid"].as_u64().map(|p| p as u32)
}

/// The model's endpoint the daemon's live route uses, per the route table this server shows.
async fn active_route(mcp: &Mcp, model: &str) -> Option<String> {
    let routes = mcp.read_json("bitrouter://routes").await;
    routes["models"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == model)?["endpoints"]
        .as_array()?
        .iter()
        .find(|e| e["active"] == true)
        .map(|e| format!("{}:{}", e["provider"], e["model_id"]))
}

/// Waits until `mcp` reports a healthy daemon owned by `owner` (with that daemon pid, if given).
async fn wait_following(mcp: &Mcp, owner: u32, daemon: Option<u32>) -> Value {
    mcp.wait_status("healthy, owned by the owner", WAIT, |s| {
        s["daemon"]["state"] == "healthy"
            && owner_pid(s) == Some(owner)
            && (daemon.is_none() || daemon_pid(s) == daemon)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_share_one_daemon_and_a_follower_takes_over_from_a_killed_owner() {
    let home = TestHome::new();
    let upstream = Upstream::start("up").await;
    let port = free_port();
    let cfg = config(&home, "config.json", port, &upstream, &["smart"]);
    let watch = DaemonWatch::start(&home);

    // The owner: an HTTP server (OpenClaw's, or `make run`).
    let mut owner = Mcp::http(&home, Some(&cfg)).await;
    let s = owner.wait_healthy().await;
    let owner_server = owner.server_pid();
    let daemon = daemon_pid(&s).unwrap();
    assert_eq!(s["ownership"]["role"], "owner", "{s:#}");
    assert_eq!(owner_pid(&s), Some(owner_server));
    let token = owner.api_token().await;
    let traffic = Traffic::start(port, token.clone());

    // Two more on the same data dir while traffic flows: a stdio agent and an HTTP client.
    let stdio = Mcp::stdio(&home, Some(&cfg)).await;
    let http = Mcp::http(&home, Some(&cfg)).await;
    for (name, mcp) in [("stdio", &stdio), ("http", &http)] {
        let s = wait_following(mcp, owner_server, Some(daemon)).await;
        assert_eq!(s["ownership"]["role"], "follower", "{name}: {s:#}");
        assert!(
            s["ownership"]["owner"]["transport"]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1:"),
            "{name}: {s:#}"
        );
        assert_eq!(s["ownership"]["config_differs"], json!([]), "{name}");
        assert_eq!(s["listen"], format!("127.0.0.1:{port}"), "{name}");
        // The route table is the owner's live one.
        assert_eq!(
            active_route(mcp, "smart").await.as_deref(),
            Some("\"up\":\"m1\""),
            "{name}"
        );
        // Tools work on the shared files: a token minted here is listed by the owner.
        mcp.ok(
            "bitrouter_keygen",
            json!({"name": format!("from-{name}"), "exp": "1h"}),
        )
        .await;
    }
    let names: Vec<String> = owner.ok("bitrouter_keys", json!({})).await["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["from-http", "from-stdio"]);

    // A while of traffic with three servers (at least 15 answered requests, however slow a loaded
    // machine makes them): one daemon, nothing failed.
    let deadline = Instant::now() + Duration::from_secs(30);
    while traffic.counts().0 < 15 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for mcp in [&owner, &stdio, &http] {
        wait_following(mcp, owner_server, Some(daemon)).await;
    }
    let (ok, failed) = traffic.counts();
    assert!(ok >= 15, "traffic barely ran in 30 s: {ok}");
    assert_eq!(
        failed,
        Vec::<String>::new(),
        "requests failed with three servers"
    );
    assert_eq!(watch.seen(), vec![daemon], "one daemon throughout");

    // A follower exits: nothing changes.
    let stdio_pid = this_pid(&stdio.ok("bitrouter_status", json!({})).await);
    stdio.close().await;
    wait_gone(stdio_pid, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    wait_following(&owner, owner_server, Some(daemon)).await;
    wait_following(&http, owner_server, Some(daemon)).await;
    assert_eq!(traffic.counts().1, Vec::<String>::new());
    assert_eq!(watch.seen(), vec![daemon]);

    // The owner is killed: the follower takes over with a new daemon, routes applied.
    let http_server = http.server_pid();
    let killed = Instant::now();
    kill(owner_server, "KILL");
    owner.wait_server_exit(Duration::from_secs(5)).await;
    let s = http
        .wait_status("owner and healthy", WAIT, |s| {
            s["ownership"]["role"] == "owner" && s["daemon"]["state"] == "healthy"
        })
        .await;
    eprintln!(
        "owner SIGKILL -> follower healthy as owner: {:.0} ms",
        killed.elapsed().as_secs_f64() * 1000.0
    );
    let new_daemon = daemon_pid(&s).unwrap();
    assert_ne!(new_daemon, daemon);
    assert_eq!(owner_pid(&s), Some(http_server));
    assert!(process_gone(daemon), "the old daemon died with its owner");
    assert_eq!(
        active_route(&http, "smart").await.as_deref(),
        Some("\"up\":\"m1\""),
        "routes applied before healthy"
    );
    let (status, body) = chat(port, &token, "smart").await;
    assert_eq!(status, 200, "{body}");
    traffic.reset();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, failed) = traffic.finish().await;
    assert_eq!(failed, Vec::<String>::new(), "after the takeover");

    // The last server exits (SIGTERM): no daemon left, nothing published.
    let mut http = http;
    kill(http_server, "TERM");
    assert!(
        http.wait_server_exit(Duration::from_secs(15))
            .await
            .success()
    );
    wait_gone(new_daemon, Duration::from_secs(10)).await;
    let (seen, doubles) = watch.finish().await;
    assert_eq!(doubles, Vec::<Vec<u32>>::new(), "never two daemons");
    assert_eq!(seen, vec![daemon, new_daemon]);
    assert_eq!(daemons(&home), Vec::<u32>::new(), "no daemon left");
    assert!(!home.home().owner_state_file().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_with_another_config_says_what_differs_and_applies_it_on_takeover() {
    let home = TestHome::new();
    let upstream = Upstream::start("up").await;
    let (port_a, port_b) = (free_port(), free_port());
    let cfg_a = config(&home, "a.json", port_a, &upstream, &["smart"]);
    let cfg_b = config(&home, "b.json", port_b, &upstream, &["smart", "fast"]);
    let mut owner = Mcp::http(&home, Some(&cfg_a)).await;
    let s = owner.wait_healthy().await;
    let daemon = daemon_pid(&s).unwrap();
    let yaml = std::fs::read(home.home().daemon_config_file()).unwrap();

    let follower = Mcp::stdio(&home, Some(&cfg_b)).await;
    let s = wait_following(&follower, owner.server_pid(), Some(daemon)).await;
    assert_eq!(
        s["ownership"]["config_differs"],
        json!([
            "models.fast: only in this server's config",
            format!("port: {port_b} here, {port_a} in force"),
        ]),
        "{s:#}"
    );
    assert_eq!(
        s["listen"],
        format!("127.0.0.1:{port_a}"),
        "the address in force"
    );
    // It does not fight: after a while the owner's daemon and files are untouched.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = owner.ok("bitrouter_status", json!({})).await;
    assert_eq!(daemon_pid(&s), Some(daemon));
    assert_eq!(s["daemon"]["restart_count"], 0);
    assert_eq!(
        std::fs::read(home.home().daemon_config_file()).unwrap(),
        yaml
    );
    assert_eq!(daemons(&home), vec![daemon]);

    // Takeover applies the follower's own config.
    kill(owner.server_pid(), "KILL");
    owner.wait_server_exit(Duration::from_secs(5)).await;
    let s = follower
        .wait_status("owner and healthy", WAIT, |s| {
            s["ownership"]["role"] == "owner" && s["daemon"]["state"] == "healthy"
        })
        .await;
    assert_eq!(s["listen"], format!("127.0.0.1:{port_b}"));
    assert_eq!(s["ownership"]["config_differs"], json!([]));
    assert_eq!(
        active_route(&follower, "fast").await.as_deref(),
        Some("\"up\":\"m1\"")
    );
    let new_daemon = daemon_pid(&s).unwrap();
    follower.close().await;
    wait_gone(new_daemon, Duration::from_secs(10)).await;
}

/// Chaos: three servers (HTTP and stdio) on one data dir under traffic; twenty times a random
/// one is SIGKILLed and replaced. Never two daemons; after every kill a healthy daemon under one
/// owner whom every server names; no orphan; no account or token lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_random_sigkills_among_three_servers_never_make_two_daemons() {
    const KILLS: usize = 20;
    let started = Instant::now();
    let home = TestHome::new();
    let upstream = Upstream::start("up").await;
    let port = free_port();
    let cfg = config(&home, "config.json", port, &upstream, &["smart"]);
    let watch = DaemonWatch::start(&home);
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("chaos seed {seed}");
    let mut random = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };

    let spawn = |http: bool| {
        let (home, cfg) = (&home, &cfg);
        async move {
            if http {
                Mcp::http(home, Some(cfg)).await
            } else {
                Mcp::stdio(home, Some(cfg)).await
            }
        }
    };
    let mut servers = vec![spawn(true).await, spawn(false).await, spawn(true).await];
    let s = servers[0].wait_healthy().await;
    let token = servers[0].api_token().await;
    servers[0]
        .ok("bitrouter_keygen", json!({"name": "keep", "exp": "30d"}))
        .await;
    let keys_before = servers[0].ok("bitrouter_keys", json!({})).await["tokens"].clone();
    let accounts_before = servers[0].ok("bitrouter_account", json!({})).await["accounts"].clone();
    let keys_tree = snapshot(&home.home().keys_dir());
    let mut owner = owner_pid(&s).unwrap();
    let traffic = Traffic::start(port, token.clone());
    let mut server_pids: Vec<u32> = Vec::new();

    for i in 1..=KILLS {
        let victim = random(servers.len());
        let mcp = servers.remove(victim);
        let pid = this_pid(&mcp.ok("bitrouter_status", json!({})).await);
        server_pids.push(pid);
        let was_owner = pid == owner;
        let at = Instant::now();
        kill(pid, "KILL");
        wait_gone(pid, Duration::from_secs(5)).await;
        drop(mcp);
        servers.push(spawn(random(2) == 0).await);
        // Every server agrees on one owner with a healthy daemon.
        let s = servers[0]
            .wait_status("healthy under a live owner", WAIT, |s| {
                s["daemon"]["state"] == "healthy" && owner_pid(s).is_some_and(|p| !process_gone(p))
            })
            .await;
        owner = owner_pid(&s).unwrap();
        let daemon = daemon_pid(&s);
        for mcp in &servers[1..] {
            wait_following(mcp, owner, daemon).await;
        }
        let (status, body) = chat(port, &token, "smart").await;
        assert_eq!(status, 200, "kill {i}: chat after recovery: {body}");
        eprintln!(
            "kill {i:>2}: server {pid}{} -> healthy under {owner} in {:.0} ms",
            if was_owner { " (owner)" } else { "" },
            at.elapsed().as_secs_f64() * 1000.0
        );
        // Some traffic between kills.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (ok, failed) = traffic.finish().await;
    eprintln!("traffic: {ok} ok, {} failed (takeover gaps)", failed.len());
    assert!(ok >= 2 * KILLS, "traffic barely ran: {ok}");

    // Nothing lost.
    assert_eq!(
        servers[0].ok("bitrouter_keys", json!({})).await["tokens"],
        keys_before
    );
    assert_eq!(
        servers[0].ok("bitrouter_account", json!({})).await["accounts"],
        accounts_before
    );
    assert_eq!(snapshot(&home.home().keys_dir()), keys_tree);

    // All exit: no daemon, no server left.
    for mcp in servers.drain(..) {
        let pid = this_pid(&mcp.ok("bitrouter_status", json!({})).await);
        server_pids.push(pid);
        mcp.close().await;
        wait_gone(pid, Duration::from_secs(10)).await;
    }
    let (seen, doubles) = watch.finish().await;
    assert_eq!(doubles, Vec::<Vec<u32>>::new(), "never two daemons");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !daemons(&home).is_empty() {
        assert!(
            Instant::now() < deadline,
            "orphan daemon: {:?}",
            daemons(&home)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for pid in server_pids {
        assert!(process_gone(pid), "server {pid} still running");
    }
    eprintln!(
        "{} daemons over {KILLS} kills; whole test {:.1} s",
        seen.len(),
        started.elapsed().as_secs_f64()
    );
}
