//! Receivers and the notifier configurations PromLake delivers to —
//! `sns_configs`, `webhook_configs`, `slack_configs`, `pagerduty_configs`,
//! `email_configs` — with Alertmanager's defaults and checks. The other
//! receiver types of Alertmanager are recognised and refused by name.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::http::{
    HttpClientConfig, TlsConfig, canonical_header, check_host_port, check_secret_url, check_template_url, check_url,
};
use crate::yaml::{GoBool, GoDuration, GoStr, set};

/// The receiver types Alertmanager 0.33 has that PromLake does not deliver
/// to (their `*_configs` keys).
pub const UNSUPPORTED_RECEIVER_TYPES: &[&str] = &[
    "discord",
    "incidentio",
    "opsgenie",
    "wechat",
    "pushover",
    "victorops",
    "telegram",
    "webex",
    "msteams",
    "msteamsv2",
    "jira",
    "rocketchat",
    "mattermost",
];

/// The receiver types PromLake delivers to.
pub const SUPPORTED_RECEIVER_TYPES: &[&str] = &["sns", "webhook", "slack", "pagerduty", "email"];

/// A receiver: a name and its notifier configurations.
#[derive(Debug, Clone, Default)]
pub struct Receiver {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub webhook_configs: Vec<WebhookConfig>,
    pub email_configs: Vec<EmailConfig>,
    pub slack_configs: Vec<SlackConfig>,
    pub pagerduty_configs: Vec<PagerdutyConfig>,
    pub sns_configs: Vec<SnsConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReceiver {
    #[serde(default)]
    pub(crate) name: Option<GoStr>,
    #[serde(default)]
    labels: Option<BTreeMap<String, GoStr>>,
    #[serde(default)]
    pub(crate) webhook_configs: Option<Vec<Option<WebhookConfig>>>,
    #[serde(default)]
    pub(crate) email_configs: Option<Vec<Option<EmailConfig>>>,
    #[serde(default)]
    pub(crate) slack_configs: Option<Vec<Option<SlackConfig>>>,
    #[serde(default)]
    pub(crate) pagerduty_configs: Option<Vec<Option<PagerdutyConfig>>>,
    #[serde(default)]
    pub(crate) sns_configs: Option<Vec<Option<SnsConfig>>>,
    #[serde(default)]
    discord_configs: Option<serde_norway::Value>,
    #[serde(default)]
    incidentio_configs: Option<serde_norway::Value>,
    #[serde(default)]
    opsgenie_configs: Option<serde_norway::Value>,
    #[serde(default)]
    wechat_configs: Option<serde_norway::Value>,
    #[serde(default)]
    pushover_configs: Option<serde_norway::Value>,
    #[serde(default)]
    victorops_configs: Option<serde_norway::Value>,
    #[serde(default)]
    telegram_configs: Option<serde_norway::Value>,
    #[serde(default)]
    webex_configs: Option<serde_norway::Value>,
    #[serde(default)]
    msteams_configs: Option<serde_norway::Value>,
    #[serde(default)]
    msteamsv2_configs: Option<serde_norway::Value>,
    #[serde(default)]
    jira_configs: Option<serde_norway::Value>,
    #[serde(default)]
    rocketchat_configs: Option<serde_norway::Value>,
    #[serde(default)]
    mattermost_configs: Option<serde_norway::Value>,
}

fn non_empty_list(v: &Option<serde_norway::Value>) -> bool {
    match v {
        None | Some(serde_norway::Value::Null) => false,
        Some(serde_norway::Value::Sequence(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

impl RawReceiver {
    /// The receiver-level checks run while decoding: a name, the `name`
    /// label, each configuration's own checks.
    pub(crate) fn check(&self) -> Result<(), String> {
        let name = self.name.as_ref().map_or("", GoStr::as_str);
        if name.is_empty() {
            return Err("missing name in receiver".into());
        }
        if let Some(l) = self.labels.as_ref().and_then(|l| l.get("name"))
            && l.as_str() != name
        {
            return Err(format!("receiver label \"name\" must match receiver name {name:?}, got {:?}", l.as_str()));
        }
        for c in self.webhook_configs.iter().flatten().flatten() {
            c.check()?;
        }
        for c in self.email_configs.iter().flatten().flatten() {
            c.check()?;
        }
        for c in self.slack_configs.iter().flatten().flatten() {
            c.check()?;
        }
        for c in self.pagerduty_configs.iter().flatten().flatten() {
            c.check()?;
        }
        for c in self.sns_configs.iter().flatten().flatten() {
            c.check()?;
        }
        Ok(())
    }

    /// The first receiver type it uses that PromLake does not deliver to.
    pub(crate) fn unsupported_type(&self) -> Option<&'static str> {
        let lists = [
            &self.discord_configs,
            &self.incidentio_configs,
            &self.opsgenie_configs,
            &self.wechat_configs,
            &self.pushover_configs,
            &self.victorops_configs,
            &self.telegram_configs,
            &self.webex_configs,
            &self.msteams_configs,
            &self.msteamsv2_configs,
            &self.jira_configs,
            &self.rocketchat_configs,
            &self.mattermost_configs,
        ];
        lists.iter().zip(UNSUPPORTED_RECEIVER_TYPES).find(|(l, _)| non_empty_list(l)).map(|(_, t)| *t)
    }

    /// The receiver, its configurations completed from the global
    /// configuration (Alertmanager's fallbacks and their errors).
    pub(crate) fn resolve(self, global: &crate::config::Global) -> Result<Receiver, String> {
        let mut r = Receiver {
            name: self.name.map(|n| n.0).unwrap_or_default(),
            labels: self.labels.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect(),
            ..Receiver::default()
        };
        for c in self.webhook_configs.unwrap_or_default() {
            let mut c = c.ok_or("missing webhook config")?;
            c.http_config.get_or_insert_with(|| global.http_config.clone());
            r.webhook_configs.push(c);
        }
        for c in self.email_configs.unwrap_or_default() {
            let mut c = c.ok_or("missing email config")?;
            global.complete_email(&mut c)?;
            r.email_configs.push(c);
        }
        for c in self.slack_configs.unwrap_or_default() {
            let mut c = c.unwrap_or_default();
            global.complete_slack(&mut c)?;
            r.slack_configs.push(c);
        }
        for c in self.pagerduty_configs.unwrap_or_default() {
            let mut c = c.ok_or("missing pagerduty config")?;
            c.http_config.get_or_insert_with(|| global.http_config.clone());
            if c.url.is_none() {
                c.url = Some(global.pagerduty_url.clone().ok_or("no global PagerDuty URL set")?);
            }
            r.pagerduty_configs.push(c);
        }
        for c in self.sns_configs.unwrap_or_default() {
            let mut c = c.ok_or("missing sns config")?;
            c.http_config.get_or_insert_with(|| global.http_config.clone());
            r.sns_configs.push(c);
        }
        Ok(r)
    }
}

/// `webhook_configs` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Default true.
    #[serde(default)]
    pub send_resolved: Option<GoBool>,
    #[serde(default)]
    pub http_config: Option<HttpClientConfig>,
    #[serde(default)]
    pub url: Option<GoStr>,
    #[serde(default)]
    pub url_file: Option<GoStr>,
    #[serde(default)]
    pub max_alerts: Option<u64>,
    #[serde(default)]
    pub timeout: Option<GoDuration>,
    #[serde(default)]
    pub payload: Option<serde_norway::Value>,
}

impl WebhookConfig {
    fn check(&self) -> Result<(), String> {
        if let Some(h) = &self.http_config {
            h.check()?;
        }
        if let Some(u) = &self.url {
            check_template_url(u.as_str())?;
        }
        match (set(&self.url), set(&self.url_file)) {
            (false, false) => Err("one of url or url_file must be configured".into()),
            (true, true) => Err("at most one of url & url_file must be configured".into()),
            _ => Ok(()),
        }
    }

    /// Whether resolved alerts are sent (default true).
    pub fn send_resolved(&self) -> bool {
        self.send_resolved.is_none_or(|b| b.0)
    }
}

/// `email_configs` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Default false.
    #[serde(default)]
    pub send_resolved: Option<GoBool>,
    #[serde(default)]
    pub to: Option<GoStr>,
    #[serde(default)]
    pub from: Option<GoStr>,
    #[serde(default)]
    pub hello: Option<GoStr>,
    #[serde(default)]
    pub smarthost: Option<GoStr>,
    #[serde(default)]
    pub auth_username: Option<GoStr>,
    #[serde(default)]
    pub auth_password: Option<GoStr>,
    #[serde(default)]
    pub auth_password_file: Option<GoStr>,
    #[serde(default)]
    pub auth_secret: Option<GoStr>,
    #[serde(default)]
    pub auth_secret_file: Option<GoStr>,
    #[serde(default)]
    pub auth_identity: Option<GoStr>,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, GoStr>>,
    #[serde(default)]
    pub html: Option<GoStr>,
    #[serde(default)]
    pub text: Option<GoStr>,
    #[serde(default)]
    pub require_tls: Option<GoBool>,
    #[serde(default)]
    pub tls_config: Option<TlsConfig>,
    #[serde(default)]
    pub force_implicit_tls: Option<GoBool>,
    #[serde(default)]
    pub threading: Option<EmailThreading>,
}

/// `email_configs[].threading`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailThreading {
    #[serde(default)]
    pub enabled: Option<GoBool>,
    #[serde(default)]
    pub thread_by_date: Option<GoStr>,
}

impl EmailConfig {
    /// Whether resolved alerts are sent (default false).
    pub fn send_resolved(&self) -> bool {
        self.send_resolved.is_some_and(|b| b.0)
    }

    fn check(&self) -> Result<(), String> {
        if let Some(t) = &self.tls_config {
            t.check()?;
        }
        if let Some(s) = &self.smarthost {
            check_host_port(s.as_str())?;
        }
        if !set(&self.to) {
            return Err("missing to address in email config".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for k in self.headers.iter().flat_map(BTreeMap::keys) {
            let c = canonical_header(k);
            if !seen.insert(c.clone()) {
                return Err(format!("duplicate header {c:?} in email config"));
            }
        }
        if let Some(t) = &self.threading
            && t.enabled.is_some_and(|e| e.0)
        {
            if seen.contains("References") {
                return Err(
                    "conflicting configuration: threading.enabled conflicts with custom References header".into()
                );
            }
            if seen.contains("In-Reply-To") {
                return Err(
                    "conflicting configuration: threading.enabled conflicts with custom In-Reply-To header".into()
                );
            }
            if !matches!(t.thread_by_date.as_ref().map_or("", GoStr::as_str), "none" | "daily") {
                return Err("threading.thread_by_date must be either 'none' or 'daily'".into());
            }
        }
        Ok(())
    }

    /// The HTML body template (default `email.default.html`).
    pub fn html(&self) -> &str {
        self.html.as_ref().map_or("{{ template \"email.default.html\" . }}", GoStr::as_str)
    }
}

/// `slack_configs` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Default false.
    #[serde(default)]
    pub send_resolved: Option<GoBool>,
    #[serde(default)]
    pub http_config: Option<HttpClientConfig>,
    #[serde(default)]
    pub api_url: Option<GoStr>,
    #[serde(default)]
    pub api_url_file: Option<GoStr>,
    #[serde(default)]
    pub app_token: Option<GoStr>,
    #[serde(default)]
    pub app_token_file: Option<GoStr>,
    #[serde(default)]
    pub app_url: Option<GoStr>,
    #[serde(default)]
    pub channel: Option<GoStr>,
    #[serde(default)]
    pub message_text: Option<GoStr>,
    #[serde(default)]
    pub mrkdwn_in: Option<Vec<GoStr>>,
    #[serde(default)]
    pub short_fields: Option<GoBool>,
    #[serde(default)]
    pub link_names: Option<GoBool>,
    #[serde(default)]
    pub update_message: Option<GoBool>,
    #[serde(default)]
    pub image_url: Option<GoStr>,
    #[serde(default)]
    pub thumb_url: Option<GoStr>,
    #[serde(default)]
    pub timeout: Option<GoDuration>,
    #[serde(default)]
    pub username: Option<GoStr>,
    #[serde(default)]
    pub color: Option<GoStr>,
    #[serde(default)]
    pub title: Option<GoStr>,
    #[serde(default)]
    pub title_link: Option<GoStr>,
    #[serde(default)]
    pub icon_emoji: Option<GoStr>,
    #[serde(default)]
    pub icon_url: Option<GoStr>,
    #[serde(default)]
    pub pretext: Option<GoStr>,
    #[serde(default)]
    pub text: Option<GoStr>,
    #[serde(default)]
    pub fallback: Option<GoStr>,
    #[serde(default)]
    pub callback_id: Option<GoStr>,
    #[serde(default)]
    pub footer: Option<GoStr>,
    #[serde(default)]
    pub fields: Option<Vec<Option<SlackField>>>,
    #[serde(default)]
    pub actions: Option<Vec<Option<SlackAction>>>,
}

/// `slack_configs[].fields[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackField {
    #[serde(default)]
    pub title: Option<GoStr>,
    #[serde(default)]
    pub value: Option<GoStr>,
    #[serde(default)]
    pub short: Option<GoBool>,
}

/// `slack_configs[].actions[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackAction {
    #[serde(default, rename = "type")]
    pub kind: Option<GoStr>,
    #[serde(default)]
    pub text: Option<GoStr>,
    #[serde(default)]
    pub url: Option<GoStr>,
    #[serde(default)]
    pub style: Option<GoStr>,
    #[serde(default)]
    pub name: Option<GoStr>,
    #[serde(default)]
    pub value: Option<GoStr>,
    #[serde(default)]
    pub confirm: Option<SlackConfirm>,
}

/// `slack_configs[].actions[].confirm`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfirm {
    #[serde(default)]
    pub text: Option<GoStr>,
    #[serde(default)]
    pub title: Option<GoStr>,
    #[serde(default)]
    pub ok_text: Option<GoStr>,
    #[serde(default)]
    pub dismiss_text: Option<GoStr>,
}

impl SlackConfig {
    /// Whether resolved alerts are sent (default false).
    pub fn send_resolved(&self) -> bool {
        self.send_resolved.is_some_and(|b| b.0)
    }

    fn check(&self) -> Result<(), String> {
        if let Some(h) = &self.http_config {
            h.check()?;
        }
        if let Some(u) = &self.api_url {
            check_secret_url(u.as_str())?;
        }
        if let Some(u) = &self.app_url {
            check_url(u.as_str())?;
        }
        for f in self.fields.iter().flatten().flatten() {
            if !set(&f.title) {
                return Err("missing title in Slack field configuration".into());
            }
            if !set(&f.value) {
                return Err("missing value in Slack field configuration".into());
            }
        }
        for a in self.actions.iter().flatten().flatten() {
            if !set(&a.kind) {
                return Err("missing type in Slack action configuration".into());
            }
            if !set(&a.text) {
                return Err("missing text in Slack action configuration".into());
            }
            if let Some(c) = &a.confirm
                && !set(&c.text)
            {
                return Err("missing text in Slack confirmation configuration".into());
            }
            if !set(&a.url) && !set(&a.name) {
                return Err("missing name or url in Slack action configuration".into());
            }
        }
        if set(&self.api_url) && set(&self.api_url_file) {
            return Err("at most one of api_url & api_url_file must be configured".into());
        }
        if set(&self.app_token) && set(&self.app_token_file) {
            return Err("at most one of app_token & app_token_file must be configured".into());
        }
        if (set(&self.api_url) || set(&self.api_url_file)) && (set(&self.app_token) || set(&self.app_token_file)) {
            return Err("at most one of api_url/api_url_file & app_token/app_token_file must be configured".into());
        }
        if self.update_message.is_some_and(|u| u.0)
            && self.api_url.as_ref().map(GoStr::as_str) != Some("https://slack.com/api/chat.postMessage")
        {
            return Err("update_message can only be used with bot tokens. api_url must be set to https://slack.com/api/chat.postMessage".into());
        }
        Ok(())
    }
}

/// `pagerduty_configs` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyConfig {
    /// Default true.
    #[serde(default)]
    pub send_resolved: Option<GoBool>,
    #[serde(default)]
    pub http_config: Option<HttpClientConfig>,
    #[serde(default)]
    pub service_key: Option<GoStr>,
    #[serde(default)]
    pub service_key_file: Option<GoStr>,
    #[serde(default)]
    pub routing_key: Option<GoStr>,
    #[serde(default)]
    pub routing_key_file: Option<GoStr>,
    /// Completed from the global `pagerduty_url`.
    #[serde(default)]
    pub url: Option<GoStr>,
    #[serde(default)]
    pub client: Option<GoStr>,
    #[serde(default)]
    pub client_url: Option<GoStr>,
    #[serde(default)]
    pub description: Option<GoStr>,
    #[serde(default)]
    pub details: Option<BTreeMap<String, serde_norway::Value>>,
    #[serde(default)]
    pub images: Option<Vec<PagerdutyImage>>,
    #[serde(default)]
    pub links: Option<Vec<PagerdutyLink>>,
    #[serde(default)]
    pub source: Option<GoStr>,
    #[serde(default)]
    pub severity: Option<GoStr>,
    #[serde(default)]
    pub class: Option<GoStr>,
    #[serde(default)]
    pub component: Option<GoStr>,
    #[serde(default)]
    pub group: Option<GoStr>,
    #[serde(default)]
    pub timeout: Option<GoDuration>,
}

/// `pagerduty_configs[].images[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyImage {
    #[serde(default)]
    pub src: Option<GoStr>,
    #[serde(default)]
    pub alt: Option<GoStr>,
    #[serde(default)]
    pub href: Option<GoStr>,
}

/// `pagerduty_configs[].links[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyLink {
    #[serde(default)]
    pub href: Option<GoStr>,
    #[serde(default)]
    pub text: Option<GoStr>,
}

impl PagerdutyConfig {
    /// Whether resolved alerts are sent (default true).
    pub fn send_resolved(&self) -> bool {
        self.send_resolved.is_none_or(|b| b.0)
    }

    fn check(&self) -> Result<(), String> {
        if let Some(h) = &self.http_config {
            h.check()?;
        }
        if let Some(u) = &self.url {
            check_url(u.as_str())?;
        }
        if !set(&self.routing_key)
            && !set(&self.service_key)
            && !set(&self.routing_key_file)
            && !set(&self.service_key_file)
        {
            return Err("missing service or routing key in PagerDuty config".into());
        }
        if set(&self.routing_key) && set(&self.routing_key_file) {
            return Err("at most one of routing_key & routing_key_file must be configured".into());
        }
        if set(&self.service_key) && set(&self.service_key_file) {
            return Err("at most one of service_key & service_key_file must be configured".into());
        }
        Ok(())
    }
}

/// `sns_configs` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnsConfig {
    /// Default true.
    #[serde(default)]
    pub send_resolved: Option<GoBool>,
    #[serde(default)]
    pub http_config: Option<HttpClientConfig>,
    #[serde(default)]
    pub api_url: Option<GoStr>,
    #[serde(default)]
    pub sigv4: Option<SigV4Config>,
    #[serde(default)]
    pub topic_arn: Option<GoStr>,
    #[serde(default)]
    pub phone_number: Option<GoStr>,
    #[serde(default)]
    pub target_arn: Option<GoStr>,
    #[serde(default)]
    pub subject: Option<GoStr>,
    #[serde(default)]
    pub message: Option<GoStr>,
    #[serde(default)]
    pub attributes: Option<BTreeMap<String, GoStr>>,
    #[serde(default)]
    pub use_aws_http_client: Option<GoBool>,
}

/// `sns_configs[].sigv4`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigV4Config {
    #[serde(default)]
    pub region: Option<GoStr>,
    #[serde(default)]
    pub access_key: Option<GoStr>,
    #[serde(default)]
    pub secret_key: Option<GoStr>,
    #[serde(default)]
    pub profile: Option<GoStr>,
    #[serde(default)]
    pub role_arn: Option<GoStr>,
    #[serde(default)]
    pub external_id: Option<GoStr>,
    #[serde(default)]
    pub use_fips_sts_endpoint: Option<GoBool>,
    #[serde(default)]
    pub service_name: Option<GoStr>,
}

impl SnsConfig {
    fn check(&self) -> Result<(), String> {
        if let Some(h) = &self.http_config {
            h.check()?;
        }
        if let Some(s) = &self.sigv4 {
            if set(&s.access_key) != set(&s.secret_key) {
                return Err("must provide a AWS SigV4 Access key and Secret Key if credentials are specified in the SigV4 config".into());
            }
            if set(&s.external_id) && !set(&s.role_arn) {
                return Err("external_id can only be used with role_arn".into());
            }
        }
        // Alertmanager's check is an exclusive or of "is empty" over the
        // three targets: none or two set is refused, one or three accepted.
        let empties = [&self.target_arn, &self.topic_arn, &self.phone_number].iter().filter(|v| !set(v)).count();
        if empties % 2 == 1 {
            return Err("must provide either a Target ARN, Topic ARN, or Phone Number for SNS config".into());
        }
        Ok(())
    }

    /// Whether resolved alerts are sent (default true).
    pub fn send_resolved(&self) -> bool {
        self.send_resolved.is_none_or(|b| b.0)
    }
}
