//! Delivery of the ruler's alerts, as Prometheus's notifier: alerts are
//! queued (capacity [`QUEUE_CAPACITY`], the oldest dropped when full) and
//! sent in batches of at most [`MAX_BATCH`] of one workspace through the
//! [`AlertSink`] seam, in order. A failed send is counted and logged, not
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

/// The queue of alerts waiting to be sent and its sender.
#[derive(Debug)]
pub struct Notifier {
    sink: Arc<dyn AlertSink>,
    events: Arc<dyn EventSink>,
    clock: Arc<dyn Clock>,
    queue: Mutex<VecDeque<(String, serde_json::Value)>>,
    more: Notify,
    sent: Family<WorkspaceLabel, Counter>,
    errors: Family<WorkspaceLabel, Counter>,
    dropped: Counter,
    queue_length: Gauge,
}

impl Notifier {
    /// A notifier sending through `sink`; its metrics are registered in
    /// `registry`. Run [`Notifier::run`] to send.
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
            queue: Mutex::default(),
            more: Notify::new(),
            sent: Family::default(),
            errors: Family::default(),
            dropped: Counter::default(),
            queue_length: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("promlake_notifications");
        r.register("sent", "Alerts sent to an Alertmanager.", n.sent.clone());
        r.register("errors", "Alerts whose sending failed.", n.errors.clone());
        r.register("dropped", "Alerts dropped because the queue was full.", n.dropped.clone());
        r.register("queue_length", "Alerts waiting to be sent.", n.queue_length.clone());
        Arc::new(n)
    }

    /// Queues alerts of a workspace (Alertmanager v2 `postableAlert`s).
    pub(crate) fn enqueue(&self, workspace_id: &str, alerts: Vec<serde_json::Value>) {
        if alerts.is_empty() {
            return;
        }
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        queue.extend(alerts.into_iter().map(|a| (workspace_id.to_owned(), a)));
        let over = queue.len().saturating_sub(QUEUE_CAPACITY);
        if over > 0 {
            queue.drain(..over);
            self.dropped.inc_by(over as u64);
            tracing::warn!(dropped = over, "The alert notification queue is full; dropping the oldest alerts.");
        }
        self.queue_length.set(queue.len() as i64);
        drop(queue);
        self.more.notify_one();
    }

    /// The next batch: the oldest alert's workspace, its alerts from the
    /// front of the queue, at most [`MAX_BATCH`].
    fn next_batch(&self) -> Option<(String, Vec<serde_json::Value>)> {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let ws = queue.front()?.0.clone();
        let mut batch = Vec::new();
        while batch.len() < MAX_BATCH && queue.front().is_some_and(|(w, _)| *w == ws) {
            batch.push(queue.pop_front().map(|(_, a)| a).unwrap_or_default());
        }
        self.queue_length.set(queue.len() as i64);
        Some((ws, batch))
    }

    /// Sends queued alerts until `shutdown`, then what is still queued
    /// (Prometheus drains its queue on shutdown).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            while let Some((ws, batch)) = self.next_batch() {
                self.send(&ws, batch).await;
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.more.notified() => {}
            }
        }
        while let Some((ws, batch)) = self.next_batch() {
            self.send(&ws, batch).await;
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
        out["startsAt"] = rfc3339(t).into();
    }
    if let Some(t) = ends_at {
        out["endsAt"] = rfc3339(t).into();
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

/// Millisecond RFC 3339 in UTC, as go-openapi's `strfmt.DateTime`.
fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
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
        Ok(Self { client, default_url, per_workspace })
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
        let Some(url) = self.url(workspace_id) else { return Ok(()) };
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
    struct Capture(Mutex<Vec<(String, usize)>>);

    #[async_trait]
    impl AlertSink for Capture {
        async fn send(&self, ws: &str, alerts: serde_json::Value) -> Result<(), SeamError> {
            self.0.lock().unwrap().push((ws.to_owned(), alerts.as_array().map_or(0, Vec::len)));
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
        n.enqueue("a", vec![serde_json::json!({}); 300]);
        n.enqueue("b", vec![serde_json::json!({}); 2]);
        n.enqueue("a", vec![serde_json::json!({}); 1]);
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        n.clone().run(shutdown).await;
        assert_eq!(*sink.0.lock().unwrap(), [("a".into(), 256), ("a".into(), 44), ("b".into(), 2), ("a".into(), 1)]);
        n.enqueue("a", vec![serde_json::json!({}); QUEUE_CAPACITY + 5]);
        assert_eq!(n.dropped.get(), 5);
        assert_eq!(n.queue.lock().unwrap().len(), QUEUE_CAPACITY);
    }
}
