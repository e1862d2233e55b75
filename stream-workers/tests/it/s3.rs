//! The lake on object storage: the same workers, writer, maintenance and
//! reader on an `s3://` lake served by moto (an S3-compatible server from
//! PyPI, started by each test from the tests' venv), including Delta's safe
//! concurrent commits through S3 conditional puts (`If-None-Match: *`).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::clock::{Clock, ManualClock};
use common::limits::{Limits, Overrides};
use deltalake::arrow::array::{Array, ArrayRef, Int64Array, StringArray};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{Action, Transaction};
use deltalake::logstore::object_store::aws::{AmazonS3, AmazonS3Builder};
use deltalake::logstore::object_store::path::Path as StorePath;
use deltalake::logstore::object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt as _,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result as StoreResult,
};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::TryStreamExt as _;
use futures::stream::BoxStream;
use prometheus_client::registry::Registry;
use schemas::stream::MetricMetadata;
use schemas::stream::metric_metadata::MetricType;
use stream_workers::{
    AppTransaction, AppendOutcome, DeltaTableWriter, Error, LakeLocation, S3Config, StreamWorkersConfig, TableKind,
    TableWriter,
};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::harness::*;

const BUCKET: &str = "promlake-test";
const WS2: &str = "ws-22222222-1b2a-4c5d-8e9f-0a1b2c3d4e5f";
const DAY: i64 = 86_400_000;
const HOUR: u64 = 3_600_000;

/// moto's S3 server (`scripts/s3-test-server.py`), killed on drop.
struct S3Server {
    child: tokio::process::Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl S3Server {
    /// Starts the server with the bucket created; returns once it answered.
    async fn start() -> S3Server {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("s3-test-server.log");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/s3-test-server.py");
        let mut child = tokio::process::Command::new(python())
            .arg(script)
            .arg(BUCKET)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("start s3-test-server.py");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("moto answers within 60 s")
            .unwrap();
        let port = match line {
            Some(port) => port.trim().parse().unwrap(),
            None => panic!("s3-test-server.py exited: {}", std::fs::read_to_string(&log).unwrap_or_default()),
        };
        S3Server { child, port, log, _dir: dir }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What `[lake_s3]` of the config file would say for this server.
    fn config(&self) -> S3Config {
        S3Config {
            endpoint: Some(self.endpoint()),
            region: Some("us-east-1".into()),
            access_key_id: Some("promlake-test".into()),
            secret_access_key: Some("promlake-test".into()),
            allow_http: true,
            ..S3Config::default()
        }
    }

    /// The lake `s3://<bucket>/<prefix>`.
    fn lake(&self, prefix: &str) -> LakeLocation {
        LakeLocation::parse(&format!("s3://{BUCKET}/{prefix}")).unwrap().with_s3(&self.config()).unwrap()
    }

    /// A client of the bucket, to look at what the lake left in it.
    fn bucket(&self) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_bucket_name(BUCKET)
            .with_region("us-east-1")
            .with_access_key_id("promlake-test")
            .with_secret_access_key("promlake-test")
            .with_allow_http(true)
            .build()
            .unwrap()
    }

    /// Every key under `prefix`.
    async fn keys(&self, prefix: &str) -> Vec<String> {
        let listed: Vec<_> = self.bucket().list(Some(&StorePath::from(prefix))).try_collect().await.unwrap();
        let mut keys: Vec<String> = listed.into_iter().map(|m| m.location.to_string()).collect();
        keys.sort();
        keys
    }

    /// How many puts of a Delta commit file (`…/_delta_log/<version>.json`)
    /// the server refused with 412 Precondition Failed: conditional puts
    /// that lost to an existing commit.
    fn refused_commits(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            // (werkzeug colours lines of failed requests: no quotes around PUT.)
            .filter(|l| {
                l.contains("PUT /") && l.contains("/_delta_log/") && l.contains(".json HTTP/1.1") && l.contains(" 412 ")
            })
            .count()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The bucket as one process sees it, running a hook just before its next
/// put of a Delta commit file (`_delta_log/<version>.json`): what another
/// process does in the window between delta-rs' look at the latest version
/// and its put of the next one.
struct BeforeCommitPut {
    inner: Arc<dyn ObjectStore>,
    hook: tokio::sync::Mutex<Option<futures::future::BoxFuture<'static, ()>>>,
}

impl std::fmt::Debug for BeforeCommitPut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BeforeCommitPut({:?})", self.inner)
    }
}

impl std::fmt::Display for BeforeCommitPut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BeforeCommitPut({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for BeforeCommitPut {
    async fn put_opts(&self, location: &StorePath, payload: PutPayload, options: PutOptions) -> StoreResult<PutResult> {
        let path = location.as_ref();
        if path.contains("_delta_log/") && path.ends_with(".json") {
            let hook = self.hook.lock().await.take();
            if let Some(hook) = hook {
                hook.await;
            }
        }
        self.inner.put_opts(location, payload, options).await
    }

    async fn put_multipart_opts(
        &self,
        location: &StorePath,
        options: PutMultipartOptions,
    ) -> StoreResult<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, options).await
    }

    async fn get_opts(&self, location: &StorePath, options: GetOptions) -> StoreResult<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, StoreResult<StorePath>>,
    ) -> BoxStream<'static, StoreResult<StorePath>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, StoreResult<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&StorePath>) -> StoreResult<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &StorePath, to: &StorePath, options: CopyOptions) -> StoreResult<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// A delta-rs table handle loaded now, as another process would hold it.
async fn open(lake: &LakeLocation, ws: &str, kind: TableKind) -> DeltaTable {
    let options: HashMap<String, String> = lake.storage_options().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut table =
        DeltaTableBuilder::from_url(lake.table_url(ws, kind)).unwrap().with_storage_options(options).build().unwrap();
    table.load().await.unwrap();
    table
}

/// A `metadata` batch of `n` rows named `<prefix>-<i>`.
fn metadata_rows(prefix: &str, n: usize) -> RecordBatch {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let text = |v: &str| Arc::new(StringArray::from(vec![v; n])) as ArrayRef;
    RecordBatch::try_new(
        TableKind::Metadata.arrow_schema(),
        vec![
            Arc::new(StringArray::from(names)) as ArrayRef,
            text("gauge"),
            text("help"),
            text(""),
            Arc::new(Int64Array::from(vec![1_000; n])) as ArrayRef,
        ],
    )
    .unwrap()
}

/// Every metric name in the `metadata` table, asserting none is there twice.
async fn metadata_names(lake: &LakeLocation, ws: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for file in stream_workers::read::read_table(lake, ws, TableKind::Metadata).await.unwrap() {
        let col = file.rows.column_by_name(schemas::tables::COL_METRIC_NAME).unwrap();
        let col = col.as_any().downcast_ref::<StringArray>().unwrap();
        for i in 0..col.len() {
            assert!(names.insert(col.value(i).to_owned()), "{} twice", col.value(i));
        }
    }
    names
}

/// (series id, timestamp) of every sample, read by delta-rs' Python package
/// (an independent reader) from the S3 lake, configured by the standard AWS
/// environment variables only.
fn python_samples(s3: &S3Server, lake: &LakeLocation) -> BTreeSet<(u64, i64)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/read_lake.py");
    let table = lake.table_url(WS, TableKind::Samples);
    let out = std::process::Command::new(python())
        .arg(script)
        .arg(table.as_str())
        .env("AWS_ENDPOINT_URL", s3.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "promlake-test")
        .env("AWS_SECRET_ACCESS_KEY", "promlake-test")
        .env("AWS_ALLOW_HTTP", "true")
        .output()
        .expect("run read_lake.py");
    assert!(out.status.success(), "read_lake.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<(i64, i64)> = serde_json::from_slice(&out.stdout).expect("read_lake.py output");
    let set: BTreeSet<(u64, i64)> =
        rows.iter().map(|&(id, ts)| (stream_workers::tables::series_id_from_i64(id), ts)).collect();
    assert_eq!(set.len(), rows.len(), "the Python reader found a sample twice");
    set
}

fn pairs(map: &std::collections::BTreeMap<(u64, i64), Option<u64>>) -> BTreeSet<(u64, i64)> {
    map.keys().copied().collect()
}

#[tokio::test]
async fn workers_append_to_an_s3_lake_exactly_once_across_restarts() {
    let s3 = S3Server::start().await;
    let env = Env::with_lake(2, Some(s3.lake("lake"))).await;
    let now = now_ms();
    let cpu = series(&[("__name__", "node_cpu_seconds_total"), ("cpu", "0")], &[(now - 2000, 1.0), (now - 1000, 2.0)]);
    let load = series(&[("__name__", "node_load1")], &[(now - 1000, 0.5)]);
    let meta = MetricMetadata {
        metric_family_name: "node_cpu_seconds_total".into(),
        r#type: MetricType::Counter as i32,
        help: "Seconds the CPUs spent in each mode.".into(),
        unit: "seconds".into(),
    };
    let first = batch(vec![cpu.clone()], vec![meta]);
    let o0 = env.append(0, &first).await;
    let o1 = env.append(1, &batch(vec![load.clone()], vec![])).await;
    let mut registry = Registry::default();
    let workers = env.start(fast_config(), env.writer(), None, &mut registry).await;
    workers.wait_for_offset(WS, 0, o0, Duration::from_secs(20)).await.unwrap();
    workers.wait_for_offset(WS, 1, o1, Duration::from_secs(20)).await.unwrap();
    workers.shutdown().await;

    // A new process (new writer, nothing cached): a retried request whose
    // first copy is in the lake, and a new one.
    let later = series(&[("__name__", "node_load1")], &[(now, 0.7)]);
    env.append(0, &first).await;
    let o0 = env.append(0, &batch(vec![later.clone()], vec![])).await;
    let mut registry = Registry::default();
    let workers = env.start(fast_config(), env.writer(), None, &mut registry).await;
    workers.wait_for_offset(WS, 0, o0, Duration::from_secs(20)).await.unwrap();
    workers.shutdown().await;

    let expected: BTreeSet<(u64, i64)> = [
        (cpu.series_id, now - 2000),
        (cpu.series_id, now - 1000),
        (load.series_id, now - 1000),
        (later.series_id, now),
    ]
    .into();
    assert_eq!(pairs(&sample_map(&env.lake).await), expected, "each sample once");
    let series_ids: BTreeSet<u64> = read_series(&env.lake).await.iter().map(|r| r.0).collect();
    assert_eq!(series_ids, [cpu.series_id, load.series_id].into());
    // Metadata rows are written again by each worker run (as series rows).
    let metrics: BTreeSet<String> = read_metadata(&env.lake).await.into_iter().map(|r| r.0).collect();
    assert_eq!(metrics, ["node_cpu_seconds_total".to_owned()].into());
    // Everything is in the bucket, nothing on local disk.
    let keys = s3.keys(&format!("lake/{WS}")).await;
    for table in ["samples", "series", "metadata"] {
        assert!(keys.iter().any(|k| k.starts_with(&format!("lake/{WS}/{table}/_delta_log/"))), "{table}: {keys:?}");
    }
    assert!(keys.iter().any(|k| k.ends_with(".parquet")));
    assert_eq!(python_samples(&s3, &env.lake), expected, "delta-rs' Python reader agrees");

    // The writer's own exactly-once contract, on S3 (another workspace).
    let writer = DeltaTableWriter::new(env.lake.clone());
    let txn = |version, expected_previous| AppTransaction { app_id: "direct/0".into(), version, expected_previous };
    let rows = || vec![metadata_rows("direct", 3)];
    let outcome = writer.append(WS2, TableKind::Metadata, rows(), &txn(7, None)).await.unwrap();
    assert!(matches!(outcome, AppendOutcome::Committed { .. }), "{outcome:?}");
    let again = DeltaTableWriter::new(env.lake.clone());
    let outcome = again.append(WS2, TableKind::Metadata, rows(), &txn(7, None)).await.unwrap();
    assert!(matches!(outcome, AppendOutcome::AlreadyCommitted { .. }), "{outcome:?}");
    let fenced = again.append(WS2, TableKind::Metadata, rows(), &txn(8, None)).await;
    assert!(matches!(fenced, Err(Error::Fenced { found: Some(7), .. })), "{fenced:?}");
    assert_eq!(again.transaction_version(WS2, TableKind::Metadata, "direct/0").await.unwrap(), Some(7));
    assert_eq!(metadata_names(&env.lake, WS2).await.iter().filter(|n| n.starts_with("direct-")).count(), 3);
}

#[tokio::test]
async fn racing_commits_on_s3_lose_cleanly_through_conditional_puts() {
    let s3 = S3Server::start().await;
    let lake = s3.lake("race");
    let kind = TableKind::Metadata;
    let txn = |app: &str, version, expected_previous| AppTransaction { app_id: app.into(), version, expected_previous };

    // Process A commits offset 0 of partition t/0 (table versions 0 and 1).
    let a = Arc::new(DeltaTableWriter::new(lake.clone()));
    a.append(WS, kind, vec![metadata_rows("a0", 2)], &txn("t/0", 0, None)).await.unwrap();
    // Process B loads the table now (version 1), through a bucket client
    // that lets A commit in the window between delta-rs' look at the
    // latest version and its put of the next one: the race that only the
    // conditional put can settle.
    let bucket = Arc::new(BeforeCommitPut { inner: Arc::new(s3.bucket()), hook: Default::default() });
    let url = lake.table_url(WS, kind);
    let mut b = DeltaTableBuilder::from_url(url.clone())
        .unwrap()
        .with_storage_backend(bucket.clone(), url.clone())
        .build()
        .unwrap();
    b.load().await.unwrap();
    assert_eq!(b.version(), Some(1));
    let commit = |app: &str, version: i64, rows: RecordBatch| {
        let b = &b;
        let app = app.to_owned();
        async move {
            let mut writer = RecordBatchWriter::for_table(b).unwrap();
            writer.write(rows).await.unwrap();
            let adds = writer.flush().await.unwrap();
            let properties = CommitProperties::default().with_application_transaction(Transaction::new(&app, version));
            CommitBuilder::from(properties)
                .with_actions(adds.into_iter().map(Action::Add).collect())
                .build(
                    Some(b.snapshot().unwrap()),
                    b.log_store(),
                    DeltaOperation::Write { mode: SaveMode::Append, partition_by: None, predicate: None },
                )
                .await
                .map(|c| c.version())
        }
    };
    let a_commits = |version: u64| {
        let a = a.clone();
        let rows = vec![metadata_rows(&format!("a{version}"), 2)];
        Box::pin(async move {
            let done = a.append(WS, kind, rows, &txn("t/0", version, Some(version - 1))).await.unwrap();
            assert_eq!(done, AppendOutcome::Committed { table_version: version + 1 });
        }) as futures::future::BoxFuture<'static, ()>
    };

    // B, a second owner of t/0, commits offset 1 as version 2 while A does
    // the same: S3 refuses B's put (412), and delta-rs, looking again,
    // finds the winner's transaction for the same app id a conflict.
    *bucket.hook.lock().await = Some(a_commits(1));
    assert_eq!(s3.refused_commits(), 0);
    let lost = commit("t/0", 1, metadata_rows("b1", 2)).await;
    assert!(
        matches!(lost, Err(DeltaTableError::Transaction { source: TransactionError::CommitConflict(_) })),
        "{lost:?}"
    );
    assert_eq!(s3.refused_commits(), 1, "S3 refused B's put of version 2");
    // B appending for another partition from the same old snapshot while A
    // commits version 3: S3 refuses B's put of version 3, delta-rs rebases
    // (blind appends do not conflict) and commits version 4.
    *bucket.hook.lock().await = Some(a_commits(2));
    assert_eq!(commit("t/1", 0, metadata_rows("b-other", 2)).await.unwrap(), 4);
    assert_eq!(s3.refused_commits(), 2, "S3 refused B's put of version 3");

    // Nothing lost, nothing overwritten, the loser's rows in no commit.
    let log = s3.keys(&format!("race/{WS}/metadata/_delta_log")).await;
    let commits: Vec<&str> =
        log.iter().filter(|k| k.ends_with(".json")).map(|k| k.rsplit('/').next().unwrap()).collect();
    assert_eq!(commits, (0..=4).map(|v| format!("{v:020}.json")).collect::<Vec<_>>());
    let bucket = s3.bucket();
    for (version, app, offset) in [(2, "t/0", 1), (3, "t/0", 2), (4, "t/1", 0)] {
        let path = StorePath::from(format!("race/{WS}/metadata/_delta_log/{version:020}.json"));
        let entry = String::from_utf8(bucket.get(&path).await.unwrap().bytes().await.unwrap().to_vec()).unwrap();
        assert!(entry.contains(&format!(r#""appId":"{app}","version":{offset}"#)), "version {version}: {entry}");
    }
    let names = metadata_names(&lake, WS).await;
    let expected: BTreeSet<String> =
        ["a0-0", "a0-1", "a1-0", "a1-1", "a2-0", "a2-1", "b-other-0", "b-other-1"].map(str::to_owned).into();
    assert_eq!(names, expected);
    let fresh = DeltaTableWriter::new(lake.clone());
    assert_eq!(fresh.transaction_version(WS, kind, "t/0").await.unwrap(), Some(2));
    assert_eq!(fresh.transaction_version(WS, kind, "t/1").await.unwrap(), Some(0));

    // Two processes appending at once, each its own partitions, creating
    // the table in the race too: every commit lands exactly once.
    const WS3: &str = "ws-33333333-1b2a-4c5d-8e9f-0a1b2c3d4e5f";
    const COMMITS: u64 = 8;
    let refused_before = s3.refused_commits();
    let run = |name: &'static str| {
        let writer = DeltaTableWriter::new(lake.clone());
        async move {
            for v in 0..COMMITS {
                let rows = vec![metadata_rows(&format!("{name}{v}"), 3)];
                let outcome = writer.append(WS3, kind, rows, &txn(name, v, v.checked_sub(1))).await.unwrap();
                assert!(matches!(outcome, AppendOutcome::Committed { .. }), "{outcome:?}");
            }
        }
    };
    tokio::join!(run("p"), run("q"));
    let refused = s3.refused_commits() - refused_before;
    println!("concurrent appends: {refused} commit puts refused by S3 and retried by delta-rs");
    let table = open(&lake, WS3, kind).await;
    assert_eq!(table.version(), Some(2 * COMMITS), "one create + every append");
    // One table, created once: the loser of the race for version 0 did not
    // commit its create again as a later version.
    let mut with_metadata = Vec::new();
    for key in s3.keys(&format!("race/{WS3}/metadata/_delta_log")).await.iter().filter(|k| k.ends_with(".json")) {
        let entry = bucket.get(&StorePath::from(key.as_str())).await.unwrap().bytes().await.unwrap();
        if String::from_utf8(entry.to_vec()).unwrap().contains("\"metaData\"") {
            with_metadata.push(key.rsplit('/').next().unwrap().to_owned());
        }
    }
    assert_eq!(with_metadata, [format!("{:020}.json", 0)]);
    let names = metadata_names(&lake, WS3).await;
    assert_eq!(names.len(), 2 * COMMITS as usize * 3);
    for app in ["p", "q"] {
        assert_eq!(fresh.transaction_version(WS3, kind, app).await.unwrap(), Some(COMMITS - 1));
    }
}

#[tokio::test]
async fn retention_compaction_vacuum_checkpoints_and_deletion_on_s3() {
    let s3 = S3Server::start().await;
    let env = Env::with_lake(1, Some(s3.lake("lake"))).await;
    let now = now_ms();
    let clock = ManualClock::new(now);
    let mut limits = Limits::default();
    limits.storage.retention_period_days = 30;
    let overrides = Arc::new(Overrides::new(&limits));
    let config = StreamWorkersConfig {
        maintenance_start_delay_ms: 10 * HOUR,
        maintenance_interval_ms: 10 * HOUR,
        expired_file_grace_ms: 600_000,
        orphan_file_grace_ms: HOUR,
        ..fast_config()
    };
    let writer = Arc::new(DeltaTableWriter::new(env.lake.clone()).with_checkpoint_interval(5));
    let mut registry = Registry::default();
    let workers =
        env.start_with(config, writer.clone(), None, overrides, clock.clone() as Arc<dyn Clock>, &mut registry).await;
    // Ten flushes, each a file in an expired day (-40) and one in day -1.
    let mut kept = BTreeSet::new();
    for i in 0..10 {
        let s =
            series(&[("__name__", "node_load1"), ("i", &i.to_string())], &[(now - 40 * DAY, 1.0), (now - DAY, 2.0)]);
        kept.insert((s.series_id, now - DAY));
        let o = env.append(0, &batch(vec![s], vec![])).await;
        workers.wait_for_offset(WS, 0, o, Duration::from_secs(20)).await.unwrap();
    }
    let day = |age: i64| format!("lake/{WS}/samples/day={}", civil_day(now - age));
    let parquet = |keys: Vec<String>| keys.iter().filter(|k| k.ends_with(".parquet")).count();
    assert_eq!(parquet(s3.keys(&day(40 * DAY)).await), 10);
    assert_eq!(parquet(s3.keys(&day(DAY)).await), 10);
    // A write whose commit never came: an orphan.
    let staged = writer.stage(WS, TableKind::Metadata, vec![metadata_rows("orphan", 1)]).await.unwrap();
    assert_eq!(staged.file_count(), 1);
    let checkpoints = s3
        .keys(&format!("lake/{WS}/samples/_delta_log"))
        .await
        .into_iter()
        .filter(|k| k.contains(".checkpoint."))
        .count();
    assert!(checkpoints >= 1, "a checkpoint every 5 commits");

    let first = workers.run_maintenance().await.unwrap();
    assert_eq!(first.expired_files_removed, 10, "{first:?}");
    assert_eq!((first.compacted.partitions, first.compacted.files_removed, first.compacted.files_added), (1, 10, 1));
    assert_eq!(first.vacuumed, Default::default(), "within every grace: {first:?}");
    assert_eq!(pairs(&sample_map(&env.lake).await), kept, "expired gone from the table, the rest once");
    assert_eq!(parquet(s3.keys(&day(40 * DAY)).await), 10, "still in the bucket during the grace");
    assert_eq!(parquet(s3.keys(&day(DAY)).await), 11, "10 compacted away (kept 7 days) + 1");

    clock.advance(2 * HOUR as i64);
    let second = workers.run_maintenance().await.unwrap();
    assert_eq!((second.vacuumed.expired, second.vacuumed.orphans), (10, 1), "{second:?}");
    assert_eq!(parquet(s3.keys(&day(40 * DAY)).await), 0, "expired data left the bucket");
    clock.advance(8 * DAY);
    let third = workers.run_maintenance().await.unwrap();
    assert_eq!(third.vacuumed.removed, 10, "{third:?}");
    assert_eq!(parquet(s3.keys(&day(DAY)).await), 1, "one compacted file");
    assert_eq!(pairs(&sample_map(&env.lake).await), kept);
    assert_eq!(python_samples(&s3, &env.lake), kept, "delta-rs' Python reader agrees");

    workers.forget_workspace(WS).await.unwrap();
    assert_eq!(s3.keys(&format!("lake/{WS}")).await, Vec::<String>::new(), "the workspace's objects are gone");
    assert!(sample_map(&env.lake).await.is_empty());
    workers.shutdown().await;
}
