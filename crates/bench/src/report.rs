//! The results table.

use std::fmt::Write as _;

use crate::Row;

/// One line per run, then the notes of the runs that have one, then the first error of every
/// run that had any.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<9} {:<9} {:>7} {:<15} {:>7} {:>9} {:>10} {:>8} {:>8} {:>7}\n",
        "backend", "stats", "models", "workload", "clients", "ops", "ops/s", "p50 ms", "p99 ms", "errors"
    );
    for row in rows {
        let run = &row.result;
        let _ = writeln!(
            out,
            "{:<9} {:<9} {:>7} {:<15} {:>7} {:>9} {:>10.1} {:>8.2} {:>8.2} {:>7}",
            row.backend.name(),
            row.statistics.label(),
            row.models,
            run.workload.label(),
            run.clients,
            run.ops(),
            run.ops_per_sec(),
            run.latency_ms(0.50),
            run.latency_ms(0.99),
            run.errors
        );
    }
    let label = |row: &Row| {
        format!(
            "{} ({} statistics, {} models) {} with {} clients",
            row.backend.name(),
            row.statistics.label(),
            row.models,
            row.result.workload.label(),
            row.result.clients
        )
    };
    let mut noted = false;
    for row in rows {
        if let Some(note) = &row.result.note {
            if !noted {
                out.push('\n');
                noted = true;
            }
            let _ = writeln!(out, "{}: {note}", label(row));
        }
    }
    for row in rows {
        if let Some(error) = &row.result.first_error {
            let _ = write!(out, "\nfirst error, {}:\n  {error}\n", label(row));
        }
    }
    out
}
