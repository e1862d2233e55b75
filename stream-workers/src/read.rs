//! A minimal reader of the lake tables: the files of a table's current
//! version, each read whole through the lake's object store (a local
//! directory or S3). For tests and tools until the query path reads the
//! tables through DataFusion.

use deltalake::arrow::compute::concat_batches;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::logstore::object_store::ObjectStoreExt as _;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::{DeltaTableError, Path};

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
    let mut table = lake.table_builder(&url).and_then(|b| b.build()).map_err(|e| Error::delta(&url, "opening", e))?;
    if !crate::writer::has_log(&table).await.map_err(|e| Error::delta(&url, "listing the log", e))? {
        return Ok(Vec::new());
    }
    match table.load().await {
        Ok(()) => {}
        Err(DeltaTableError::NotATable(_)) => return Ok(Vec::new()),
        Err(e) => return Err(Error::delta(&url, "loading", e)),
    }
    let snapshot = table.snapshot().map_err(|e| Error::delta(&url, "reading the snapshot", e))?;
    let paths: Vec<Path> = snapshot.log_data().iter().map(|f| f.object_store_path()).collect();
    let store = table.log_store().object_store(None);
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let read_err = |e: String| Error::delta(&url, "reading a data file", DeltaTableError::Generic(e));
        let bytes = store
            .get(&path)
            .await
            .map_err(|e| read_err(format!("{path}: {e}")))?
            .bytes()
            .await
            .map_err(|e| read_err(format!("{path}: {e}")))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| read_err(e.to_string()))?;
        let schema = builder.schema().clone();
        let batches = builder
            .build()
            .map_err(|e| read_err(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| read_err(e.to_string()))?;
        let rows = concat_batches(&schema, &batches).map_err(|e| read_err(e.to_string()))?;
        let partition = path
            .parts()
            .filter_map(|c| c.as_ref().split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect();
        let file_url = url.join(path.as_ref()).map_or_else(|_| format!("{url}{path}"), |u| u.to_string());
        files.push(TableFile { url: file_url, partition, rows });
    }
    Ok(files)
}
