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

use crate::engine::{Engine, Flush, LimitError};
use crate::ingest::{self, BodyError};
use crate::notify::{Notifier, deliver};

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
}

/// One workspace's running Alertmanager.
#[derive(Debug)]
pub struct Alertmanager {
    engine: Mutex<Engine>,
    /// What the definition changes: templates, resolve timeout, the
    /// configuration's text.
    settings: Mutex<Settings>,
    started_ms: i64,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    errors: Mutex<VecDeque<DeliveryError>>,
    stop: CancellationToken,
}

#[derive(Debug, Clone)]
struct Settings {
    templates: Arc<NotificationTemplates>,
    resolve_timeout_ms: i64,
    /// The `alertmanager_config` text (the status API's `config.original`).
    original: String,
}

impl Settings {
    fn of(definition: &amconfig::Definition, data: &str) -> Self {
        #[derive(serde::Deserialize)]
        struct Raw {
            #[serde(default)]
            alertmanager_config: String,
        }
        let original = serde_norway::from_str::<Raw>(data).map(|r| r.alertmanager_config).unwrap_or_default();
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
    /// Starts the Alertmanager of a definition (parsed from `data`) on the
    /// current runtime.
    pub fn start(
        definition: &amconfig::Definition,
        data: &str,
        limits: AlertingLimits,
        external_url: &str,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        let am = Arc::new(Self {
            engine: Mutex::new(Engine::new(&definition.config, limits, external_url)),
            settings: Mutex::new(Settings::of(definition, data)),
            started_ms: clock.now_ms(),
            notifier,
            clock,
            wake: Arc::new(Notify::new()),
            errors: Mutex::new(VecDeque::new()),
            stop: CancellationToken::new(),
        });
        tokio::spawn(run(Arc::downgrade(&am), am.wake.clone(), am.stop.clone()));
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

    /// The configuration's text, as uploaded.
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

    /// `POST /api/v2/alerts` with `body`.
    ///
    /// # Errors
    /// [`BodyError`] for a body that is not an array of alerts.
    pub fn post_alerts(&self, body: &[u8]) -> Result<PostOutcome, BodyError> {
        let now = self.now_ms();
        let outcome = ingest::accept(body, now, self.settings().resolve_timeout_ms)?;
        let put = self.engine().put(outcome.accepted, now);
        self.wake.notify_one();
        Ok(match (put, outcome.invalid) {
            (Err(LimitError(m)), _) => PostOutcome::Limited(m),
            (Ok(()), Some(m)) => PostOutcome::Invalid(m),
            (Ok(()), None) => PostOutcome::Stored,
        })
    }

    /// Wakes the task (after a change that may make a flush due or mute
    /// alerts, such as a silence).
    pub fn changed(&self) {
        self.wake.notify_one();
    }

    /// The most recent delivery errors, oldest first.
    pub fn delivery_errors(&self) -> Vec<DeliveryError> {
        self.errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().cloned().collect()
    }

    async fn deliver_flush(&self, flush: Flush) {
        let timeout = Duration::from_millis(u64::try_from(flush.timeout_ms.max(1)).unwrap_or(u64::MAX));
        let deadline = tokio::time::Instant::now() + timeout;
        let templates = self.settings().templates;
        let outcomes = futures::future::join_all(
            flush.sends.iter().map(|s| deliver(self.notifier.as_ref(), s, &templates, deadline)),
        )
        .await;
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
        self.wake.notify_one();
    }
}

async fn run(am: std::sync::Weak<Alertmanager>, wake: Arc<Notify>, stop: CancellationToken) {
    let mut last_collect = None;
    loop {
        let Some(me) = am.upgrade() else { return };
        let now = me.now_ms();
        let (flushes, next) = {
            let mut engine = me.engine();
            let flushes = engine.flush_due(now);
            let collect_at = *last_collect.get_or_insert(now) + COLLECT_INTERVAL_MS;
            if now >= collect_at {
                engine.collect(now);
                last_collect = Some(now);
            }
            let next = engine.next_due_ms().map_or(collect_at, |t| t.min(collect_at));
            (flushes, next)
        };
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
            () = stop.cancelled() => return,
        }
    }
}
