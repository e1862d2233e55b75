//! Delivery of notifications to receivers' integrations, and the retry
//! loop around each (Alertmanager's `RetryStage`): the first attempt at
//! once, then exponential backoff (0.5 s growing 1.5× with ±50 %
//! jitter, at most 60 s apart) until delivered, refused for good, or the
//! flush's time (its group's `group_interval`) runs out.
//!
//! Built so far: the webhook integration (Alertmanager's version-4
//! payload, `max_alerts`, custom `payload` templates, templated `url`,
//! `timeout`, basic/bearer/`authorization` credentials and headers of
//! `http_config`). Email, Slack, PagerDuty and SNS integrations are
//! refused at delivery with an error naming them until they are built.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value as Json;
use templates::NotificationTemplates;

use crate::engine::{IntegrationConfig, Notification};

/// Why a delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyError {
    /// Whether another attempt may succeed.
    pub retry: bool,
    pub message: String,
}

impl NotifyError {
    fn permanent(message: impl Into<String>) -> Self {
        Self { retry: false, message: message.into() }
    }
}

/// Sends one notification once (the seam the tests replace).
#[async_trait]
pub trait Notifier: Send + Sync + std::fmt::Debug {
    /// One attempt at delivering `send`, its templates rendered with
    /// `templates`.
    async fn notify(&self, send: &Notification, templates: &NotificationTemplates) -> Result<(), NotifyError>;
}

/// The integrations over HTTP.
#[derive(Debug, Clone)]
pub struct HttpNotifier {
    client: reqwest::Client,
    user_agent: String,
}

impl Default for HttpNotifier {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpNotifier {
    /// A notifier with its own connection pool.
    pub fn new() -> Self {
        Self { client: reqwest::Client::new(), user_agent: format!("PromLake/{}", env!("CARGO_PKG_VERSION")) }
    }

    async fn webhook(
        &self,
        send: &Notification,
        c: &amconfig::WebhookConfig,
        templates: &NotificationTemplates,
    ) -> Result<(), NotifyError> {
        let (data, truncated) = send.data(c.max_alerts.unwrap_or(0));
        let mut message = serde_json::to_value(&data).map_err(|e| NotifyError::permanent(e.to_string()))?;
        if let Json::Object(m) = &mut message {
            m.insert("version".into(), Json::from("4"));
            m.insert("groupKey".into(), Json::from(send.group_key.clone()));
            m.insert("truncatedAlerts".into(), Json::from(truncated));
        }
        let body = match &c.payload {
            Some(p) => render_payload(p, templates, &data)
                .map_err(|e| NotifyError::permanent(format!("failed to render custom payload: {e}")))?,
            None => message,
        };
        let url = match (&c.url, &c.url_file) {
            (Some(u), _) if !u.is_empty() => templates
                .execute_text(u.as_str(), &data)
                .map_err(|e| NotifyError::permanent(format!("failed to template webhook URL: {e}")))?,
            _ => return Err(NotifyError::permanent("url_file is not supported: give the webhook's url")),
        };
        if url.is_empty() {
            return Err(NotifyError::permanent("webhook URL is empty after templating"));
        }
        let mut req = self
            .client
            .post(&url)
            .header("User-Agent", &self.user_agent)
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(&body).map_err(|e| NotifyError::permanent(e.to_string()))?);
        if let Some(t) = &c.timeout
            && t.0 > 0
        {
            req = req.timeout(Duration::from_nanos(u64::try_from(t.0).unwrap_or(u64::MAX)));
        }
        if let Some(h) = &c.http_config {
            req = apply_http_config(req, h);
        }
        let resp = req.send().await.map_err(|e| NotifyError { retry: true, message: redact(&e.to_string(), &url) })?;
        check_status(resp).await
    }
}

/// Credentials and headers of an `http_config`.
fn apply_http_config(mut req: reqwest::RequestBuilder, h: &amconfig::HttpClientConfig) -> reqwest::RequestBuilder {
    if let Some(b) = &h.basic_auth {
        let user = b.username.as_ref().map_or("", |u| u.as_str());
        req = req.basic_auth(user, b.password.as_ref().map(|p| p.as_str().to_owned()));
    }
    if let Some(a) = &h.authorization {
        let kind = a.kind.as_ref().map_or("Bearer", |k| k.as_str());
        let kind = if kind.is_empty() { "Bearer" } else { kind };
        if let Some(c) = &a.credentials {
            req = req.header("Authorization", format!("{kind} {}", c.as_str()));
        }
    }
    if let Some(t) = &h.bearer_token {
        req = req.header("Authorization", format!("Bearer {}", t.as_str()));
    }
    if let Some(headers) = &h.http_headers {
        for (name, values) in headers {
            for v in values.iter().flat_map(|v| v.values.iter().flatten().chain(v.secrets.iter().flatten())) {
                req = req.header(name.as_str(), v.as_str());
            }
        }
    }
    req
}

/// `Retrier.Check`: 2xx delivered; 5xx retried; others refused.
async fn check_status(resp: reqwest::Response) -> Result<(), NotifyError> {
    let status = resp.status().as_u16();
    if status / 100 == 2 {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    let mut message = format!("unexpected status code {status}");
    if !body.is_empty() {
        message = format!("{message}: {}", body.chars().take(1024).collect::<String>());
    }
    Err(NotifyError { retry: status / 100 == 5, message })
}

/// Leaves the URL (which may hold credentials) out of an error.
fn redact(err: &str, url: &str) -> String {
    err.replace(url, "<redacted>")
}

/// `DeepCopyWithTemplate`: every string (and map key) rendered; a rendered
/// string that reads as YAML other than a string is taken as that value.
fn render_payload(
    v: &serde_norway::Value,
    t: &NotificationTemplates,
    data: &templates::NotificationData,
) -> Result<Json, String> {
    use serde_norway::Value as Y;
    Ok(match v {
        Y::Null => Json::Null,
        Y::Bool(b) => Json::Bool(*b),
        Y::Number(n) => serde_json::to_value(n).map_err(|e| e.to_string())?,
        Y::String(s) => {
            let rendered = t.execute_text(s, data)?;
            match serde_norway::from_str::<Y>(&rendered) {
                Ok(Y::String(_) | Y::Null) | Err(_) => Json::String(rendered),
                Ok(other) => render_payload(&other, t, data)?,
            }
        }
        Y::Sequence(items) => Json::Array(items.iter().map(|i| render_payload(i, t, data)).collect::<Result<_, _>>()?),
        Y::Mapping(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let Y::String(k) = k else { continue };
                out.insert(t.execute_text(k, data)?, render_payload(v, t, data)?);
            }
            Json::Object(out)
        }
        Y::Tagged(tagged) => render_payload(&tagged.value, t, data)?,
    })
}

#[async_trait]
impl Notifier for HttpNotifier {
    async fn notify(&self, send: &Notification, templates: &NotificationTemplates) -> Result<(), NotifyError> {
        match &send.integration.config {
            IntegrationConfig::Webhook(c) => self.webhook(send, c, templates).await,
            IntegrationConfig::Email(_) => Err(NotifyError::permanent("email delivery is not built yet")),
            IntegrationConfig::Slack(_) => Err(NotifyError::permanent("slack delivery is not built yet")),
            IntegrationConfig::Pagerduty(_) => Err(NotifyError::permanent("pagerduty delivery is not built yet")),
            IntegrationConfig::Sns(_) => Err(NotifyError::permanent("sns delivery is not built yet")),
        }
    }
}

/// Backoff between attempts (cenkalti/backoff's defaults as Alertmanager
/// uses them).
#[derive(Debug, Clone)]
pub struct Backoff {
    interval: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { interval: 0.5 }
    }
}

impl Backoff {
    /// The wait before the next attempt.
    pub fn next_wait(&mut self) -> Duration {
        let jitter = 0.5 * self.interval;
        let wait = self.interval - jitter + rand::random::<f64>() * 2.0 * jitter;
        self.interval = (self.interval * 1.5).min(60.0);
        Duration::from_secs_f64(wait)
    }
}

/// Delivers `send` with retries until `deadline`; the error is the last
/// attempt's, with the number of attempts.
///
/// # Errors
/// Why the notification was not delivered.
pub async fn deliver(
    notifier: &dyn Notifier,
    send: &Notification,
    templates: &NotificationTemplates,
    deadline: tokio::time::Instant,
) -> Result<(), String> {
    let mut backoff = Backoff::default();
    let mut attempts = 0;
    let what = format!("{}/{}[{}]", send.receiver, send.integration.name, send.integration.index);
    loop {
        attempts += 1;
        let attempt = tokio::time::timeout_at(deadline, notifier.notify(send, templates)).await;
        let err = match attempt {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) if !e.retry => {
                return Err(format!(
                    "{what}: notify retry canceled due to unrecoverable error after {attempts} attempts: {}",
                    e.message
                ));
            }
            Ok(Err(e)) => e.message,
            Err(_) => "context deadline exceeded".to_owned(),
        };
        let wait = backoff.next_wait();
        if tokio::time::Instant::now() + wait >= deadline {
            return Err(format!("{what}: notify retry canceled after {attempts} attempts: {err}"));
        }
        tokio::time::sleep(wait).await;
    }
}
