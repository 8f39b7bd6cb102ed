//! Database topologies on this machine for the cluster tests (scripts/cluster/), and a load of
//! writers through several replicas that records what each request was answered.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use super::server::Server;

/// A topology started by `scripts/cluster/<name>.sh start`; stopped when dropped, also when the
/// test fails.
pub struct Topology {
    script: String,
}

impl Topology {
    pub fn start(name: &str) -> Topology {
        let topology = Topology { script: format!("{}/scripts/cluster/{name}.sh", testkit::workspace_root().display()) };
        topology.run("start");
        topology
    }

    /// Runs a subcommand of the topology's script (`kill-primary`, `kill 1`, ...); panics
    /// with its output when it fails.
    pub fn run(&self, action: &str) {
        let out = Command::new("bash").arg(&self.script).args(action.split_whitespace()).output().expect("bash runs");
        assert!(
            out.status.success(),
            "{} {action} failed:\n{}{}",
            self.script,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(&self.script).arg("stop").status();
    }
}

/// One answered request.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Which of the servers answered.
    pub server: usize,
    pub at: Instant,
    pub status: u16,
    pub took: Duration,
}

/// What the writers saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Ids of the models whose create was answered 201, with their names.
    pub acknowledged: Vec<(String, String)>,
    pub answers: Vec<Answer>,
    /// Answers other than 201 and 503, to say which request met what.
    pub unexpected: Vec<Unexpected>,
}

/// An answer other than 201 and 503.
#[derive(Debug, Clone)]
pub struct Unexpected {
    /// The model the request tried to create.
    pub name: String,
    /// Which of the servers answered.
    pub server: usize,
    pub at: Instant,
    pub status: u16,
    pub body: String,
}

impl Outcome {
    pub fn statuses(&self) -> BTreeMap<u16, usize> {
        let mut counts = BTreeMap::new();
        for a in &self.answers {
            *counts.entry(a.status).or_default() += 1;
        }
        counts
    }

    /// The longest any request took.
    pub fn longest(&self) -> Duration {
        self.answers.iter().map(|a| a.took).max().unwrap_or_default()
    }

    /// The answers that were not a success at or after `from`: how many, and from the first
    /// to the last of them.
    pub fn failures_after(&self, from: Instant) -> (usize, Duration) {
        let failed: Vec<Instant> = self.answers.iter().filter(|a| a.at >= from && a.status != 201).map(|a| a.at).collect();
        let span = match (failed.iter().min(), failed.iter().max()) {
            (Some(first), Some(last)) => *last - *first,
            _ => Duration::ZERO,
        };
        (failed.len(), span)
    }

    /// Each unexpected answer on a line: the request, the replica that answered (and the host
    /// its DSN names first, from `first_hosts`), when relative to `event`, the status and body.
    pub fn describe_unexpected(&self, first_hosts: &[String], event: Instant) -> String {
        self.unexpected
            .iter()
            .map(|u| {
                let when = match u.at.checked_duration_since(event) {
                    Some(after) => format!("{:.2} s after", after.as_secs_f64()),
                    None => format!("{:.2} s before", (event - u.at).as_secs_f64()),
                };
                format!(
                    "\n  create {:?} through replica {} (first host {}), answered {when} the event: {} {}",
                    u.name,
                    u.server,
                    first_hosts.get(u.server).map_or("?", String::as_str),
                    u.status,
                    u.body
                )
            })
            .collect()
    }

    /// The first success of `server` at or after `from`, as a delay after it.
    pub fn first_success_after(&self, server: usize, from: Instant) -> Option<Duration> {
        self.answers.iter().filter(|a| a.server == server && a.at >= from && a.status == 201).map(|a| a.at - from).min()
    }
}

/// `writers` tasks creating registered models through `servers` (writer i uses server
/// i % servers) until `stop` is set; 201s and 503s are expected, anything else is recorded too.
pub async fn write_load(servers: Arc<Vec<Server>>, writers: usize, run_for: Duration) -> Outcome {
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let deadline = Instant::now() + run_for;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (servers, outcome) = (servers.clone(), outcome.clone());
            tokio::spawn(async move {
                let index = w % servers.len();
                let server = &servers[index];
                let mut n = 0;
                while Instant::now() < deadline {
                    let name = format!("w{w}-{n}");
                    n += 1;
                    let started = Instant::now();
                    let (status, body) = server.call(Method::POST, "/registered_models", Some(json!({ "name": name }))).await;
                    let took = started.elapsed();
                    {
                        let mut o = outcome.lock().unwrap();
                        let at = started + took;
                        o.answers.push(Answer { server: index, at, status, took });
                        match status {
                            201 => o.acknowledged.push((body["id"].as_str().expect("an id").to_owned(), name)),
                            503 => {}
                            _ => o.unexpected.push(Unexpected { name, server: index, at, status, body: body.to_string() }),
                        }
                    }
                    if status == 503 {
                        // As a client backs off from a 503.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    Arc::try_unwrap(outcome).expect("writers done").into_inner().unwrap()
}
