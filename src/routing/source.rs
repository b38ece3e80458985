//! The live config: loaded from the `--config` file, re-read when the file changes (polled) or on
//! SIGHUP, validated before anyone sees it. A bad edit is reported and the running config stays.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::config::PluginConfig;

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
        match PluginConfig::load(path) {
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

    /// Polls the file's modification time every `every` and reloads on change, until `shutdown`.
    pub async fn watch(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
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
            let changed = match self.seen.lock() {
                Ok(mut seen) => std::mem::replace(&mut *seen, modified) != modified,
                Err(_) => false,
            };
            if changed {
                self.reload();
            }
        }
    }
}
