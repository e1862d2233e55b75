//! Bytes on disk: of a Delta table's current snapshot (PromLake) and of a
//! Prometheus TSDB's blocks.
//!
//! Sizes are file lengths (what `ls -l` and promtool's `SIZE` column show),
//! not allocated blocks.

use std::path::{Path, PathBuf};

use anyhow::Context;
use deltalake::parquet::file::reader::{FileReader, SerializedFileReader};
use deltalake::{DeltaTableBuilder, DeltaTableError};
use stream_workers::{LakeLocation, TableKind};

/// Total length of every file under `dir` (0 when it does not exist).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

/// What one Delta table holds on disk.
#[derive(Debug, Clone, Default)]
pub struct TableBytes {
    /// Parquet files referenced by the current snapshot.
    pub files: usize,
    /// Their total length.
    pub data_bytes: u64,
    /// Rows in them (from the Parquet footers).
    pub rows: u64,
    /// `_delta_log/` (commits and checkpoints).
    pub log_bytes: u64,
    /// Every file in the table's directory, including files removed from the
    /// snapshot but not vacuumed yet.
    pub dir_bytes: u64,
    /// Compressed bytes of each column's chunks (from the footers), by
    /// column path; the rest of `data_bytes` is footers and headers.
    pub columns: std::collections::BTreeMap<String, u64>,
}

/// Measures the current snapshot of `workspace_id`'s `kind` table.
///
/// # Errors
/// When the table or a file's footer cannot be read.
pub async fn table_bytes(lake: &LakeLocation, workspace_id: &str, kind: TableKind) -> anyhow::Result<TableBytes> {
    let url = lake.table_url(workspace_id, kind);
    let dir = url.to_file_path().ok().context("the lake is not a local directory")?;
    let mut table = DeltaTableBuilder::from_url(url.clone())?.build()?;
    match table.load().await {
        Ok(()) => {}
        Err(DeltaTableError::NotATable(_)) => return Ok(TableBytes::default()),
        Err(e) => return Err(e).with_context(|| format!("loading {url}")),
    }
    let mut out = TableBytes {
        log_bytes: dir_bytes(&dir.join("_delta_log")),
        dir_bytes: dir_bytes(&dir),
        ..TableBytes::default()
    };
    for uri in table.get_file_uris()? {
        let path =
            url::Url::parse(&uri).ok().and_then(|u| u.to_file_path().ok()).unwrap_or_else(|| PathBuf::from(&uri));
        let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        out.data_bytes += file.metadata()?.len();
        let reader =
            SerializedFileReader::new(file).with_context(|| format!("reading the footer of {}", path.display()))?;
        out.rows += reader.metadata().file_metadata().num_rows() as u64;
        for rg in reader.metadata().row_groups() {
            for c in rg.columns() {
                *out.columns.entry(c.column_path().string()).or_default() += c.compressed_size() as u64;
            }
        }
        out.files += 1;
    }
    Ok(out)
}

/// One Prometheus block, from its directory and `meta.json`.
#[derive(Debug, Clone, Default)]
pub struct Block {
    /// Its ULID.
    pub ulid: String,
    /// First and last timestamp, milliseconds.
    pub min_time: i64,
    /// See `min_time` (exclusive end).
    pub max_time: i64,
    /// `stats.numSamples`.
    pub samples: u64,
    /// `stats.numSeries`.
    pub series: u64,
    /// `compaction.level`.
    pub level: u64,
    /// `chunks/`.
    pub chunks_bytes: u64,
    /// `index`.
    pub index_bytes: u64,
    /// `meta.json`, `tombstones`.
    pub other_bytes: u64,
}

impl Block {
    /// Every file of the block.
    pub fn bytes(&self) -> u64 {
        self.chunks_bytes + self.index_bytes + self.other_bytes
    }
}

/// What a Prometheus data directory holds.
#[derive(Debug, Clone, Default)]
pub struct TsdbBytes {
    /// Its persisted blocks, oldest first.
    pub blocks: Vec<Block>,
    /// `wal/` and `chunks_head/` (the head's files, not blocks).
    pub wal_bytes: u64,
}

/// Reads the blocks of a Prometheus data directory (directories with a
/// `meta.json`; temporary directories of a compaction in progress excluded).
///
/// # Errors
/// When the directory or a `meta.json` cannot be read.
pub fn tsdb_bytes(data_dir: &Path) -> anyhow::Result<TsdbBytes> {
    let mut out = TsdbBytes {
        wal_bytes: dir_bytes(&data_dir.join("wal")) + dir_bytes(&data_dir.join("chunks_head")),
        ..TsdbBytes::default()
    };
    for entry in std::fs::read_dir(data_dir).with_context(|| format!("listing {}", data_dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta_path = entry.path().join("meta.json");
        if name.contains(".tmp") || !meta_path.exists() {
            continue;
        }
        let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_path)?)
            .with_context(|| format!("parsing {}", meta_path.display()))?;
        let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
        let index_bytes = std::fs::metadata(entry.path().join("index")).map(|m| m.len()).unwrap_or(0);
        let chunks_bytes = dir_bytes(&entry.path().join("chunks"));
        out.blocks.push(Block {
            ulid: name,
            min_time: meta["minTime"].as_i64().unwrap_or(0),
            max_time: meta["maxTime"].as_i64().unwrap_or(0),
            samples: n(&meta["stats"]["numSamples"]),
            series: n(&meta["stats"]["numSeries"]),
            level: n(&meta["compaction"]["level"]),
            chunks_bytes,
            index_bytes,
            other_bytes: dir_bytes(&entry.path()) - chunks_bytes - index_bytes,
        });
    }
    out.blocks.sort_by_key(|b| b.min_time);
    Ok(out)
}

impl TsdbBytes {
    /// Samples in every block.
    pub fn samples(&self) -> u64 {
        self.blocks.iter().map(|b| b.samples).sum()
    }

    /// Bytes of every block.
    pub fn block_bytes(&self) -> u64 {
        self.blocks.iter().map(Block::bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_read_from_meta_json_and_sized_by_part() {
        let dir = tempfile::tempdir().unwrap();
        let block = dir.path().join("01ABC");
        std::fs::create_dir_all(block.join("chunks")).unwrap();
        std::fs::write(block.join("chunks/000001"), vec![0u8; 1000]).unwrap();
        std::fs::write(block.join("index"), vec![0u8; 300]).unwrap();
        let meta = r#"{"minTime":10,"maxTime":20,"stats":{"numSamples":500,"numSeries":5},"compaction":{"level":2}}"#;
        std::fs::write(block.join("meta.json"), meta).unwrap();
        // a compaction in progress and the WAL are not blocks
        std::fs::create_dir_all(dir.path().join("01DEF.tmp-for-creation")).unwrap();
        std::fs::write(dir.path().join("01DEF.tmp-for-creation/meta.json"), meta).unwrap();
        std::fs::create_dir_all(dir.path().join("wal")).unwrap();
        std::fs::write(dir.path().join("wal/00000000"), vec![0u8; 77]).unwrap();
        let t = tsdb_bytes(dir.path()).unwrap();
        assert_eq!(t.blocks.len(), 1);
        let b = &t.blocks[0];
        assert_eq!((b.samples, b.series, b.level, b.min_time, b.max_time), (500, 5, 2, 10, 20));
        assert_eq!((b.chunks_bytes, b.index_bytes, b.other_bytes), (1000, 300, meta.len() as u64));
        assert_eq!(t.wal_bytes, 77);
        assert_eq!(t.samples(), 500);
    }
}
