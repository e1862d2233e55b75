//! A minimal reader of the lake tables: the files of a table's current
//! version, each read whole. For tests and tools until the query path reads
//! the tables through DataFusion; local (`file://`) lakes only.

use std::fs::File;

use deltalake::arrow::compute::concat_batches;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::{DeltaTableBuilder, DeltaTableError};
use url::Url;

use crate::error::{Error, Result};
use crate::lake::LakeLocation;
use crate::tables::TableKind;

/// One data file of a table's current version.
#[derive(Debug, Clone)]
pub struct TableFile {
    /// The file's URL.
    pub url: String,
    /// Partition values from the file's path (`day=2024-05-01` →
    /// `("day", "2024-05-01")`).
    pub partition: Vec<(String, String)>,
    /// The file's rows (without partition columns), in file order.
    pub rows: RecordBatch,
}

/// Every data file of a table's current version; empty if the table does not
/// exist.
///
/// # Errors
/// [`Error::Delta`] when the table or a file cannot be read.
pub async fn read_table(lake: &LakeLocation, workspace_id: &str, kind: TableKind) -> Result<Vec<TableFile>> {
    let url = lake.table_url(workspace_id, kind);
    if LakeLocation::local_dir(&url).is_some_and(|d| !d.exists()) {
        return Ok(Vec::new());
    }
    let mut table = DeltaTableBuilder::from_url(url.clone())
        .and_then(|b| b.build())
        .map_err(|e| Error::delta(&url, "opening", e))?;
    match table.load().await {
        Ok(()) => {}
        Err(DeltaTableError::NotATable(_)) => return Ok(Vec::new()),
        Err(e) => return Err(Error::delta(&url, "loading", e)),
    }
    let uris: Vec<String> = table.get_file_uris().map_err(|e| Error::delta(&url, "listing files", e))?.collect();
    let mut files = Vec::with_capacity(uris.len());
    for uri in uris {
        let read_err = |e: String| Error::delta(&url, "reading a data file", DeltaTableError::Generic(e));
        let path =
            Url::parse(&uri).ok().and_then(|u| u.to_file_path().ok()).unwrap_or_else(|| std::path::PathBuf::from(&uri));
        let file = File::open(&path).map_err(|e| read_err(format!("{}: {e}", path.display())))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| read_err(e.to_string()))?;
        let schema = builder.schema().clone();
        let batches = builder
            .build()
            .map_err(|e| read_err(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| read_err(e.to_string()))?;
        let rows = concat_batches(&schema, &batches).map_err(|e| read_err(e.to_string()))?;
        let partition = path
            .iter()
            .filter_map(|c| c.to_str())
            .filter_map(|c| c.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        files.push(TableFile { url: uri, partition, rows });
    }
    Ok(files)
}
