//! The server under test: the release binary on a free loopback port.

use std::fs::File;
use std::future::Future;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::NamedTempFile;
use tokio::process::{Child, Command};

use crate::Backend;

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// A running `model-registry proxy`, killed if dropped without [`Server::stop`].
#[derive(Debug)]
pub struct Server {
    command: Command,
    child: Child,
    base_url: String,
    log: NamedTempFile,
}

impl Server {
    /// Starts the server on `dsn` and waits until `GET /readyz/health` answers 200.
    ///
    /// The server gets `RUST_LOG=warn`, no `MR_*` variables and no `~/.model-registry.yaml`, so
    /// only the flags given here configure it. Its output goes to a temporary log file, whose
    /// end is shown if it exits or does not become ready.
    pub async fn start(bin: &Path, backend: Backend, dsn: &str, extra: &[String]) -> anyhow::Result<Server> {
        let port = free_port()?;
        let log = NamedTempFile::with_prefix("mr_bench_server_")?;
        let output = File::options().append(true).open(log.path())?;
        let mut command = Command::new(bin);
        command
            .args(["proxy", "--hostname", "127.0.0.1", "--port", &port.to_string()])
            .args(["--embedmd-database-type", backend.name(), "--embedmd-database-dsn", dsn])
            .args(extra)
            .env("RUST_LOG", "warn")
            .env("HOME", "/nonexistent")
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .kill_on_drop(true);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("MR_") {
                command.env_remove(name);
            }
        }
        let child = command.spawn().with_context(|| format!("cannot start {}", bin.display()))?;
        let mut server = Server { command, child, base_url: format!("http://127.0.0.1:{port}"), log };
        server.wait_ready().await?;
        Ok(server)
    }

    /// Stops the server and starts it again with the same flags, on the same port.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.terminate().await?;
        self.child = self.command.spawn().context("cannot start the server again")?;
        self.wait_ready().await
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The server's resident memory now (`VmRSS`), in MiB.
    pub fn rss_mib(&self) -> anyhow::Result<f64> {
        let pid = self.child.id().context("the server has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS line in /proc/<pid>/status")?;
        Ok(kib / 1024.0)
    }

    /// Runs `work`, reading the server's resident memory every [`RSS_SAMPLE_EVERY`] meanwhile;
    /// `peak` keeps the largest value seen.
    pub async fn sampling_rss<T>(&self, work: impl Future<Output = T>, peak: &mut f64) -> anyhow::Result<T> {
        tokio::pin!(work);
        let mut every = tokio::time::interval(RSS_SAMPLE_EVERY);
        loop {
            tokio::select! {
                done = &mut work => {
                    *peak = peak.max(self.rss_mib()?);
                    return Ok(done);
                }
                _ = every.tick() => *peak = peak.max(self.rss_mib()?),
            }
        }
    }

    /// SIGTERM, then waits for the exit (SIGKILL after 10 s). A non-zero exit is reported on
    /// stderr, since the measurements are complete by then.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.terminate().await
    }

    async fn terminate(&mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            kill(Pid::from_raw(i32::try_from(pid)?), Signal::SIGTERM)?;
        }
        let Ok(exit) = tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await else {
            self.child.kill().await?;
            bail!("server still running {STOP_TIMEOUT:?} after SIGTERM; log:\n{}", self.log_tail());
        };
        let status = exit?;
        if !status.success() {
            eprintln!("warning: server exited with {status} after SIGTERM; log:\n{}", self.log_tail());
        }
        Ok(())
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let health = format!("{}/readyz/health", self.base_url);
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("server exited ({status}) before it was ready; log:\n{}", self.log_tail());
            }
            if let Ok(response) = http.get(&health).send().await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("server not ready after {READY_TIMEOUT:?}; log:\n{}", self.log_tail())
    }

    /// The last 40 lines of the server's output.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
