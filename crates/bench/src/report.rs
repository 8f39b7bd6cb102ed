//! The results table.

use std::fmt::Write as _;

use crate::workload::RunResult;
use crate::Backend;

/// One line per run, then the notes of the runs that have one, then the first error of every
/// run that had any.
pub fn table(rows: &[(Backend, RunResult)]) -> String {
    let mut out = format!(
        "{:<9} {:<15} {:>7} {:>9} {:>10} {:>8} {:>8} {:>7}\n",
        "backend", "workload", "clients", "ops", "ops/s", "p50 ms", "p99 ms", "errors"
    );
    for (backend, run) in rows {
        let _ = writeln!(
            out,
            "{:<9} {:<15} {:>7} {:>9} {:>10.1} {:>8.2} {:>8.2} {:>7}",
            backend.name(),
            run.workload.label(),
            run.clients,
            run.ops(),
            run.ops_per_sec(),
            run.latency_ms(0.50),
            run.latency_ms(0.99),
            run.errors
        );
    }
    let mut noted = false;
    for (backend, run) in rows {
        if let Some(note) = &run.note {
            if !noted {
                out.push('\n');
                noted = true;
            }
            let _ = writeln!(out, "{} {} with {} clients: {note}", backend.name(), run.workload.label(), run.clients);
        }
    }
    for (backend, run) in rows {
        if let Some(error) = &run.first_error {
            let _ = write!(
                out,
                "\nfirst error, {} {} with {} clients:\n  {error}\n",
                backend.name(),
                run.workload.label(),
                run.clients
            );
        }
    }
    out
}
