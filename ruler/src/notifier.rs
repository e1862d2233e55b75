//! Delivery of the ruler's alerts, as Prometheus's notifier: alerts are
//! queued per workspace (capacity [`QUEUE_CAPACITY`] each, the oldest
//! dropped when full) and sent by the workspace's own sender in batches of
//! at most [`MAX_BATCH`] through the [`AlertSink`] seam, in order. A failed send is counted and logged, not
//! retried: the rules re-send firing alerts every resend delay and keep a
//! resolved one for 15 minutes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::ErrorKind;
use common::clock::Clock;
use common::events::{EventSink, WorkspaceEvent};
use common::seams::{AlertSink, SeamError};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::alerting::Alert;

/// Alerts queued at most (Prometheus's `--alertmanager.notification-queue-capacity`).
pub const QUEUE_CAPACITY: usize = 10_000;
/// Alerts per request (Prometheus's `maxBatchSize`).
pub const MAX_BATCH: usize = 256;
/// How long one request may take (Prometheus's default Alertmanager timeout).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkspaceLabel {
    workspace: String,
}

/// One workspace's alerts waiting to be sent.
#[derive(Debug, Default)]
struct WorkspaceQueue {
    alerts: Mutex<VecDeque<serde_json::Value>>,
    more: Notify,
}

/// The queues of alerts waiting to be sent, one per workspace, each with
/// its own sender task: a slow or unreachable Alertmanager of one
/// workspace never delays another's alerts.
#[derive(Debug)]
pub struct Notifier {
    sink: Arc<dyn AlertSink>,
    events: Arc<dyn EventSink>,
    clock: Arc<dyn Clock>,
    queues: Mutex<HashMap<String, Arc<WorkspaceQueue>>>,
    senders: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Cancelled at shutdown: the senders send what is queued, then end.
    stop: CancellationToken,
    sent: Family<WorkspaceLabel, Counter>,
    errors: Family<WorkspaceLabel, Counter>,
    dropped: Counter,
    queue_length: Gauge,
}

impl Notifier {
    /// A notifier sending through `sink` (failures recorded in `events`);
    /// its metrics are registered in `registry`. Senders start with the
    /// first alerts of each workspace; [`Notifier::run`] stops them at
    /// shutdown.
    pub fn new(
        sink: Arc<dyn AlertSink>,
        events: Arc<dyn EventSink>,
        clock: Arc<dyn Clock>,
        registry: &mut Registry,
    ) -> Arc<Self> {
        let n = Self {
            sink,
            events,
            clock,
            queues: Mutex::default(),
            senders: Mutex::default(),
            stop: CancellationToken::new(),
            sent: Family::default(),
            errors: Family::default(),
            dropped: Counter::default(),
            queue_length: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("promlake_notifications");
        r.register(
            "sent",
            "Alerts handed to the workspace's Alertmanager (none configured: discarded).",
            n.sent.clone(),
        );
        r.register("errors", "Alerts whose sending failed.", n.errors.clone());
        r.register("dropped", "Alerts dropped because a workspace's queue was full.", n.dropped.clone());
        r.register("queue_length", "Alerts waiting to be sent.", n.queue_length.clone());
        Arc::new(n)
    }

    /// Queues alerts of a workspace (Alertmanager v2 `postableAlert`s); the
    /// oldest are dropped beyond [`QUEUE_CAPACITY`] for the workspace.
    pub(crate) fn enqueue(self: &Arc<Self>, workspace_id: &str, alerts: Vec<serde_json::Value>) {
        if alerts.is_empty() {
            return;
        }
        let queue = {
            let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(q) = queues.get(workspace_id) {
                q.clone()
            } else {
                let q = Arc::new(WorkspaceQueue::default());
                queues.insert(workspace_id.to_owned(), q.clone());
                let sender = tokio::spawn(self.clone().send_loop(workspace_id.to_owned(), q.clone()));
                self.senders.lock().unwrap_or_else(|p| p.into_inner()).push(sender);
                q
            }
        };
        let added = alerts.len() as i64;
        let mut pending = queue.alerts.lock().unwrap_or_else(|p| p.into_inner());
        pending.extend(alerts);
        let over = pending.len().saturating_sub(QUEUE_CAPACITY);
        if over > 0 {
            pending.drain(..over);
            self.dropped.inc_by(over as u64);
            tracing::warn!(workspace = %workspace_id, dropped = over, "The alert notification queue is full; dropping the oldest alerts.");
        }
        drop(pending);
        self.queue_length.inc_by(added - over as i64);
        queue.more.notify_one();
    }

    /// Waits for `shutdown`, then lets every sender send what is queued
    /// (Prometheus drains its queue on shutdown) and waits for them.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        shutdown.cancelled().await;
        self.stop.cancel();
        let senders: Vec<_> = self.senders.lock().unwrap_or_else(|p| p.into_inner()).drain(..).collect();
        for s in senders {
            let _ = s.await;
        }
    }

    /// One workspace's sender: batches of at most [`MAX_BATCH`], in order.
    async fn send_loop(self: Arc<Self>, workspace_id: String, queue: Arc<WorkspaceQueue>) {
        loop {
            loop {
                let batch: Vec<serde_json::Value> = {
                    let mut pending = queue.alerts.lock().unwrap_or_else(|p| p.into_inner());
                    let n = pending.len().min(MAX_BATCH);
                    pending.drain(..n).collect()
                };
                if batch.is_empty() {
                    break;
                }
                self.queue_length.dec_by(batch.len() as i64);
                self.send(&workspace_id, batch).await;
            }
            if self.stop.is_cancelled() {
                return;
            }
            tokio::select! {
                () = self.stop.cancelled() => {}
                () = queue.more.notified() => {}
            }
        }
    }

    async fn send(&self, ws: &str, batch: Vec<serde_json::Value>) {
        let n = batch.len() as u64;
        let label = WorkspaceLabel { workspace: ws.to_owned() };
        let error = match tokio::time::timeout(SEND_TIMEOUT, self.sink.send(ws, serde_json::Value::Array(batch))).await
        {
            Ok(Ok(())) => {
                self.sent.get_or_create(&label).inc_by(n);
                return;
            }
            Ok(Err(e)) => e.message,
            Err(_) => format!("timed out after {SEND_TIMEOUT:?}"),
        };
        self.errors.get_or_create(&label).inc_by(n);
        tracing::warn!(workspace = %ws, alerts = n, error = %error, "Sending alerts to the Alertmanager failed.");
        let count = n.to_string();
        self.events.record(WorkspaceEvent::new(
            ws,
            "ruler",
            self.clock.now_ms(),
            "ERROR",
            "Error sending alerts",
            &[("count", &count), ("err", &error)],
        ));
    }
}

/// An alert as Prometheus's notifier posts it (`SendAlerts`): `startsAt`
/// the time it fired, `endsAt` its resolution or else its validity, the
/// external labels added where the alert lacks them, and `generatorURL`
/// the expression's table link under the external URL.
pub(crate) fn postable(
    alert: &Alert,
    external_labels: &BTreeMap<String, String>,
    generator_url: &str,
) -> serde_json::Value {
    let mut labels: BTreeMap<&str, &str> = alert.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for (k, v) in external_labels {
        labels.entry(k).or_insert(v);
    }
    let annotations: BTreeMap<&str, &str> = alert.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let ends_at = alert.resolved_at_ms.or(alert.valid_until_ms);
    let mut out = serde_json::json!({
        "labels": labels,
        "annotations": annotations,
        "generatorURL": generator_url,
    });
    if let Some(t) = alert.fired_at_ms {
        out["startsAt"] = common::clock::rfc3339_millis(t).into();
    }
    if let Some(t) = ends_at {
        out["endsAt"] = common::clock::rfc3339_millis(t).into();
    }
    out
}

/// Prometheus's `TableLinkForExpression`: `/graph?g0.expr=…&g0.tab=1`.
pub(crate) fn table_link(expr: &str) -> String {
    // Go's url.QueryEscape: all but letters, digits and `-_.~` escaped, a
    // space as `+`.
    const QUERY_ESCAPE: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    let escaped = percent_encoding::utf8_percent_encode(expr, QUERY_ESCAPE).to_string().replace("%20", "+");
    format!("/graph?g0.expr={escaped}&g0.tab=1")
}

/// Posts alerts to Alertmanager v2 URLs (`<url>/api/v2/alerts`): one URL
/// for every workspace, and per-workspace ones that take precedence. A
/// workspace with no URL has its alerts discarded, as a Prometheus without
/// Alertmanagers.
#[derive(Debug, Clone)]
pub struct AlertmanagerClient {
    client: reqwest::Client,
    default_url: Option<String>,
    per_workspace: HashMap<String, String>,
    /// The in-process Alertmanagers, for workspaces no URL is given for.
    local: Option<Arc<dyn AlertSink>>,
}

impl AlertmanagerClient {
    /// A client for these URLs (an Alertmanager's base URL, or its full
    /// `/api/v2/alerts` URL).
    ///
    /// # Errors
    ///
    /// The HTTP client could not be built.
    pub fn new(default_url: Option<String>, per_workspace: HashMap<String, String>) -> Result<Self, SeamError> {
        let client = reqwest::Client::builder().timeout(SEND_TIMEOUT).build().map_err(|e| SeamError {
            kind: ErrorKind::Internal,
            message: format!("building the Alertmanager client: {e}"),
        })?;
        Ok(Self { client, default_url, per_workspace, local: None })
    }

    /// Sends the alerts of workspaces no URL is given for to `local` (the
    /// Alertmanagers of this process) instead of dropping them.
    #[must_use]
    pub fn with_local(mut self, local: Arc<dyn AlertSink>) -> Self {
        self.local = Some(local);
        self
    }

    fn url(&self, workspace_id: &str) -> Option<String> {
        let base = self.per_workspace.get(workspace_id).or(self.default_url.as_ref())?;
        let base = base.trim_end_matches('/');
        Some(if base.ends_with("/api/v2/alerts") { base.to_owned() } else { format!("{base}/api/v2/alerts") })
    }
}

#[async_trait]
impl AlertSink for AlertmanagerClient {
    async fn send(&self, workspace_id: &str, alerts: serde_json::Value) -> Result<(), SeamError> {
        let Some(url) = self.url(workspace_id) else {
            return match &self.local {
                Some(local) => local.send(workspace_id, alerts).await,
                None => Ok(()),
            };
        };
        let unavailable = |message: String| SeamError { kind: ErrorKind::Unavailable, message };
        let body = serde_json::to_vec(&alerts).map_err(|e| unavailable(e.to_string()))?;
        let response = self
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| unavailable(format!("POST {url}: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(unavailable(format!("POST {url}: {status}: {}", text.trim())));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::AlertState;

    #[test]
    fn postable_alerts_follow_prometheus_send_alerts() {
        let l = |p: &[(&str, &str)]| -> common::seams::Labels {
            p.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>().into()
        };
        let mut alert = Alert {
            state: AlertState::Firing,
            labels: l(&[("alertname", "A"), ("env", "prod")]),
            annotations: l(&[("summary", "s")]),
            value: 1.0,
            active_at_ms: 0,
            fired_at_ms: Some(1_000),
            resolved_at_ms: None,
            last_sent_at_ms: Some(1_000),
            valid_until_ms: Some(241_000),
            keep_firing_since_ms: None,
        };
        let ext = [("env".to_owned(), "ext".to_owned()), ("region".to_owned(), "eu".to_owned())].into();
        let v = postable(&alert, &ext, "http://p/graph");
        assert_eq!(
            v,
            serde_json::json!({
                "labels": {"alertname": "A", "env": "prod", "region": "eu"},
                "annotations": {"summary": "s"},
                "startsAt": "1970-01-01T00:00:01.000Z",
                "endsAt": "1970-01-01T00:04:01.000Z",
                "generatorURL": "http://p/graph",
            })
        );
        alert.resolved_at_ms = Some(120_500);
        assert_eq!(postable(&alert, &ext, "")["endsAt"], "1970-01-01T00:02:00.500Z");
        assert_eq!(table_link("sum(up) > 1 * a~b"), "/graph?g0.expr=sum%28up%29+%3E+1+%2A+a~b&g0.tab=1");
    }

    #[derive(Debug, Default)]
    struct Capture(Mutex<Vec<(String, Vec<serde_json::Value>)>>);

    #[async_trait]
    impl AlertSink for Capture {
        async fn send(&self, ws: &str, alerts: serde_json::Value) -> Result<(), SeamError> {
            self.0.lock().unwrap().push((ws.to_owned(), alerts.as_array().cloned().unwrap_or_default()));
            Ok(())
        }
    }

    #[derive(Debug, Default)]
    struct Events(Mutex<Vec<WorkspaceEvent>>);

    impl EventSink for Events {
        fn record(&self, event: WorkspaceEvent) {
            self.0.lock().unwrap().push(event);
        }
    }

    #[tokio::test]
    async fn a_failed_send_is_counted_and_recorded_as_the_workspaces_event() {
        // Nothing listens on the port: the post fails.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let client = AlertmanagerClient::new(Some(format!("http://127.0.0.1:{port}")), HashMap::new()).unwrap();
        let events = Arc::new(Events::default());
        let mut registry = Registry::default();
        let n = Notifier::new(Arc::new(client), events.clone(), Arc::new(common::clock::SystemClock), &mut registry);
        n.enqueue("ws-1", vec![serde_json::json!({"labels": {"alertname": "A"}}); 3]);
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        n.clone().run(shutdown).await;
        assert_eq!(n.errors.get_or_create(&WorkspaceLabel { workspace: "ws-1".into() }).get(), 3);
        let events = events.0.lock().unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].workspace_id.as_str(), events[0].message["count"].as_str()), ("ws-1", "3"));
        assert_eq!(events[0].message["log"], "Error sending alerts");
        assert!(events[0].message["err"].contains(&format!("127.0.0.1:{port}/api/v2/alerts")), "{events:?}");
    }

    #[tokio::test]
    async fn batches_are_per_workspace_in_order_and_the_oldest_are_dropped_when_full() {
        let sink = Arc::new(Capture::default());
        let n = Notifier::new(
            sink.clone(),
            Arc::new(common::events::NoEvents),
            Arc::new(common::clock::SystemClock),
            &mut Registry::default(),
        );
        let numbered = |from: usize, count: usize| (from..from + count).map(|i| serde_json::json!(i)).collect();
        n.enqueue("a", numbered(0, 300));
        n.enqueue("b", numbered(0, 2));
        n.enqueue("a", numbered(300, 1));
        // Nothing ran yet (one thread): the queue of "c" overflows at once.
        n.enqueue("c", numbered(0, QUEUE_CAPACITY + 5));
        assert_eq!(n.dropped.get(), 5);
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        n.clone().run(shutdown).await;
        let got = sink.0.lock().unwrap().clone();
        for (ws, want) in [("a", 301), ("b", 2), ("c", QUEUE_CAPACITY)] {
            let batches: Vec<&Vec<serde_json::Value>> = got.iter().filter(|(w, _)| w == ws).map(|(_, b)| b).collect();
            assert!(batches.iter().all(|b| b.len() <= MAX_BATCH), "{ws}");
            let flat: Vec<u64> = batches.iter().flat_map(|b| b.iter().map(|v| v.as_u64().unwrap())).collect();
            let first = if ws == "c" { 5 } else { 0 };
            assert_eq!(flat, (first..first + want as u64).collect::<Vec<_>>(), "{ws}: in order, oldest dropped");
        }
        assert_eq!(n.queue_length.get(), 0);
    }

    #[tokio::test]
    async fn a_dead_alertmanager_does_not_delay_other_workspaces() {
        // A listener that accepts and never answers: sends to it hang.
        let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hang_port = hang.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = hang.accept().await {
                held.push(s);
            }
        });
        let fine = Arc::new(Capture::default());
        #[derive(Debug)]
        struct Route(Arc<Capture>, AlertmanagerClient);
        #[async_trait]
        impl AlertSink for Route {
            async fn send(&self, ws: &str, alerts: serde_json::Value) -> Result<(), SeamError> {
                if ws == "stuck" { self.1.send(ws, alerts).await } else { self.0.send(ws, alerts).await }
            }
        }
        let stuck = AlertmanagerClient::new(Some(format!("http://127.0.0.1:{hang_port}")), HashMap::new()).unwrap();
        let n = Notifier::new(
            Arc::new(Route(fine.clone(), stuck)),
            Arc::new(common::events::NoEvents),
            Arc::new(common::clock::SystemClock),
            &mut Registry::default(),
        );
        n.enqueue("stuck", vec![serde_json::json!({})]);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        n.enqueue("ok", vec![serde_json::json!({})]);
        let started = std::time::Instant::now();
        while fine.0.lock().unwrap().is_empty() {
            assert!(started.elapsed() < std::time::Duration::from_secs(5), "the other workspace waited");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
