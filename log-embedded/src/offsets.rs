//! Committed consumer offsets of one partition.
//!
//! All groups' offsets for a partition live in one small file,
//! `<partition dir>/consumer-offsets`, rewritten whole and atomically on
//! every commit (write `consumer-offsets.tmp`, fsync, rename, fsync the
//! directory), so a crash leaves either the old or the new file, never a
//! mix. Group names are stored length-prefixed inside the file, so any name
//! works. Format (little-endian):
//!
//! ```text
//! "PLOF" u32 version=1 u32 count { u32 name_len, name, u64 next_offset }* u32 crc32c(all before)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::BufMut;
use common::log::LogResult;

use crate::ctx::{Ctx, corrupt};

/// The offsets file's name in the partition directory.
pub(crate) const OFFSETS_FILE: &str = "consumer-offsets";
/// The temporary file of an atomic rewrite.
pub(crate) const OFFSETS_TMP_FILE: &str = "consumer-offsets.tmp";
const MAGIC: &[u8; 4] = b"PLOF";
const VERSION: u32 = 1;

/// The committed offsets of one partition, in memory and on disk.
#[derive(Debug)]
pub(crate) struct ConsumerOffsets {
    dir: PathBuf,
    committed: Mutex<BTreeMap<String, u64>>,
    /// Serialises rewrites of the file; held only on blocking threads.
    write: Mutex<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ConsumerOffsets {
    /// Empty offsets for a new partition.
    pub(crate) fn empty(dir: &Path) -> Self {
        ConsumerOffsets { dir: dir.to_path_buf(), committed: Mutex::new(BTreeMap::new()), write: Mutex::new(()) }
    }

    /// Loads the partition's offsets (none if the file does not exist) and
    /// removes a leftover temporary file.
    pub(crate) fn load(ctx: &Ctx, dir: &Path) -> LogResult<Self> {
        ctx.remove_if_exists(&dir.join(OFFSETS_TMP_FILE))?;
        let path = dir.join(OFFSETS_FILE);
        let offsets = Self::empty(dir);
        if ctx.fs.exists(&path).map_err(|e| crate::ctx::io_err("stat", &path, e))? {
            let bytes = ctx.read_all(&path)?;
            *lock(&offsets.committed) =
                decode(&bytes).map_err(|(position, reason)| corrupt(&path, position, reason))?;
        }
        Ok(offsets)
    }

    /// The offset `group` committed, if any.
    pub(crate) fn get(&self, group: &str) -> Option<u64> {
        lock(&self.committed).get(group).copied()
    }

    /// The lowest offset any group committed, if any group did.
    pub(crate) fn min(&self) -> Option<u64> {
        lock(&self.committed).values().min().copied()
    }

    /// Durably records `group`'s offset. Blocking.
    pub(crate) fn commit(&self, ctx: &Ctx, group: &str, next_offset: u64) -> LogResult<()> {
        let _write = lock(&self.write);
        let mut updated = lock(&self.committed).clone();
        updated.insert(group.to_owned(), next_offset);
        ctx.write_atomic(&self.dir, OFFSETS_FILE, &encode(&updated))?;
        *lock(&self.committed) = updated;
        Ok(())
    }
}

fn encode(offsets: &BTreeMap<String, u64>) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_slice(MAGIC);
    out.put_u32_le(VERSION);
    out.put_u32_le(offsets.len() as u32);
    for (group, offset) in offsets {
        out.put_u32_le(group.len() as u32);
        out.put_slice(group.as_bytes());
        out.put_u64_le(*offset);
    }
    let crc = crc32c::crc32c(&out);
    out.put_u32_le(crc);
    out
}

/// Decodes the file; an error carries the byte position and the reason.
fn decode(bytes: &[u8]) -> Result<BTreeMap<String, u64>, (u64, String)> {
    let body_len = bytes.len().checked_sub(4).ok_or((0, "file too short".to_owned()))?;
    let (body, crc) = bytes.split_at(body_len);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32c::crc32c(body) != stored {
        return Err((body_len as u64, "checksum mismatch".into()));
    }
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], (u64, String)> {
        let field = body.get(at..at + n).ok_or((at as u64, "file ends early".to_owned()))?;
        at += n;
        Ok(field)
    };
    let u32_of = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    if take(4)? != MAGIC || u32_of(take(4)?) != VERSION {
        return Err((0, "not a consumer offsets file of version 1".into()));
    }
    let count = u32_of(take(4)?);
    let mut offsets = BTreeMap::new();
    for _ in 0..count {
        let len = u32_of(take(4)?) as usize;
        let group = String::from_utf8(take(len)?.to_vec()).map_err(|_| (0, "group name is not UTF-8".to_owned()))?;
        let mut offset = [0u8; 8];
        offset.copy_from_slice(take(8)?);
        offsets.insert(group, u64::from_le_bytes(offset));
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_any_group_name_and_detects_damage() {
        let mut offsets = BTreeMap::new();
        offsets.insert("workers".to_owned(), 7);
        offsets.insert("../odd/ναμε\n\0".to_owned(), u64::MAX);
        offsets.insert(String::new(), 0);
        let bytes = encode(&offsets);
        assert_eq!(decode(&bytes).unwrap(), offsets);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(decode(&bad).is_err(), "damage at {i} went unnoticed");
        }
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
