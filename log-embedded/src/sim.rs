//! [`SimFs`]: an in-memory [`Fs`] that can lose power, for crash tests.
//!
//! The model follows POSIX on a journaling file system:
//! - every file has `durable` contents (as of its last [`FsFile::sync`]) and
//!   `current` contents; writes go to `current`, a sync copies it to `durable`;
//! - every directory has `durable` entries (as of its last [`Fs::sync_dir`])
//!   and `current` entries; creating, renaming or removing changes `current`
//!   only. Directories are identified by id, like inodes, so a synced
//!   directory keeps its contents whatever happens to its name later.
//!
//! [`SimFs::crash`] freezes the machine under the one lock: every later
//! operation fails. [`SimFs::recovered`] then boots a new file system from
//! what was durable: the files reachable through durable directory entries,
//! each with its durable contents plus, when it only grew since its last
//! sync, a random prefix of the unsynced bytes (a torn write), whose last few
//! bytes may be garbled.
//!
//! Available in this crate's tests and, for other crates, with the `sim`
//! feature.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::path::{Component, Path};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::{Rng, SeedableRng};

use crate::fs::{DirEntry, Fs, FsFile};

/// The root directory's id.
const ROOT: u64 = 0;

/// A directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    File(u64),
    Dir(u64),
}

#[derive(Debug, Clone, Default)]
struct FileData {
    durable: Vec<u8>,
    current: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
struct DirData {
    durable: BTreeMap<String, Node>,
    current: BTreeMap<String, Node>,
}

#[derive(Debug, Clone)]
struct SimState {
    crashed: bool,
    next_id: u64,
    files: HashMap<u64, FileData>,
    dirs: HashMap<u64, DirData>,
    /// Crash when this many more mutating operations were attempted, with
    /// this seed for the torn writes.
    crash_after: Option<(u64, u64)>,
    /// What a reboot finds; set by the crash.
    image: Option<Box<SimState>>,
}

/// A simulated file system that can lose power. See the [module docs](self).
pub struct SimFs {
    state: Arc<Mutex<SimState>>,
}

/// An open file of a [`SimFs`].
struct SimFile {
    state: Arc<Mutex<SimState>>,
    id: u64,
}

fn power_off() -> io::Error {
    io::Error::other("simulated power loss: the machine is off")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{} not found", path.display()))
}

/// The names along a path; `..` is not supported.
fn names(path: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "`..` is not supported"));
            }
            Component::Normal(name) => names.push(name.to_string_lossy().into_owned()),
        }
    }
    Ok(names)
}

impl SimState {
    fn empty() -> Self {
        let mut dirs = HashMap::new();
        dirs.insert(ROOT, DirData::default());
        SimState { crashed: false, next_id: ROOT + 1, files: HashMap::new(), dirs, crash_after: None, image: None }
    }

    fn alloc(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Fails when the power is off.
    fn live(&self) -> io::Result<()> {
        if self.crashed { Err(power_off()) } else { Ok(()) }
    }

    /// Like [`SimState::live`], and counts down a scheduled crash.
    fn mutate(&mut self) -> io::Result<()> {
        self.live()?;
        if let Some((remaining, seed)) = self.crash_after {
            if remaining == 0 {
                self.crash(&mut rand::rngs::StdRng::seed_from_u64(seed));
                return Err(power_off());
            }
            self.crash_after = Some((remaining - 1, seed));
        }
        Ok(())
    }

    fn dir_mut(&mut self, id: u64) -> io::Result<&mut DirData> {
        self.dirs.get_mut(&id).ok_or_else(|| io::Error::other("simulated fs: dangling directory id"))
    }

    /// The current node at a path (the root is `Dir(ROOT)`).
    fn lookup(&self, path: &Path) -> io::Result<Option<Node>> {
        let mut node = Node::Dir(ROOT);
        for name in names(path)? {
            let Node::Dir(dir) = node else { return Ok(None) };
            match self.dirs.get(&dir).and_then(|d| d.current.get(&name)) {
                Some(next) => node = *next,
                None => return Ok(None),
            }
        }
        Ok(Some(node))
    }

    /// The directory holding `path` and the last name of the path.
    fn parent(&self, path: &Path) -> io::Result<(u64, String)> {
        let mut all = names(path)?;
        let name = all.pop().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the root has no parent"))?;
        let parent: std::path::PathBuf = all.iter().collect();
        match self.lookup(&Path::new("/").join(parent))? {
            Some(Node::Dir(dir)) => Ok((dir, name)),
            _ => Err(not_found(path)),
        }
    }

    /// Freezes the machine and computes what a reboot will find.
    fn crash<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        if self.crashed {
            return;
        }
        self.crashed = true;
        let mut image = SimState::empty();
        let mut file_ids: HashMap<u64, u64> = HashMap::new();
        let mut stack = vec![(ROOT, ROOT)];
        while let Some((old_dir, new_dir)) = stack.pop() {
            let entries = self.dirs.get(&old_dir).map(|d| d.durable.clone()).unwrap_or_default();
            let mut copied = BTreeMap::new();
            for (name, node) in entries {
                let new_node = match node {
                    Node::Dir(old) => {
                        let new = image.alloc();
                        image.dirs.insert(new, DirData::default());
                        stack.push((old, new));
                        Node::Dir(new)
                    }
                    Node::File(old) => {
                        let new = match file_ids.get(&old) {
                            Some(new) => *new,
                            None => {
                                let new = image.alloc();
                                let data = self.files.get(&old).map(|f| torn(f, rng)).unwrap_or_default();
                                image.files.insert(new, FileData { durable: data.clone(), current: data });
                                file_ids.insert(old, new);
                                new
                            }
                        };
                        Node::File(new)
                    }
                };
                copied.insert(name, new_node);
            }
            image.dirs.insert(new_dir, DirData { durable: copied.clone(), current: copied });
        }
        self.image = Some(Box::new(image));
    }
}

/// A file's contents after a power loss: its durable bytes plus, if it only
/// grew since, a random prefix of the rest, maybe with a garbled end.
fn torn<R: Rng + ?Sized>(file: &FileData, rng: &mut R) -> Vec<u8> {
    let mut data = file.durable.clone();
    if file.current.len() > data.len() && file.current.starts_with(&data) {
        let extra = &file.current[data.len()..];
        let keep = match rng.random_range(0..4) {
            0 => 0,
            1 => extra.len(),
            _ => rng.random_range(0..=extra.len()),
        };
        data.extend_from_slice(&extra[..keep]);
        if keep > 0 && rng.random_bool(0.4) {
            let garbled = rng.random_range(1..=keep.min(8));
            let len = data.len();
            for byte in &mut data[len - garbled..] {
                *byte = rng.random();
            }
        }
    }
    data
}

impl SimFs {
    /// An empty file system (just the root directory).
    pub fn new() -> Arc<SimFs> {
        Arc::new(SimFs { state: Arc::new(Mutex::new(SimState::empty())) })
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        lock(&self.state)
    }

    /// Loses power now: every later operation fails. Torn writes are drawn
    /// from `rng`. Crashing twice keeps the first crash.
    pub fn crash<R: Rng + ?Sized>(&self, rng: &mut R) {
        self.lock().crash(rng);
    }

    /// Loses power when `mutating_ops` more writes, syncs, creations,
    /// renames or removals have been attempted (the next one fails), with
    /// torn writes drawn from `seed`.
    pub fn crash_after(&self, mutating_ops: u64, seed: u64) {
        self.lock().crash_after = Some((mutating_ops, seed));
    }

    /// Whether the power is off.
    pub fn is_crashed(&self) -> bool {
        self.lock().crashed
    }

    /// Boots a new file system from what survived the crash.
    ///
    /// # Panics
    /// When called before [`SimFs::crash`]: a test bug.
    pub fn recovered(&self) -> Arc<SimFs> {
        let image = self.lock().image.clone().expect("SimFs::recovered is called after SimFs::crash");
        Arc::new(SimFs { state: Arc::new(Mutex::new(*image)) })
    }
}

fn lock(state: &Mutex<SimState>) -> MutexGuard<'_, SimState> {
    // A panic while holding the lock leaves consistent data (every mutation
    // is a single step), so a poisoned lock is still usable.
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("SimFs").field("crashed", &state.crashed).field("files", &state.files.len()).finish()
    }
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile").field("id", &self.id).finish()
    }
}

impl Fs for SimFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.mutate()?;
        let mut dir = ROOT;
        for name in names(path)? {
            let existing = state.dir_mut(dir)?.current.get(&name).copied();
            dir = match existing {
                Some(Node::Dir(next)) => next,
                Some(Node::File(_)) => {
                    return Err(io::Error::new(io::ErrorKind::AlreadyExists, "a file is in the way"));
                }
                None => {
                    let next = state.alloc();
                    state.dirs.insert(next, DirData::default());
                    state.dir_mut(dir)?.current.insert(name, Node::Dir(next));
                    next
                }
            };
        }
        Ok(())
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let state = self.lock();
        state.live()?;
        let Some(Node::Dir(dir)) = state.lookup(path)? else { return Err(not_found(path)) };
        let entries = state.dirs.get(&dir).map(|d| d.current.clone()).unwrap_or_default();
        Ok(entries.into_iter().map(|(name, node)| DirEntry { name, is_dir: matches!(node, Node::Dir(_)) }).collect())
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        let mut state = self.lock();
        state.mutate()?;
        let (dir, name) = state.parent(path)?;
        let id = match state.dir_mut(dir)?.current.get(&name).copied() {
            Some(Node::File(id)) => {
                if let Some(file) = state.files.get_mut(&id) {
                    file.current.clear();
                }
                id
            }
            Some(Node::Dir(_)) => {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, "a directory is in the way"));
            }
            None => {
                let id = state.alloc();
                state.files.insert(id, FileData::default());
                state.dir_mut(dir)?.current.insert(name, Node::File(id));
                id
            }
        };
        Ok(Arc::new(SimFile { state: self.state.clone(), id }))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        let state = self.lock();
        state.live()?;
        match state.lookup(path)? {
            Some(Node::File(id)) => Ok(Arc::new(SimFile { state: self.state.clone(), id })),
            _ => Err(not_found(path)),
        }
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.mutate()?;
        let (dir, name) = state.parent(path)?;
        match state.dir_mut(dir)?.current.remove(&name) {
            Some(Node::File(_)) => Ok(()),
            Some(node) => {
                state.dir_mut(dir)?.current.insert(name, node);
                Err(io::Error::other("remove_file on a directory"))
            }
            None => Err(not_found(path)),
        }
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.mutate()?;
        let (dir, name) = state.parent(path)?;
        match state.dir_mut(dir)?.current.remove(&name) {
            Some(_) => Ok(()),
            None => Err(not_found(path)),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.mutate()?;
        let (from_dir, from_name) = state.parent(from)?;
        let (to_dir, to_name) = state.parent(to)?;
        let node = state.dir_mut(from_dir)?.current.remove(&from_name).ok_or_else(|| not_found(from))?;
        state.dir_mut(to_dir)?.current.insert(to_name, node);
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.mutate()?;
        let Some(Node::Dir(id)) = state.lookup(path)? else { return Err(not_found(path)) };
        let dir = state.dir_mut(id)?;
        dir.durable = dir.current.clone();
        Ok(())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let state = self.lock();
        state.live()?;
        Ok(state.lookup(path)?.is_some())
    }
}

impl SimFile {
    fn with<T>(&self, mutating: bool, f: impl FnOnce(&mut FileData) -> io::Result<T>) -> io::Result<T> {
        let mut state = lock(&self.state);
        if mutating {
            state.mutate()?
        } else {
            state.live()?
        }
        let file = state.files.get_mut(&self.id).ok_or_else(|| io::Error::other("simulated fs: dangling file id"))?;
        f(file)
    }
}

impl FsFile for SimFile {
    fn append(&self, data: &[u8]) -> io::Result<()> {
        self.with(true, |file| {
            file.current.extend_from_slice(data);
            Ok(())
        })
    }

    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.with(false, |file| {
            let start = usize::try_from(pos).map_err(io::Error::other)?;
            match file.current.get(start..start + buf.len()) {
                Some(bytes) => {
                    buf.copy_from_slice(bytes);
                    Ok(())
                }
                None => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the file")),
            }
        })
    }

    fn sync(&self) -> io::Result<()> {
        self.with(true, |file| {
            file.durable = file.current.clone();
            Ok(())
        })
    }

    fn size(&self) -> io::Result<u64> {
        self.with(false, |file| Ok(file.current.len() as u64))
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.with(true, |file| {
            let len = usize::try_from(len).map_err(io::Error::other)?;
            file.current.resize(len, 0);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(fs: &SimFs, path: &str) -> Vec<u8> {
        let file = fs.open(Path::new(path)).unwrap();
        let mut buf = vec![0; file.size().unwrap() as usize];
        file.read_exact_at(&mut buf, 0).unwrap();
        buf
    }

    #[test]
    fn only_synced_files_and_entries_survive() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        let synced = fs.create(Path::new("/d/synced")).unwrap();
        synced.append(b"durable").unwrap();
        synced.sync().unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        let unsynced_entry = fs.create(Path::new("/d/late")).unwrap();
        unsynced_entry.append(b"x").unwrap();
        unsynced_entry.sync().unwrap();
        fs.rename(Path::new("/d/synced"), Path::new("/d/renamed")).unwrap();

        fs.crash(&mut rand::rngs::StdRng::seed_from_u64(1));
        assert!(fs.exists(Path::new("/d")).is_err(), "operations fail after the crash");
        let after = fs.recovered();
        assert_eq!(read_all(&after, "/d/synced"), b"durable");
        assert!(!after.exists(Path::new("/d/late")).unwrap());
        assert!(!after.exists(Path::new("/d/renamed")).unwrap());
    }

    #[test]
    fn unsynced_bytes_survive_only_as_a_torn_prefix() {
        let mut lengths = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let fs = SimFs::new();
            let file = fs.create(Path::new("/f")).unwrap();
            fs.sync_dir(Path::new("/")).unwrap();
            file.append(b"0123").unwrap();
            file.sync().unwrap();
            file.append(b"456789").unwrap();
            fs.crash(&mut rand::rngs::StdRng::seed_from_u64(seed));
            let data = read_all(&fs.recovered(), "/f");
            assert!(data.len() >= 4 && data.len() <= 10);
            assert_eq!(&data[..4], b"0123", "durable bytes are never garbled");
            lengths.insert(data.len());
        }
        assert!(lengths.len() > 3, "torn lengths vary: {lengths:?}");
    }

    #[test]
    fn scheduled_crash_fails_the_operation_and_later_ones() {
        let fs = SimFs::new();
        fs.crash_after(1, 7);
        fs.create_dir_all(Path::new("/a")).unwrap();
        assert!(fs.create_dir_all(Path::new("/b")).is_err());
        assert!(fs.is_crashed());
        assert!(!fs.recovered().exists(Path::new("/a")).unwrap(), "the root was never synced");
    }
}
