//! One workspace's running Alertmanager: the [`Engine`] behind a lock,
//! a task that flushes its groups when due and delivers their
//! notifications, and the operations the v2 API performs on it.
//!
//! The task sleeps until the earliest group is due (or an alert, a
//! silence or a finished delivery wakes it), flushes what is due, and
//! spawns one delivery per flush: the flush's sends go out concurrently,
//! each with retries until its group's `group_interval` runs out, and the
//! outcome goes back to the engine (a failing integration never holds up
//! the others; its error is kept in the workspace's recent delivery
//! errors). Every 30 minutes resolved alerts, expired silences and
//! notification-log entries are collected.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use common::clock::Clock;
use common::limits::AlertingLimits;
use templates::NotificationTemplates;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::engine::{Change, Engine, Flush, LimitError};
use crate::ingest::{self, BodyError};
use crate::notify::{Notifier, deliver};
use crate::silence::{Silence, SilenceError};
use crate::state::StateStore;

/// How often resolved alerts and expired state are collected
/// (Alertmanager's `--alerts.gc-interval`).
const COLLECT_INTERVAL_MS: i64 = 30 * 60_000;
/// Delivery errors kept per workspace.
const KEPT_ERRORS: usize = 100;

/// A delivery that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    pub at_ms: i64,
    pub receiver: String,
    /// `webhook[0]`.
    pub integration: String,
    pub message: String,
}

/// What a `POST /api/v2/alerts` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostOutcome {
    /// All stored (200).
    Stored,
    /// Some refused by validation (400, the messages); the others stored.
    Invalid(String),
    /// Some refused by a limit (429); the others stored.
    Limited(String),
    /// Not made durable (503): the client should send them again.
    Unavailable(String),
}

/// The configuration's text with its secrets shown as `<secret>`, as
/// Alertmanager's `Config.String()` shows them: passwords, keys and tokens,
/// credentials of `http_config`, Slack's `api_url` and webhooks' `url`.
fn mask_secrets(yaml: &str) -> String {
    use serde_norway::Value as Y;
    const SECRETS: &[&str] = &[
        "password",
        "auth_password",
        "auth_secret",
        "smtp_auth_password",
        "smtp_auth_secret",
        "slack_api_url",
        "slack_app_token",
        "app_token",
        "routing_key",
        "service_key",
        "secret_key",
        "credentials",
        "bearer_token",
        "client_secret",
        "api_key",
        "opsgenie_api_key",
        "victorops_api_key",
        "wechat_api_secret",
        "bot_token",
        "token",
    ];
    fn walk(v: &mut Y, parent: &str) {
        match v {
            Y::Mapping(m) => {
                for (k, x) in m.iter_mut() {
                    let key = k.as_str().unwrap_or_default().to_owned();
                    let secret = SECRETS.contains(&key.as_str())
                        || (parent == "slack_configs" && key == "api_url")
                        || (parent == "webhook_configs" && key == "url");
                    if secret && !x.is_null() {
                        *x = Y::String("<secret>".into());
                    } else {
                        walk(x, &key);
                    }
                }
            }
            Y::Sequence(items) => items.iter_mut().for_each(|x| walk(x, parent)),
            _ => {}
        }
    }
    match serde_norway::from_str::<Y>(yaml) {
        Ok(mut v) => {
            walk(&mut v, "");
            serde_norway::to_string(&v).unwrap_or_default()
        }
        Err(_) => String::new(),
    }
}

/// Why a silence was not set or expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SilenceRefused {
    /// Refused by the silences (404, 400).
    Silence(SilenceError),
    /// Not made durable (503).
    Unavailable(String),
}

/// One workspace's running Alertmanager.
#[derive(Debug)]
pub struct Alertmanager {
    workspace_id: String,
    engine: Mutex<Engine>,
    /// Where its state is kept, and the lock that keeps its changes in
    /// order: a change is saved before the next one is made.
    state: Arc<dyn StateStore>,
    persist: tokio::sync::Mutex<()>,
    /// Forgotten: its state is deleted, nothing more is saved.
    gone: std::sync::atomic::AtomicBool,
    /// What the definition changes: templates, resolve timeout, the
    /// configuration's text.
    settings: Mutex<Settings>,
    started_ms: i64,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    errors: Mutex<VecDeque<DeliveryError>>,
    /// Ends its task and the deliveries in flight.
    stop: CancellationToken,
    /// Ends its task only (no new flushes): a child of `stop`.
    pause: CancellationToken,
    /// Deliveries in flight.
    delivering: std::sync::atomic::AtomicUsize,
}

#[derive(Debug, Clone)]
struct Settings {
    templates: Arc<NotificationTemplates>,
    resolve_timeout_ms: i64,
    /// The `alertmanager_config` text, secrets masked (the status API's
    /// `config.original`).
    original: String,
}

impl Settings {
    fn of(definition: &amconfig::Definition, data: &str) -> Self {
        #[derive(serde::Deserialize)]
        struct Raw {
            #[serde(default)]
            alertmanager_config: String,
        }
        let original =
            mask_secrets(&serde_norway::from_str::<Raw>(data).map(|r| r.alertmanager_config).unwrap_or_default());
        Self {
            templates: Arc::new(definition.templates.clone()),
            resolve_timeout_ms: definition.config.global.resolve_timeout_ms,
            original,
        }
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Alertmanager {
    /// Starts a workspace's Alertmanager running a definition (parsed from
    /// `data`) on the current runtime, from the state `restored` from the
    /// log.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        workspace_id: &str,
        definition: &amconfig::Definition,
        data: &str,
        limits: AlertingLimits,
        external_url: &str,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
        state: Arc<dyn StateStore>,
        restored: Vec<Change>,
    ) -> Arc<Self> {
        let mut engine = Engine::new(&definition.config, limits, external_url);
        engine.restore(restored, clock.now_ms());
        let stop = CancellationToken::new();
        let am = Arc::new(Self {
            workspace_id: workspace_id.to_owned(),
            engine: Mutex::new(engine),
            state,
            persist: tokio::sync::Mutex::new(()),
            gone: std::sync::atomic::AtomicBool::new(false),
            settings: Mutex::new(Settings::of(definition, data)),
            started_ms: clock.now_ms(),
            notifier,
            clock,
            wake: Arc::new(Notify::new()),
            errors: Mutex::new(VecDeque::new()),
            stop: stop.clone(),
            pause: stop.child_token(),
            delivering: std::sync::atomic::AtomicUsize::new(0),
        });
        tokio::spawn(run(Arc::downgrade(&am), am.wake.clone(), am.pause.clone()));
        am
    }

    /// The engine, locked (never held across an await).
    pub fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies a new definition (parsed from `data`), as Alertmanager's
    /// reload.
    pub fn reconfigure(&self, definition: &amconfig::Definition, data: &str, limits: AlertingLimits, now_ms: i64) {
        *self.settings.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Settings::of(definition, data);
        self.engine().reconfigure(&definition.config, limits, now_ms);
        self.wake.notify_one();
    }

    fn settings(&self) -> Settings {
        self.settings.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The configuration's text, secrets masked.
    pub fn original_config(&self) -> String {
        self.settings().original
    }

    /// When it started, Unix milliseconds.
    pub fn started_ms(&self) -> i64 {
        self.started_ms
    }

    /// Stops its task (also on drop).
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Now, by its clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Saves the engine's changes (holding the persist lock); changes
    /// whose save failed are saved with the next ones. Nothing is saved
    /// once the Alertmanager is forgotten.
    async fn save(&self) -> Result<(), String> {
        if self.gone.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("the workspace's Alertmanager stopped in this process (its definition was removed, or \
                        another process took the workspace over); retry"
                .into());
        }
        /// Marks the changes unsaved again unless they were saved: also
        /// when the save is dropped half-way (a client that hung up, a
        /// task stopped), so that the next save writes them.
        struct Pending<'a> {
            am: &'a Alertmanager,
            changes: Vec<Change>,
            saved: bool,
        }
        impl Drop for Pending<'_> {
            fn drop(&mut self) {
                if !self.saved {
                    self.am.engine().unsaved(&self.changes);
                }
            }
        }
        let mut pending = Pending { am: self, changes: self.engine().take_changes(), saved: false };
        self.state.save(&self.workspace_id, pending.changes.clone()).await?;
        pending.saved = true;
        Ok(())
    }

    /// `POST /api/v2/alerts` with `body`: answered once the stored alerts
    /// are durable.
    ///
    /// # Errors
    /// [`BodyError`] for a body that is not an array of alerts.
    pub async fn post_alerts(&self, body: &[u8]) -> Result<PostOutcome, BodyError> {
        let _order = self.persist.lock().await;
        let now = self.now_ms();
        let outcome = ingest::accept(body, now, self.settings().resolve_timeout_ms)?;
        let put = self.engine().put(outcome.accepted, now);
        let saved = self.save().await;
        self.wake.notify_one();
        Ok(match (saved, put, outcome.invalid) {
            (Err(e), _, _) => PostOutcome::Unavailable(e),
            (Ok(()), Err(LimitError(m)), _) => PostOutcome::Limited(m),
            (Ok(()), Ok(()), Some(m)) => PostOutcome::Invalid(m),
            (Ok(()), Ok(()), None) => PostOutcome::Stored,
        })
    }

    /// Creates or updates a silence (answered once durable); its id.
    ///
    /// # Errors
    /// [`SilenceRefused`].
    pub async fn set_silence(&self, silence: Silence) -> Result<String, SilenceRefused> {
        let _order = self.persist.lock().await;
        let now = self.now_ms();
        let id = self
            .engine()
            .set_silence(silence, now, || uuid::Uuid::new_v4().to_string())
            .map_err(SilenceRefused::Silence)?;
        self.save().await.map_err(SilenceRefused::Unavailable)?;
        self.wake.notify_one();
        Ok(id)
    }

    /// Expires a silence (answered once durable).
    ///
    /// # Errors
    /// [`SilenceRefused`].
    pub async fn expire_silence(&self, id: &str) -> Result<(), SilenceRefused> {
        let _order = self.persist.lock().await;
        let now = self.now_ms();
        self.engine().expire_silence(id, now).map_err(SilenceRefused::Silence)?;
        self.save().await.map_err(SilenceRefused::Unavailable)?;
        self.wake.notify_one();
        Ok(())
    }

    /// Stops it and deletes its state from the log (its workspace or
    /// definition is gone).
    pub async fn forget(&self) {
        self.stop();
        let _order = self.persist.lock().await;
        self.gone.store(true, std::sync::atomic::Ordering::SeqCst);
        let gone = self.engine().all_as_deleted();
        if let Err(e) = self.state.save(&self.workspace_id, gone).await {
            tracing::warn!(workspace = %self.workspace_id, error = %e, "Could not delete the alerting state.");
        }
    }

    /// Hands the workspace over to another process: no new flushes, the
    /// deliveries in flight finish (for up to `grace`, then they are
    /// abandoned: the successor sends them again), what changed is saved,
    /// and nothing is saved after this returns (so a successor reading the
    /// state from now on reads all of it). The state is kept.
    pub async fn release(&self, grace: Duration) {
        self.pause.cancel();
        // (The task counts its deliveries under this lock: none starts after.)
        drop(self.engine());
        let deadline = tokio::time::Instant::now() + grace;
        while self.delivering.load(std::sync::atomic::Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.stop();
        let _order = self.persist.lock().await;
        if let Err(e) = self.save().await {
            tracing::warn!(workspace = %self.workspace_id, error = %e, "Could not save the alerting state before handing it over.");
        }
        self.gone.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Saves what changed in the background work (deliveries, collection).
    async fn save_quietly(&self) {
        let _order = self.persist.lock().await;
        if let Err(e) = self.save().await {
            tracing::warn!(workspace = %self.workspace_id, error = %e, "Could not save the alerting state.");
        }
    }

    /// The most recent delivery errors, oldest first.
    pub fn delivery_errors(&self) -> Vec<DeliveryError> {
        self.errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().cloned().collect()
    }

    async fn deliver_flush(&self, flush: Flush) {
        /// Counts the delivery out however it ends.
        struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for InFlight<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let _in_flight = InFlight(&self.delivering);
        let timeout = Duration::from_millis(u64::try_from(flush.timeout_ms.max(1)).unwrap_or(u64::MAX));
        let deadline = tokio::time::Instant::now() + timeout;
        let templates = self.settings().templates;
        let sending = futures::future::join_all(
            flush.sends.iter().map(|s| deliver(self.notifier.as_ref(), s, &templates, deadline)),
        );
        // Stopped (its definition or workspace is gone): deliveries end.
        let outcomes = tokio::select! {
            outcomes = sending => outcomes,
            () = self.stop.cancelled() => return,
        };
        let now = self.now_ms();
        let mut delivered = Vec::with_capacity(outcomes.len());
        for (send, outcome) in flush.sends.iter().zip(outcomes) {
            if let Err(message) = &outcome {
                tracing::warn!(receiver = %send.receiver, error = %message, "notification failed");
                let mut errors = self.errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if errors.len() == KEPT_ERRORS {
                    errors.pop_front();
                }
                errors.push_back(DeliveryError {
                    at_ms: now,
                    receiver: send.receiver.clone(),
                    integration: format!("{}[{}]", send.integration.name, send.integration.index),
                    message: message.clone(),
                });
            }
            delivered.push(outcome.is_ok());
        }
        self.engine().complete(&flush.group, flush.number, &delivered, now);
        self.save_quietly().await;
        self.wake.notify_one();
    }
}

/// The task: flushes groups when due until `pause` (or its parent `stop`).
async fn run(am: std::sync::Weak<Alertmanager>, wake: Arc<Notify>, pause: CancellationToken) {
    let mut last_collect = None;
    loop {
        let Some(me) = am.upgrade() else { return };
        let now = me.now_ms();
        let (flushes, next, collected) = {
            let mut engine = me.engine();
            // Checked under the engine's lock, with the deliveries counted
            // in it: a release that cancelled `pause` and then took the lock
            // sees every delivery started.
            if pause.is_cancelled() {
                return;
            }
            let flushes = engine.flush_due(now);
            me.delivering.fetch_add(flushes.len(), std::sync::atomic::Ordering::SeqCst);
            let mut collect_at = *last_collect.get_or_insert(now) + COLLECT_INTERVAL_MS;
            let collected = now >= collect_at;
            if collected {
                engine.collect(now);
                last_collect = Some(now);
                collect_at = now + COLLECT_INTERVAL_MS;
            }
            let next = engine.next_due_ms().map_or(collect_at, |t| t.min(collect_at));
            (flushes, next, collected)
        };
        if collected {
            // In the background: a slow log never holds up the flushes.
            let me = me.clone();
            tokio::spawn(async move { me.save_quietly().await });
        }
        for f in flushes {
            let me = me.clone();
            tokio::spawn(async move { me.deliver_flush(f).await });
        }
        let wait = Duration::from_millis(u64::try_from((next - me.now_ms()).max(0)).unwrap_or(0));
        drop(me);
        let woken = wake.notified();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = woken => {}
            () = pause.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;

    use super::*;
    use crate::state::{InboxBatch, Loaded};

    /// Saves that hang until released, recording what was saved.
    #[derive(Debug)]
    struct SlowState {
        release: tokio::sync::Semaphore,
        saved: Mutex<Vec<Change>>,
    }

    #[async_trait]
    impl StateStore for SlowState {
        fn partitions(&self) -> u32 {
            1
        }
        async fn save(&self, _: &str, changes: Vec<Change>) -> Result<(), String> {
            let _permit = self.release.acquire().await.map_err(|e| e.to_string())?;
            self.saved.lock().unwrap().extend(changes);
            Ok(())
        }
        async fn load(&self, _: u32) -> Result<Loaded, String> {
            Ok(Loaded::default())
        }
        async fn post_inbox(&self, _: &str, _: Vec<u8>) -> Result<(), String> {
            Ok(())
        }
        async fn tail_inbox(&self, _: u32, from: u64, _: Duration) -> Result<(Vec<InboxBatch>, u64), String> {
            Ok((Vec::new(), from))
        }
        async fn delete_inbox(&self, _: &InboxBatch) -> Result<(), String> {
            Ok(())
        }
    }

    /// A post whose save is abandoned (the client hung up) leaves its
    /// alert to the next save: stored alerts are never left unsaved.
    #[tokio::test]
    async fn an_abandoned_save_is_saved_with_the_next_changes() {
        let data = "alertmanager_config: |\n  route: {receiver: r}\n  receivers: [{name: r}]\n";
        let definition = amconfig::parse_definition(data).unwrap();
        let state = Arc::new(SlowState { release: tokio::sync::Semaphore::new(0), saved: Mutex::new(Vec::new()) });
        let am = Alertmanager::start(
            "ws-1",
            &definition,
            data,
            AlertingLimits::default(),
            "http://am",
            Arc::new(crate::notify::HttpNotifier::new()),
            Arc::new(common::clock::SystemClock),
            state.clone(),
            Vec::new(),
        );
        let first = am.post_alerts(br#"[{"labels": {"alertname": "A"}}]"#);
        assert!(tokio::time::timeout(Duration::from_millis(50), first).await.is_err(), "the save hangs");
        state.release.add_permits(10);
        let second = am.post_alerts(br#"[{"labels": {"alertname": "B"}}]"#).await.unwrap();
        assert_eq!(second, PostOutcome::Stored);
        let saved: Vec<String> = state
            .saved
            .lock()
            .unwrap()
            .iter()
            .filter_map(|c| match c {
                Change::Alert(_, Some(a)) => a.alert.labels.get("alertname").cloned(),
                _ => None,
            })
            .collect();
        assert_eq!(saved.len(), 2, "{saved:?}");
        assert!(saved.contains(&"A".to_owned()) && saved.contains(&"B".to_owned()), "{saved:?}");
    }

    #[test]
    fn the_status_config_hides_secrets() {
        let text = "global: {smtp_auth_password: pw}\nreceivers:\n  - name: a\n    webhook_configs: [{url: 'http://x/hook?token=1'}]\n    slack_configs: [{api_url: 'https://hooks.slack.com/T/1', channel: '#c'}]\n    sns_configs: [{api_url: 'http://sns', sigv4: {access_key: AK, secret_key: SK}}]\n    pagerduty_configs: [{routing_key: rk}]\n";
        let masked = super::mask_secrets(text);
        for secret in ["pw", "token=1", "hooks.slack.com", "SK", "rk"] {
            assert!(!masked.contains(secret), "{secret} shown in {masked}");
        }
        for kept in ["http://sns", "AK", "#c"] {
            assert!(masked.contains(kept), "{kept} hidden in {masked}");
        }
    }
}
