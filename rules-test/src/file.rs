//! The unit-test file format of `promtool test rules` (strict: unknown
//! fields are errors, as yaml.v2's `UnmarshalStrict`).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// A test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UnitTestFile {
    #[serde(default)]
    pub(crate) rule_files: Vec<String>,
    #[serde(default, deserialize_with = "duration")]
    pub(crate) evaluation_interval: i64,
    #[serde(default)]
    pub(crate) group_eval_order: Vec<String>,
    #[serde(default)]
    pub(crate) tests: Vec<TestGroup>,
    #[serde(default)]
    pub(crate) fuzzy_compare: bool,
}

/// Input series and the tests over them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestGroup {
    #[serde(default, deserialize_with = "duration")]
    pub(crate) interval: i64,
    #[serde(default)]
    pub(crate) input_series: Vec<InputSeries>,
    #[serde(default)]
    pub(crate) alert_rule_test: Vec<AlertTestCase>,
    #[serde(default)]
    pub(crate) promql_expr_test: Vec<PromqlTestCase>,
    #[serde(default)]
    pub(crate) external_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) external_url: String,
    #[serde(default)]
    pub(crate) name: String,
}

/// `series` and its values in the expanding notation (`1+1x10`, `_`,
/// `stale`, `{{…}}`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InputSeries {
    #[serde(default)]
    pub(crate) series: String,
    #[serde(default)]
    pub(crate) values: String,
}

/// The firing alerts expected of one alerting rule at one time.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlertTestCase {
    #[serde(default, deserialize_with = "duration")]
    pub(crate) eval_time: i64,
    #[serde(default)]
    pub(crate) alertname: String,
    #[serde(default)]
    pub(crate) exp_alerts: Vec<ExpAlert>,
}

/// An expected alert: its labels (without `alertname`) and annotations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExpAlert {
    #[serde(default)]
    pub(crate) exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) exp_annotations: BTreeMap<String, String>,
}

/// An expression and the samples expected at one time.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PromqlTestCase {
    #[serde(default)]
    pub(crate) expr: String,
    #[serde(default, deserialize_with = "duration")]
    pub(crate) eval_time: i64,
    #[serde(default)]
    pub(crate) exp_samples: Vec<ExpSample>,
}

/// An expected sample: a series (`name{label="value"}`) and its value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExpSample {
    #[serde(default)]
    pub(crate) labels: String,
    #[serde(default)]
    pub(crate) value: f64,
    #[serde(default)]
    pub(crate) histogram: String,
}

/// A Prometheus duration (`5m`, `1h30m`, `0`), in milliseconds.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(i64),
    }
    let text = match Raw::deserialize(d)? {
        Raw::Text(t) => t,
        Raw::Number(n) => n.to_string(),
    };
    common::duration::parse(&text)
        .ok_or_else(|| serde::de::Error::custom(format!("not a valid duration string: {text:?}")))
}
