//! Alertmanager's configuration file (`config.Load`): `global`, the
//! routing tree, inhibition rules, receivers, time intervals, template
//! globs — decoded strictly (unknown keys refused) and checked in
//! Alertmanager's order with its messages.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::http::{HttpClientConfig, TlsConfig, check_host_port, check_secret_url, check_url};
use crate::matchers::{MatchType, Matcher, compile_anchored, is_legacy_label_name, parse_matchers};
use crate::receivers::{EmailConfig, RawReceiver, Receiver, SlackConfig};
use crate::timeinterval::{RawSet, TimeIntervalSet};
use crate::yaml::{GoBool, GoStr, set};

/// A checked Alertmanager configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub global: Global,
    pub route: Route,
    pub inhibit_rules: Vec<InhibitRule>,
    pub receivers: Vec<Receiver>,
    /// Template globs.
    pub templates: Vec<String>,
    /// `mute_time_intervals` then `time_intervals` (one namespace).
    pub time_intervals: Vec<TimeIntervalSet>,
}

/// `global`, with Alertmanager's defaults.
#[derive(Debug, Clone)]
pub struct Global {
    pub resolve_timeout_ms: i64,
    pub http_config: HttpClientConfig,
    pub smtp_from: String,
    pub smtp_hello: String,
    pub smtp_smarthost: String,
    pub smtp_auth_username: String,
    pub smtp_auth_password: String,
    pub smtp_auth_password_file: String,
    pub smtp_auth_secret: String,
    pub smtp_auth_secret_file: String,
    pub smtp_auth_identity: String,
    pub smtp_require_tls: bool,
    pub smtp_tls_config: Option<TlsConfig>,
    pub smtp_force_implicit_tls: Option<bool>,
    pub slack_api_url: Option<GoStr>,
    pub slack_api_url_file: String,
    pub slack_app_token: String,
    pub slack_app_token_file: String,
    pub slack_app_url: Option<GoStr>,
    pub pagerduty_url: Option<GoStr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "members decoded to be checked, not used")]
struct RawGlobal {
    #[serde(default)]
    resolve_timeout: Option<GoStr>,
    #[serde(default, deserialize_with = "present")]
    http_config: Option<Option<HttpClientConfig>>,
    #[serde(default)]
    smtp_from: Option<GoStr>,
    #[serde(default, deserialize_with = "present")]
    smtp_hello: Option<Option<GoStr>>,
    #[serde(default)]
    smtp_smarthost: Option<GoStr>,
    #[serde(default)]
    smtp_auth_username: Option<GoStr>,
    #[serde(default)]
    smtp_auth_password: Option<GoStr>,
    #[serde(default)]
    smtp_auth_password_file: Option<GoStr>,
    #[serde(default)]
    smtp_auth_secret: Option<GoStr>,
    #[serde(default)]
    smtp_auth_secret_file: Option<GoStr>,
    #[serde(default)]
    smtp_auth_identity: Option<GoStr>,
    #[serde(default, deserialize_with = "present")]
    smtp_require_tls: Option<Option<GoBool>>,
    #[serde(default)]
    smtp_tls_config: Option<TlsConfig>,
    #[serde(default)]
    smtp_force_implicit_tls: Option<GoBool>,
    #[serde(default)]
    slack_api_url: Option<GoStr>,
    #[serde(default)]
    slack_api_url_file: Option<GoStr>,
    #[serde(default)]
    slack_app_token: Option<GoStr>,
    #[serde(default)]
    slack_app_token_file: Option<GoStr>,
    #[serde(default, deserialize_with = "present")]
    slack_app_url: Option<Option<GoStr>>,
    #[serde(default, deserialize_with = "present")]
    pagerduty_url: Option<Option<GoStr>>,
    // Settings of receiver types PromLake does not deliver to: checked as
    // Alertmanager checks them, otherwise unused.
    #[serde(default, deserialize_with = "present")]
    opsgenie_api_url: Option<Option<GoStr>>,
    #[serde(default)]
    opsgenie_api_key: Option<GoStr>,
    #[serde(default)]
    opsgenie_api_key_file: Option<GoStr>,
    #[serde(default, deserialize_with = "present")]
    wechat_api_url: Option<Option<GoStr>>,
    #[serde(default)]
    wechat_api_secret: Option<GoStr>,
    #[serde(default)]
    wechat_api_secret_file: Option<GoStr>,
    #[serde(default)]
    wechat_api_corp_id: Option<GoStr>,
    #[serde(default, deserialize_with = "present")]
    victorops_api_url: Option<Option<GoStr>>,
    #[serde(default)]
    victorops_api_key: Option<GoStr>,
    #[serde(default)]
    victorops_api_key_file: Option<GoStr>,
    #[serde(default, deserialize_with = "present")]
    telegram_api_url: Option<Option<GoStr>>,
    #[serde(default)]
    telegram_bot_token: Option<GoStr>,
    #[serde(default)]
    telegram_bot_token_file: Option<GoStr>,
    #[serde(default, deserialize_with = "present")]
    webex_api_url: Option<Option<GoStr>>,
    #[serde(default, deserialize_with = "present")]
    rocketchat_api_url: Option<Option<GoStr>>,
    #[serde(default)]
    rocketchat_token: Option<GoStr>,
    #[serde(default)]
    rocketchat_token_file: Option<GoStr>,
    #[serde(default)]
    rocketchat_token_id: Option<GoStr>,
    #[serde(default)]
    rocketchat_token_id_file: Option<GoStr>,
    #[serde(default)]
    mattermost_webhook_url: Option<GoStr>,
    #[serde(default)]
    mattermost_webhook_url_file: Option<GoStr>,
    #[serde(default)]
    jira_api_url: Option<GoStr>,
}

/// A member that may be present but null (`key: ~`): `Some(None)`.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn text(v: Option<GoStr>) -> String {
    v.map(|s| s.0).unwrap_or_default()
}

/// A URL member with a default: absent keeps the default, `null` clears it.
fn url_default(v: Option<Option<GoStr>>, default: &str) -> Option<GoStr> {
    match v {
        None => Some(GoStr(default.to_owned())),
        Some(v) => v,
    }
}

impl RawGlobal {
    fn check(self) -> Result<Global, String> {
        let resolve_timeout = duration(self.resolve_timeout.as_ref())?.unwrap_or(300_000);
        if let Some(Some(h)) = &self.http_config {
            h.check()?;
        }
        if let Some(t) = &self.smtp_tls_config {
            t.check()?;
        }
        check_host_port(self.smtp_smarthost.as_ref().map_or("", GoStr::as_str))?;
        if let Some(u) = &self.slack_api_url {
            check_secret_url(u.as_str())?;
        }
        if let Some(u) = &self.mattermost_webhook_url {
            check_secret_url(u.as_str())?;
        }
        for u in [
            &self.slack_app_url,
            &self.pagerduty_url,
            &self.opsgenie_api_url,
            &self.wechat_api_url,
            &self.victorops_api_url,
            &self.telegram_api_url,
            &self.webex_api_url,
            &self.rocketchat_api_url,
        ]
        .into_iter()
        .flatten()
        .flatten()
        {
            check_url(u.as_str())?;
        }
        if let Some(u) = &self.jira_api_url {
            check_url(u.as_str())?;
        }
        let pairs: [(&Option<GoStr>, &Option<GoStr>, &str, &str); 2] = [
            (&self.slack_app_token, &self.slack_app_token_file, "slack_app_token", "slack_app_token_file"),
            (&self.slack_api_url, &self.slack_api_url_file, "slack_api_url", "slack_api_url_file"),
        ];
        for (a, b, an, bn) in pairs {
            if set(a) && set(b) {
                return Err(format!("at most one of {an} & {bn} must be configured"));
            }
        }
        let slack_app_url = url_default(self.slack_app_url, "https://slack.com/api/chat.postMessage");
        let token = set(&self.slack_app_token) || set(&self.slack_app_token_file);
        let api = set(&self.slack_api_url) || set(&self.slack_api_url_file);
        if token && api && self.slack_api_url.as_ref().map(GoStr::as_str) != slack_app_url.as_ref().map(GoStr::as_str) {
            return Err("at most one of slack_app_token/slack_app_token_file & slack_api_url/slack_api_url_file must be configured".into());
        }
        let pairs: [(&Option<GoStr>, &Option<GoStr>, &str, &str); 9] = [
            (&self.opsgenie_api_key, &self.opsgenie_api_key_file, "opsgenie_api_key", "opsgenie_api_key_file"),
            (&self.victorops_api_key, &self.victorops_api_key_file, "victorops_api_key", "victorops_api_key_file"),
            (&self.telegram_bot_token, &self.telegram_bot_token_file, "telegram_bot_token", "telegram_bot_token_file"),
            (&self.smtp_auth_password, &self.smtp_auth_password_file, "smtp_auth_password", "smtp_auth_password_file"),
            (&self.rocketchat_token, &self.rocketchat_token_file, "rocketchat_token", "rocketchat_token_file"),
            (
                &self.rocketchat_token_id,
                &self.rocketchat_token_id_file,
                "rocketchat_token_id",
                "rocketchat_token_id_file",
            ),
            (&self.smtp_auth_secret, &self.smtp_auth_secret_file, "smtp_auth_secret", "smtp_auth_secret_file"),
            (&self.wechat_api_secret, &self.wechat_api_secret_file, "wechat_api_secret", "wechat_api_secret_file"),
            (
                &self.mattermost_webhook_url,
                &self.mattermost_webhook_url_file,
                "mattermost_webhook_url",
                "mattermost_webhook_url_file",
            ),
        ];
        for (a, b, an, bn) in pairs {
            if set(a) && set(b) {
                return Err(format!("at most one of {an} & {bn} must be configured"));
            }
        }
        Ok(Global {
            resolve_timeout_ms: resolve_timeout,
            http_config: match self.http_config {
                None => default_http_config(),
                Some(h) => h.unwrap_or_default(),
            },
            smtp_from: text(self.smtp_from),
            smtp_hello: match self.smtp_hello {
                None => "localhost".into(),
                Some(h) => text(h),
            },
            smtp_smarthost: text(self.smtp_smarthost),
            smtp_auth_username: text(self.smtp_auth_username),
            smtp_auth_password: text(self.smtp_auth_password),
            smtp_auth_password_file: text(self.smtp_auth_password_file),
            smtp_auth_secret: text(self.smtp_auth_secret),
            smtp_auth_secret_file: text(self.smtp_auth_secret_file),
            smtp_auth_identity: text(self.smtp_auth_identity),
            smtp_require_tls: match self.smtp_require_tls {
                None => true,
                Some(b) => b.is_some_and(|b| b.0),
            },
            smtp_tls_config: self.smtp_tls_config,
            smtp_force_implicit_tls: self.smtp_force_implicit_tls.map(|b| b.0),
            slack_api_url: self.slack_api_url.filter(|s| !s.is_empty()),
            slack_api_url_file: text(self.slack_api_url_file),
            slack_app_token: text(self.slack_app_token),
            slack_app_token_file: text(self.slack_app_token_file),
            slack_app_url,
            pagerduty_url: url_default(self.pagerduty_url, "https://events.pagerduty.com/v2/enqueue"),
        })
    }
}

fn default_http_config() -> HttpClientConfig {
    HttpClientConfig { follow_redirects: Some(GoBool(true)), enable_http2: Some(GoBool(true)), ..Default::default() }
}

impl Default for Global {
    fn default() -> Self {
        // An absent `global` is the defaults, which always pass.
        RawGlobal::default().check().unwrap_or_else(|_| unreachable_default())
    }
}

fn unreachable_default() -> Global {
    Global {
        resolve_timeout_ms: 300_000,
        http_config: default_http_config(),
        smtp_from: String::new(),
        smtp_hello: "localhost".into(),
        smtp_smarthost: String::new(),
        smtp_auth_username: String::new(),
        smtp_auth_password: String::new(),
        smtp_auth_password_file: String::new(),
        smtp_auth_secret: String::new(),
        smtp_auth_secret_file: String::new(),
        smtp_auth_identity: String::new(),
        smtp_require_tls: true,
        smtp_tls_config: None,
        smtp_force_implicit_tls: None,
        slack_api_url: None,
        slack_api_url_file: String::new(),
        slack_app_token: String::new(),
        slack_app_token_file: String::new(),
        slack_app_url: Some(GoStr("https://slack.com/api/chat.postMessage".into())),
        pagerduty_url: Some(GoStr("https://events.pagerduty.com/v2/enqueue".into())),
    }
}

impl Global {
    /// An e-mail configuration completed from `smtp_*`.
    pub(crate) fn complete_email(&self, c: &mut EmailConfig) -> Result<(), String> {
        let fill = |v: &mut Option<GoStr>, g: &str| {
            if !set(v) {
                *v = Some(GoStr(g.to_owned()));
            }
        };
        if c.tls_config.is_none() {
            c.tls_config = self.smtp_tls_config.clone();
        }
        if !set(&c.smarthost) {
            if self.smtp_smarthost.is_empty() {
                return Err("no global SMTP smarthost set".into());
            }
            c.smarthost = Some(GoStr(self.smtp_smarthost.clone()));
        }
        if !set(&c.from) {
            if self.smtp_from.is_empty() {
                return Err("no global SMTP from set".into());
            }
            c.from = Some(GoStr(self.smtp_from.clone()));
        }
        fill(&mut c.hello, &self.smtp_hello);
        fill(&mut c.auth_username, &self.smtp_auth_username);
        if !set(&c.auth_password) && !set(&c.auth_password_file) {
            c.auth_password = Some(GoStr(self.smtp_auth_password.clone()));
            c.auth_password_file = Some(GoStr(self.smtp_auth_password_file.clone()));
        }
        fill(&mut c.auth_secret, &self.smtp_auth_secret);
        fill(&mut c.auth_secret_file, &self.smtp_auth_secret_file);
        fill(&mut c.auth_identity, &self.smtp_auth_identity);
        if c.require_tls.is_none() {
            c.require_tls = Some(GoBool(self.smtp_require_tls));
        }
        if c.force_implicit_tls.is_none() {
            c.force_implicit_tls = self.smtp_force_implicit_tls.map(GoBool);
        }
        Ok(())
    }

    /// A Slack configuration completed from `slack_*`.
    pub(crate) fn complete_slack(&self, c: &mut SlackConfig) -> Result<(), String> {
        if c.app_url.is_none() {
            c.app_url = Some(self.slack_app_url.clone().ok_or("no global Slack App URL set")?);
        }
        let own_auth = c.http_config.as_ref().is_some_and(HttpClientConfig::has_authorization);
        if !set(&c.app_token) && !set(&c.app_token_file) && !own_auth && !set(&c.api_url) {
            c.app_token = Some(GoStr(self.slack_app_token.clone()));
            c.app_token_file = Some(GoStr(self.slack_app_token_file.clone()));
        }
        if !set(&c.api_url) && !set(&c.api_url_file) {
            c.api_url = self.slack_api_url.clone();
            c.api_url_file = Some(GoStr(self.slack_api_url_file.clone()));
        }
        let token = set(&c.app_token) || set(&c.app_token_file);
        if !set(&c.api_url) && !set(&c.api_url_file) && !token {
            return Err("no Slack API URL nor App token set either inline or in a file".into());
        }
        let http = c.http_config.get_or_insert_with(|| self.http_config.clone());
        if token && http.has_authorization() {
            return Err("http authorization can't be set when using Slack App tokens".into());
        }
        Ok(())
    }
}

/// A node of the routing tree.
#[derive(Debug, Clone, Default)]
pub struct Route {
    /// Empty: inherited from the parent.
    pub receiver: String,
    /// `None`: inherited; `Some([])`: no grouping.
    pub group_by: Option<Vec<String>>,
    /// `group_by: ['...']`.
    pub group_by_all: bool,
    /// `continue`.
    pub continue_matching: bool,
    /// `match`, `match_re` and `matchers` together.
    pub matchers: Vec<Matcher>,
    pub group_wait_ms: Option<i64>,
    pub group_interval_ms: Option<i64>,
    pub repeat_interval_ms: Option<i64>,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
    pub routes: Vec<Route>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(default)]
    receiver: Option<GoStr>,
    #[serde(default)]
    group_by: Option<Vec<GoStr>>,
    #[serde(default, rename = "continue")]
    continue_matching: Option<GoBool>,
    #[serde(default, rename = "match")]
    match_eq: Option<BTreeMap<String, GoStr>>,
    #[serde(default)]
    match_re: Option<BTreeMap<String, Option<GoStr>>>,
    #[serde(default)]
    matchers: Option<Vec<GoStr>>,
    #[serde(default)]
    group_wait: Option<GoStr>,
    #[serde(default)]
    group_interval: Option<GoStr>,
    #[serde(default)]
    repeat_interval: Option<GoStr>,
    #[serde(default)]
    mute_time_intervals: Option<Vec<GoStr>>,
    #[serde(default)]
    active_time_intervals: Option<Vec<GoStr>>,
    #[serde(default)]
    routes: Option<Vec<Option<RawRoute>>>,
}

/// `match_re`: each value compiled anchored, keys legacy label names.
fn match_re(m: Option<BTreeMap<String, Option<GoStr>>>) -> Result<Vec<Matcher>, String> {
    let mut out = Vec::new();
    let m = m.unwrap_or_default();
    for v in m.values().flatten() {
        compile_anchored(v.as_str())?;
    }
    for (k, v) in m {
        if !is_legacy_label_name(&k) {
            return Err(format!("invalid label name {k:?}"));
        }
        let v = v.ok_or_else(|| format!("invalid regexp value for {k:?}"))?;
        // Alertmanager keeps a match_re value as its anchored form (what
        // route keys and group keys print).
        out.push(Matcher::new(&k, MatchType::Regexp, &format!("^(?:{})$", v.as_str()))?);
    }
    Ok(out)
}

fn matcher_list(list: Option<Vec<GoStr>>) -> Result<Vec<Matcher>, String> {
    let mut out = Vec::new();
    for s in list.unwrap_or_default() {
        out.extend(parse_matchers(s.as_str())?);
    }
    Ok(out)
}

fn names(v: Option<Vec<GoStr>>) -> Vec<String> {
    v.unwrap_or_default().into_iter().map(|s| s.0).collect()
}

impl RawRoute {
    fn check(self) -> Result<Route, String> {
        let group_wait = duration(self.group_wait.as_ref())?;
        let group_interval = duration(self.group_interval.as_ref())?;
        let repeat_interval = duration(self.repeat_interval.as_ref())?;
        let mut routes = Vec::new();
        for r in self.routes.unwrap_or_default() {
            routes.push(r.ok_or("a route of routes is null")?.check()?);
        }
        let mut matchers = match_re(self.match_re)?;
        matchers.extend(matcher_list(self.matchers)?);
        let mut eq = Vec::new();
        for (k, v) in self.match_eq.unwrap_or_default() {
            if !is_legacy_label_name(&k) {
                return Err(format!("invalid label name {k:?}"));
            }
            eq.push(Matcher::new(&k, MatchType::Equal, v.as_str())?);
        }
        eq.extend(matchers);
        let mut group_by_all = false;
        let group_by = match self.group_by {
            None => None,
            Some(list) => {
                let mut labels = Vec::new();
                for l in list {
                    if l.as_str() == "..." {
                        group_by_all = true;
                        continue;
                    }
                    if l.is_empty() {
                        return Err(format!("invalid label name {:?} in group_by list", l.as_str()));
                    }
                    labels.push(l.0);
                }
                if group_by_all && !labels.is_empty() {
                    return Err("cannot have wildcard group_by (`...`) and other labels at the same time".into());
                }
                let mut seen = BTreeSet::new();
                for l in &labels {
                    if !seen.insert(l.clone()) {
                        return Err(format!("duplicated label {l:?} in group_by"));
                    }
                }
                Some(labels)
            }
        };
        if group_interval == Some(0) {
            return Err("group_interval cannot be zero".into());
        }
        if repeat_interval == Some(0) {
            return Err("repeat_interval cannot be zero".into());
        }
        Ok(Route {
            receiver: text(self.receiver),
            group_by,
            group_by_all,
            continue_matching: self.continue_matching.is_some_and(|b| b.0),
            matchers: eq,
            group_wait_ms: group_wait,
            group_interval_ms: group_interval,
            repeat_interval_ms: repeat_interval,
            mute_time_intervals: names(self.mute_time_intervals),
            active_time_intervals: names(self.active_time_intervals),
            routes,
        })
    }
}

impl Route {
    /// Post-order walk (children first, as Alertmanager checks).
    fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Route) -> Result<(), String>) -> Result<(), String> {
        for r in &self.routes {
            r.walk(f)?;
        }
        f(self)
    }

    /// The number of nodes of the tree under (and including) this route.
    pub fn node_count(&self) -> usize {
        1 + self.routes.iter().map(Route::node_count).sum::<usize>()
    }

    /// The longest `repeat_interval` set anywhere in the tree, in
    /// milliseconds (0 when none is: the default, 4 h, applies).
    pub fn max_repeat_interval_ms(&self) -> i64 {
        let own = self.repeat_interval_ms.unwrap_or(0);
        self.routes.iter().map(Route::max_repeat_interval_ms).fold(own, i64::max)
    }
}

/// An inhibition rule.
#[derive(Debug, Clone, Default)]
pub struct InhibitRule {
    pub name: String,
    pub source_matchers: Vec<Matcher>,
    pub target_matchers: Vec<Matcher>,
    pub equal: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInhibitRule {
    #[serde(default)]
    name: Option<GoStr>,
    #[serde(default)]
    source_match: Option<BTreeMap<String, GoStr>>,
    #[serde(default)]
    source_match_re: Option<BTreeMap<String, Option<GoStr>>>,
    #[serde(default)]
    source_matchers: Option<Vec<GoStr>>,
    #[serde(default)]
    target_match: Option<BTreeMap<String, GoStr>>,
    #[serde(default)]
    target_match_re: Option<BTreeMap<String, Option<GoStr>>>,
    #[serde(default)]
    target_matchers: Option<Vec<GoStr>>,
    #[serde(default)]
    equal: Option<Vec<GoStr>>,
}

impl RawInhibitRule {
    fn check(self) -> Result<InhibitRule, String> {
        let source_re = match_re(self.source_match_re)?;
        let source_list = matcher_list(self.source_matchers)?;
        let target_re = match_re(self.target_match_re)?;
        let target_list = matcher_list(self.target_matchers)?;
        let eq = |m: Option<BTreeMap<String, GoStr>>| -> Result<Vec<Matcher>, String> {
            let mut out = Vec::new();
            for (k, v) in m.unwrap_or_default() {
                if !is_legacy_label_name(&k) {
                    return Err(format!("invalid label name {k:?}"));
                }
                out.push(Matcher::new(&k, MatchType::Equal, v.as_str())?);
            }
            Ok(out)
        };
        let mut source_matchers = eq(self.source_match)?;
        let mut target_matchers = eq(self.target_match)?;
        let equal = names(self.equal);
        if let Some(bad) = equal.iter().find(|l| l.is_empty()) {
            return Err(format!("invalid label name {bad:?} in equal list"));
        }
        source_matchers.extend(source_re);
        source_matchers.extend(source_list);
        target_matchers.extend(target_re);
        target_matchers.extend(target_list);
        Ok(InhibitRule { name: text(self.name), source_matchers, target_matchers, equal })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    global: Option<RawGlobal>,
    #[serde(default)]
    route: Option<RawRoute>,
    #[serde(default)]
    inhibit_rules: Option<Vec<Option<RawInhibitRule>>>,
    #[serde(default)]
    receivers: Option<Vec<Option<RawReceiver>>>,
    #[serde(default)]
    templates: Option<Vec<GoStr>>,
    #[serde(default)]
    mute_time_intervals: Option<Vec<Option<RawSet>>>,
    #[serde(default)]
    time_intervals: Option<Vec<Option<RawSet>>>,
    #[serde(default)]
    tracing: Option<RawTracing>,
    #[serde(default)]
    event_recorder: Option<serde_norway::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "members decoded to be checked, not used")]
struct RawTracing {
    #[serde(default)]
    client_type: Option<GoStr>,
    #[serde(default)]
    endpoint: Option<GoStr>,
    #[serde(default)]
    sampling_fraction: Option<f64>,
    #[serde(default)]
    insecure: Option<GoBool>,
    #[serde(default)]
    tls_config: Option<TlsConfig>,
    #[serde(default)]
    headers: Option<BTreeMap<String, GoStr>>,
    #[serde(default)]
    compression: Option<GoStr>,
    #[serde(default)]
    timeout: Option<GoStr>,
}

impl RawTracing {
    fn check(&self) -> Result<(), String> {
        let client = self.client_type.as_ref().map_or("grpc", GoStr::as_str);
        let client = if client.is_empty() { "grpc" } else { client };
        if client != "http" && client != "grpc" {
            return Err(format!("expected tracing client type to be to be http or grpc, but got {client}"));
        }
        if !set(&self.endpoint) {
            return Err("tracing endpoint must be set".into());
        }
        if let Some(c) = &self.compression
            && !c.is_empty()
            && c.as_str() != "gzip"
        {
            return Err(format!("invalid compression type {c} provided, valid options: gzip"));
        }
        if let Some(t) = &self.tls_config {
            t.check()?;
        }
        duration(self.timeout.as_ref())?;
        Ok(())
    }
}

/// A `model.Duration` member (a validator in Alertmanager: its error is
/// reported bare); `None` when absent.
fn duration(v: Option<&GoStr>) -> Result<Option<i64>, String> {
    v.map(|d| crate::yaml::parse_model_duration(d.as_str())).transpose()
}

/// Why a configuration is refused: Alertmanager refuses it (`amtool
/// check-config` fails), or it uses a receiver type PromLake does not
/// deliver to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// Alertmanager's message.
    Invalid(String),
    /// The receiver and the type PromLake does not deliver to.
    UnsupportedReceiver { receiver: String, kind: &'static str },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Invalid(m) => f.write_str(m),
            ConfigError::UnsupportedReceiver { receiver, kind } => write!(
                f,
                "receiver {receiver:?} uses {kind}_configs: PromLake delivers only to {} receivers",
                crate::receivers::SUPPORTED_RECEIVER_TYPES.join(", ")
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Parses and checks an Alertmanager configuration file as `config.Load`
/// does, then refuses receiver types PromLake does not deliver to.
///
/// # Errors
/// [`ConfigError`].
pub fn parse_config(yaml: &str) -> Result<Config, ConfigError> {
    let invalid = ConfigError::Invalid;
    let first_doc = first_document(yaml);
    let raw: RawConfig = if first_doc.trim().is_empty() || is_only_comments(first_doc) {
        return Err(invalid("no route provided in config".into()));
    } else {
        serde_norway::from_str(first_doc).map_err(|e| invalid(yaml_error(&e)))?
    };
    let raw_receivers = raw.receivers.unwrap_or_default();
    // Decode-time checks (a null receiver is not checked), then
    // Config.UnmarshalYAML's, in Alertmanager's order.
    for r in raw_receivers.iter().flatten() {
        r.check().map_err(invalid)?;
    }
    let global = raw.global.unwrap_or_default().check().map_err(invalid)?;
    let route = raw.route.map(RawRoute::check).transpose().map_err(invalid)?;
    let mut inhibit_rules = Vec::new();
    for r in raw.inhibit_rules.unwrap_or_default() {
        inhibit_rules.push(match r {
            Some(r) => r.check().map_err(invalid)?,
            None => InhibitRule::default(),
        });
    }
    let sets = |list: Option<Vec<Option<RawSet>>>, mute: bool| -> Result<Vec<TimeIntervalSet>, String> {
        list.unwrap_or_default()
            .into_iter()
            .map(|s| match s {
                Some(s) => s.check(mute),
                None => Ok(TimeIntervalSet::default()),
            })
            .collect()
    };
    let mute = sets(raw.mute_time_intervals, true).map_err(invalid)?;
    let active = sets(raw.time_intervals, false).map_err(invalid)?;
    if let Some(t) = &raw.tracing {
        t.check().map_err(invalid)?;
    }
    if let Some(e) = &raw.event_recorder {
        check_event_recorder(e).map_err(invalid)?;
    }
    let mut seen = BTreeSet::new();
    let mut receivers = Vec::new();
    let mut unsupported = None;
    for r in raw_receivers {
        let r = r.unwrap_or_default();
        let name = r.name.as_ref().map_or(String::new(), |n| n.0.clone());
        if seen.contains(&name) {
            return Err(invalid(format!("notification config name {name:?} is not unique")));
        }
        if unsupported.is_none()
            && let Some(kind) = r.unsupported_type()
        {
            unsupported = Some(ConfigError::UnsupportedReceiver { receiver: name.clone(), kind });
        }
        receivers.push(r.resolve(&global).map_err(invalid)?);
        seen.insert(name);
    }
    let route = route.ok_or_else(|| invalid("no routes provided".into()))?;
    if route.receiver.is_empty() {
        return Err(invalid("root route must specify a default receiver".into()));
    }
    if !route.matchers.is_empty() {
        return Err(invalid("root route must not have any matchers".into()));
    }
    if !route.mute_time_intervals.is_empty() {
        return Err(invalid("root route must not have any mute time intervals".into()));
    }
    if !route.active_time_intervals.is_empty() {
        return Err(invalid("root route must not have any active time intervals".into()));
    }
    route
        .walk(&mut |r| {
            if !r.receiver.is_empty() && !seen.contains(&r.receiver) {
                return Err(format!("undefined receiver {:?} used in route", r.receiver));
            }
            Ok(())
        })
        .map_err(invalid)?;
    let mut interval_names = BTreeSet::new();
    for s in &mute {
        if !interval_names.insert(s.name.clone()) {
            return Err(invalid(format!("mute time interval {:?} is not unique", s.name)));
        }
    }
    for s in &active {
        if !interval_names.insert(s.name.clone()) {
            return Err(invalid(format!("time interval {:?} is not unique", s.name)));
        }
    }
    route
        .walk(&mut |r| {
            for name in r.active_time_intervals.iter().chain(&r.mute_time_intervals) {
                if !interval_names.contains(name) {
                    return Err(format!("undefined time interval {name:?} used in route"));
                }
            }
            Ok(())
        })
        .map_err(invalid)?;
    if route.continue_matching {
        return Err(invalid("cannot have continue in root route".into()));
    }
    if let Some(e) = unsupported {
        return Err(e);
    }
    let mut time_intervals = mute;
    time_intervals.extend(active);
    Ok(Config { global, route, inhibit_rules, receivers, templates: names(raw.templates), time_intervals })
}

fn check_event_recorder(v: &serde_norway::Value) -> Result<(), String> {
    let list = |key: &str| v.get(key).and_then(serde_norway::Value::as_sequence).cloned().unwrap_or_default();
    for f in list("file_outputs") {
        if f.get("path").and_then(serde_norway::Value::as_str).unwrap_or("").is_empty() {
            return Err("event_recorder file output requires a path".into());
        }
    }
    for w in list("webhook_outputs") {
        let url = w.get("url").and_then(serde_norway::Value::as_str).unwrap_or("");
        if url.is_empty() {
            return Err("event_recorder webhook output requires a url".into());
        }
        if url == "<secret>" {
            return Err("event_recorder webhook output requires an absolute http(s) url".into());
        }
        check_secret_url(url)?;
    }
    Ok(())
}

/// The text of the first YAML document (Alertmanager reads only it).
fn first_document(yaml: &str) -> &str {
    let mut offset = 0;
    let mut started = false;
    for line in yaml.split_inclusive('\n') {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") {
            if started {
                return &yaml[..offset];
            }
        } else if !trimmed.trim().is_empty() && !trimmed.trim_start().starts_with('#') {
            started = true;
        }
        offset += line.len();
    }
    yaml
}

fn is_only_comments(doc: &str) -> bool {
    doc.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---"
    })
}

/// A YAML decoding error as one line.
fn yaml_error(e: &serde_norway::Error) -> String {
    let msg = e.to_string();
    match e.location() {
        Some(loc) if !msg.contains("line ") => format!("yaml: line {}: {msg}", loc.line()),
        _ => format!("yaml: {msg}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(yaml: &str) -> String {
        parse_config(yaml).unwrap_err().to_string()
    }

    const BASE: &str = "route:\n  receiver: r\nreceivers:\n  - name: r\n";

    #[test]
    fn a_minimal_configuration_has_alertmanagers_defaults() {
        let c = parse_config(BASE).unwrap();
        assert_eq!(c.global.resolve_timeout_ms, 300_000);
        assert_eq!(c.global.smtp_hello, "localhost");
        assert_eq!(c.route.node_count(), 1);
        assert_eq!(c.receivers[0].name, "r");
    }

    #[test]
    fn alertmanagers_messages() {
        assert_eq!(err(""), "no route provided in config");
        assert_eq!(err("receivers: [{name: r}]\n"), "no routes provided");
        assert_eq!(err("route: {}\nreceivers: [{name: r}]\n"), "root route must specify a default receiver");
        assert_eq!(err("route: {receiver: x}\nreceivers: [{name: r}]\n"), "undefined receiver \"x\" used in route");
        assert_eq!(
            err("route: {receiver: r}\nreceivers: [{name: r}, {name: r}]\n"),
            "notification config name \"r\" is not unique"
        );
        assert_eq!(
            err("route: {receiver: r, matchers: [a=b]}\nreceivers: [{name: r}]\n"),
            "root route must not have any matchers"
        );
        assert_eq!(
            err("route: {receiver: r, routes: [{group_by: [a, '...']}]}\nreceivers: [{name: r}]\n"),
            "cannot have wildcard group_by (`...`) and other labels at the same time"
        );
        assert_eq!(
            err("route: {receiver: r, routes: [{group_by: [a, a]}]}\nreceivers: [{name: r}]\n"),
            "duplicated label \"a\" in group_by"
        );
        assert_eq!(
            err("route: {receiver: r, routes: [{group_interval: 0}]}\nreceivers: [{name: r}]\n"),
            "group_interval cannot be zero"
        );
        assert_eq!(
            err("route: {receiver: r, routes: [{mute_time_intervals: [x]}]}\nreceivers: [{name: r}]\n"),
            "undefined time interval \"x\" used in route"
        );
        assert_eq!(
            err("route: {receiver: r, continue: true}\nreceivers: [{name: r}]\n"),
            "cannot have continue in root route"
        );
        assert_eq!(
            err("route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{}]}]\n"),
            "one of url or url_file must be configured"
        );
        assert_eq!(
            err("route: {receiver: r}\nreceivers: [{name: r, email_configs: [{to: a@b}]}]\n"),
            "no global SMTP smarthost set"
        );
        assert_eq!(
            err("route: {receiver: r}\nreceivers: [{name: r, sns_configs: [{}]}]\n"),
            "must provide either a Target ARN, Topic ARN, or Phone Number for SNS config"
        );
        assert!(err("route: {receiver: r, colour: red}\nreceivers: [{name: r}]\n").contains("colour"));
        assert_eq!(
            err("route: {receiver: r}\nreceivers: [{name: r, opsgenie_configs: [{api_key: k}]}]\n"),
            "receiver \"r\" uses opsgenie_configs: PromLake delivers only to sns, webhook, slack, pagerduty, email receivers"
        );
    }
}
