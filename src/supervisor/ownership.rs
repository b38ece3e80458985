//! One owner per data dir, however many servers run on it.
//!
//! Every server takes, or waits for, an exclusive `flock` on the data dir's `owner.lock`. The one
//! holding it is the *owner*: it alone spawns, restarts, stops and reconfigures the daemon and
//! runs the routing control plane. The others are *followers*: they serve every tool, and show the
//! owner's live state, which the owner publishes to `owner.json`. Each follower waits on the lock
//! in a thread of its own; when the owner dies the kernel releases the lock and exactly one
//! follower gets it and takes over.
//!
//! The owner publishes to a file (written atomically) rather than a socket: a reader never blocks
//! or slows the owner, there is no connection to lose, a stale file is harmless (the lock, not the
//! file, says who owns), and a user can read it.
//!
//! On Linux the lock's open file description is also inherited by the daemon, so the lock is free
//! only when the owner *and* its daemon are gone (the daemon dies with the owner through
//! `PR_SET_PDEATHSIG`): a new owner can never start a second daemon beside a dying one.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::home::Home;
use crate::routing::PluginConfig;

/// An exclusive lock on `owner.lock`; released when dropped or when every process holding its
/// file description is gone.
pub struct OwnerLock {
    file: File,
}

impl OwnerLock {
    fn open(path: &Path) -> io::Result<File> {
        if let Some(dir) = path.parent() {
            crate::fsutil::ensure_private_dir(dir)?;
        }
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
    }

    /// `flock(LOCK_EX)`; with `wait` false, returns false at once when someone else holds it.
    fn flock(file: &File, wait: bool) -> io::Result<bool> {
        let op = if wait {
            libc::LOCK_EX
        } else {
            libc::LOCK_EX | libc::LOCK_NB
        };
        loop {
            // SAFETY: flock(2) on a descriptor we own; no memory is passed.
            if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
                return Ok(true);
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EWOULDBLOCK) if !wait => return Ok(false),
                _ => return Err(e),
            }
        }
    }

    /// Takes the lock if nobody holds it.
    pub fn try_acquire(path: &Path) -> io::Result<Option<Self>> {
        let file = Self::open(path)?;
        Ok(Self::flock(&file, false)?.then_some(Self { file }))
    }

    /// Blocks until the lock is ours.
    pub fn acquire(path: &Path) -> io::Result<Self> {
        let file = Self::open(path)?;
        Self::flock(&file, true)?;
        Ok(Self { file })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// A server on a data dir, as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServerInfo {
    pub pid: u32,
    /// `stdio`, or the streamable-HTTP URL it serves.
    pub transport: String,
    /// The config file it was started with.
    pub config_file: Option<String>,
}

/// What the owner publishes in `owner.json`. Status, route table and metrics are kept as the
/// JSON the owner would answer with, so a follower shows every field the owner knows, including
/// fields this code does not name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Published {
    pub owner: ServerInfo,
    /// The owner's config by part (see [`config_parts`]): no secret, only digests.
    pub config: BTreeMap<String, String>,
    /// `bitrouter_status.daemon` as the owner sees it.
    pub daemon: Value,
    /// `bitrouter://routes`.
    pub routes: Value,
    /// `bitrouter://metrics`.
    pub metrics: Value,
    /// When this was written (RFC 3339).
    pub updated_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Owner,
    Follower,
}

/// `bitrouter_status.ownership`: who runs the daemon of this data dir.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OwnershipStatus {
    /// `owner`: this server runs the daemon. `follower`: another server on the same data dir
    /// does; this one shows that server's live state and takes over if it exits.
    pub role: Role,
    /// The server that runs the daemon (this one when `role` is `owner`); null while a new owner
    /// starts up.
    pub owner: Option<ServerInfo>,
    /// This server.
    pub this_server: ServerInfo,
    /// When the owner last published its state (RFC 3339); a follower's view is as of then.
    pub published_at: Option<String>,
    /// Parts of this server's config that differ from the owner's, e.g. `port: 9000 here, 8787
    /// in force` or `models.smart: differs`. The owner's config is in force; this server's
    /// applies only if it takes over.
    pub config_differs: Vec<String>,
}

/// This server's side of the ownership of its data dir.
pub struct Ownership {
    home: Home,
    me: ServerInfo,
    owner: watch::Sender<bool>,
    lock: Mutex<Option<OwnerLock>>,
}

impl Ownership {
    pub fn new(home: Home, me: ServerInfo) -> Arc<Self> {
        Arc::new(Self {
            home,
            me,
            owner: watch::channel(false).0,
            lock: Mutex::new(None),
        })
    }

    pub fn me(&self) -> &ServerInfo {
        &self.me
    }

    pub fn is_owner(&self) -> bool {
        *self.owner.borrow()
    }

    /// Changes to false → true once, when this server becomes the owner.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.owner.subscribe()
    }

    /// The lock's descriptor while this server owns, for the daemon to inherit.
    pub fn lock_fd(&self) -> Option<RawFd> {
        self.lock
            .lock()
            .ok()
            .and_then(|l| l.as_ref().map(OwnerLock::raw_fd))
    }

    /// Takes ownership now if nobody has it, or waits until the owner is gone. Returns true once
    /// this server owns, false on shutdown or when the lock cannot be used at all.
    pub async fn acquire(&self, shutdown: &CancellationToken) -> bool {
        let path = self.home.owner_lock_file();
        let lock = match OwnerLock::try_acquire(&path) {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                tracing::info!(
                    "another server owns this data dir's daemon: following it (taking over when it exits)"
                );
                // A thread blocked in flock(2) gets the lock the moment the kernel releases it;
                // if we shut down first, the lock it may still get is dropped with the message.
                let (tx, rx) = tokio::sync::oneshot::channel();
                let waiter =
                    std::thread::Builder::new()
                        .name("owner-lock".into())
                        .spawn(move || {
                            let _ = tx.send(OwnerLock::acquire(&path));
                        });
                if let Err(e) = waiter {
                    tracing::error!(error = %e, "cannot wait for the daemon's ownership");
                    return false;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    got = rx => match got {
                        Ok(Ok(lock)) => lock,
                        Ok(Err(e)) => {
                            tracing::error!(error = %e, "cannot lock {}", self.home.owner_lock_file().display());
                            return false;
                        }
                        Err(_) => return false,
                    },
                }
            }
            Err(e) => {
                tracing::error!(
                    error = %e,
                    "cannot lock {}: this server will not run the daemon",
                    path.display()
                );
                return false;
            }
        };
        if let Ok(mut slot) = self.lock.lock() {
            *slot = Some(lock);
        }
        tracing::info!(
            pid = self.me.pid,
            "this server owns the daemon of its data dir"
        );
        self.owner.send_replace(true);
        true
    }

    /// Resolves true once this server owns, false on shutdown.
    pub async fn owned(&self, shutdown: &CancellationToken) -> bool {
        let mut rx = self.owner.subscribe();
        tokio::select! {
            _ = shutdown.cancelled() => false,
            r = rx.wait_for(|owns| *owns) => r.is_ok(),
        }
    }

    /// Writes the owner's state (atomically, 0600).
    pub fn publish(&self, published: &Published) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(published).map_err(io::Error::other)?;
        crate::fsutil::write_private(&self.home.owner_state_file(), &bytes)
    }

    /// The owner's last published state, if any.
    pub fn read(&self) -> Option<Published> {
        let bytes = std::fs::read(self.home.owner_state_file()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The owner, stopping: nothing it published is true any more.
    pub fn withdraw(&self) {
        if self.is_owner() {
            let _ = std::fs::remove_file(self.home.owner_state_file());
        }
    }

    /// The ownership part of `bitrouter_status`.
    pub fn status(&self, mine: &PluginConfig, published: Option<&Published>) -> OwnershipStatus {
        if self.is_owner() {
            return OwnershipStatus {
                role: Role::Owner,
                owner: Some(self.me.clone()),
                this_server: self.me.clone(),
                published_at: None,
                config_differs: Vec::new(),
            };
        }
        OwnershipStatus {
            role: Role::Follower,
            owner: published.map(|p| p.owner.clone()),
            this_server: self.me.clone(),
            published_at: published.map(|p| p.updated_at.clone()),
            config_differs: published
                .map(|p| config_differences(&config_parts(mine), &p.config))
                .unwrap_or_default(),
        }
    }
}

/// A config by part, for comparing two servers' configs without publishing a secret: each scalar
/// setting by value (`port` → `8787`), each provider and model (`models.smart`) by a digest.
pub fn config_parts(config: &PluginConfig) -> BTreeMap<String, String> {
    let Ok(Value::Object(top)) = serde_json::to_value(config) else {
        return BTreeMap::new();
    };
    let mut parts = BTreeMap::new();
    for (key, value) in top {
        match value {
            Value::Object(entries) => {
                for (name, v) in entries {
                    let digest = Sha256::digest(v.to_string().as_bytes());
                    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
                    parts.insert(format!("{key}.{name}"), hex);
                }
            }
            scalar => {
                parts.insert(key, scalar.to_string());
            }
        }
    }
    parts
}

/// What differs between this server's config parts and the owner's, one line per part.
pub fn config_differences(
    mine: &BTreeMap<String, String>,
    owners: &BTreeMap<String, String>,
) -> Vec<String> {
    let names: BTreeSet<&String> = mine.keys().chain(owners.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| match (mine.get(name), owners.get(name)) {
            (Some(a), Some(b)) if a == b => None,
            (Some(a), Some(b)) if !name.contains('.') => {
                Some(format!("{name}: {a} here, {b} in force"))
            }
            (Some(_), Some(_)) => Some(format!("{name}: differs")),
            (Some(_), None) => Some(format!("{name}: only in this server's config")),
            (None, _) => Some(format!("{name}: only in the owner's config")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/owner.lock");
        let first = OwnerLock::try_acquire(&path).unwrap();
        assert!(first.is_some());
        assert!(OwnerLock::try_acquire(&path).unwrap().is_none());
        drop(first);
        assert!(OwnerLock::try_acquire(&path).unwrap().is_some());
    }

    #[test]
    fn differences_name_the_part_and_never_a_key() {
        let owner = PluginConfig::parse(
            r#"{"port": 8787, "providers": {"openai": {"apiKey": "sk-secret-1"}},
                "models": {"smart": {"endpoints": [{"provider": "openai", "modelId": "a"}]}}}"#,
        )
        .unwrap();
        let mine = PluginConfig::parse(
            r#"{"port": 9000, "providers": {"openai": {"apiKey": "sk-secret-2"}},
                "models": {"smart": {"endpoints": [{"provider": "openai", "modelId": "a"}]},
                           "fast": {"endpoints": [{"provider": "openai", "modelId": "b"}]}}}"#,
        )
        .unwrap();
        let parts = config_parts(&owner);
        assert!(!format!("{parts:?}").contains("sk-secret"));
        let diff = config_differences(&config_parts(&mine), &parts);
        assert_eq!(
            diff,
            vec![
                "models.fast: only in this server's config",
                "port: 9000 here, 8787 in force",
                "providers.openai: differs",
            ]
        );
        assert!(config_differences(&parts, &config_parts(&owner)).is_empty());
    }
}
