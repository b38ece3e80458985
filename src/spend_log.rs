//! BitRouter's spend log (`spend_logs` in `<home>/bitrouter.db`), read without disturbing the daemon.
//!
//! The daemon (0.11.0, `bitrouter-observe`) writes one row per proxied request, failed ones
//! included, through sqlx with sqlite's default rollback journal (not WAL). In that mode a reader's
//! shared lock makes a committing writer wait, so this module:
//! - opens the file read-only (`SQLITE_OPEN_READ_ONLY`: it cannot write, create or recover it);
//! - keeps every read transaction short: rows are fetched by rowid range in chunks, and a
//!   [`Mirror`] in our memory keeps what was read, so later calls fetch only new rows;
//! - waits at most [`BUSY_TIMEOUT`] for the daemon's write lock, then reports "locked".
//!
//! Rows are append-only in 0.11.0 (nothing deletes spend logs); a file whose last row we saw is
//! gone or different (replaced, rebuilt) is re-read from the start.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

/// The table the daemon logs requests to.
pub const TABLE: &str = "spend_logs";

/// `spend_logs` as BitRouter 0.11.0 creates it (declared types as sqlite reports them).
pub const PINNED_COLUMNS: [(&str, &str); 12] = [
    ("id", "uuid_text"),
    ("account_id", "varchar"),
    ("model", "varchar"),
    ("provider", "varchar"),
    ("input_tokens", "integer"),
    ("output_tokens", "integer"),
    ("cost", "double"),
    ("latency_ms", "bigint"),
    ("success", "boolean"),
    ("error_type", "varchar"),
    ("created_at", "timestamp_text"),
    ("session_id", "uuid_text"),
];

/// How long a read waits for the daemon's write lock before reporting the database locked.
pub const BUSY_TIMEOUT: Duration = Duration::from_millis(1000);

/// Rows fetched per read transaction: short enough that a writer waits at most a few ms.
const CHUNK: i64 = 5_000;

/// The newest rows kept in memory (40 bytes each, 10 MB at most); older ones are dropped, and a
/// window reaching back to them says so.
pub const MAX_ROWS: usize = 250_000;

/// One request as logged, compact: strings are interned in the [`Mirror`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    /// `created_at`, Unix milliseconds (UTC).
    pub at_ms: i64,
    pub cost: f64,
    /// Index into [`Mirror::endpoints`].
    pub endpoint: u32,
    /// 0 when none, else 1 + index into [`Mirror::error_types`].
    pub error_type: u32,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub latency_ms: u32,
    pub success: bool,
}

/// Why the spend log could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpendLogError {
    #[error(
        "BitRouter's database {path} is locked (a write took longer than {} ms); try again in a moment",
        BUSY_TIMEOUT.as_millis()
    )]
    Locked { path: String },
    #[error("BitRouter's database {path} cannot be read: {reason}")]
    Unreadable { path: String, reason: String },
    #[error(
        "BitRouter's database {path} does not hold the spend log of BitRouter 0.11.0 ({reason}); usage is read from the pinned daemon's schema only"
    )]
    Schema { path: String, reason: String },
}

/// What [`Mirror::refresh`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// No database file: the daemon has not run on this home yet.
    NoDatabase,
    /// A database without the spend log table yet (the daemon creates it when it starts).
    NoTable,
    /// The spend log, read up to its last row.
    Log,
}

/// Our in-memory copy of the spend log's rows, refreshed incrementally.
#[derive(Debug, Default)]
pub struct Mirror {
    entries: Vec<Entry>,
    /// `(provider, model)` as logged, by index.
    endpoints: Vec<(String, String)>,
    endpoint_index: HashMap<String, HashMap<String, u32>>,
    error_types: Vec<String>,
    /// rowid and id of the last row read, to read on from there and notice a replaced file.
    last: Option<(i64, Vec<u8>)>,
    /// Rows dropped to stay within [`MAX_ROWS`]; the newest dropped row's time.
    dropped: usize,
    dropped_until_ms: Option<i64>,
}

fn sql_error(path: &Path, e: rusqlite::Error) -> SpendLogError {
    let path = path.display().to_string();
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => SpendLogError::Locked { path },
        Some(ErrorCode::NotADatabase) => SpendLogError::Unreadable {
            path,
            reason: "the file is not an sqlite database (corrupt or overwritten)".into(),
        },
        // A hot journal left by a write the daemon did not finish: only a writer may roll it back.
        Some(ErrorCode::ReadOnly) => SpendLogError::Unreadable {
            path,
            reason: "a write the daemon did not finish must be rolled back first; the daemon does that when it next starts".into(),
        },
        Some(ErrorCode::DatabaseCorrupt) => SpendLogError::Unreadable {
            path,
            reason: "the database file is corrupt".into(),
        },
        _ => SpendLogError::Unreadable {
            path,
            reason: e.to_string(),
        },
    }
}

/// The row's `id` as bytes: sqlx stores a UUID as a 16-byte blob, a hand-written row may hold text.
fn id_bytes(v: rusqlite::types::ValueRef<'_>) -> Vec<u8> {
    match v {
        rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => b.to_vec(),
        rusqlite::types::ValueRef::Integer(i) => i.to_le_bytes().to_vec(),
        _ => Vec::new(),
    }
}

/// Parses `created_at` as written by sqlx (`2026-11-30 08:38:44.123456789`, UTC) or RFC 3339.
pub fn parse_created_at(s: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
        .map(|t| t.and_utc().timestamp_millis())
        .ok()
        .or_else(|| {
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.timestamp_millis())
        })
}

/// Opens `path` read-only with the busy timeout; never creates it.
pub fn open(path: &Path) -> Result<Connection, SpendLogError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| sql_error(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sql_error(path, e))?;
    Ok(conn)
}

/// Checks `spend_logs` has the pinned columns; `Ok(false)` when the table does not exist yet.
fn check_schema(conn: &Connection, path: &Path) -> Result<bool, SpendLogError> {
    let schema = |reason: String| SpendLogError::Schema {
        path: path.display().to_string(),
        reason,
    };
    let mut stmt = conn
        .prepare("SELECT name, type FROM pragma_table_info(?1)")
        .map_err(|e| sql_error(path, e))?;
    let columns: Vec<(String, String)> = stmt
        .query_map([TABLE], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .map_err(|e| sql_error(path, e))?;
    if columns.is_empty() {
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| sql_error(path, e))?;
        let migrated: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'seaql_migrations'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| sql_error(path, e))?;
        // An empty file or one the daemon is still migrating is "not yet"; anything else is foreign.
        return if tables == 0 || migrated == 1 {
            Ok(false)
        } else {
            Err(schema(format!("no table `{TABLE}`")))
        };
    }
    let mut problems = Vec::new();
    for (name, ty) in PINNED_COLUMNS {
        match columns.iter().find(|(n, _)| n == name) {
            None => problems.push(format!("column `{name}` missing")),
            Some((_, t)) if !t.eq_ignore_ascii_case(ty) => {
                problems.push(format!("column `{name}` is {t}, expected {ty}"))
            }
            Some(_) => {}
        }
    }
    for (name, _) in &columns {
        if !PINNED_COLUMNS.iter().any(|(n, _)| n == name) {
            problems.push(format!("unexpected column `{name}`"));
        }
    }
    if problems.is_empty() {
        Ok(true)
    } else {
        Err(schema(problems.join(", ")))
    }
}

impl Mirror {
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// `(provider, model)` as the daemon logged them, indexed by [`Entry::endpoint`].
    pub fn endpoints(&self) -> &[(String, String)] {
        &self.endpoints
    }

    pub fn error_type(&self, e: &Entry) -> Option<&str> {
        (e.error_type as usize)
            .checked_sub(1)
            .and_then(|i| self.error_types.get(i))
            .map(String::as_str)
    }

    /// How many old rows were dropped to bound memory, and the time of the newest dropped one.
    pub fn dropped(&self) -> (usize, Option<i64>) {
        (self.dropped, self.dropped_until_ms)
    }

    fn reset(&mut self) {
        *self = Self::default();
    }

    fn intern_endpoint(&mut self, provider: &str, model: &str) -> u32 {
        if let Some(i) = self.endpoint_index.get(provider).and_then(|m| m.get(model)) {
            return *i;
        }
        let i = self.endpoints.len() as u32;
        self.endpoints
            .push((provider.to_string(), model.to_string()));
        self.endpoint_index
            .entry(provider.to_string())
            .or_default()
            .insert(model.to_string(), i);
        i
    }

    fn intern_error(&mut self, error: Option<&str>) -> u32 {
        let Some(error) = error else { return 0 };
        match self.error_types.iter().position(|e| e == error) {
            Some(i) => i as u32 + 1,
            None => {
                self.error_types.push(error.to_string());
                self.error_types.len() as u32
            }
        }
    }

    /// Reads the rows logged since the last refresh from the database at `path`.
    pub fn refresh(&mut self, path: &Path) -> Result<Found, SpendLogError> {
        if !path.exists() {
            self.reset();
            return Ok(Found::NoDatabase);
        }
        let conn = open(path)?;
        if !check_schema(&conn, path)? {
            self.reset();
            return Ok(Found::NoTable);
        }
        if let Some((rowid, id)) = &self.last {
            let same: Option<Vec<u8>> = conn
                .query_row("SELECT id FROM spend_logs WHERE rowid = ?1", [rowid], |r| {
                    Ok(id_bytes(r.get_ref(0)?))
                })
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(sql_error(path, e)),
                })?;
            if same.as_ref() != Some(id) {
                self.reset();
            }
        }
        let mut stmt = conn
            .prepare(
                "SELECT rowid, id, created_at, provider, model, input_tokens, output_tokens, cost, \
                 latency_ms, success, error_type FROM spend_logs WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
            )
            .map_err(|e| sql_error(path, e))?;
        loop {
            let after = self.last.as_ref().map_or(0, |(r, _)| *r);
            // Each chunk is its own read transaction (the statement is reset after it).
            let read = self.read_chunk(&mut stmt, path, after)?;
            if read < CHUNK {
                break;
            }
        }
        Ok(Found::Log)
    }

    /// One read transaction: up to [`CHUNK`] rows after `after`; returns how many.
    fn read_chunk(
        &mut self,
        stmt: &mut rusqlite::Statement<'_>,
        path: &Path,
        after: i64,
    ) -> Result<i64, SpendLogError> {
        let mut rows = stmt
            .query(rusqlite::params![after, CHUNK])
            .map_err(|e| sql_error(path, e))?;
        let mut n = 0;
        let mut last = None;
        while let Some(row) = rows.next().map_err(|e| sql_error(path, e))? {
            let rowid: i64 = row.get(0).map_err(|e| sql_error(path, e))?;
            let bad = |column: &str, e: &dyn std::fmt::Display| SpendLogError::Schema {
                path: path.display().to_string(),
                reason: format!("row {rowid}: column `{column}`: {e}"),
            };
            let text = |i: usize, column: &str| -> Result<Option<&str>, SpendLogError> {
                let v = row.get_ref(i).map_err(|e| bad(column, &e))?;
                match v {
                    rusqlite::types::ValueRef::Null => Ok(None),
                    v => v.as_str().map(Some).map_err(|e| bad(column, &e)),
                }
            };
            let int = |i: usize, column: &str| -> Result<i64, SpendLogError> {
                row.get::<_, i64>(i).map_err(|e| bad(column, &e))
            };
            let created = text(2, "created_at")?.unwrap_or_default();
            let at_ms = parse_created_at(created)
                .ok_or_else(|| bad("created_at", &format!("not a timestamp: {created:?}")))?;
            let provider = text(3, "provider")?.unwrap_or_default();
            let model = text(4, "model")?.unwrap_or_default();
            let endpoint = self.intern_endpoint(provider, model);
            let error_type = self.intern_error(text(10, "error_type")?);
            let clamp = |v: i64| v.clamp(0, u32::MAX as i64) as u32;
            let entry = Entry {
                at_ms,
                cost: row.get::<_, f64>(7).map_err(|e| bad("cost", &e))?,
                endpoint,
                error_type,
                input_tokens: clamp(int(5, "input_tokens")?),
                output_tokens: clamp(int(6, "output_tokens")?),
                latency_ms: clamp(int(8, "latency_ms")?),
                success: int(9, "success")? != 0,
            };
            self.entries.push(entry);
            n += 1;
            last = Some((rowid, id_bytes(row.get_ref(1).map_err(|e| bad("id", &e))?)));
        }
        if let Some(last) = last {
            self.last = Some(last);
        }
        if self.entries.len() > MAX_ROWS {
            let drop = self.entries.len() - MAX_ROWS;
            self.dropped += drop;
            self.dropped_until_ms = self.entries[..drop].iter().map(|e| e.at_ms).max();
            self.entries.drain(..drop);
        }
        Ok(n)
    }
}

/// The mirror shared by every tool call and resource read of one server.
#[derive(Debug, Default)]
pub struct SharedMirror(std::sync::Mutex<(Option<PathBuf>, Mirror)>);

impl SharedMirror {
    /// Refreshes the mirror of `path` and runs `f` over it.
    pub fn with<T>(
        &self,
        path: &Path,
        f: impl FnOnce(Found, &Mirror) -> T,
    ) -> Result<T, SpendLogError> {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (cached_path, mirror) = &mut *guard;
        if cached_path.as_deref() != Some(path) {
            mirror.reset();
            *cached_path = Some(path.to_path_buf());
        }
        match mirror.refresh(path) {
            Ok(found) => Ok(f(found, mirror)),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Creates `spend_logs` exactly as BitRouter 0.11.0's migrations do.
    pub(crate) fn create_pinned(conn: &Connection) {
        conn.execute_batch(
            r#"CREATE TABLE "spend_logs" ( "id" uuid_text NOT NULL PRIMARY KEY, "account_id" varchar NULL,
               "model" varchar NOT NULL, "provider" varchar NOT NULL, "input_tokens" integer NOT NULL,
               "output_tokens" integer NOT NULL, "cost" double NOT NULL, "latency_ms" bigint NOT NULL,
               "success" boolean NOT NULL, "error_type" varchar NULL, "created_at" timestamp_text NOT NULL,
               "session_id" uuid_text NULL );
               CREATE INDEX "idx_spend_logs_account_created" ON "spend_logs" ("account_id", "created_at");
               CREATE INDEX "idx_spend_logs_session_id" ON "spend_logs" ("session_id");"#,
        )
        .unwrap();
    }

    fn insert(conn: &Connection, id: &str, provider: &str, model: &str, ok: bool) {
        conn.execute(
            "INSERT INTO spend_logs VALUES (?1, 'acct', ?2, ?3, 10, 5, 0.25, 42, ?4, ?5, '2026-11-30 08:00:00.5', NULL)",
            rusqlite::params![id, model, provider, ok, if ok { None } else { Some("Transport") }],
        )
        .unwrap();
    }

    #[test]
    fn reads_new_rows_only_and_notices_a_replaced_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bitrouter.db");
        let mut m = Mirror::default();
        assert_eq!(m.refresh(&path).unwrap(), Found::NoDatabase);
        assert!(!path.exists(), "reading never creates the database");

        let conn = Connection::open(&path).unwrap();
        create_pinned(&conn);
        insert(&conn, "a", "pa", "m1", true);
        insert(&conn, "b", "pb", "m2", false);
        assert_eq!(m.refresh(&path).unwrap(), Found::Log);
        assert_eq!(m.entries().len(), 2);
        let e = m.entries()[1];
        assert_eq!(
            m.endpoints()[e.endpoint as usize],
            ("pb".into(), "m2".into())
        );
        assert_eq!(m.error_type(&e), Some("Transport"));
        assert!(!e.success);
        assert_eq!(e.at_ms, 1_796_025_600_500);

        insert(&conn, "c", "pa", "m1", true);
        m.refresh(&path).unwrap();
        assert_eq!(m.entries().len(), 3, "only the new row is appended");

        // The file is rebuilt with other rows: the mirror starts over.
        drop(conn);
        std::fs::remove_file(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        create_pinned(&conn);
        insert(&conn, "x", "pc", "m3", true);
        m.refresh(&path).unwrap();
        assert_eq!(m.entries().len(), 1);
        assert_eq!(m.endpoints()[m.entries()[0].endpoint as usize].0, "pc");
    }

    #[test]
    fn another_schema_or_a_corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bitrouter.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE spend_logs (id text, model text, cost real)")
            .unwrap();
        let err = Mirror::default().refresh(&path).unwrap_err().to_string();
        assert!(err.contains("column `provider` missing"), "{err}");
        assert!(err.contains("BitRouter 0.11.0"), "{err}");

        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let err = Mirror::default().refresh(&other).unwrap_err().to_string();
        assert!(err.contains("no table `spend_logs`"), "{err}");

        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
        let err = Mirror::default().refresh(&garbage).unwrap_err().to_string();
        assert!(err.contains("not an sqlite database"), "{err}");
    }

    #[test]
    fn a_held_write_lock_is_reported_as_locked_after_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bitrouter.db");
        let conn = Connection::open(&path).unwrap();
        create_pinned(&conn);
        conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let start = std::time::Instant::now();
        let err = Mirror::default().refresh(&path).unwrap_err();
        assert!(matches!(err, SpendLogError::Locked { .. }), "{err}");
        assert!(start.elapsed() >= BUSY_TIMEOUT / 2);
        assert!(err.to_string().contains("locked"));
    }

    #[test]
    fn an_unfinished_write_is_named_and_left_for_the_daemon_to_roll_back() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.db");
        let conn = Connection::open(&live).unwrap();
        create_pinned(&conn);
        conn.execute_batch("BEGIN").unwrap();
        for i in 0..2000 {
            insert(&conn, &format!("id-{i}"), "pa", "m1", true);
        }
        conn.execute_batch("COMMIT").unwrap();
        // A write in flight with its journal on disk; copying both files is what a crash leaves.
        conn.execute_batch(
            "PRAGMA cache_size = 1; BEGIN; UPDATE spend_logs SET model = hex(randomblob(300));",
        )
        .unwrap();
        let crashed = dir.path().join("bitrouter.db");
        std::fs::copy(&live, &crashed).unwrap();
        std::fs::copy(
            dir.path().join("live.db-journal"),
            dir.path().join("bitrouter.db-journal"),
        )
        .unwrap();
        let err = Mirror::default().refresh(&crashed).unwrap_err().to_string();
        assert!(err.contains("did not finish"), "{err}");
        assert!(
            dir.path().join("bitrouter.db-journal").exists(),
            "the journal is the daemon's to roll back, not ours"
        );
    }

    #[test]
    fn sqlx_and_rfc3339_timestamps_parse() {
        assert_eq!(
            parse_created_at("2026-11-30 08:00:00.5"),
            Some(1_796_025_600_500)
        );
        assert_eq!(
            parse_created_at("2026-11-30 08:00:00"),
            Some(1_796_025_600_000)
        );
        assert_eq!(
            parse_created_at("2026-11-30T09:00:00+01:00"),
            Some(1_796_025_600_000)
        );
        assert_eq!(parse_created_at("yesterday"), None);
    }
}
