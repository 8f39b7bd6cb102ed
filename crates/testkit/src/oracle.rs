//! Running the MLMD oracle (`e2e/mlmd_oracle.py`, real ml-metadata 1.17.1) from tests.
//!
//! The script runs with the venv's python: `$MR_TEST_VENV/bin/python` (a relative
//! `MR_TEST_VENV` is taken against the workspace root), default `<workspace>/.venv`, which
//! `scripts/test-env.sh` creates. Arguments are passed as is, so the first ones are usually
//! `--db <url>`; see `mlmd_oracle.py --help` for the commands (`create`, `seed`, `verify`,
//! `roundtrip`, `dump`).

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::workspace_root;

/// The python interpreter of the test venv. Panics, telling to run `scripts/test-env.sh`,
/// when it does not exist.
pub fn venv_python() -> PathBuf {
    let root = workspace_root();
    let venv = match std::env::var_os("MR_TEST_VENV").filter(|v| !v.is_empty()) {
        Some(v) => {
            let p = PathBuf::from(v);
            if p.is_absolute() {
                p
            } else {
                root.join(p)
            }
        }
        None => root.join(".venv"),
    };
    let py = venv.join("bin").join("python");
    if !py.exists() {
        panic!(
            "testkit: the MLMD oracle needs the test venv, but {} does not exist: \
             run `bash scripts/test-env.sh` in {} first (or set MR_TEST_VENV)",
            py.display(),
            root.display()
        );
    }
    py
}

/// `<workspace>/e2e/mlmd_oracle.py`.
pub fn oracle_script() -> PathBuf {
    workspace_root().join("e2e").join("mlmd_oracle.py")
}

fn command(args: &[&str]) -> Command {
    let mut c = Command::new(venv_python());
    c.arg(oracle_script()).args(args);
    c.env("PYTHONDONTWRITEBYTECODE", "1");
    c
}

/// Run the oracle with `args` (blocking) and return its output, whatever the exit status.
/// Example: `mlmd(&["--db", db.url(), "seed"])`.
pub fn mlmd(args: &[&str]) -> Output {
    command(args).output().unwrap_or_else(|e| panic!("testkit: cannot run the MLMD oracle: {e}"))
}

/// Async (tokio) variant of [`mlmd`]: does not block the runtime, so a server under test in
/// the same runtime keeps serving.
pub async fn mlmd_async(args: &[&str]) -> Output {
    tokio::process::Command::from(command(args))
        .output()
        .await
        .unwrap_or_else(|e| panic!("testkit: cannot run the MLMD oracle: {e}"))
}

fn describe(args: &[&str], out: &Output) -> String {
    format!(
        "mlmd_oracle.py {}\n--- exit: {}\n--- stdout:\n{}\n--- stderr:\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(args: &[&str], out: Output) -> String {
    if !out.status.success() {
        panic!("MLMD oracle failed: {}", describe(args, &out));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn err(args: &[&str], out: Output) -> String {
    if out.status.success() {
        panic!("MLMD oracle unexpectedly succeeded: {}", describe(args, &out));
    }
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// [`mlmd`], panicking with the full output unless it exits 0; returns stdout.
pub fn mlmd_ok(args: &[&str]) -> String {
    ok(args, mlmd(args))
}

/// [`mlmd`], panicking if it exits 0; returns stderr (MLMD's error message is in it).
pub fn mlmd_err(args: &[&str]) -> String {
    err(args, mlmd(args))
}

/// Async variant of [`mlmd_ok`].
pub async fn mlmd_ok_async(args: &[&str]) -> String {
    ok(args, mlmd_async(args).await)
}

/// Async variant of [`mlmd_err`].
pub async fn mlmd_err_async(args: &[&str]) -> String {
    err(args, mlmd_async(args).await)
}
