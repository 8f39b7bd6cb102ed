//! `metrics/get-history-bulk-interval`, what MLflow's UI charts call: one metric's values
//! over up to 100 runs, each run's sampled down to `max_results` points as MLflow 3.17's
//! SQL store samples them.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::error::MlflowError;
use super::{missing, Ctx, Params, Reply};
use crate::registry::HistoryPoint;

/// Runs one request may name (MLflow's `MAX_RUNS_GET_METRIC_HISTORY_BULK`).
pub const MAX_RUNS: usize = 100;
/// Points per run at most, and the default (MLflow's `MAX_RESULTS_PER_RUN`).
pub const MAX_RESULTS_PER_RUN: i64 = 2500;

/// MLflow's sampling of one run's points, ordered by step, timestamp and value: the rows split
/// into `max` buckets as SQL's `NTILE` splits them (the first `n % max` one row larger), the
/// first row of each kept, and the last row always (in place of the last kept one when the
/// sample is full).
fn sample(points: &[HistoryPoint], max: usize) -> Vec<HistoryPoint> {
    let n = points.len();
    if n == 0 {
        return Vec::new();
    }
    let mut kept: Vec<HistoryPoint> = if n <= max {
        points.to_vec()
    } else {
        let (size, larger) = (n / max, n % max);
        (0..max).map(|b| points[b * size + b.min(larger)]).collect()
    };
    let last = points[n - 1];
    if kept.last() != Some(&last) {
        if kept.len() >= max {
            kept.pop();
        }
        kept.push(last);
    }
    kept
}

pub async fn get_metric_history_bulk_interval(ctx: Ctx, params: Params) -> Reply {
    let run_ids: Vec<String> = params.list("run_ids").iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
    if run_ids.is_empty() {
        return Err(missing("run_ids"));
    }
    if run_ids.len() > MAX_RUNS {
        return Err(MlflowError::invalid(format!(
            "GetMetricHistoryBulkInterval request must specify at most {MAX_RUNS} run_ids. Received {} run_ids.",
            run_ids.len()
        )));
    }
    let key = params.str("metric_key")?;
    let max = params.opt_int("max_results")?.unwrap_or(MAX_RESULTS_PER_RUN);
    if !(1..=MAX_RESULTS_PER_RUN).contains(&max) {
        return Err(MlflowError::invalid(format!("max_results must be between 1 and {MAX_RESULTS_PER_RUN}.")));
    }
    let steps = match (params.opt_int("start_step")?, params.opt_int("end_step")?) {
        (Some(start), Some(end)) if start > end => {
            return Err(MlflowError::invalid(format!(
                "end_step must be greater than start_step. Found start_step={start} and end_step={end}."
            )))
        }
        (Some(start), Some(end)) => Some((start, end)),
        (None, None) => None,
        _ => return Err(MlflowError::invalid("If either start step or end step are specified, both must be specified.")),
    };
    // An id naming no run has no points (MLflow's server answers so too).
    let ids: Vec<Option<i64>> = run_ids.iter().map(|raw| raw.parse::<i64>().ok().filter(|id| *id > 0)).collect();
    let mut distinct: Vec<i64> = ids.iter().flatten().copied().collect();
    distinct.sort_unstable();
    distinct.dedup();
    let mut by_run: HashMap<i64, Vec<HistoryPoint>> = HashMap::new();
    for point in ctx.registry.mlflow_history_points(&distinct, &key, steps).await? {
        by_run.entry(point.run).or_default().push(point);
    }
    let mut metrics = Vec::new();
    for (raw, id) in run_ids.iter().zip(&ids) {
        let mut points = id.and_then(|id| by_run.get(&id)).cloned().unwrap_or_default();
        points.sort_by(|a, b| (a.step, a.timestamp).cmp(&(b.step, b.timestamp)).then(a.value.total_cmp(&b.value)));
        for p in sample(&points, max as usize) {
            metrics.push(json!({"key": key, "value": p.value, "timestamp": p.timestamp, "step": p.step, "run_id": raw}));
        }
    }
    Ok(json!({ "metrics": Value::Array(metrics) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(n: i64) -> Vec<HistoryPoint> {
        (0..n).map(|step| HistoryPoint { run: 1, value: step as f64, timestamp: 0, step }).collect()
    }

    fn steps(sampled: Vec<HistoryPoint>) -> Vec<i64> {
        sampled.iter().map(|p| p.step).collect()
    }

    #[test]
    fn samples_as_ntile_with_the_last_point() {
        assert_eq!(steps(sample(&points(5), 10)), [0, 1, 2, 3, 4]);
        // NTILE(3) over 10 rows: buckets of 4, 3, 3 starting at 0, 4, 7; then the last row
        // replaces the last kept one.
        assert_eq!(steps(sample(&points(10), 3)), [0, 4, 9]);
        assert_eq!(steps(sample(&points(10), 4)), [0, 3, 6, 9]);
        assert_eq!(steps(sample(&points(11), 4)), [0, 3, 6, 10]);
        assert_eq!(steps(sample(&points(10), 1)), [9]);
        assert!(sample(&points(0), 3).is_empty());
    }
}
