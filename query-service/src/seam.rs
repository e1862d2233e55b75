//! The `PromqlEngine` seam over [`Engine`]: instant queries for the ruler,
//! under the workspace's query limits (`Overrides::query`) and Prometheus's
//! default lookback delta.

use std::sync::Arc;

use async_trait::async_trait;
use common::ErrorKind;
use common::limits::Overrides;
use common::seams::{InstantValue, Labels, PromqlEngine, SampleValue, SeamError};

use crate::engine::{DEFAULT_LOOKBACK_MS, Engine, QueryError, QueryRequest, QueryValue};

/// [`Engine`] as the ruler sees it.
#[derive(Debug, Clone)]
pub struct RuleEngine {
    engine: Engine,
    overrides: Arc<Overrides>,
    subquery_step_ms: i64,
}

impl RuleEngine {
    /// Evaluates with `engine` under the limits of `overrides`; subqueries
    /// without a step use [`crate::engine::DEFAULT_SUBQUERY_STEP_MS`].
    pub fn new(engine: Engine, overrides: Arc<Overrides>) -> Self {
        Self { engine, overrides, subquery_step_ms: crate::engine::DEFAULT_SUBQUERY_STEP_MS }
    }

    /// Subqueries without a step use `ms` (Prometheus: the global
    /// `evaluation_interval`).
    #[must_use]
    pub fn with_subquery_step(mut self, ms: i64) -> Self {
        self.subquery_step_ms = ms.max(1);
        self
    }
}

#[async_trait]
impl PromqlEngine for RuleEngine {
    async fn instant_query(&self, workspace_id: &str, query: &str, time_ms: i64) -> Result<InstantValue, SeamError> {
        let request = QueryRequest {
            query: query.to_owned(),
            start_ms: time_ms,
            end_ms: time_ms,
            step_ms: 1,
            lookback_ms: DEFAULT_LOOKBACK_MS,
            subquery_step_ms: self.subquery_step_ms,
            instant: true,
            limits: (*self.overrides.query(workspace_id)).clone(),
            timeout: None,
        };
        let value = self.engine.query(workspace_id, &request).await.map_err(seam_error)?;
        Ok(match value {
            QueryValue::Scalar(_, v) => InstantValue::Scalar(v),
            QueryValue::String(_, s) => InstantValue::String(s),
            // A range vector is no rule result (Prometheus's message).
            QueryValue::Matrix(_) => {
                return Err(SeamError {
                    kind: ErrorKind::BadData,
                    message: "rule result is not a vector or scalar".into(),
                });
            }
            QueryValue::Vector(series) => {
                let mut out = Vec::with_capacity(series.len());
                for s in series {
                    let labels: Labels = s.labels.into();
                    if let Some((_, v)) = s.points.last() {
                        out.push((labels, SampleValue::Float(*v)));
                    } else if let Some((_, h)) = s.histograms.last() {
                        out.push((labels, SampleValue::Histogram(h.encode().into())));
                    }
                }
                InstantValue::Vector(out)
            }
        })
    }
}

fn seam_error(e: QueryError) -> SeamError {
    let kind = match &e {
        QueryError::Parse(_) | QueryError::BadData(_) => ErrorKind::BadData,
        QueryError::Limit(_) => ErrorKind::LimitExceeded,
        QueryError::Timeout(_) => ErrorKind::Timeout,
        QueryError::Execution(_) | QueryError::Unsupported(_) => ErrorKind::BadData,
        _ => ErrorKind::Internal,
    };
    SeamError { kind, message: e.to_string() }
}
