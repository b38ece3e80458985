//! The daemon's log: its stdout and stderr, ANSI colour stripped and secrets masked, written to
//! `<home>/logs/daemon.log` with size-bounded rotation (`daemon.log.1` … `.N`). A flood of
//! refused requests (the daemon warns once per 401) becomes one line and a count per minute, so
//! it cannot push every useful line out of the log.
//!
//! Every line also passes a [`Rejections`] tap (when given): the control plane learns of the
//! failures only this log shows without reading the file back.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::redact::Redactor;
use crate::routing::rejections::Rejections;

pub const LOG_NAME: &str = "daemon.log";

/// The log file is created on the first line, so a server that never starts a daemon leaves
/// none behind.
pub struct RotatingLog {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    file: Option<File>,
    size: u64,
    redactor: Redactor,
    /// 401 warnings held back since the last one written: (count, when that one was written).
    refused: Option<(u64, Instant)>,
    /// Told every daemon line, the held-back 401 warnings included.
    tap: Option<Arc<Rejections>>,
}

/// How long 401 warnings are counted after one is written, before the next is written.
const REFUSED_WINDOW: Duration = Duration::from_secs(60);

/// The daemon's warning for a request refused for a missing or bad token.
fn is_refusal(line: &str) -> bool {
    line.contains("status=401")
}

impl RotatingLog {
    pub fn new(dir: &Path, max_bytes: u64, keep: usize, redactor: Redactor) -> Self {
        Self {
            path: dir.join(LOG_NAME),
            max_bytes,
            keep,
            file: None,
            size: 0,
            redactor,
            refused: None,
            tap: None,
        }
    }

    /// Feeds every line written to `tap` too.
    pub fn with_tap(mut self, tap: Option<Arc<Rejections>>) -> Self {
        self.tap = tap;
        self
    }

    fn file(&mut self) -> io::Result<&mut File> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                crate::fsutil::ensure_private_dir(dir)?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&self.path)?;
            // The log may quote requests and errors: private, also when an older one was not.
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            self.size = file.metadata()?.len();
            self.file = Some(file);
        }
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("log file not open"))
    }

    /// Secrets change with the config; the log learns the new ones.
    pub fn set_redactor(&mut self, redactor: Redactor) {
        self.redactor = redactor;
    }

    /// Appends one line (cleaned), rotating first when the file would pass its bound. Of a run
    /// of 401 warnings the first is written and the rest counted (see [`REFUSED_WINDOW`]).
    pub fn write_line(&mut self, line: &str) -> io::Result<()> {
        let clean = self.redactor.redact(&strip_ansi(line));
        if let Some(tap) = &self.tap {
            tap.observe(&clean);
        }
        if is_refusal(&clean) {
            if let Some((count, since)) = &mut self.refused
                && since.elapsed() < REFUSED_WINDOW
            {
                *count += 1;
                return Ok(());
            }
            self.flush_refused()?;
            self.refused = Some((0, Instant::now()));
        } else {
            self.flush_refused()?;
        }
        self.append(&clean)
    }

    /// Writes how many 401 warnings were held back, if any.
    fn flush_refused(&mut self) -> io::Result<()> {
        match self.refused.take() {
            Some((count, since)) if count > 0 => self.append(&format!(
                "[bitrouter-mcp] … and {count} more requests refused with 401 (missing or bad token) in {} s",
                since.elapsed().as_secs().max(1)
            )),
            _ => Ok(()),
        }
    }

    fn append(&mut self, clean: &str) -> io::Result<()> {
        let len = clean.len() as u64 + 1;
        self.file()?;
        if self.size + len > self.max_bytes && self.size > 0 {
            self.rotate()?;
        }
        let file = self.file()?;
        file.write_all(clean.as_bytes())?;
        file.write_all(b"\n")?;
        self.size += len;
        Ok(())
    }

    /// Writes a line of our own (lifecycle events) so the log reads as one story.
    pub fn note(&mut self, message: &str) {
        let _ = self.write_line(&format!("[bitrouter-mcp] {message}"));
    }

    fn rotate(&mut self) -> io::Result<()> {
        for i in (1..self.keep).rev() {
            let from = rotated(&self.path, i);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, i + 1))?;
            }
        }
        if self.keep > 0 {
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
        }
        self.file = Some(
            OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o600)
                .open(&self.path)?,
        );
        self.size = 0;
        Ok(())
    }
}

fn rotated(path: &Path, i: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

/// Removes ANSI escape sequences (the daemon colours its logs even into files).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // CSI: parameters and intermediates, then one final byte in @..~
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// The last `n` lines of the log (reads only the file's end).
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn strips_colour_codes() {
        assert_eq!(
            strip_ansi("\u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m ready"),
            "2026  INFO ready"
        );
    }

    #[test]
    fn rotates_within_bounds_and_masks_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RotatingLog::new(dir.path(), 1000, 2, Redactor::new(["supersecret".into()]));
        for i in 0..100 {
            log.write_line(&format!("line {i:03} key=supersecret padding padding"))
                .unwrap();
        }
        let main = std::fs::metadata(dir.path().join(LOG_NAME)).unwrap().len();
        assert!(main <= 1000, "{main}");
        assert!(dir.path().join("daemon.log.1").exists());
        assert!(dir.path().join("daemon.log.2").exists());
        assert!(!dir.path().join("daemon.log.3").exists());
        let t = tail(&dir.path().join(LOG_NAME), 2);
        assert_eq!(t.len(), 2);
        assert!(t[1].starts_with("line 099"), "{t:?}");
        assert!(t.iter().all(|l| !l.contains("supersecret")));
    }

    #[test]
    fn a_flood_of_refusals_is_one_line_and_a_count() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RotatingLog::new(dir.path(), 1 << 20, 2, Redactor::new([]));
        log.write_line("ready").unwrap();
        for _ in 0..1000 {
            log.write_line("WARN request{path=/v1/chat/completions}: unable to serve request (client error) status=401 error=None")
                .unwrap();
        }
        log.note("daemon pid 1 ended");
        let t = tail(&dir.path().join(LOG_NAME), 10);
        assert_eq!(t.len(), 4, "{t:?}");
        assert!(t[1].contains("status=401"));
        assert!(
            t[2].contains("and 999 more requests refused with 401"),
            "{t:?}"
        );
        assert!(t[3].contains("daemon pid 1 ended"));
    }

    #[test]
    fn rejection_lines_reach_the_tap_as_they_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let tap = Arc::new(Rejections::default());
        let mut log =
            RotatingLog::new(dir.path(), 1 << 20, 2, Redactor::new([])).with_tap(Some(tap.clone()));
        // As the daemon writes it: coloured.
        log.write_line("\u{1b}[31mERROR\u{1b}[0m \u{1b}[2mwarp::reject\u{1b}[0m: unhandled custom rejection, returning 500 response: BitrouterRejection(Provider { provider: \"anthropic\", message: \"Overloaded\" })")
            .unwrap();
        log.write_line("INFO server listening").unwrap();
        log.note("daemon pid 1 ended");
        assert_eq!(
            tap.take().into_iter().collect::<Vec<_>>(),
            [("anthropic".to_string(), 1)]
        );
        assert!(tap.take().is_empty());
    }
}
