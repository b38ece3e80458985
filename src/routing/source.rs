//! The live config: loaded from the `--config` file, re-read when the file changes (polled) or on
//! SIGHUP, validated before anyone sees it. A bad edit is reported and the running config stays.
//!
//! A change is applied only once the file has stopped changing: editors and scripts truncate
//! and rewrite, and a half-written file can be valid YAML that drops models. The watcher reads
//! the file, waits [`SETTLE`], and applies it only when the bytes and modification time are
//! unchanged; otherwise it waits again.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::config::{ConfigError, PluginConfig};

/// How long the file must stay unchanged before a change is applied.
pub const SETTLE: Duration = Duration::from_millis(500);

pub struct ConfigSource {
    path: Option<PathBuf>,
    tx: watch::Sender<Arc<PluginConfig>>,
    /// Why the last reload was refused, until a good one arrives.
    error: Mutex<Option<String>>,
    seen: Mutex<Option<SystemTime>>,
}

impl ConfigSource {
    pub fn new(path: Option<PathBuf>, initial: PluginConfig) -> Arc<Self> {
        let seen = path
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .and_then(|m| m.modified().ok());
        Arc::new(Self {
            path,
            tx: watch::channel(Arc::new(initial)).0,
            error: Mutex::new(None),
            seen: Mutex::new(seen),
        })
    }

    pub fn current(&self) -> Arc<PluginConfig> {
        self.tx.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<PluginConfig>> {
        self.tx.subscribe()
    }

    pub fn path(&self) -> Option<&std::path::Path> {
        self.path.as_deref()
    }

    pub fn last_error(&self) -> Option<String> {
        self.error.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Re-reads the file; publishes it when valid and different. Returns whether it changed.
    pub fn reload(&self) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        self.apply(PluginConfig::load(path))
    }

    fn apply(&self, loaded: Result<PluginConfig, ConfigError>) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        match loaded {
            Ok(config) => {
                if let Ok(mut e) = self.error.lock() {
                    *e = None;
                }
                let changed = self.tx.send_if_modified(|current| {
                    if **current == config {
                        return false;
                    }
                    *current = Arc::new(config);
                    true
                });
                if changed {
                    tracing::info!(path = %path.display(), "config reloaded");
                }
                changed
            }
            Err(e) => {
                tracing::error!(error = %e, "config change refused; keeping the running config");
                if let Ok(mut slot) = self.error.lock() {
                    *slot = Some(format!("{e} (the previous config stays in force)"));
                }
                false
            }
        }
    }

    /// Polls the file's modification time every `every`; a change is applied once the file
    /// has been stable for `settle` (see the module doc), until `shutdown`.
    pub async fn watch(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        self.watch_settling(every, SETTLE, shutdown).await;
    }

    /// [`ConfigSource::watch`] with the settle time given (tests shorten it).
    pub async fn watch_settling(
        self: Arc<Self>,
        every: Duration,
        settle: Duration,
        shutdown: CancellationToken,
    ) {
        let Some(path) = self.path.clone() else {
            return;
        };
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            let unchanged = self
                .seen
                .lock()
                .map(|seen| *seen == modified)
                .unwrap_or(true);
            if unchanged {
                continue;
            }
            let mut last = snapshot(&path);
            let stable = loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(settle) => {}
                }
                let now = snapshot(&path);
                if now == last {
                    break now;
                }
                tracing::debug!(path = %path.display(), "config file still changing; waiting");
                last = now;
            };
            if let Ok(mut seen) = self.seen.lock() {
                *seen = stable.modified;
            }
            let loaded = match stable.text {
                Ok(text) => PluginConfig::parse_file(&path, &text),
                // Unreadable (e.g. deleted): the load names the file and why.
                Err(_) => PluginConfig::load(&path),
            };
            self.apply(loaded);
        }
    }
}

/// The file's bytes and modification time at one moment.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    modified: Option<SystemTime>,
    text: Result<String, std::io::ErrorKind>,
}

fn snapshot(path: &std::path::Path) -> Snapshot {
    Snapshot {
        modified: std::fs::metadata(path).and_then(|m| m.modified()).ok(),
        text: std::fs::read_to_string(path).map_err(|e| e.kind()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const FULL: &str = r#"{"port": 9100, "models": {
        "a": {"endpoints": [{"provider": "openai", "modelId": "a"}]},
        "b": {"endpoints": [{"provider": "openai", "modelId": "b"}]}}}"#;
    /// What a writer has put down halfway: valid YAML, one model short.
    const HALF: &str =
        "port: 9100\nmodels:\n  a:\n    endpoints:\n      - {provider: openai, modelId: a}\n";

    #[tokio::test]
    async fn a_file_is_applied_only_once_it_stops_changing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "port: 9000\n").unwrap();
        let source = ConfigSource::new(Some(path.clone()), PluginConfig::load(&path).unwrap());
        let mut rx = source.subscribe();
        let shutdown = CancellationToken::new();
        let every = Duration::from_millis(20);
        let task = tokio::spawn(source.clone().watch_settling(
            every,
            Duration::from_millis(400),
            shutdown.clone(),
        ));
        let mut published = Vec::new();
        let collect = async {
            while rx.changed().await.is_ok() {
                published.push(rx.borrow_and_update().models.len());
            }
        };
        let write = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            // Half the file for 200 ms (ten polls), then the rest.
            std::fs::write(&path, HALF).unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            std::fs::write(&path, FULL).unwrap();
            tokio::time::sleep(Duration::from_millis(1500)).await;
            // An empty file, however long it stays, is refused.
            std::fs::write(&path, "").unwrap();
            tokio::time::sleep(Duration::from_millis(1500)).await;
            shutdown.cancel();
        };
        tokio::select! {
            _ = collect => {}
            _ = write => {}
        }
        task.await.unwrap();
        assert_eq!(published, [2], "only the finished file is applied");
        assert_eq!(source.current().models.len(), 2);
        let error = source.last_error().unwrap();
        assert!(error.contains("empty"), "{error}");
    }
}
