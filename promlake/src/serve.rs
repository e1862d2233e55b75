//! `promlake serve`: builds every component from the config and wires them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use common::arn::ArnScheme;
use common::clock::{Clock, SystemClock};
use common::limits::Overrides;
use common::log::Log;
use common::membership::Membership;
use control_plane::{LogControlStore, WorkspaceConfig, WorkspaceService};
use ingest_gateway::Gateway;
use log_embedded::{EmbeddedLog, EmbeddedLogConfig};
use log_kafka::{KafkaLog, KafkaLogConfig, KafkaMembership};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use stream_workers::{AllPartitions, DeltaTableWriter, LakeLocation, StreamWorkers};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::{AuthMode, Role, ServeArgs};
use crate::config::{Config, LogBackend};

/// Runs `promlake serve` until SIGTERM or SIGINT, then shuts down cleanly.
///
/// # Errors
/// When start-up fails (bad config, unusable data directory, log errors,
/// address in use) or shutdown cannot close the log.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let server = Server::start(args).await?;
    // Scripts and tests read this line to find the address (port 0).
    println!("promlake listening on http://{}", server.addr);
    wait_for_signal().await;
    tracing::info!("Shutting down: draining requests, closing the log.");
    server.shutdown().await
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// A running PromLake process: every task it started, owned here.
#[derive(Debug)]
pub struct Server {
    /// The address HTTP is served on.
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    http: JoinHandle<std::io::Result<()>>,
    background: Vec<JoinHandle<()>>,
    log: Arc<dyn Log>,
    workers: Option<Arc<StreamWorkers>>,
    /// How this process shares the workspaces' Alertmanagers with the other
    /// alerting processes (left first at shutdown: a graceful handover).
    alerting: Option<Arc<dyn Membership>>,
    /// Held while the process runs: one process per data directory.
    _data_dir_lock: std::fs::File,
}

impl Server {
    /// Builds and starts every component of `args.role`.
    ///
    /// # Errors
    /// See [`run`].
    pub async fn start(args: ServeArgs) -> anyhow::Result<Self> {
        let config = match &args.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if args.auth == AuthMode::None {
            tracing::warn!(
                "AUTHENTICATION IS OFF (--auth none): anyone who can reach {} can write, read and manage every workspace.",
                args.listen
            );
        }
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("creating the data directory {}", args.data_dir.display()))?;
        let data_dir_lock = lock_data_dir(&args.data_dir)?;

        let mut registry = Registry::default();
        let shutdown = CancellationToken::new();
        let mut background = Vec::new();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let mut embedded = None;

        // Kafka: the worker processes split the partitions in a consumer group.
        let mut kafka_config = None;
        let log: Arc<dyn Log> = match config.log_backend()? {
            LogBackend::Embedded => {
                if args.role != Role::All {
                    bail!(
                        "--role {:?} needs a log shared between processes: set log = \"kafka://…\" in the config file",
                        args.role
                    );
                }
                let dir = args.data_dir.join("log");
                let log_config =
                    EmbeddedLogConfig { segment_bytes: config.embedded_log.segment_bytes, ..Default::default() };
                // Opening scans and recovers segments: blocking work.
                let opened = tokio::task::spawn_blocking({
                    let dir = dir.clone();
                    move || EmbeddedLog::open(&dir, log_config)
                })
                .await
                .context("opening the embedded log")?;
                let log = opened.with_context(|| format!("opening the embedded log in {}", dir.display()))?;
                let fsyncs = Counter::<u64>::default();
                registry.register(
                    "promlake_log_fsyncs",
                    "fsync calls of the embedded log (each covers a group of appends)",
                    fsyncs.clone(),
                );
                embedded = Some((log.clone(), fsyncs));
                background.push(tokio::spawn(maintain(
                    log.clone(),
                    clock.clone(),
                    Duration::from_secs(config.embedded_log.maintenance_interval_seconds.max(1)),
                    shutdown.clone(),
                )));
                log
            }
            LogBackend::Kafka(servers) => {
                let kafka = KafkaLogConfig {
                    bootstrap_servers: servers,
                    replication_factor: config.kafka.replication_factor,
                    session_timeout: Duration::from_millis(config.kafka.session_timeout_ms),
                    librdkafka: config.kafka.librdkafka.clone(),
                    ..Default::default()
                };
                kafka_config = Some(kafka.clone());
                KafkaLog::connect(kafka).await.context("connecting to Kafka")?
            }
        };

        let arns = ArnScheme { region: config.region.clone(), account_id: config.account_id.clone() };
        let store =
            Arc::new(LogControlStore::open(log.clone(), clock.clone()).await.context("loading control-plane state")?);
        let overrides = Arc::new(Overrides::new(&config.limits));
        let keys = match args.auth {
            AuthMode::None => None,
            AuthMode::Sigv4 => {
                let path = config.auth.master_key_file.clone().unwrap_or_else(|| args.data_dir.join("master.key"));
                let master = auth::MasterKey::load_or_create(&path).context("the master key of secret access keys")?;
                let keys = auth::KeyStore::new(store.clone(), master, clock.clone(), &config.account_id);
                keys.check_master_key().with_context(|| {
                    format!(
                        "the master key {} does not open the stored access keys: every process of a deployment \
                         must use the same master key file ([auth] master_key_file)",
                        path.display()
                    )
                })?;
                Some(Arc::new(keys))
            }
        };

        let mut workers = None;
        if args.role.runs_workers() {
            let lake = match &config.lake {
                Some(location) => LakeLocation::parse(location),
                None => LakeLocation::from_path(&args.data_dir.join("lake")),
            }
            .and_then(|lake| lake.with_s3(&config.lake_s3))
            .context("the lake location")?;
            let writer = Arc::new(
                DeltaTableWriter::new(lake).with_checkpoint_interval(config.stream_workers.checkpoint_interval),
            );
            let membership: Arc<dyn Membership> = match &kafka_config {
                Some(kafka) => Arc::new(
                    KafkaMembership::new(kafka, stream_workers::MEMBERSHIP_GROUP)
                        .context("creating the stream workers' consumer-group member")?,
                ),
                None => Arc::new(AllPartitions::new(log.clone())),
            };
            let started = Arc::new(
                stream_workers::start(
                    config.stream_workers.clone(),
                    log.clone(),
                    writer,
                    overrides.clone(),
                    clock.clone(),
                    membership,
                    &mut registry,
                )
                .await
                .context("starting the stream workers")?,
            );
            background.push(tokio::spawn(watch_workspaces(
                started.clone(),
                store.clone(),
                arns.clone(),
                !args.role.runs_gateway(),
                shutdown.clone(),
            )));
            workers = Some(started);
        }

        // The workspaces' Alertmanagers (their definitions from the control
        // plane); the ruler of this process sends them its alerts.
        let mut alertmanagers = None;
        let mut alerting_membership = None;
        if args.role.runs_alerting() {
            let state = alerting::state::LogState::open(log.clone(), clock.clone())
                .await
                .map_err(anyhow::Error::msg)
                .context("opening the alerting state topic")?;
            let ams = alerting::registry::Alertmanagers::new(
                store.clone(),
                arns.clone(),
                overrides.clone(),
                clock.clone(),
                Arc::new(alerting::notify::HttpNotifier::new()),
                Arc::new(state),
                &format!("http://{}", args.listen),
            );
            // One owner per workspace: this process runs the workspaces of
            // the `_alerting` partitions it owns (all of them on the
            // embedded log; its share of a consumer group on Kafka).
            let membership: Arc<dyn Membership> = match &kafka_config {
                Some(kafka) => Arc::new(
                    KafkaMembership::new(kafka, alerting::registry::MEMBERSHIP_GROUP)
                        .context("creating the alerting consumer-group member")?,
                ),
                None => Arc::new(AllPartitions::new(log.clone())),
            };
            membership.join(ams.clone()).await.context("joining the alerting membership")?;
            membership
                .watch_topic(schemas::topics::ALERTING_TOPIC)
                .await
                .context("watching the alerting state topic")?;
            if kafka_config.is_some() {
                // The group assigns partitions a moment after joining: wait
                // for them (bounded: with more processes than partitions,
                // none may come) rather than answer as if others ran them.
                ams.wait_for_assignment(ALERTING_ASSIGNMENT_PATIENCE).await;
            } else {
                ams.sync().await.map_err(anyhow::Error::msg).context("restoring the Alertmanagers' state")?;
            }
            background.push(tokio::spawn(ams.clone().run(shutdown.clone())));
            alertmanagers = Some(ams);
            alerting_membership = Some(membership);
        }

        let mut rule_states = None;
        // The ruler runs where the stream workers run: every group in the
        // one-process deployment; in a scaled-out one each worker process
        // evaluates the groups that fall on the partitions it owns.
        if let Some(workers) = &workers {
            // On Kafka, processes share the partitions (even several `--role
            // all` ones): a group is evaluated by its partition's owner. On
            // the embedded log this one process is the only one: all groups,
            // whether or not a partition's worker is running at the moment.
            let owner: Arc<dyn ruler::GroupOwner> = if kafka_config.is_some() {
                Arc::new(WorkerGroups(workers.clone()))
            } else {
                Arc::new(ruler::AllGroups)
            };
            let reader: Arc<dyn common::seams::SampleReader> = workers.clone();
            // Subqueries without a step use the evaluation interval, as
            // Prometheus's rules do.
            let engine = query_service::seam::RuleEngine::new(
                query_service::engine::Engine::new(reader.clone()),
                overrides.clone(),
            )
            .with_subquery_step(
                i64::try_from(config.ruler.evaluation_interval_seconds.max(1).saturating_mul(1000)).unwrap_or(60_000),
            );
            let seams = ruler::RulerSeams {
                store: store.clone(),
                arns: arns.clone(),
                engine: Arc::new(engine),
                appender: Arc::new(ingest_gateway::LogSampleAppender::new(
                    log.clone(),
                    store.clone(),
                    arns.clone(),
                    clock.clone(),
                )),
                reader,
                overrides: overrides.clone(),
                clock: clock.clone(),
                owner,
                events: control_plane::LogEvents::start(
                    log.clone(),
                    Duration::from_secs(config.workspaces.log_retention_hours * 3600),
                    &mut registry,
                )
                .await
                .context("creating the events topic")?,
                alerts: {
                    let client = ruler::AlertmanagerClient::new(
                        config.ruler.alertmanager_url.clone(),
                        config.ruler.alertmanager_urls.clone(),
                    )
                    .context("the Alertmanager client")?;
                    Arc::new(match &alertmanagers {
                        Some(ams) => client.with_local(ams.clone()),
                        // Scaled out, through the log to the alerting
                        // processes.
                        None if kafka_config.is_some() => {
                            let state = alerting::state::LogState::open(log.clone(), clock.clone())
                                .await
                                .map_err(anyhow::Error::msg)
                                .context("opening the alerting state topic")?;
                            client.with_local(Arc::new(alerting::registry::InboxSink::new(
                                store.clone(),
                                arns.clone(),
                                Arc::new(state),
                            )))
                        }
                        None => client,
                    })
                },
            };
            let ruler_config = ruler::RulerConfig {
                default_interval: Duration::from_secs(config.ruler.evaluation_interval_seconds.max(1)),
                resend_delay: Duration::from_secs(config.ruler.resend_delay_seconds),
                for_grace_period: Duration::from_secs(config.ruler.for_grace_period_seconds),
                outage_tolerance: Duration::from_secs(config.ruler.for_outage_tolerance_seconds),
                external_labels: config.ruler.external_labels.clone(),
                external_url: config.ruler.external_url.clone(),
                ..ruler::RulerConfig::default()
            };
            let ruler = ruler::Ruler::new(seams, ruler_config, &mut registry);
            background.push(tokio::spawn(ruler.clone().run(shutdown.clone())));
            rule_states = Some(ruler as Arc<dyn common::seams::RuleStates>);
        }

        let mut router = Router::new();
        if let Some(ams) = &alertmanagers {
            router = router.merge(alerting::api::router(ams.clone()));
        }
        if let Some(workers) = &workers {
            // The query API reads through this process's workers (tables and
            // the heads of the partitions it owns).
            let mut api = query_service::api::QueryApi::new(
                workers.clone(),
                store.clone(),
                arns.clone(),
                overrides.clone(),
                clock.clone(),
            );
            if let Some(rules) = rule_states.clone() {
                api = api.with_rules(rules);
            }
            let api = Arc::new(api);
            router = router.merge(query_service::api::router(api));
        }
        if args.role.runs_gateway() {
            // Where this process runs the stream workers, deleting a
            // workspace deletes its tables here; elsewhere the worker
            // processes do (see `watch_workspaces`).
            let data = workers.clone().map(|w| w as Arc<dyn common::seams::WorkspaceData>);
            let workspaces = Arc::new(WorkspaceService::new(
                store.clone(),
                log.clone(),
                clock.clone(),
                WorkspaceConfig {
                    partitions: config.workspaces.partitions,
                    log_retention: Duration::from_secs(config.workspaces.log_retention_hours * 3600),
                    arns: arns.clone(),
                },
                overrides.clone(),
                data,
            ));
            workspaces.reconcile().await.context("finishing interrupted workspace creations and deletions")?;
            background.push(tokio::spawn(reconcile_workspaces(workspaces.clone(), shutdown.clone())));
            let gateway = Arc::new(Gateway::new(
                log.clone(),
                store.clone(),
                overrides.clone(),
                arns.clone(),
                clock.clone(),
                &mut registry,
            ));
            router = router.merge(control_plane::router(workspaces)).merge(ingest_gateway::router(gateway));
        }
        // Every process applies the workspaces' API configuration to its
        // limits, whichever process changed it.
        control_plane::sync_overrides(store.as_ref(), &arns, &overrides);
        background.push(tokio::spawn(sync_overrides(store.clone(), arns.clone(), overrides.clone(), shutdown.clone())));
        let metrics_state = Arc::new(MetricsState { registry, embedded });
        router = router
            .route("/metrics", get(metrics).with_state(metrics_state))
            .route("/-/healthy", get(|| async { "PromLake is Healthy.\n" }))
            .route("/-/ready", get(|| async { "PromLake is Ready.\n" }));
        // Every request is authenticated before it is routed.
        if let Some(keys) = &keys {
            if args.role.runs_gateway() {
                router = router.merge(auth::admin::router(keys.clone()));
            }
            let authenticator =
                Arc::new(auth::Authenticator::new(keys.clone(), arns.clone(), clock.clone(), overrides.clone()));
            router = router.layer(axum::middleware::from_fn_with_state(authenticator, auth::authenticate));
        }

        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        if let Some(ams) = &alertmanagers {
            ams.advertise(&args.advertise_url.clone().unwrap_or_else(|| default_advertise_url(addr)));
        }
        if let Some(keys) = &keys
            && args.role.runs_gateway()
        {
            write_client_files(keys, &args.data_dir, &config.region, addr).await?;
        }
        let token = shutdown.clone();
        let http = tokio::spawn(async move {
            axum::serve(listener, router).with_graceful_shutdown(async move { token.cancelled().await }).await
        });
        tracing::info!(%addr, data_dir = %args.data_dir.display(), log = %config.log, role = ?args.role, "PromLake is serving.");
        Ok(Self {
            addr,
            shutdown,
            http,
            background,
            log,
            workers,
            alerting: alerting_membership,
            _data_dir_lock: data_dir_lock,
        })
    }

    /// Stops accepting connections, lets requests in flight finish, stops
    /// background tasks and closes the log.
    ///
    /// # Errors
    /// When the HTTP server failed or the log cannot be closed cleanly.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        if let Some(alerting) = &self.alerting {
            // Hands this process's workspaces over (deliveries finish, state
            // saved) before anything stops.
            alerting.leave().await;
        }
        self.shutdown.cancel();
        let served = self.http.await.context("HTTP server task")?;
        for task in self.background {
            let _ = task.await;
        }
        if let Some(workers) = self.workers {
            // Others may still hold the workers (the query API or the control
            // plane in a connection task not yet dropped): shutdown works
            // through the shared reference, so the buffers are drained anyway.
            workers.shutdown().await;
        }
        self.log.close().await.context("closing the log")?;
        served.context("HTTP server")?;
        tracing::info!("PromLake stopped cleanly.");
        Ok(())
    }
}

/// The principal created on first start, with full access.
const ADMIN_PRINCIPAL: &str = "admin";

/// On first start (no access key at all), creates the `admin` principal
/// and a key pair, written to `<data-dir>/credentials` (AWS's
/// shared-credentials format, profile `default`, mode 0600). Every start
/// writes `<data-dir>/config` (profile `default`: region and this server's
/// `endpoint_url`), so `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE`
/// pointed there make `aws amp …` work with no other flag.
async fn write_client_files(
    keys: &auth::KeyStore,
    data_dir: &std::path::Path,
    region: &str,
    addr: SocketAddr,
) -> anyhow::Result<()> {
    if !keys.has_keys() {
        keys.create_principal(ADMIN_PRINCIPAL, vec!["AdministratorAccess".into()]).await?;
        let (id, secret) = keys.create_key(ADMIN_PRINCIPAL).await?;
        let path = data_dir.join("credentials");
        auth::keys::write_private(
            &path,
            &format!("[default]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"),
        )
        .with_context(|| format!("writing {}", path.display()))?;
        tracing::warn!(access_key_id = %id, file = %path.display(), "Created the admin access key (first start).");
    }
    let host = if addr.ip().is_unspecified() { std::net::IpAddr::from([127, 0, 0, 1]) } else { addr.ip() };
    let endpoint = SocketAddr::new(host, addr.port());
    let path = data_dir.join("config");
    auth::keys::write_private(&path, &format!("[default]\nregion = {region}\nendpoint_url = http://{endpoint}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Takes an exclusive lock on `<data-dir>/.lock`, so a second process on the
/// same directory fails at start instead of corrupting the log. The kernel
/// releases it when the process dies, however it dies.
fn lock_data_dir(dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let path = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            bail!("the data directory {} is in use by another promlake process", dir.display())
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

/// How long an alerting process on Kafka waits for its first partitions
/// before it serves.
const ALERTING_ASSIGNMENT_PATIENCE: Duration = Duration::from_secs(15);

/// How often the stream workers look for new workspaces in the control plane.
const WORKSPACE_WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// Has the stream workers watch every active workspace: those present at
/// start and each one created later (by this process or, scaled out, by a
/// gateway process). Their membership decides which partitions get a worker
/// in this process (all of them, or its share of the consumer group).
/// With `drop_deleted` (a process without the control plane), the workers
/// also stop and delete the tables of a watched workspace once it is being
/// deleted or gone.
async fn watch_workspaces(
    workers: Arc<StreamWorkers>,
    store: Arc<LogControlStore>,
    arns: ArnScheme,
    drop_deleted: bool,
    stop: CancellationToken,
) {
    let mut watched = std::collections::HashSet::<String>::new();
    let mut tick = tokio::time::interval(WORKSPACE_WATCH_INTERVAL);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let all = control_plane::all_workspaces(store.as_ref(), &arns);
        if drop_deleted {
            let live: std::collections::HashSet<&str> =
                all.iter().filter(|w| w.is_active()).map(|w| w.workspace_id.as_str()).collect();
            let gone: Vec<String> = watched.iter().filter(|id| !live.contains(id.as_str())).cloned().collect();
            for id in gone {
                match workers.forget_workspace(&id).await {
                    Ok(()) => {
                        watched.remove(&id);
                    }
                    Err(error) => {
                        tracing::warn!(workspace = %id, %error, "Cannot delete a deleted workspace's tables yet; will retry.")
                    }
                }
            }
        }
        for ws in all {
            if !ws.is_active() || watched.contains(&ws.workspace_id) {
                continue;
            }
            match workers.watch_workspace(&ws.workspace_id, &ws.samples_topic).await {
                Ok(partitions) => {
                    tracing::info!(workspace = %ws.workspace_id, partitions, "Stream workers started for a workspace.");
                    watched.insert(ws.workspace_id);
                }
                Err(error) => {
                    tracing::warn!(workspace = %ws.workspace_id, %error, "Cannot start stream workers yet; will retry.")
                }
            }
        }
    }
}

/// `http://<addr>`, with this host's name for an unspecified (every
/// interface) address.
fn default_advertise_url(addr: SocketAddr) -> String {
    if !addr.ip().is_unspecified() {
        return format!("http://{addr}");
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("http://{host}:{}", addr.port())
}

/// Finishes interrupted workspace creations and deletions, periodically.
async fn reconcile_workspaces(workspaces: Arc<WorkspaceService>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(control_plane::RECONCILE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(error) = workspaces.reconcile().await {
            tracing::warn!(%error, "Reconciling workspaces failed; will retry.");
        }
    }
}

/// Keeps this process's limits in step with the workspaces' API
/// configuration (changes made through any process).
async fn sync_overrides(
    store: Arc<LogControlStore>,
    arns: ArnScheme,
    overrides: Arc<Overrides>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(WORKSPACE_WATCH_INTERVAL);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        control_plane::sync_overrides(store.as_ref(), &arns, &overrides);
    }
}

/// The embedded log's periodic retention and compaction.
async fn maintain(log: Arc<EmbeddedLog>, clock: Arc<dyn Clock>, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(error) = log.run_maintenance(clock.now_ms()).await {
            tracing::warn!(%error, "Log maintenance failed; will retry.");
        }
    }
}

/// What `/metrics` reads.
#[derive(Debug)]
struct MetricsState {
    registry: Registry,
    /// The embedded log and its fsync counter, refreshed at each scrape.
    embedded: Option<(Arc<EmbeddedLog>, Counter<u64>)>,
}

async fn metrics(State(state): State<Arc<MetricsState>>) -> impl IntoResponse {
    if let Some((log, fsyncs)) = &state.embedded {
        fsyncs.inner().store(log.fsync_count(), Ordering::Relaxed);
    }
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The ruler's groups of a worker process: those on the partitions its
/// stream workers own.
#[derive(Debug)]
struct WorkerGroups(Arc<StreamWorkers>);

impl ruler::GroupOwner for WorkerGroups {
    fn owns(&self, workspace_id: &str, hash: u64) -> bool {
        self.0.owns_share(workspace_id, hash)
    }
}
