//! Delivery of notifications to receivers' integrations, and the retry
//! loop around each (Alertmanager's `RetryStage`): the first attempt at
//! once, then exponential backoff (0.5 s growing 1.5× with ±50 %
//! jitter, at most 60 s apart) until delivered, refused for good, or the
//! flush's time (its group's `group_interval`) runs out.
//!
//! Built so far: the webhook integration (Alertmanager's version-4
//! payload, `max_alerts`, custom `payload` templates, templated `url`,
//! `timeout`, basic/bearer/`authorization` credentials and headers of
//! `http_config`); Slack (incoming webhooks and app tokens: Alertmanager's
//! attachment, default templates, title truncation, `ok` answers);
//! PagerDuty (Events API v2 and v1: dedup key from the group key, details
//! rendered and re-read as YAML, summary truncation, the 512 KB event
//! limit); Amazon SNS (a SigV4-signed `Publish` with Alertmanager's
//! message, subject, attributes, FIFO ids and size limits); email (SMTP
//! with STARTTLS or implicit TLS and AUTH, Alertmanager's headers and
//! multipart message; its HTML part is rendered with text/template rules:
//! html/template's escaping is not reproduced).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value as Json;
use templates::NotificationTemplates;

use crate::engine::{IntegrationConfig, Notification};

/// Alertmanager's `TmplText`: texts rendered over one notification's
/// data; after the first failure every later text renders empty and the
/// failure is kept.
struct Tmpl<'a> {
    templates: &'a NotificationTemplates,
    data: &'a templates::NotificationData,
    err: Option<String>,
}

impl<'a> Tmpl<'a> {
    fn new(templates: &'a NotificationTemplates, data: &'a templates::NotificationData) -> Self {
        Self { templates, data, err: None }
    }

    fn text(&mut self, t: &str) -> String {
        if self.err.is_some() {
            return String::new();
        }
        match self.templates.execute_text(t, self.data) {
            Ok(s) => s,
            Err(e) => {
                self.err = Some(e);
                String::new()
            }
        }
    }

    /// A field's text, or the default template's when unset.
    fn or(&mut self, field: Option<&amconfig::GoStr>, default: &str) -> String {
        match field {
            Some(f) => self.text(f.as_str()),
            None => self.text(default),
        }
    }
}

/// `TruncateInRunes`: at most `n` characters, the last one `…` when cut.
fn truncate_runes(s: &str, n: usize) -> (String, bool) {
    if s.chars().count() <= n {
        return (s.to_owned(), false);
    }
    if n <= 3 {
        return (s.chars().take(n).collect(), true);
    }
    let mut out: String = s.chars().take(n - 1).collect();
    out.push('…');
    (out, true)
}

/// `Key.Hash()`: the group key's SHA-256, hex.
fn group_key_hash(key: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

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
        let req = self.post_json(&url, &body, c.timeout.as_ref(), c.http_config.as_ref())?;
        let resp = req.send().await.map_err(|e| NotifyError { retry: true, message: redact(e) })?;
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

/// A request's error without its URL (which may hold credentials).
fn redact(err: reqwest::Error) -> String {
    err.without_url().to_string()
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
            // An empty rendering reads as YAML's null, as Go's yaml does.
            match serde_norway::from_str::<Y>(&rendered) {
                Ok(Y::String(_)) | Err(_) => Json::String(rendered),
                Ok(Y::Null) => Json::Null,
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

impl HttpNotifier {
    /// Slack's `Notify`: one attachment; template failures render empty
    /// (Alertmanager does not check them here).
    async fn slack(
        &self,
        send: &Notification,
        c: &amconfig::SlackConfig,
        templates: &NotificationTemplates,
    ) -> Result<(), NotifyError> {
        let (data, _) = send.data(0);
        let mut t = Tmpl::new(templates, &data);
        let d = |name: &str| format!("{{{{ template \"slack.default.{name}\" . }}}}");
        let (title, _) = truncate_runes(&t.or(c.title.as_ref(), &d("title")), 1024);
        let title_link = t.or(c.title_link.as_ref(), &d("titlelink"));
        let pretext = t.or(c.pretext.as_ref(), &d("pretext"));
        let text = t.or(c.text.as_ref(), &d("text"));
        let fallback = t.or(c.fallback.as_ref(), &d("fallback"));
        let callback_id = t.or(c.callback_id.as_ref(), &d("callbackid"));
        let image_url = c.image_url.as_ref().map(|v| t.text(v.as_str())).unwrap_or_default();
        let thumb_url = c.thumb_url.as_ref().map(|v| t.text(v.as_str())).unwrap_or_default();
        let footer = t.or(c.footer.as_ref(), &d("footer"));
        let color = t.or(c.color.as_ref(), &d("color"));
        let short_default = c.short_fields.is_some_and(|b| b.0);
        let mut fields = Vec::new();
        for f in c.fields.iter().flatten().flatten() {
            let mut field = serde_json::Map::new();
            let title = f.title.as_ref().map(|v| t.text(v.as_str())).unwrap_or_default();
            let value = f.value.as_ref().map(|v| t.text(v.as_str())).unwrap_or_default();
            if !title.is_empty() {
                field.insert("title".into(), Json::from(title));
            }
            if !value.is_empty() {
                field.insert("value".into(), Json::from(value));
            }
            field.insert("short".into(), Json::from(f.short.map_or(short_default, |b| b.0)));
            fields.push(Json::Object(field));
        }
        let mut actions = Vec::new();
        for a in c.actions.iter().flatten().flatten() {
            let mut action = serde_json::Map::new();
            let mut put = |m: &mut serde_json::Map<String, Json>, k: &str, v: &Option<amconfig::GoStr>| {
                let v = v.as_ref().map(|v| t.text(v.as_str())).unwrap_or_default();
                if !v.is_empty() {
                    m.insert(k.into(), Json::from(v));
                }
            };
            put(&mut action, "type", &a.kind);
            put(&mut action, "text", &a.text);
            put(&mut action, "url", &a.url);
            put(&mut action, "style", &a.style);
            put(&mut action, "name", &a.name);
            put(&mut action, "value", &a.value);
            if let Some(cf) = &a.confirm {
                let mut confirm = serde_json::Map::new();
                put(&mut confirm, "text", &cf.text);
                put(&mut confirm, "title", &cf.title);
                put(&mut confirm, "ok_text", &cf.ok_text);
                put(&mut confirm, "dismiss_text", &cf.dismiss_text);
                action.insert("confirm".into(), Json::Object(confirm));
            }
            actions.push(Json::Object(action));
        }
        let mut attachment = serde_json::Map::new();
        let opt = |m: &mut serde_json::Map<String, Json>, k: &str, v: String| {
            if !v.is_empty() {
                m.insert(k.into(), Json::from(v));
            }
        };
        opt(&mut attachment, "title", title);
        opt(&mut attachment, "title_link", title_link);
        opt(&mut attachment, "pretext", pretext);
        attachment.insert("text".into(), Json::from(text));
        attachment.insert("fallback".into(), Json::from(fallback));
        attachment.insert("callback_id".into(), Json::from(callback_id));
        if !fields.is_empty() {
            attachment.insert("fields".into(), Json::Array(fields));
        }
        if !actions.is_empty() {
            attachment.insert("actions".into(), Json::Array(actions));
        }
        opt(&mut attachment, "image_url", image_url);
        opt(&mut attachment, "thumb_url", thumb_url);
        attachment.insert("footer".into(), Json::from(footer));
        opt(&mut attachment, "color", color);
        let mrkdwn_in: Vec<String> = match &c.mrkdwn_in {
            Some(m) if !m.is_empty() => m.iter().map(|v| v.as_str().to_owned()).collect(),
            _ => vec!["fallback".into(), "pretext".into(), "text".into()],
        };
        attachment.insert("mrkdwn_in".into(), Json::from(mrkdwn_in));
        let mut body = serde_json::Map::new();
        let channel = c.channel.as_ref().map(|v| t.text(v.as_str())).unwrap_or_default();
        opt(&mut body, "channel", channel.clone());
        opt(&mut body, "username", t.or(c.username.as_ref(), &d("username")));
        opt(&mut body, "icon_emoji", t.or(c.icon_emoji.as_ref(), &d("iconemoji")));
        opt(&mut body, "icon_url", t.or(c.icon_url.as_ref(), &d("iconurl")));
        if c.link_names.is_some_and(|b| b.0) {
            body.insert("link_names".into(), Json::Bool(true));
        }
        opt(&mut body, "text", c.message_text.as_ref().map(|v| t.text(v.as_str())).unwrap_or_default());
        body.insert("attachments".into(), Json::Array(vec![Json::Object(attachment)]));

        let token = c.app_token.as_ref().filter(|v| !v.is_empty());
        let url = match (token, &c.api_url) {
            (Some(_), _) => c.app_url.as_ref().map(|u| u.as_str().to_owned()).unwrap_or_default(),
            (None, Some(u)) if !u.is_empty() => u.as_str().to_owned(),
            _ => {
                return Err(NotifyError::permanent(
                    "api_url_file and app_token_file are not supported: give the URL or token",
                ));
            }
        };
        let mut req = self.post_json(&url, &Json::Object(body), c.timeout.as_ref(), c.http_config.as_ref())?;
        if let Some(token) = token {
            req = req.header("Authorization", format!("Bearer {}", token.as_str()));
        }
        let in_channel = |m: String| format!("channel {channel:?}: {m}");
        let resp = req.send().await.map_err(|e| NotifyError { retry: true, message: redact(e) })?;
        let json = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| NotifyError { retry: true, message: format!("could not read response body: {e}") })?;
        if status / 100 != 2 {
            let mut message = format!("unexpected status code {status}");
            if !text.is_empty() {
                message = format!("{message}: {text}");
            }
            return Err(NotifyError { retry: status / 100 == 5, message: in_channel(message) });
        }
        if !json {
            if text == "ok" {
                return Ok(());
            }
            return Err(NotifyError::permanent(in_channel(format!("received an error response from Slack: {text}"))));
        }
        let answer: Json = serde_json::from_str(&text).map_err(|e| NotifyError {
            retry: true,
            message: in_channel(format!("could not unmarshal JSON response {text:?}: {e}")),
        })?;
        if answer["ok"] == Json::Bool(true) {
            Ok(())
        } else {
            let error = answer["error"].as_str().unwrap_or_default();
            Err(NotifyError::permanent(in_channel(format!("error response from Slack: {error}"))))
        }
    }

    /// PagerDuty's `Notify`: Events API v2 (`routing_key`) or v1
    /// (`service_key`).
    async fn pagerduty(
        &self,
        send: &Notification,
        c: &amconfig::PagerdutyConfig,
        templates: &NotificationTemplates,
    ) -> Result<(), NotifyError> {
        const MAX_EVENT_BYTES: usize = 512_000;
        let (data, _) = send.data(0);
        let key = group_key_hash(&send.group_key);
        let resolved = send.alerts.iter().all(|a| a.resolved_at(send.now_ms));
        let details = pagerduty_details(c, templates, &data)
            .map_err(|e| NotifyError::permanent(format!("failed to render details: {e}")))?;
        let mut t = Tmpl::new(templates, &data);
        let client = t.or(c.client.as_ref(), "{{ template \"pagerduty.default.client\" . }}");
        let client_url = t.or(c.client_url.as_ref(), "{{ template \"pagerduty.default.clientURL\" . }}");
        let description = t.or(c.description.as_ref(), "{{ template \"pagerduty.default.description\" . }}");
        let v1 = c.service_key.as_ref().is_some_and(|k| !k.is_empty());
        let (url, mut body, details_path) = if v1 {
            let service_key = t.text(c.service_key.as_ref().map_or("", |k| k.as_str()));
            let (description, _) = truncate_runes(&description, 1024);
            let mut m = serde_json::Map::new();
            m.insert("service_key".into(), Json::from(service_key.clone()));
            m.insert("event_type".into(), Json::from(if resolved { "resolve" } else { "trigger" }));
            m.insert("incident_key".into(), Json::from(key));
            m.insert("description".into(), Json::from(description));
            m.insert("details".into(), details);
            if !resolved {
                m.insert("client".into(), Json::from(client));
                m.insert("client_url".into(), Json::from(client_url));
            }
            m.insert("event_action".into(), Json::from(""));
            m.insert("payload".into(), Json::Null);
            if let Some(e) = t.err {
                return Err(NotifyError::permanent(format!("failed to template PagerDuty v1 message: {e}")));
            }
            if service_key.is_empty() {
                return Err(NotifyError::permanent("service key cannot be empty"));
            }
            ("https://events.pagerduty.com/generic/2010-04-15/create_event.json".to_owned(), m, vec!["details"])
        } else {
            let routing_key = t.text(c.routing_key.as_ref().map_or("", |k| k.as_str()));
            let (summary, _) = truncate_runes(&description, 1024);
            let severity = t.text(c.severity.as_ref().filter(|s| !s.is_empty()).map_or("error", |s| s.as_str()));
            let source = t.text(c.source.as_ref().map_or_else(
                || c.client.as_ref().map_or("{{ template \"pagerduty.default.client\" . }}", |x| x.as_str()),
                |s| s.as_str(),
            ));
            let mut payload = serde_json::Map::new();
            payload.insert("summary".into(), Json::from(summary));
            payload.insert("source".into(), Json::from(source));
            payload.insert("severity".into(), Json::from(severity));
            for (k, v) in [("class", &c.class), ("component", &c.component), ("group", &c.group)] {
                let v = v.as_ref().map(|v| t.text(v.as_str())).unwrap_or_default();
                if !v.is_empty() {
                    payload.insert(k.into(), Json::from(v));
                }
            }
            if details.as_object().is_some_and(|d| !d.is_empty()) {
                payload.insert("custom_details".into(), details);
            }
            let mut m = serde_json::Map::new();
            m.insert("routing_key".into(), Json::from(routing_key.clone()));
            m.insert("dedup_key".into(), Json::from(key));
            m.insert("event_action".into(), Json::from(if resolved { "resolve" } else { "trigger" }));
            m.insert("payload".into(), Json::Object(payload));
            if !client.is_empty() {
                m.insert("client".into(), Json::from(client));
            }
            if !client_url.is_empty() {
                m.insert("client_url".into(), Json::from(client_url));
            }
            let images: Vec<Json> = c
                .images
                .iter()
                .flatten()
                .filter_map(|i| {
                    let src = i.src.as_ref().map(|v| t.text(v.as_str())).unwrap_or_default();
                    let alt = i.alt.as_ref().map(|v| t.text(v.as_str())).unwrap_or_default();
                    let href = i.href.as_ref().map(|v| t.text(v.as_str())).unwrap_or_default();
                    (!src.is_empty()).then(|| serde_json::json!({"src": src, "alt": alt, "href": href}))
                })
                .collect();
            if !images.is_empty() {
                m.insert("images".into(), Json::Array(images));
            }
            let links: Vec<Json> = c
                .links
                .iter()
                .flatten()
                .filter_map(|l| {
                    let href = l.href.as_ref().map(|v| t.text(v.as_str())).unwrap_or_default();
                    let text = l.text.as_ref().map(|v| t.text(v.as_str())).unwrap_or_default();
                    (!href.is_empty()).then(|| serde_json::json!({"href": href, "text": text}))
                })
                .collect();
            if !links.is_empty() {
                m.insert("links".into(), Json::Array(links));
            }
            if let Some(e) = t.err {
                return Err(NotifyError::permanent(format!("failed to template PagerDuty v2 message: {e}")));
            }
            if routing_key.is_empty() {
                return Err(NotifyError::permanent("routing key cannot be empty"));
            }
            let url = c.url.as_ref().map_or("https://events.pagerduty.com/v2/enqueue", |u| u.as_str()).to_owned();
            (url, m, vec!["payload", "custom_details"])
        };
        // An event over 512 KB loses its details.
        let size = serde_json::to_vec(&body).map_or(0, |b| b.len() + 1);
        if size > MAX_EVENT_BYTES {
            let replacement = serde_json::json!({"error": "Custom details have been removed because the original event exceeds the maximum size of 512KB"});
            match details_path.as_slice() {
                ["details"] => {
                    body.insert("details".into(), replacement);
                }
                _ => {
                    if let Some(Json::Object(p)) = body.get_mut("payload") {
                        p.insert("custom_details".into(), replacement);
                    }
                }
            }
        }
        let req = self.post_json(&url, &Json::Object(body), c.timeout.as_ref(), c.http_config.as_ref())?;
        let resp = req.send().await.map_err(|e| NotifyError {
            retry: true,
            message: format!("failed to post message to PagerDuty: {}", redact(e)),
        })?;
        let status = resp.status().as_u16();
        if status / 100 == 2 {
            return Ok(());
        }
        let retry = status / 100 == 5 || status == if v1 { 403 } else { 429 };
        let mut message = format!("unexpected status code {status}");
        if status == 400 {
            let text = resp.text().await.unwrap_or_default();
            if let Ok(e) = serde_json::from_str::<Json>(&text) {
                let errors: Vec<&str> = e["errors"].as_array().into_iter().flatten().filter_map(Json::as_str).collect();
                message = format!("{message}: {}: {}", e["message"].as_str().unwrap_or_default(), errors.join(","));
            }
        }
        Err(NotifyError { retry, message })
    }

    /// A JSON POST with the integration's timeout and `http_config`.
    fn post_json(
        &self,
        url: &str,
        body: &Json,
        timeout: Option<&amconfig::GoDuration>,
        http: Option<&amconfig::HttpClientConfig>,
    ) -> Result<reqwest::RequestBuilder, NotifyError> {
        let mut req = self
            .client
            .post(url)
            .header("User-Agent", &self.user_agent)
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(body).map_err(|e| NotifyError::permanent(e.to_string()))?);
        if let Some(t) = timeout
            && t.0 > 0
        {
            req = req.timeout(Duration::from_nanos(u64::try_from(t.0).unwrap_or(u64::MAX)));
        }
        if let Some(h) = http {
            req = apply_http_config(req, h);
        }
        Ok(req)
    }
}

/// The AWS credentials and region of an SNS integration: its `sigv4`
/// section's keys (required: in a multi-tenant service the process's own
/// AWS credentials are not lent to tenants), its region else the
/// process's `AWS_REGION` or `AWS_DEFAULT_REGION`.
fn aws_identity(c: &amconfig::SnsConfig) -> Result<(String, aws_credential_types::Credentials), NotifyError> {
    let sigv4 = c.sigv4.clone().unwrap_or_default();
    let set = |v: &Option<amconfig::GoStr>| v.as_ref().filter(|s| !s.is_empty()).map(|s| s.as_str().to_owned());
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if set(&sigv4.role_arn).is_some() || set(&sigv4.profile).is_some() {
        return Err(NotifyError::permanent(
            "sigv4 role_arn and profile are not supported: give access_key and secret_key",
        ));
    }
    let region =
        set(&sigv4.region).or_else(|| env("AWS_REGION")).or_else(|| env("AWS_DEFAULT_REGION")).ok_or(NotifyError {
            retry: true,
            message: "region not configured in sns.sigv4.region or in default credentials chain".into(),
        })?;
    let (Some(key), Some(secret)) = (set(&sigv4.access_key), set(&sigv4.secret_key)) else {
        return Err(NotifyError::permanent("sns_configs need sigv4.access_key and sigv4.secret_key"));
    };
    Ok((region, aws_credential_types::Credentials::new(key, secret, None, None, "promlake")))
}

/// SigV4 headers for a request to `service` (`authorization`,
/// `x-amz-date`, …).
fn sigv4_headers(
    credentials: aws_credential_types::Credentials,
    region: &str,
    service: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Vec<(String, String)>, String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let identity: aws_smithy_runtime_api::client::identity::Identity = credentials.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request = SignableRequest::new("POST", url, headers.iter().copied(), SignableBody::Bytes(body))
        .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(request, &params).map_err(|e| e.to_string())?.into_parts();
    let (added, _) = instructions.into_parts();
    Ok(added.into_iter().map(|h| (h.name().to_owned(), h.value().to_owned())).collect())
}

impl HttpNotifier {
    /// SNS's `Notify`: `Publish` in AWS's query protocol, SigV4-signed for
    /// service `sns`. Failures before the request are retried, as
    /// Alertmanager retries them; AWS's 4xx answers are not.
    async fn sns(
        &self,
        send: &Notification,
        c: &amconfig::SnsConfig,
        templates: &NotificationTemplates,
    ) -> Result<(), NotifyError> {
        let retry = |message: String| NotifyError { retry: true, message };
        let (data, _) = send.data(0);
        let (region, credentials) = aws_identity(c)?;
        let mut t = Tmpl::new(templates, &data);
        let api_url = c.api_url.as_ref().map(|u| t.text(u.as_str())).unwrap_or_default();
        if let Some(e) = t.err.take() {
            return Err(retry(format!("execute 'api_url' template: {e}")));
        }
        let url = if api_url.is_empty() { format!("https://sns.{region}.amazonaws.com/") } else { api_url };
        let mut params: Vec<(String, String)> =
            vec![("Action".into(), "Publish".into()), ("Version".into(), "2010-03-31".into())];
        let mut attributes: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in c.attributes.iter().flatten() {
            let (k, v) = (t.text(k), t.text(v.as_str()));
            attributes.insert(k, v);
        }
        if let Some(e) = t.err.take() {
            return Err(retry(format!("execute 'attributes' template: {e}")));
        }
        let mut limit = 256 * 1024;
        let set = |v: &Option<amconfig::GoStr>| v.as_ref().filter(|s| !s.is_empty()).map(|s| s.as_str().to_owned());
        if let Some(topic) = set(&c.topic_arn) {
            let topic = t.text(&topic);
            if let Some(e) = t.err.take() {
                return Err(retry(format!("execute 'topic_arn' template: {e}")));
            }
            if topic.ends_with(".fifo") {
                let key = group_key_hash(&send.group_key);
                params.push(("MessageDeduplicationId".into(), key.clone()));
                params.push(("MessageGroupId".into(), key));
            }
            params.push(("TopicArn".into(), topic));
        }
        if let Some(phone) = set(&c.phone_number) {
            let phone = t.text(&phone);
            if let Some(e) = t.err.take() {
                return Err(retry(format!("execute 'phone_number' template: {e}")));
            }
            params.push(("PhoneNumber".into(), phone));
            limit = 1600;
        }
        if let Some(target) = set(&c.target_arn) {
            let target = t.text(&target);
            if let Some(e) = t.err.take() {
                return Err(retry(format!("execute 'target_arn' template: {e}")));
            }
            params.push(("TargetArn".into(), target));
        }
        let mut message = t.or(c.message.as_ref(), "{{ template \"sns.default.message\" . }}");
        if let Some(e) = t.err.take() {
            return Err(retry(format!("execute 'message' template: {e}")));
        }
        if message.len() > limit {
            // Cut to the limit in bytes (at a character boundary: the
            // message stays valid UTF-8).
            let mut end = limit;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            attributes.insert("truncated".into(), "true".into());
        }
        params.push(("Message".into(), message));
        let subject = t.or(c.subject.as_ref(), "{{ template \"sns.default.subject\" . }}");
        if let Some(e) = t.err.take() {
            return Err(retry(format!("execute 'subject' template: {e}")));
        }
        params.push(("Subject".into(), subject));
        for (i, (name, value)) in attributes.into_iter().enumerate() {
            let n = i + 1;
            params.push((format!("MessageAttributes.entry.{n}.Name"), name));
            params.push((format!("MessageAttributes.entry.{n}.Value.DataType"), "String".into()));
            params.push((format!("MessageAttributes.entry.{n}.Value.StringValue"), value));
        }
        params.sort();
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish().into_bytes();
        let host = reqwest::Url::parse(&url)
            .map_err(|e| retry(format!("failed to create SNS client: {e}")))?
            .host_str()
            .map(|h| h.to_owned())
            .unwrap_or_default();
        let host = match reqwest::Url::parse(&url).ok().and_then(|u| u.port()) {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        let content_type = "application/x-www-form-urlencoded";
        let signed =
            sigv4_headers(credentials, &region, "sns", &url, &[("host", &host), ("content-type", content_type)], &body)
                .map_err(|e| retry(format!("failed to sign the SNS request: {e}")))?;
        let mut req = self
            .client
            .post(&url)
            .header("User-Agent", &self.user_agent)
            .header("Content-Type", content_type)
            .body(body);
        for (k, v) in signed {
            req = req.header(k, v);
        }
        if let Some(h) = &c.http_config {
            req = apply_http_config(req, h);
        }
        let resp = req.send().await.map_err(|e| retry(redact(e)))?;
        let status = resp.status().as_u16();
        if status / 100 == 2 {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        let aws_message = text
            .split_once("<Message>")
            .and_then(|(_, rest)| rest.split_once("</Message>"))
            .map_or(text.as_str(), |(m, _)| m);
        let mut message = format!("unexpected status code {status}");
        if !aws_message.is_empty() {
            message = format!("{message}: {aws_message}");
        }
        Err(NotifyError { retry: status / 100 == 5, message })
    }
}

/// Go's `mime.QEncoding.Encode("utf-8", v)`: unchanged when printable
/// ASCII, else encoded words of at most 75 characters.
fn q_encode(v: &str) -> String {
    if v.chars().all(|c| c == '\t' || (' '..='~').contains(&c)) {
        return v.to_owned();
    }
    let mut words = Vec::new();
    let mut word = String::new();
    for c in v.chars() {
        let mut enc = String::new();
        if c == ' ' {
            enc.push('_');
        } else if c.is_ascii_alphanumeric() || "!*+-/".contains(c) {
            enc.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                enc.push_str(&format!("={b:02X}"));
            }
        }
        // "=?utf-8?q?" + word + "?=" within 75 characters.
        if 12 + word.len() + enc.len() > 75 {
            words.push(std::mem::take(&mut word));
        }
        word.push_str(&enc);
    }
    words.push(word);
    words.iter().map(|w| format!("=?utf-8?q?{w}?=")).collect::<Vec<_>>().join(" ")
}

/// The addresses of an RFC 5322 address list (`Name <a@b>` or `a@b`).
fn address_list(list: &str) -> Result<Vec<lettre::Address>, String> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0, false, 0);
    let mut parts = Vec::new();
    for (i, c) in list.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&list[start..]);
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            return Err("mail: no address".into());
        }
        let addr = match (p.rfind('<'), p.rfind('>')) {
            (Some(a), Some(b)) if a < b => &p[a + 1..b],
            _ => p,
        };
        out.push(addr.trim().parse::<lettre::Address>().map_err(|e| format!("mail: {e}"))?);
    }
    Ok(out)
}

/// The email integration's `Notify`: SMTP to the smarthost (implicit TLS
/// for port 465 or `force_implicit_tls`, else STARTTLS unless
/// `require_tls: false`; AUTH when a username is set), one
/// `multipart/alternative` message with the text and HTML parts.
async fn email(
    send: &Notification,
    c: &amconfig::EmailConfig,
    templates: &NotificationTemplates,
) -> Result<(), NotifyError> {
    use lettre::transport::smtp::authentication::{Credentials, Mechanism};
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::transport::smtp::extension::ClientId;
    use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
    let retry = |message: String| NotifyError { retry: true, message };
    let (data, _) = send.data(0);
    let smarthost = c.smarthost.as_ref().map_or("", |s| s.as_str());
    let (host, port) = smarthost.rsplit_once(':').unwrap_or((smarthost, "25"));
    let port: u16 = port.parse().map_err(|_| NotifyError::permanent(format!("invalid smarthost {smarthost:?}")))?;
    let implicit = c.force_implicit_tls.map_or(port == 465, |b| b.0);
    let tls = c.tls_config.clone().unwrap_or_default();
    let server_name = tls.server_name.as_ref().filter(|s| !s.is_empty()).map_or(host, |s| s.as_str());
    let insecure = tls.insecure_skip_verify.is_some_and(|b| b.0);
    let mut params = TlsParameters::builder(server_name.to_owned())
        .dangerous_accept_invalid_certs(insecure)
        .dangerous_accept_invalid_hostnames(insecure);
    if let Some(ca) = tls.ca.as_ref().filter(|c| !c.is_empty()) {
        let cert = lettre::transport::smtp::client::Certificate::from_pem(ca.as_str().as_bytes())
            .map_err(|e| NotifyError::permanent(format!("parse TLS configuration: {e}")))?;
        params = params.add_root_certificate(cert);
    }
    let params = params.build_rustls().map_err(|e| NotifyError::permanent(format!("parse TLS configuration: {e}")))?;
    let mode = if implicit {
        Tls::Wrapper(params)
    } else if c.require_tls.is_none_or(|b| b.0) {
        Tls::Required(params)
    } else {
        Tls::None
    };
    let hello = c.hello.as_ref().filter(|h| !h.is_empty()).map_or("localhost", |h| h.as_str());
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .tls(mode)
        .hello_name(ClientId::Domain(hello.to_owned()))
        .timeout(Some(Duration::from_secs(60)));
    if let Some(user) = c.auth_username.as_ref().filter(|u| !u.is_empty()) {
        let password = c.auth_password.as_ref().map_or("", |p| p.as_str());
        transport = transport
            .credentials(Credentials::new(user.as_str().to_owned(), password.to_owned()))
            .authentication(vec![Mechanism::Plain, Mechanism::Login]);
    }
    let transport = transport.build();

    let mut t = Tmpl::new(templates, &data);
    let from = c.from.as_ref().map(|f| t.text(f.as_str())).unwrap_or_default();
    if let Some(e) = t.err.take() {
        return Err(NotifyError::permanent(format!("execute 'from' template: {e}")));
    }
    let to = c.to.as_ref().map(|f| t.text(f.as_str())).unwrap_or_default();
    if let Some(e) = t.err.take() {
        return Err(NotifyError::permanent(format!("execute 'to' template: {e}")));
    }
    let senders = address_list(&from).map_err(|e| NotifyError::permanent(format!("parse 'from' addresses: {e}")))?;
    if senders.len() != 1 {
        return Err(NotifyError::permanent(format!("must be exactly one 'from' address (got: {})", senders.len())));
    }
    let recipients = address_list(&to).map_err(|e| NotifyError::permanent(format!("parse 'to' addresses: {e}")))?;

    // Headers: the configured ones (names canonical), with Subject, To and
    // From defaulted.
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in c.headers.iter().flatten() {
        headers.insert(canonical_header(k), v.as_str().to_owned());
    }
    headers.entry("Subject".into()).or_insert_with(|| "{{ template \"email.default.subject\" . }}".into());
    headers.entry("To".into()).or_insert_with(|| c.to.as_ref().map(|v| v.as_str().to_owned()).unwrap_or_default());
    headers.entry("From".into()).or_insert_with(|| c.from.as_ref().map(|v| v.as_str().to_owned()).unwrap_or_default());
    let mut message = String::new();
    for (k, v) in &headers {
        let value = templates
            .execute_text(v, &data)
            .map_err(|e| NotifyError::permanent(format!("execute {k:?} header template: {e}")))?;
        message.push_str(&format!("{k}: {}\r\n", q_encode(&value)));
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    if !headers.contains_key("Message-Id") {
        message.push_str(&format!("Message-Id: <{}.{}@{hello}>\r\n", now.as_nanos(), rand::random::<u64>()));
    }
    let boundary: String = (0..30).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
    message.push_str(&format!(
        "Date: {}\r\n",
        chrono::DateTime::from_timestamp_millis(i64::try_from(now.as_millis()).unwrap_or(0))
            .unwrap_or_default()
            .format("%a, %d %b %Y %H:%M:%S %z")
    ));
    message.push_str(&format!("Content-Type: multipart/alternative;  boundary={boundary}\r\n"));
    message.push_str("MIME-Version: 1.0\r\n\r\n");
    let html = c.html.as_ref().map_or("{{ template \"email.default.html\" . }}", |h| h.as_str());
    let mut first = true;
    for (text, kind) in [(c.text.as_ref().map_or("", |t| t.as_str()), "plain"), (html, "html")] {
        if text.is_empty() {
            continue;
        }
        let body = templates
            .execute_text(text, &data)
            .map_err(|e| NotifyError::permanent(format!("execute {kind} template: {e}")))?;
        message.push_str(if first { "--" } else { "\r\n--" });
        first = false;
        message.push_str(&format!(
            "{boundary}\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Type: text/{kind}; charset=UTF-8\r\n\r\n"
        ));
        message.push_str(&quoted_printable::encode_to_str(body.replace("\r\n", "\n").replace('\n', "\r\n")));
    }
    message.push_str(&format!("\r\n--{boundary}--\r\n"));
    let envelope = lettre::address::Envelope::new(senders.into_iter().next(), recipients)
        .map_err(|e| NotifyError::permanent(format!("parse 'to' addresses: {e}")))?;
    transport.send_raw(&envelope, message.as_bytes()).await.map_err(|e| retry(format!("send the message: {e}")))?;
    Ok(())
}

/// `textproto.CanonicalMIMEHeaderKey`: `content-type` → `Content-Type`.
fn canonical_header(k: &str) -> String {
    k.split('-')
        .map(|w| {
            let mut cs = w.chars();
            cs.next()
                .map_or_else(String::new, |f| f.to_ascii_uppercase().to_string() + &cs.as_str().to_ascii_lowercase())
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// PagerDuty's `details`: the configured ones over Alertmanager's
/// defaults (`firing`, `resolved`, `num_firing`, `num_resolved`), each
/// rendered and re-read as YAML (`DeepCopyWithTemplate`).
fn pagerduty_details(
    c: &amconfig::PagerdutyConfig,
    templates: &NotificationTemplates,
    data: &templates::NotificationData,
) -> Result<Json, String> {
    use serde_norway::Value as Y;
    let mut details: BTreeMap<String, Y> = c.details.clone().unwrap_or_default();
    for (k, v) in [
        ("firing", "{{ .Alerts.Firing | toJson }}"),
        ("resolved", "{{ .Alerts.Resolved | toJson }}"),
        ("num_firing", "{{ .Alerts.Firing | len }}"),
        ("num_resolved", "{{ .Alerts.Resolved | len }}"),
    ] {
        details.entry(k.to_owned()).or_insert_with(|| Y::String(v.to_owned()));
    }
    let mut out = serde_json::Map::new();
    for (k, v) in &details {
        out.insert(k.clone(), render_payload(v, templates, data)?);
    }
    Ok(Json::Object(out))
}

#[async_trait]
impl Notifier for HttpNotifier {
    async fn notify(&self, send: &Notification, templates: &NotificationTemplates) -> Result<(), NotifyError> {
        match &send.integration.config {
            IntegrationConfig::Webhook(c) => self.webhook(send, c, templates).await,
            IntegrationConfig::Slack(c) => self.slack(send, c, templates).await,
            IntegrationConfig::Pagerduty(c) => self.pagerduty(send, c, templates).await,
            IntegrationConfig::Email(c) => email(send, c, templates).await,
            IntegrationConfig::Sns(c) => self.sns(send, c, templates).await,
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
