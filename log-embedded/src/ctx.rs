//! What every part of the log shares: the file system, the settings, the
//! fsync counter, and helpers that turn I/O failures into [`LogError`]s.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::log::{LogError, LogResult};

use crate::config::EmbeddedLogConfig;
use crate::fs::{Fs, FsFile};

/// Shared by all topics and partitions of one log.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) fs: Arc<dyn Fs>,
    pub(crate) config: EmbeddedLogConfig,
    fsyncs: AtomicU64,
}

impl Ctx {
    pub(crate) fn new(fs: Arc<dyn Fs>, config: EmbeddedLogConfig) -> Self {
        Ctx { fs, config, fsyncs: AtomicU64::new(0) }
    }

    /// File and directory syncs so far.
    pub(crate) fn fsync_count(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    /// Syncs a file's data.
    pub(crate) fn sync_file(&self, file: &dyn FsFile, path: &Path) -> LogResult<()> {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        file.sync().map_err(|e| io_err("fsync", path, e))
    }

    /// Syncs a directory's entries.
    pub(crate) fn sync_dir(&self, dir: &Path) -> LogResult<()> {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.fs.sync_dir(dir).map_err(|e| io_err("fsync directory", dir, e))
    }

    /// Replaces `dir/name` with `bytes` atomically and durably: writes
    /// `dir/name.tmp`, syncs it, renames it over `dir/name`, syncs `dir`.
    pub(crate) fn write_atomic(&self, dir: &Path, name: &str, bytes: &[u8]) -> LogResult<()> {
        let tmp = dir.join(format!("{name}.tmp"));
        let path = dir.join(name);
        let file = self.fs.create(&tmp).map_err(|e| io_err("create", &tmp, e))?;
        file.append(bytes).map_err(|e| io_err("write", &tmp, e))?;
        self.sync_file(file.as_ref(), &tmp)?;
        self.fs.rename(&tmp, &path).map_err(|e| io_err("rename", &tmp, e))?;
        self.sync_dir(dir)
    }

    /// Reads a whole (small) file.
    pub(crate) fn read_all(&self, path: &Path) -> LogResult<Vec<u8>> {
        let file = self.fs.open(path).map_err(|e| io_err("open", path, e))?;
        let len = file.size().map_err(|e| io_err("stat", path, e))?;
        let len = usize::try_from(len).map_err(|_| corrupt(path, 0, "file too large"))?;
        let mut buf = vec![0; len];
        file.read_exact_at(&mut buf, 0).map_err(|e| io_err("read", path, e))?;
        Ok(buf)
    }

    /// Removes a file if it exists.
    pub(crate) fn remove_if_exists(&self, path: &Path) -> LogResult<()> {
        match self.fs.remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err("remove", path, e)),
            _ => Ok(()),
        }
    }
}

/// An I/O error on a path.
pub(crate) fn io_err(what: &str, path: &Path, source: std::io::Error) -> LogError {
    LogError::io(format!("{what} {}", path.display()), source)
}

/// Corrupt data in a file.
pub(crate) fn corrupt(path: &Path, position: u64, reason: impl Into<String>) -> LogError {
    LogError::Corrupt { location: path.display().to_string(), position, reason: reason.into() }
}

/// Runs blocking file work on tokio's blocking pool.
pub(crate) async fn blocking<T, F>(work: F) -> LogResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> LogResult<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| LogError::io("blocking log task", std::io::Error::other(e.to_string())))?
}
