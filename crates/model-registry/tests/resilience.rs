//! The real binary under operational stress: slow clients, the shutdown deadline, the request
//! deadline, 16 replicas on one database server at its default `max_connections`, and the
//! database stopped and restarted under load.
//!
//! Tests named `exclusive_*` stop the local database services or take most of their
//! connections: `.config/nextest.toml` runs each of them with nothing else running, and under
//! plain `cargo test` they take [`EXCLUSIVE`] so that they run one at a time. The outage tests
//! stop the services of this machine, so they refuse to run when `MR_TEST_*_DSN` names another
//! server.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::{Backend, TestDb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

mod support;
use support::server::{database_flags, Server, API};

/// The replicas of the scale-out test, and the creates spread over them.
const REPLICAS: usize = 16;
const CONCURRENT_CREATES: usize = 320;
/// The default pool size; REPLICAS of them must fit in the servers' default max_connections.
const MAX_OPEN_PER_REPLICA: usize = embedmd::PoolConfig::DEFAULT_MAX_OPEN as usize;
/// How long the database stays down.
const OUTAGE: Duration = Duration::from_secs(5);
/// Clients writing without pause while the database goes down and comes back.
const OUTAGE_WRITERS: usize = 16;
/// What the server adds to the pool's acquire timeout before a 503 is on the wire, on a loaded
/// 2-core test machine (measured: at most 0.05 s over 6 runs at load 9).
const SCHEDULING_SLACK: Duration = Duration::from_millis(300);
/// The longest any answer may take while the database is down: the pool's acquire timeout
/// (README: "a 503 within 2 s"), plus the slack.
const OUTAGE_ANSWER_BOUND: Duration =
    Duration::from_millis(embedmd::PoolConfig::DEFAULT_ACQUIRE_TIMEOUT.as_millis() as u64 + SCHEDULING_SLACK.as_millis() as u64);

/// Held by every `exclusive_*` test: one at a time under plain `cargo test` too.
static EXCLUSIVE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return received,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn slow_and_idle_clients_are_disconnected_after_the_header_timeout() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::ready_on(&db, &["--http-read-header-timeout", "1s"]).await;
    let timeout = Duration::from_secs(1);
    let limit = Duration::from_secs(5);

    // Headers that never end.
    let mut slow = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    slow.write_all(b"GET /readyz/health HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    let started = Instant::now();
    let received = tokio::time::timeout(limit, read_until_closed(&mut slow)).await.expect("the server hangs up");
    let waited = started.elapsed();
    assert!(waited >= timeout - Duration::from_millis(100) && waited < limit, "closed after {waited:?}");
    assert!(!received.starts_with(b"HTTP/1.1 200"), "no answer to unfinished headers");

    // A keep-alive connection that sends nothing after its first answer.
    let mut idle = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    idle.write_all(b"GET /readyz/health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let started = Instant::now();
    let received = tokio::time::timeout(limit, read_until_closed(&mut idle)).await.expect("the server hangs up");
    let waited = started.elapsed();
    assert!(received.starts_with(b"HTTP/1.1 200 OK"), "{}", String::from_utf8_lossy(&received));
    assert!(waited >= timeout - Duration::from_millis(100) && waited < limit, "idle connection closed after {waited:?}");
    eprintln!("slow client closed after {waited:?} (header timeout {timeout:?})");

    // Meanwhile the server serves everyone else.
    assert_eq!(reqwest::get(format!("{}/readyz/health", server.base)).await.unwrap().status(), 200);
}

#[tokio::test]
async fn sigterm_with_a_slow_client_still_exits_within_the_shutdown_deadline() {
    let db = TestDb::new(Backend::Sqlite).await;
    // The header timeout alone would keep the slow client for a minute.
    let mut server = Server::ready_on(&db, &["--http-read-header-timeout", "60s", "--http-shutdown-timeout", "2s"]).await;
    let mut slow = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    slow.write_all(
        b"POST /api/model_registry/v1/registered_models HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"na",
    )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    server.sigterm();
    let status = server.wait_exit(Duration::from_secs(6)).unwrap_or_else(|| panic!("still running:\n{}", server.log()));
    let took = started.elapsed();
    eprintln!("exit {took:?} after SIGTERM with a slow client connected (deadline 2s)");
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(4), "exit took {took:?}");
    assert!(server.log().contains("shutdown deadline passed"), "{}", server.log());
}

#[tokio::test]
async fn a_request_past_its_deadline_answers_503_with_retry_after() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::ready_on(&db, &["--http-request-timeout", "1s", "--http-read-header-timeout", "30s"]).await;
    // A body that trickles in slower than the deadline allows.
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    let head = format!(
        "POST {API}/registered_models HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.expect("an answer").unwrap();
    let took = started.elapsed();
    let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 2\r\n"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["code"], "Service Unavailable", "{answer}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "answered after {took:?}");
}

/// Counts the connections the database server has open to one database, on a connection of
/// its own opened before the load: a sample never needs a connection slot the load may have
/// taken, so a saturated server is measured, not skipped.
enum Sampler {
    MySql(sqlx::MySqlConnection),
    Postgres(sqlx::PgConnection),
}

impl Sampler {
    async fn open(db: &TestDb) -> Sampler {
        use sqlx::Connection;
        match db.backend() {
            Backend::Postgres => Sampler::Postgres(sqlx::PgConnection::connect(db.url()).await.unwrap()),
            _ => Sampler::MySql(sqlx::MySqlConnection::connect(db.url()).await.unwrap()),
        }
    }

    /// Connections to the database right now, not counting the sampler's own.
    async fn connections(&mut self) -> usize {
        let count: i64 = match self {
            Sampler::Postgres(c) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()").fetch_one(c).await
            }
            Sampler::MySql(c) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE()").fetch_one(c).await
            }
        }
        .expect("the sampler's own connection answers");
        usize::try_from(count - 1).unwrap()
    }
}

async fn sixteen_replicas_share_one_database(backend: Backend) {
    let _exclusive = EXCLUSIVE.lock().await;
    let db = TestDb::new(backend).await;
    let mut sampler = Sampler::open(&db).await;
    let servers: Vec<Server> = (0..REPLICAS).map(|_| Server::start(&database_flags(&db))).collect();
    for server in &servers {
        server.wait_ready(Duration::from_secs(120)).await;
    }
    let http = reqwest::Client::new();

    let mut creates = JoinSet::new();
    for i in 0..CONCURRENT_CREATES {
        let (http, base) = (http.clone(), servers[i % REPLICAS].base.clone());
        creates.spawn(async move {
            let response =
                http.post(format!("{base}{API}/registered_models")).json(&json!({"name": format!("m{i}")})).send().await.unwrap();
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            (i, status, retry_after, response.json::<Value>().await.unwrap())
        });
    }
    // The server-side connection count, sampled while the creates run.
    let done = AtomicBool::new(false);
    let sample = async {
        let (mut peak, mut samples) = (0, 0);
        while !done.load(Ordering::Relaxed) {
            peak = peak.max(sampler.connections().await);
            samples += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (peak, samples)
    };
    let collect = async {
        let mut outcomes = Vec::new();
        while let Some(outcome) = creates.join_next().await {
            outcomes.push(outcome.unwrap());
        }
        done.store(true, Ordering::Relaxed);
        outcomes
    };
    let ((peak, samples), outcomes) = tokio::join!(sample, collect);

    let mut created = Vec::new();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for (i, status, retry_after, body) in outcomes {
        *statuses.entry(status).or_default() += 1;
        match status {
            201 => created.push((i, body["id"].as_str().unwrap().to_owned())),
            503 => {
                assert_eq!(retry_after.as_deref(), Some("2"), "a 503 says when to retry: {body}");
                assert_eq!(body["code"], "Service Unavailable", "{body}");
            }
            other => panic!("create {i} answered {other}: {body}"),
        }
    }
    eprintln!(
        "{backend}: {CONCURRENT_CREATES} creates answered {statuses:?}; peak {peak} connections from {REPLICAS} replicas \
         ({samples} samples)"
    );
    assert!(samples >= 3, "only {samples} samples of the connection count while the creates ran");
    assert!(peak > MAX_OPEN_PER_REPLICA, "the sampler saw at most {peak} connections: it did not measure the load");
    assert!(peak <= REPLICAS * MAX_OPEN_PER_REPLICA, "{peak} connections exceed the budget");
    // The budget leaves the database room: every create fits, as the README says.
    assert_eq!(created.len(), CONCURRENT_CREATES, "creates refused: {statuses:?}");

    // Every acknowledged create is visible through another replica.
    for (i, id) in &created {
        let other = &servers[(i + 1) % REPLICAS];
        let model = get_retrying(&http, &format!("{}{API}/registered_models/{id}", other.base)).await;
        assert_eq!(model["name"], format!("m{i}"), "model {id} through replica {}", (i + 1) % REPLICAS);
    }
}

/// GET that must answer 200, retrying a 503 after its `Retry-After` as a client would.
async fn get_retrying(http: &reqwest::Client, url: &str) -> Value {
    for _ in 0..5 {
        let response = http.get(url).send().await.unwrap();
        match response.status().as_u16() {
            200 => return response.json().await.unwrap(),
            503 => {
                let after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                tokio::time::sleep(Duration::from_secs(after)).await;
            }
            other => panic!("{url}: {other} {}", response.text().await.unwrap()),
        }
    }
    panic!("{url}: still 503 after 5 tries")
}

#[tokio::test(flavor = "multi_thread")]
async fn exclusive_sixteen_replicas_share_one_mariadb() {
    sixteen_replicas_share_one_database(Backend::MySql).await
}

#[tokio::test(flavor = "multi_thread")]
async fn exclusive_sixteen_replicas_share_one_postgres() {
    sixteen_replicas_share_one_database(Backend::Postgres).await
}

/// Stops a local database service and starts it again when dropped, also when the test panics:
/// nothing else can run without it.
struct Outage(Backend);

/// The server the outage tests stop: this machine's service, at its default address.
const LOCAL_SERVICE: [(Backend, &str, u16); 2] = [(Backend::MySql, "127.0.0.1", 3306), (Backend::Postgres, "127.0.0.1", 5432)];

/// Refuses (a panic saying why) when the tests' DSN for `backend` names another server than the
/// local service an outage stops: stopping it would test nothing and disturb whoever uses it.
fn refuse_unless_local(backend: Backend) {
    let (_, host, port) = LOCAL_SERVICE.iter().find(|(b, _, _)| *b == backend).expect("a server backend");
    let dsn = testkit::admin_dsn(backend).expect("a server backend has an admin DSN");
    let url = reqwest::Url::parse(&dsn).unwrap_or_else(|e| panic!("the {backend} test DSN does not parse: {e}"));
    let (their_host, their_port) = (url.host_str().unwrap_or_default().to_owned(), url.port().unwrap_or(*port));
    let local = matches!(their_host.as_str(), "127.0.0.1" | "localhost") && their_port == *port;
    assert!(
        local,
        "this test stops the local {backend} service at {host}:{port}, but the tests' {backend} DSN names \
         {their_host}:{their_port}: refusing to run; unset MR_TEST_{}_DSN or run it where the service is local",
        if backend == Backend::MySql { "MYSQL" } else { "POSTGRES" }
    );
}

impl Outage {
    fn begin(backend: Backend) -> Outage {
        let outage = Outage(backend);
        match backend {
            Backend::MySql => run(Command::new("mysqladmin").args(["--protocol=tcp", "-h", "127.0.0.1", "-uroot", "shutdown"])),
            _ => run(Command::new("pg_ctlcluster").args(["--skip-systemctl-redirect", &pg_version(), "main", "stop"])),
        }
        wait_for(|| !database_up(backend), Duration::from_secs(30), "the database to stop");
        outage
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        match self.0 {
            Backend::MySql => run(Command::new("start-stop-daemon").args([
                "--start",
                "--oknodo",
                "--background",
                "--exec",
                "/usr/sbin/mariadbd",
            ])),
            _ => run(Command::new("pg_ctlcluster").args(["--skip-systemctl-redirect", &pg_version(), "main", "start"])),
        }
        wait_for(|| database_up(self.0), Duration::from_secs(60), "the database to start");
    }
}

fn run(command: &mut Command) {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(output.status.success(), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
}

fn pg_version() -> String {
    let entry = std::fs::read_dir("/etc/postgresql").unwrap().next().expect("one PostgreSQL cluster").unwrap();
    entry.file_name().into_string().unwrap()
}

fn database_up(backend: Backend) -> bool {
    let mut check = match backend {
        Backend::MySql => {
            let mut c = Command::new("mysqladmin");
            c.args(["--protocol=tcp", "-h", "127.0.0.1", "-uroot", "ping"]);
            c
        }
        _ => {
            let mut c = Command::new("pg_isready");
            c.args(["-q", "-h", "127.0.0.1", "-p", "5432"]);
            c
        }
    };
    check.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn wait_for(condition: impl Fn() -> bool, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One answer of the light load.
struct Answer {
    sent: Instant,
    took: Duration,
    status: u16,
    retry_after: Option<String>,
    body: Value,
    name: String,
}

/// Creates models one after another until `stop`.
async fn light_load(base: String, client: usize, stop: std::sync::Arc<AtomicBool>) -> Vec<Answer> {
    let http = reqwest::Client::new();
    let mut answers = Vec::new();
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let name = format!("c{client}-{n}");
        let sent = Instant::now();
        let response = http.post(format!("{base}{API}/registered_models")).json(&json!({"name": name})).send().await.unwrap();
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        answers.push(Answer { sent, took: sent.elapsed(), status, retry_after, body, name });
    }
    answers
}

async fn database_stopped_under_load(backend: Backend) {
    let _exclusive = EXCLUSIVE.lock().await;
    refuse_unless_local(backend);
    let db = TestDb::new(backend).await;
    let mut server = Server::start(&database_flags(&db));
    server.wait_ready(Duration::from_secs(60)).await;
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..OUTAGE_WRITERS).map(|c| tokio::spawn(light_load(server.base.clone(), c, stop.clone()))).collect();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let outage = tokio::task::spawn_blocking(move || Outage::begin(backend)).await.unwrap();
    let down = Instant::now();
    tokio::time::sleep(OUTAGE).await;
    let restarting = Instant::now();
    tokio::task::spawn_blocking(move || drop(outage)).await.unwrap();
    let up = Instant::now();

    // Recovery without a restart: creates succeed again on their own.
    let recovered = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if reqwest::get(format!("{}/readyz/health", server.base)).await.is_ok_and(|r| r.status() == 200) {
            break up.elapsed();
        }
        assert!(up.elapsed() < Duration::from_secs(30), "no recovery 30 s after the database came back:\n{}", server.log());
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut answers = Vec::new();
    for client in load {
        answers.extend(client.await.unwrap());
    }
    assert!(server.running(), "the replica stays up:\n{}", server.log());

    for a in &answers {
        assert!(matches!(a.status, 201 | 503), "{} answered {} after {:?}: {}", a.name, a.status, a.took, a.body);
        if a.status == 503 {
            assert_eq!(a.retry_after.as_deref(), Some("2"), "{}", a.body);
            assert_eq!(a.body["code"], "Service Unavailable", "{}", a.body);
        }
    }
    // Every answer, before, during and after the outage, within the bound.
    let slowest = answers.iter().max_by_key(|a| a.took).unwrap();
    assert!(slowest.took <= OUTAGE_ANSWER_BOUND, "{} answered {} after {:?}", slowest.name, slowest.status, slowest.took);
    let during: Vec<&Answer> = answers.iter().filter(|a| a.sent >= down && a.sent + a.took <= restarting).collect();
    // Each writer has at least one request wholly inside the outage: OUTAGE > 2 x the bound.
    assert!(during.len() >= OUTAGE_WRITERS, "the outage saw {} requests", during.len());
    assert!(during.iter().all(|a| a.status == 503), "every answer during the outage is a 503");
    eprintln!(
        "{backend}: {} answers during the {OUTAGE:?} outage, all 503; slowest answer {:?}; ready again {recovered:?} \
         after the database",
        during.len(),
        slowest.took
    );
    let after = answers.iter().filter(|a| a.sent >= up + recovered && a.status == 201).count();
    assert!(after > 0, "creates succeed after recovery");

    // Every acknowledged write survived.
    let http = reqwest::Client::new();
    for a in answers.iter().filter(|a| a.status == 201) {
        let id = a.body["id"].as_str().unwrap();
        let model = get_retrying(&http, &format!("{}{API}/registered_models/{id}", server.base)).await;
        assert_eq!(model["name"], a.name, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exclusive_mariadb_stopped_under_load() {
    database_stopped_under_load(Backend::MySql).await
}

#[tokio::test(flavor = "multi_thread")]
async fn exclusive_postgres_stopped_under_load() {
    database_stopped_under_load(Backend::Postgres).await
}
