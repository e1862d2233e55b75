//! The file layer seam: everything the log does to the disk goes through
//! [`Fs`] and [`FsFile`], so tests can swap the real file system
//! ([`RealFs`]) for a simulated one that loses power (`sim::SimFs`, with the `sim` feature).
//!
//! The contract both implementations follow is POSIX's:
//! - [`FsFile::append`] writes to the page cache; only [`FsFile::sync`]
//!   (`fdatasync`) makes the bytes durable.
//! - Creating, renaming or removing a file changes its directory; the change
//!   is durable only once [`Fs::sync_dir`] has synced that directory.
//! - An open handle keeps working after its file is removed or renamed.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name (not its path). Names that are not UTF-8 are left out.
    pub name: String,
    /// Whether the entry is a directory.
    pub is_dir: bool,
}

/// A file system: directories and files by path.
pub trait Fs: Send + Sync + Debug {
    /// Creates a directory and its missing ancestors (not durably: sync the
    /// parents with [`Fs::sync_dir`]).
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;

    /// Lists a directory, in no particular order.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>>;

    /// Creates a file, or empties an existing one, and opens it for appending
    /// and positional reads.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn FsFile>>;

    /// Opens an existing file for appending and positional reads.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn FsFile>>;

    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Removes a directory and everything below it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;

    /// Renames a file, atomically replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;

    /// Whether anything exists at `path`.
    fn exists(&self, path: &Path) -> io::Result<bool>;
}

/// An open file: appended to at its end, read at any position.
pub trait FsFile: Send + Sync + Debug {
    /// Appends all of `data` at the end of the file with one write.
    fn append(&self, data: &[u8]) -> io::Result<()>;

    /// Fills `buf` from the file starting at byte `pos`; fails with
    /// [`io::ErrorKind::UnexpectedEof`] when the file is shorter.
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()>;

    /// Makes the file's data (and its length) durable (`fdatasync`).
    fn sync(&self) -> io::Result<()>;

    /// The file's current length in bytes.
    fn size(&self) -> io::Result<u64>;

    /// Cuts the file to `len` bytes (not durably: [`FsFile::sync`] after).
    fn truncate(&self, len: u64) -> io::Result<()>;
}

/// The real file system (`std::fs`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

/// A file of [`RealFs`].
#[derive(Debug)]
struct RealFile {
    file: File,
}

impl RealFs {
    fn open_options() -> OpenOptions {
        let mut options = OpenOptions::new();
        options.read(true).append(true);
        options
    }
}

impl Fs for RealFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            entries.push(DirEntry { name, is_dir: entry.file_type()?.is_dir() });
        }
        Ok(entries)
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        // `append` and `truncate` cannot be combined in `OpenOptions`.
        let file = Self::open_options().create(true).open(path)?;
        file.set_len(0)?;
        Ok(Arc::new(RealFile { file }))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        let file = Self::open_options().open(path)?;
        Ok(Arc::new(RealFile { file }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }
}

impl FsFile for RealFile {
    fn append(&self, data: &[u8]) -> io::Result<()> {
        (&self.file).write_all(data)
    }

    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, pos)
    }

    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_fs_appends_reads_truncates_and_lists() {
        let dir = tempfile::tempdir().unwrap();
        let fs = RealFs;
        let path = dir.path().join("a");
        let file = fs.create(&path).unwrap();
        file.append(b"hello ").unwrap();
        file.append(b"world").unwrap();
        file.sync().unwrap();
        let mut buf = [0u8; 5];
        file.read_exact_at(&mut buf, 6).unwrap();
        assert_eq!(&buf, b"world");
        file.truncate(5).unwrap();
        file.append(b"!").unwrap();
        assert_eq!(file.size().unwrap(), 6);
        assert!(file.read_exact_at(&mut buf, 4).is_err());
        // `create` empties an existing file.
        assert_eq!(fs.create(&path).unwrap().size().unwrap(), 0);
        fs.create_dir_all(&dir.path().join("d/e")).unwrap();
        let mut names = fs.read_dir(dir.path()).unwrap();
        names.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(
            names,
            vec![DirEntry { name: "a".into(), is_dir: false }, DirEntry { name: "d".into(), is_dir: true }]
        );
        fs.sync_dir(dir.path()).unwrap();
    }
}
