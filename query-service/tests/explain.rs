//! The plans are DataFusion's: `EXPLAIN` shows the PromQL extension nodes
//! with the selector's matchers and time range pushed into the scan, and
//! DataFusion's own operators for aggregations and joins.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::seams::{LogPosition, SampleReader, SeamError, Selected, Selection};
use query_service::engine::{Engine, QueryRequest};

#[derive(Debug)]
struct Empty;

#[async_trait]
impl SampleReader for Empty {
    async fn select(&self, _ws: &str, _selection: &Selection) -> Result<Selected, SeamError> {
        Ok(Selected::default())
    }

    async fn metadata(&self, _ws: &str) -> Result<Vec<common::seams::MetricMetadata>, SeamError> {
        Ok(Vec::new())
    }

    async fn wait_for_position(&self, _ws: &str, _p: &LogPosition, _t: Duration) -> Result<(), SeamError> {
        Ok(())
    }
}

async fn explain(query: &str) -> String {
    let engine = Engine::new(Arc::new(Empty));
    let req = QueryRequest {
        query: query.into(),
        start_ms: 3_600_000,
        end_ms: 7_200_000,
        step_ms: 60_000,
        lookback_ms: 300_000,
        subquery_step_ms: query_service::engine::DEFAULT_SUBQUERY_STEP_MS,
        instant: false,
        limits: common::limits::QueryLimits::default(),
        timeout: None,
    };
    engine.explain("ws-1", &req).await.unwrap()
}

#[tokio::test]
async fn a_rate_under_sum_by_is_an_aggregate_over_the_range_function_over_a_pruned_scan() {
    let plan = explain(r#"sum by (job) (rate(http_requests_total{job="api"}[5m]))"#).await;
    let logical = plan.split("physical:").next().unwrap();
    let lines: Vec<&str> = logical.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let pos =
        |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle} in\n{plan}"));
    let (agg, range, scan) =
        (pos("Aggregate: groupBy=[[labels, ts]]"), pos("PromRangeFunction: Rate"), pos("PromSeriesScan"));
    assert!(agg < range && range < scan, "{plan}");
    assert!(lines[scan].contains(r#"matchers=[__name__="http_requests_total", job="api"]"#), "{plan}");
    // Samples read: (start − range, end], nothing else.
    assert!(lines[scan].contains("range=[3300001, 7200000]"), "{plan}");
    let physical = plan.split("physical:").nth(1).unwrap();
    assert!(physical.contains("PromRangeFunction: Rate") && physical.contains("PromSeriesScan"), "{plan}");
    assert!(physical.contains("AggregateExec"), "{plan}");
}

#[tokio::test]
async fn a_one_to_one_match_is_a_join_on_the_matching_labels_and_the_step() {
    let plan = explain(r#"a / on(instance) b offset 1m"#).await;
    assert!(plan.contains("Inner Join: l.key = r.key, l.ts = r.ts"), "{plan}");
    assert!(plan.contains("prom_labels_keep[instance]"), "{plan}");
    // The offset moves b's scan back by a minute; the lookback widens it by 5.
    assert!(plan.contains(r#"matchers=[__name__="b"], range=[3240001, 7140000]"#), "{plan}");
    assert!(plan.contains("HashJoinExec"), "{plan}");
}

#[tokio::test]
async fn info_reads_its_info_series_where_its_argument_reads() {
    let plan = explain(r#"info(rate(http_requests_total[5m] offset 10m), {__name__!~"build.*", version=~".+"})"#).await;
    // The info series: the newest sample's time within the lookback, read
    // 10 minutes back as the rate's samples are.
    assert!(
        plan.contains(
            r#"PromInfo: names=[__name__=~".+_info", __name__!~"build.*"], data=[version=~".+"], steps=[3600000..7200000 by 60000], lookback=300000, offset=600000, at=None, range=[2700001, 6600000]"#
        ),
        "{plan}"
    );
    assert!(plan.contains(r#"PromRangeFunction: Rate"#), "{plan}");
}
