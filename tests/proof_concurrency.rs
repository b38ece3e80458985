//! Concurrency over streamable HTTP: many client sessions calling the same server at once. A
//! hundred parallel `bitrouter_keygen` calls with distinct names leave a hundred valid, distinct,
//! listed token files; a hundred with the same name leave exactly one (every other call is told the
//! name exists); thirty parallel account generations leave thirty intact accounts, exactly one of
//! them active, and no temp file behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use bitrouter_mcp::auth::jwt;
use common::{TestHome, free_port, wait_for_port};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{Peer, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

const SESSIONS: usize = 10;
const CALLS_PER_SESSION: usize = 10;
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// One `serve --http` server (no daemon) and several independent client sessions to it.
struct Rig {
    home: TestHome,
    _server: tokio::process::Child,
    sessions: Vec<RunningService<RoleClient, ()>>,
}

async fn rig(sessions: usize) -> Rig {
    let home = TestHome::new();
    let cfg = home.write_config(&json!({"autoStart": false, "port": free_port()}));
    let port = free_port();
    let mut cmd = common::server_command(&home, &cfg, &[]);
    cmd.args(["serve", "--http", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let server = cmd.spawn().unwrap();
    wait_for_port(port, Duration::from_secs(10)).await;
    let url = format!("http://127.0.0.1:{port}/mcp");
    let mut connecting = tokio::task::JoinSet::new();
    for _ in 0..sessions {
        let url = url.clone();
        connecting.spawn(async move {
            ().serve(StreamableHttpClientTransport::from_uri(url))
                .await
                .unwrap()
        });
    }
    let sessions = connecting.join_all().await;
    Rig {
        home,
        _server: server,
        sessions,
    }
}

fn params(tool: &str, args: Value) -> CallToolRequestParams {
    let Value::Object(map) = args else {
        panic!("arguments must be an object")
    };
    CallToolRequestParams::new(tool.to_string()).with_arguments(map)
}

async fn call(peer: &Peer<RoleClient>, tool: &str, args: Value) -> CallToolResult {
    tokio::time::timeout(CALL_TIMEOUT, peer.call_tool(params(tool, args.clone())))
        .await
        .unwrap_or_else(|_| panic!("{tool} {args}: no answer within {CALL_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{tool} {args}: {e}"))
}

fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn ok(peer: &Peer<RoleClient>, tool: &str, args: Value) -> Value {
    let r = call(peer, tool, args.clone()).await;
    assert_ne!(r.is_error, Some(true), "{tool} {args}: {}", text(&r));
    r.structured_content.unwrap()
}

/// Runs `SESSIONS × CALLS_PER_SESSION` calls at once, `args(session, call)` for each; returns
/// `(args, result)` pairs.
async fn storm(
    rig: &Rig,
    tool: &'static str,
    args: impl Fn(usize, usize) -> Value,
) -> Vec<(Value, CallToolResult)> {
    let mut set = tokio::task::JoinSet::new();
    for (s, session) in rig.sessions.iter().enumerate() {
        for c in 0..CALLS_PER_SESSION {
            let peer = session.peer().clone();
            let a = args(s, c);
            set.spawn(async move {
                let r = call(&peer, tool, a.clone()).await;
                (a, r)
            });
        }
    }
    set.join_all().await
}

/// Every file under `dir`, relative.
fn files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_parallel_keygens_with_distinct_names_leave_a_hundred_valid_tokens() {
    let rig = rig(SESSIONS).await;
    let first = rig.sessions[0].peer();
    let account = ok(first, "bitrouter_account", json!({"action": "generate"})).await;
    let prefix = account["changed"]["prefix"].as_str().unwrap().to_string();
    let public_key = account["changed"]["public_key"]
        .as_str()
        .unwrap()
        .to_string();

    let results = storm(&rig, "bitrouter_keygen", |s, c| {
        // Unique claims (the budget), so every token differs: identical claims signed in the
        // same second make identical tokens.
        json!({"name": format!("tok-{s}-{c}"), "exp": "1h", "models": [format!("m{s}")],
               "budget": s * 100 + c})
    })
    .await;
    assert_eq!(results.len(), SESSIONS * CALLS_PER_SESSION);
    let mut minted: BTreeMap<String, String> = BTreeMap::new();
    for (args, r) in &results {
        assert_ne!(r.is_error, Some(true), "keygen {args} failed: {}", text(r));
        let out = r.structured_content.as_ref().unwrap();
        let name = args["name"].as_str().unwrap().to_string();
        let token = out["token"].as_str().unwrap().to_string();
        let saved = out["saved_to"].as_str().unwrap();
        assert_eq!(
            Path::new(saved),
            rig.home.home().token_file(&prefix, &name),
            "{name} saved where bitrouter keys looks"
        );
        minted.insert(name, token);
    }
    let distinct: BTreeSet<&String> = minted.values().collect();
    assert_eq!(distinct.len(), 100, "a hundred distinct tokens");

    // A hundred files, each holding exactly the token returned for its name, each valid.
    let dir = rig.home.home().tokens_dir(&prefix);
    let on_disk = files(&dir);
    let expected: Vec<String> = minted.keys().map(|n| format!("{n}.jwt")).collect();
    assert_eq!(on_disk, expected, "token files in {}", dir.display());
    for (name, token) in &minted {
        let path = rig.home.home().token_file(&prefix, name);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(&text, token, "{name}: file holds the returned token");
        let claims = jwt::verify(&text).unwrap_or_else(|e| panic!("{name} invalid: {e}"));
        assert!(claims.iss.ends_with(&public_key), "{name}: {claims:?}");
        let s = &name["tok-".len()..name.rfind('-').unwrap()];
        let c = &name[name.rfind('-').unwrap() + 1..];
        assert_eq!(claims.models, Some(vec![format!("m{s}")]), "{name}");
        assert_eq!(
            claims.budget,
            Some(s.parse::<u64>().unwrap() * 100 + c.parse::<u64>().unwrap()),
            "{name}: the file holds its own call's token"
        );
        assert_eq!(mode(&path), 0o600, "{name}");
    }
    assert_eq!(mode(&dir), 0o700);

    // All listed, from any session.
    let listed = ok(
        rig.sessions[SESSIONS - 1].peer(),
        "bitrouter_keys",
        json!({}),
    )
    .await;
    let names: Vec<String> = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        minted.keys().cloned().collect::<Vec<_>>(),
        "bitrouter_keys lists every saved token"
    );
    for t in listed["tokens"].as_array().unwrap() {
        assert!(t["problem"].is_null(), "{t}");
        assert_eq!(t["expired"], false, "{t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_parallel_keygens_with_the_same_name_save_exactly_one() {
    let rig = rig(SESSIONS).await;
    let first = rig.sessions[0].peer();
    let account = ok(first, "bitrouter_account", json!({"action": "generate"})).await;
    let prefix = account["changed"]["prefix"].as_str().unwrap().to_string();

    let results = storm(
        &rig,
        "bitrouter_keygen",
        |s, c| json!({"name": "same", "exp": "1h", "budget": s * 100 + c}),
    )
    .await;
    let (won, lost): (Vec<_>, Vec<_>) = results.iter().partition(|(_, r)| r.is_error != Some(true));
    assert_eq!(
        won.len(),
        1,
        "exactly one keygen named \"same\" succeeds; winners: {:?}",
        won.iter().map(|(a, _)| a).collect::<Vec<_>>()
    );
    for (args, r) in &lost {
        let e = text(r);
        assert!(
            e.contains("`name`") && e.contains("already exists"),
            "keygen {args}: expected the already-exists error, got {e:?}"
        );
    }
    let (winner_args, winner) = won[0];
    let token = winner.structured_content.as_ref().unwrap()["token"]
        .as_str()
        .unwrap();
    let dir = rig.home.home().tokens_dir(&prefix);
    assert_eq!(files(&dir), ["same.jwt"], "one file in {}", dir.display());
    let on_disk = std::fs::read_to_string(dir.join("same.jwt")).unwrap();
    assert_eq!(on_disk, token, "the file holds the winner's token");
    let claims = jwt::verify(&on_disk).unwrap();
    assert_eq!(
        claims.budget,
        winner_args["budget"].as_u64(),
        "the file is the winner's, not a loser's"
    );
    let listed = ok(first, "bitrouter_keys", json!({})).await;
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_parallel_account_generations_leave_one_active_and_every_key_intact() {
    const ACCOUNTS: usize = 30;
    let rig = rig(SESSIONS).await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..ACCOUNTS {
        let peer = rig.sessions[i % SESSIONS].peer().clone();
        // Mixed: explicit true, explicit false, and the default (true).
        let args = match i % 3 {
            0 => json!({"action": "generate", "set_active": true}),
            1 => json!({"action": "generate", "set_active": false}),
            _ => json!({"action": "generate"}),
        };
        set.spawn(async move {
            let r = call(&peer, "bitrouter_account", args.clone()).await;
            (args, r)
        });
    }
    let results = set.join_all().await;
    let mut generated = BTreeSet::new();
    let mut meant_active = BTreeSet::new();
    for (args, r) in &results {
        assert_ne!(r.is_error, Some(true), "{args}: {}", text(r));
        let out = r.structured_content.as_ref().unwrap();
        let prefix = out["changed"]["prefix"].as_str().unwrap().to_string();
        assert!(!out.to_string().contains("seed"), "no seed in {out}");
        if args["set_active"] != false {
            meant_active.insert(prefix.clone());
        }
        assert!(generated.insert(prefix.clone()), "prefix {prefix} twice");
    }
    assert_eq!(generated.len(), ACCOUNTS);

    let home = rig.home.home();
    let list = ok(rig.sessions[0].peer(), "bitrouter_account", json!({})).await;
    let accounts = list["accounts"].as_array().unwrap();
    let listed: BTreeSet<String> = accounts
        .iter()
        .map(|a| a["prefix"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, generated, "every generated account is listed");
    let active: Vec<&Value> = accounts.iter().filter(|a| a["active"] == true).collect();
    assert_eq!(active.len(), 1, "exactly one active account: {list:#}");
    let active_prefix = active[0]["prefix"].as_str().unwrap();
    assert!(
        meant_active.contains(active_prefix),
        "the active account {active_prefix} was generated with set_active true/default"
    );
    let marker = std::fs::read_to_string(home.active_file()).unwrap();
    assert_eq!(
        marker.trim(),
        active_prefix,
        "active marker is one whole prefix"
    );

    for a in accounts {
        assert!(a["problem"].is_null(), "account problem: {a}");
        let prefix = a["prefix"].as_str().unwrap();
        let public_key = a["public_key"].as_str().unwrap();
        assert!(public_key.starts_with(prefix), "{a}");
        let path = home.master_key_file(prefix);
        let text = std::fs::read_to_string(&path).unwrap();
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} does not parse: {e}\n{text}", path.display()));
        assert_eq!(json["algorithm"], "web3", "{text}");
        let seed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(json["seed"].as_str().unwrap())
            .unwrap();
        assert_eq!(seed.len(), 32, "{}", path.display());
        let key = bitrouter_mcp::auth::keystore::load_key(&home, prefix).unwrap();
        assert_eq!(
            bs58::encode(key.verifying_key().as_bytes()).into_string(),
            public_key,
            "seed matches the listed public key"
        );
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert!(
            home.tokens_dir(prefix).is_dir(),
            "{prefix} has a tokens dir"
        );
    }
    let leftovers: Vec<String> = files(&home.keys_dir())
        .into_iter()
        .filter(|f| {
            Path::new(f)
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".tmp-"))
        })
        .collect();
    assert_eq!(leftovers, Vec::<String>::new(), "temp files left behind");
    let all = files(&home.keys_dir());
    assert_eq!(
        all.len(),
        ACCOUNTS + 1,
        "30 master.json files plus the active marker: {all:#?}"
    );

    // The winner signs: a keygen right after uses the active account.
    let minted = ok(rig.sessions[3].peer(), "bitrouter_keygen", json!({})).await;
    assert_eq!(minted["account"], active_prefix);
}
