//! `Home`: the one owner of every path this project uses.
//!
//! Our own state lives in a data directory (default: the user's data dir + `bitrouter-mcp`);
//! BitRouter's home is `<data-dir>/bitrouter`, laid out exactly as `bitrouter --home-dir` expects,
//! so the `bitrouter` CLI and our tools see the same accounts and tokens.

use std::path::{Path, PathBuf};

/// Paths of one installation.
#[derive(Debug, Clone)]
pub struct Home {
    data_dir: PathBuf,
}

impl Home {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
        }
    }

    /// The default data directory: `$XDG_DATA_HOME/bitrouter-mcp` or the platform equivalent.
    pub fn default_data_dir() -> Option<PathBuf> {
        dirs::data_dir().map(|d| d.join("bitrouter-mcp"))
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// BitRouter's `--home-dir`.
    pub fn bitrouter_home(&self) -> PathBuf {
        self.data_dir.join("bitrouter")
    }

    /// `<home>/.keys`: one directory per account plus the `active` marker.
    pub fn keys_dir(&self) -> PathBuf {
        self.bitrouter_home().join(".keys")
    }

    /// Text file naming the active account's prefix.
    pub fn active_file(&self) -> PathBuf {
        self.keys_dir().join("active")
    }

    pub fn account_dir(&self, prefix: &str) -> PathBuf {
        self.keys_dir().join(prefix)
    }

    /// `master.json` of an account: the 32-byte seed. Never leaves this machine.
    pub fn master_key_file(&self, prefix: &str) -> PathBuf {
        self.account_dir(prefix).join("master.json")
    }

    pub fn tokens_dir(&self, prefix: &str) -> PathBuf {
        self.account_dir(prefix).join("tokens")
    }

    pub fn token_file(&self, prefix: &str, name: &str) -> PathBuf {
        self.tokens_dir(prefix).join(format!("{name}.jwt"))
    }

    /// The daemon's generated config.
    pub fn daemon_config_file(&self) -> PathBuf {
        self.bitrouter_home().join("bitrouter.yaml")
    }

    /// Provider keys, loaded by the daemon at startup.
    pub fn env_file(&self) -> PathBuf {
        self.bitrouter_home().join(".env")
    }

    /// The daemon's sqlite database (accounts, API keys, the spend log); only the daemon writes it.
    pub fn daemon_db_file(&self) -> PathBuf {
        self.bitrouter_home().join("bitrouter.db")
    }

    /// Where the daemon's stdout/stderr go.
    pub fn logs_dir(&self) -> PathBuf {
        self.bitrouter_home().join("logs")
    }

    /// Pid of the daemon this server started, so a later server can adopt or replace it.
    pub fn pid_file(&self) -> PathBuf {
        self.data_dir.join("daemon.pid")
    }

    /// Held (an exclusive `flock`) by the one server that owns this data dir's daemon, for its
    /// whole life; the kernel releases it when that server and its daemon are gone.
    pub fn owner_lock_file(&self) -> PathBuf {
        self.data_dir.join("owner.lock")
    }

    /// The owner's live state (daemon status, route table, metrics), written atomically for the
    /// other servers on this data dir to show.
    pub fn owner_state_file(&self) -> PathBuf {
        self.data_dir.join("owner.json")
    }

    /// The address the HTTP server listens on while it runs (`bitrouter-mcp dashboard` reads it).
    pub fn http_address_file(&self) -> PathBuf {
        self.data_dir.join("http.addr")
    }
}
