//! MLflow's artifact proxy (`/api/2.0/mlflow-artifacts/...`) on a local destination: round
//! trips, paths confined to the destination (`..`, absolute paths, symbolic links), uploads cut
//! off part way, multipart uploads, and the real binary's memory over a 1 GiB file.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use model_registry::artifacts::Destination;
use model_registry::{App, ServerConfig};
use reqwest::Method;
use serde_json::{json, Value};
use testkit::{Backend, TestDb};

mod support;
use support::server::Server;

struct Proxy {
    /// `http://127.0.0.1:<port>/api/2.0/mlflow-artifacts`.
    base: String,
    addr: std::net::SocketAddr,
    http: reqwest::Client,
    /// The destination directory, inside `_dir` (whose other contents must never change).
    dest: std::path::PathBuf,
    _dir: tempfile::TempDir,
    _db: TestDb,
}

async fn start() -> Proxy {
    start_in(tempfile::tempdir().unwrap()).await
}

/// A server whose destination is `artifacts` in `dir` (which may hold one already).
async fn start_in(dir: tempfile::TempDir) -> Proxy {
    let db = TestDb::new(Backend::Sqlite).await;
    let dest = dir.path().join("artifacts");
    let datastore = embedmd::dsn::resolve(None, Some(db.url()), &embedmd::TlsConfig::default()).unwrap();
    let config = ServerConfig {
        artifacts_destination: Destination::Directory(dest.clone()),
        ..ServerConfig::new("127.0.0.1", 0, datastore)
    };
    let app = App::build(config).await.unwrap();
    let addr = app.local_addr();
    tokio::spawn(app.run_until(std::future::pending()));
    Proxy {
        base: format!("http://{addr}/api/2.0/mlflow-artifacts"),
        addr,
        http: reqwest::Client::new(),
        dest,
        _dir: dir,
        _db: db,
    }
}

impl Proxy {
    async fn send(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> (u16, Vec<u8>) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.bytes().await.unwrap().to_vec())
    }

    async fn json(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, bytes) = self.send(method, path, body.map(|b| b.to_string().into_bytes())).await;
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn put(&self, path: &str, bytes: &[u8]) -> (u16, Value) {
        let (status, body) = self.send(Method::PUT, &format!("/artifacts/{path}"), Some(bytes.to_vec())).await;
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn list(&self, path: &str) -> Value {
        let (status, body) = self.json(Method::GET, &format!("/artifacts?path={path}"), None).await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// Every file below `dir`, relative, sorted (symbolic links listed, not followed).
fn files_below(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path.clone());
            }
            found.push(path.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
        }
    }
    found.sort();
    found
}

fn assert_invalid(status: u16, body: &Value, what: &str) {
    assert_eq!(status, 400, "{what}: {body}");
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE", "{what}: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_list_download_delete() {
    let proxy = start().await;
    assert_eq!(proxy.list("").await, json!({}), "an empty destination lists nothing");
    assert_eq!(proxy.put("1/run/artifacts/data/a.txt", b"alpha").await, (200, json!({})));
    assert_eq!(proxy.put("1/run/artifacts/data/sub/b.bin", &[0u8, 1, 2, 255]).await.0, 200);
    assert_eq!(proxy.put("1/run/artifacts/empty.txt", b"").await.0, 200);

    let (status, bytes) = proxy.send(Method::GET, "/artifacts/1/run/artifacts/data/sub/b.bin", None).await;
    assert_eq!((status, bytes), (200, vec![0u8, 1, 2, 255]));
    assert_eq!(
        proxy.list("1/run/artifacts").await,
        json!({"files": [{"path": "data", "is_dir": true}, {"path": "empty.txt", "is_dir": false}]}),
        "a size of zero is left out, as MLflow's proto3 JSON does"
    );
    assert_eq!(
        proxy.list("1/run/artifacts/data").await,
        json!({"files": [{"path": "a.txt", "is_dir": false, "file_size": 5}, {"path": "sub", "is_dir": true}]})
    );
    assert_eq!(proxy.list("1/run/artifacts/data/a.txt").await, json!({}), "a file lists nothing");
    assert_eq!(proxy.list("no/such/dir").await, json!({}));

    // Replacing a file keeps one copy, the new one.
    assert_eq!(proxy.put("1/run/artifacts/data/a.txt", b"beta").await.0, 200);
    assert_eq!(proxy.send(Method::GET, "/artifacts/1/run/artifacts/data/a.txt", None).await.1, b"beta");

    let (status, body) = proxy.json(Method::GET, "/artifacts/1/run/artifacts/data", None).await;
    assert_invalid(status, &body, "downloading a directory");
    let (status, body) = proxy.json(Method::GET, "/artifacts/1/run/artifacts/none.txt", None).await;
    assert_eq!((status, &body["error_code"]), (404, &json!("RESOURCE_DOES_NOT_EXIST")), "{body}");

    assert_eq!(proxy.json(Method::DELETE, "/artifacts/1/run/artifacts/data", None).await, (200, json!({})));
    assert_eq!(proxy.list("1/run/artifacts").await, json!({"files": [{"path": "empty.txt", "is_dir": false}]}));
    assert_eq!(proxy.json(Method::DELETE, "/artifacts/1/run/artifacts/data", None).await.0, 200, "deleting nothing is fine");
    assert!(!proxy.dest.join("1/run/artifacts/data").exists());
}

/// A request sent as written, with no client normalising its target (`%2E%2E` is `..` to a
/// URL parser): the status and the JSON answer.
fn raw(addr: std::net::SocketAddr, method: &str, target: &str, body: &[u8]) -> (u16, Value) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
        .unwrap();
    stream.write_all(body).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).unwrap().parse().unwrap();
    let json = answer.split_once("\r\n\r\n").map(|(_, b)| serde_json::from_str(b).unwrap_or(Value::Null)).unwrap_or_default();
    (status, json)
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_outside_the_destination_are_refused_and_nothing_is_written() {
    let proxy = start().await;
    let outside_before = files_below(proxy._dir.path());
    let addr = proxy.addr;
    tokio::task::spawn_blocking(move || {
        let base = "/api/2.0/mlflow-artifacts";
        for path in [
            "..%2Fescape.txt",
            "%2E%2E/escape.txt",
            "../escape.txt",
            "a/../../escape.txt",
            "a/..%2F..%2Fescape.txt",
            "%2Fetc%2Fescape.txt",
            "a%5C..%5Cb",
            "a//b",
            ".mlflow-mpu/x/1",
        ] {
            for method in ["PUT", "GET", "DELETE"] {
                let (status, body) = raw(addr, method, &format!("{base}/artifacts/{path}"), b"x");
                assert_invalid(status, &body, &format!("{method} {path}"));
            }
        }
        for path in ["..", "../", "%2Fetc", "a/../..", "%2E%2E"] {
            let (status, body) = raw(addr, "GET", &format!("{base}/artifacts?path={path}"), b"");
            assert_invalid(status, &body, path);
        }
        let create = br#"{"path": "/tmp/big.bin", "num_parts": 2}"#;
        let (status, body) = raw(addr, "POST", &format!("{base}/mpu/create/..%2Fx"), create);
        assert_invalid(status, &body, "multipart into ..");
        let (status, body) = raw(addr, "POST", &format!("{base}/mpu/create/x"), br#"{"path": "..", "num_parts": 2}"#);
        assert_invalid(status, &body, "multipart of a file named ..");
    })
    .await
    .unwrap();
    assert_eq!(files_below(proxy._dir.path()), outside_before, "nothing was written anywhere");
}

#[tokio::test(flavor = "multi_thread")]
async fn symbolic_links_do_not_lead_out_of_the_destination() {
    let proxy = start().await;
    assert_eq!(proxy.put("run/inside.txt", b"in").await.0, 200);
    let outside = proxy._dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(&outside, proxy.dest.join("run/escape")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), proxy.dest.join("run/secret-link")).unwrap();
    // A link that stays inside is an ordinary path.
    std::os::unix::fs::symlink(proxy.dest.join("run"), proxy.dest.join("alias")).unwrap();

    for path in ["run/escape/secret.txt", "run/secret-link"] {
        let (status, body) = proxy.json(Method::GET, &format!("/artifacts/{path}"), None).await;
        assert_invalid(status, &body, path);
        let (status, body) = proxy.json(Method::DELETE, &format!("/artifacts/{path}"), None).await;
        assert_invalid(status, &body, path);
    }
    let (status, body) = proxy.put("run/escape/planted.txt", b"x").await;
    assert_invalid(status, &body, "upload through a link");
    let (status, body) = proxy.json(Method::GET, "/artifacts?path=run/escape", None).await;
    assert_invalid(status, &body, "listing through a link");
    assert_eq!(
        proxy.list("run").await,
        json!({"files": [{"path": "inside.txt", "is_dir": false, "file_size": 2}]}),
        "links leading out are not listed"
    );
    assert_eq!(proxy.send(Method::GET, "/artifacts/alias/inside.txt", None).await, (200, b"in".to_vec()));
    assert_eq!(files_below(&outside), ["secret.txt"]);
    assert_eq!(std::fs::read_to_string(outside.join("secret.txt")).unwrap(), "secret");
}

/// A PUT whose connection closes before its declared length has arrived.
fn truncated_put(addr: std::net::SocketAddr, path: &str, declared: usize, sent: usize) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "PUT /api/2.0/mlflow-artifacts/{path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {declared}\r\n\r\n")
        .unwrap();
    stream.write_all(&vec![b'x'; sent]).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_cut_off_part_way_writes_nothing() {
    let proxy = start().await;
    assert_eq!(proxy.put("run/kept.bin", b"old").await.0, 200);
    let addr = proxy.addr;
    tokio::task::spawn_blocking(move || {
        truncated_put(addr, "artifacts/run/new.bin", 20 << 20, 9 << 20);
        truncated_put(addr, "artifacts/run/kept.bin", 1000, 10);
    })
    .await
    .unwrap();
    // The server notices the closed connection at once; give its clean-up a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = proxy.send(Method::GET, "/artifacts/run/new.bin", None).await;
    assert_eq!(status, 404, "a truncated upload leaves no file");
    assert_eq!(proxy.send(Method::GET, "/artifacts/run/kept.bin", None).await.1, b"old", "nor replaces one");
    assert_eq!(files_below(&proxy.dest), ["run", "run/kept.bin"], "no half-written file is left behind");
}

#[tokio::test(flavor = "multi_thread")]
async fn multipart_upload_through_the_proxy() {
    let proxy = start().await;
    let (status, created) = proxy
        .json(Method::POST, "/mpu/create/1/run/artifacts/model", Some(json!({"path": "/home/me/weights.bin", "num_parts": 3})))
        .await;
    assert_eq!(status, 200, "{created}");
    let upload_id = created["upload_id"].as_str().unwrap().to_owned();
    let credentials = created["credentials"].as_array().unwrap();
    assert_eq!(credentials.len(), 3);
    let parts: [&[u8]; 3] = [b"first-", b"second-", b"third"];
    // Parts arrive in any order; MLflow's client sends them from a thread pool.
    for i in [2usize, 0, 1] {
        let credential = &credentials[i];
        assert_eq!(credential["part_number"], i + 1);
        let url = credential["url"].as_str().unwrap();
        assert!(url.starts_with(&format!("http://{}/api/2.0/mlflow-artifacts/", proxy.addr)), "{url}");
        let response = proxy.http.put(url).body(parts[i].to_vec()).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers().contains_key("etag"));
    }
    let (status, body) = proxy.send(Method::GET, "/artifacts/1/run/artifacts/model/weights.bin", None).await;
    assert_eq!(status, 404, "nothing is visible before completion: {body:?}");
    let all_parts = json!([{"part_number": 1, "etag": "a"}, {"part_number": 2, "etag": "b"}, {"part_number": 3, "etag": "c"}]);
    let (status, body) = proxy
        .json(
            Method::POST,
            "/mpu/complete/1/run/artifacts/model",
            Some(json!({"path": "/home/me/other.bin", "upload_id": upload_id, "parts": all_parts})),
        )
        .await;
    assert_invalid(status, &body, "completing into another file");
    let (status, body) = proxy
        .json(
            Method::POST,
            "/mpu/complete/1/run/artifacts/model",
            Some(json!({"path": "/home/me/weights.bin", "upload_id": upload_id, "parts": all_parts})),
        )
        .await;
    assert_eq!((status, &body), (200, &json!({})));
    let (status, bytes) = proxy.send(Method::GET, "/artifacts/1/run/artifacts/model/weights.bin", None).await;
    assert_eq!((status, bytes), (200, b"first-second-third".to_vec()));
    assert_eq!(files_below(&proxy.dest.join(".mlflow-mpu")), Vec::<String>::new(), "the parts are gone");
    assert_eq!(proxy.list("").await, json!({"files": [{"path": "1", "is_dir": true}]}), "staging is never listed");
    let (status, body) = proxy
        .json(
            Method::POST,
            "/mpu/complete/1/run/artifacts/model",
            Some(json!({"path": "weights.bin", "upload_id": upload_id, "parts": all_parts})),
        )
        .await;
    assert_eq!((status, &body["error_code"]), (404, &json!("RESOURCE_DOES_NOT_EXIST")), "completed once: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn incomplete_multipart_uploads_write_nothing() {
    let proxy = start().await;
    let create = |n: i64| json!({"path": "big.bin", "num_parts": n});
    for n in [0, -1, 10_001] {
        let (status, body) = proxy.json(Method::POST, "/mpu/create/run", Some(create(n))).await;
        assert_invalid(status, &body, &format!("num_parts {n}"));
    }
    let (_, created) = proxy.json(Method::POST, "/mpu/create/run", Some(create(2))).await;
    let id = created["upload_id"].as_str().unwrap().to_owned();
    assert_eq!(proxy.send(Method::PUT, &format!("/mpu/parts/{id}/1"), Some(b"one".to_vec())).await.0, 200);
    let (status, body) = proxy.json(Method::PUT, &format!("/mpu/parts/{id}/3"), None).await;
    assert_invalid(status, &body, "a part beyond num_parts");
    let (status, body) = proxy.json(Method::PUT, "/mpu/parts/not-an-id/1", None).await;
    assert_invalid(status, &body, "an upload id this server never made");
    // Part 2 never came: completing is refused and no file appears.
    let parts = json!([{"part_number": 1}, {"part_number": 2}]);
    let (status, body) =
        proxy.json(Method::POST, "/mpu/complete/run", Some(json!({"path": "big.bin", "upload_id": id, "parts": parts}))).await;
    assert_invalid(status, &body, "a missing part");
    let (status, body) = proxy
        .json(Method::POST, "/mpu/complete/run", Some(json!({"path": "big.bin", "upload_id": id, "parts": [{"part_number": 1}]})))
        .await;
    assert_invalid(status, &body, "parts that are not all of them");
    assert_eq!(proxy.send(Method::GET, "/artifacts/run/big.bin", None).await.0, 404);
    // A truncated part is not stored either.
    let addr = proxy.addr;
    let part_path = format!("mpu/parts/{id}/2");
    tokio::task::spawn_blocking(move || truncated_put(addr, &part_path, 5000, 100)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) =
        proxy.json(Method::POST, "/mpu/complete/run", Some(json!({"path": "big.bin", "upload_id": id, "parts": parts}))).await;
    assert_eq!(status, 400);
    // Aborting drops the staged parts.
    let (status, body) = proxy.json(Method::POST, "/mpu/abort/run", Some(json!({"path": "big.bin", "upload_id": id}))).await;
    assert_eq!((status, body), (200, json!({})));
    assert_eq!(files_below(&proxy.dest), [".mlflow-mpu"], "no file and no parts are left");
    let (status, body) = proxy.json(Method::GET, "/presigned/run/big.bin", None).await;
    assert_eq!((status, &body["error_code"]), (501, &json!("NOT_IMPLEMENTED")), "{body}");
}

/// Sets the modification time of every file below `dir` back by `age`.
fn age_files(dir: &std::path::Path, age: Duration) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            age_files(&path, age);
        } else {
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(std::time::SystemTime::now() - age).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn abandoned_multipart_uploads_are_removed() {
    use model_registry::artifacts::ABANDONED_UPLOAD_AGE;
    let proxy = start().await;
    let staging = proxy.dest.join(".mlflow-mpu");
    let create = || async {
        let (status, created) =
            proxy.json(Method::POST, "/mpu/create/run", Some(json!({"path": "big.bin", "num_parts": 2}))).await;
        assert_eq!(status, 200, "{created}");
        created["upload_id"].as_str().unwrap().to_owned()
    };
    let (old, recent) = (create().await, create().await);
    for id in [&old, &recent] {
        assert_eq!(proxy.send(Method::PUT, &format!("/mpu/parts/{id}/1"), Some(b"one".to_vec())).await.0, 200);
    }
    // One upload untouched for longer than the age, the other just under it.
    age_files(&staging.join(&old), ABANDONED_UPLOAD_AGE + Duration::from_secs(60));
    age_files(&staging.join(&recent), ABANDONED_UPLOAD_AGE - Duration::from_secs(600));
    let new = create().await;
    let mut left: Vec<String> =
        std::fs::read_dir(&staging).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    let mut expected = vec![recent.clone(), new.clone()];
    expected.sort();
    assert_eq!(left, expected, "the abandoned upload is removed, the others are kept");
    assert_eq!(proxy.send(Method::PUT, &format!("/mpu/parts/{old}/2"), Some(b"two".to_vec())).await.0, 404);
    assert_eq!(proxy.send(Method::PUT, &format!("/mpu/parts/{recent}/2"), Some(b"two".to_vec())).await.0, 200);
    // At start: a server started on the same destination removes what was abandoned meanwhile.
    age_files(&staging, ABANDONED_UPLOAD_AGE + Duration::from_secs(60));
    let Proxy { _dir: dir, .. } = proxy;
    let _restarted = start_in(dir).await;
    for _ in 0..100 {
        if std::fs::read_dir(&staging).unwrap().next().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("abandoned uploads left after a start: {:?}", std::fs::read_dir(&staging).unwrap().collect::<Vec<_>>());
}

/// Peak resident memory of a process, from the kernel (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// Largest peak resident memory the server may reach while moving a 1 GiB file each way.
const PEAK_RSS_LIMIT: u64 = 100 << 20;
const ONE_GIB: u64 = 1 << 30;

#[tokio::test(flavor = "multi_thread")]
async fn a_one_gib_artifact_streams_both_ways_in_flat_memory() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("artifacts");
    let db = dir.path().join("registry.db");
    let server = Server::start(&[
        "--embedmd-database-dsn".into(),
        db.display().to_string(),
        "--artifacts-destination".into(),
        dest.display().to_string(),
    ]);
    server.wait_ready(Duration::from_secs(30)).await;
    let url = server.url("/api/2.0/mlflow-artifacts/artifacts/big/one-gib.bin");
    // 1 GiB in 1 MiB chunks of a pattern that differs per chunk, generated as it is sent.
    let chunk = |i: u64| -> Vec<u8> { (0..1u64 << 20).map(|j| ((i * 31 + j) % 251) as u8).collect() };
    let chunks = ONE_GIB >> 20;
    let body = futures_util::stream::iter(0..chunks).map(move |i| Ok::<_, std::io::Error>(chunk(i)));
    let response =
        server.http.put(&url).header("content-length", ONE_GIB).body(reqwest::Body::wrap_stream(body)).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(std::fs::metadata(dest.join("big/one-gib.bin")).unwrap().len(), ONE_GIB);
    let after_upload = peak_rss(server.child.id());

    let response = server.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.content_length(), Some(ONE_GIB));
    let mut stream = response.bytes_stream();
    let (mut received, mut mismatches) = (0u64, 0u64);
    while let Some(bytes) = stream.next().await {
        for b in bytes.unwrap() {
            let (i, j) = (received >> 20, received & ((1 << 20) - 1));
            if b != ((i * 31 + j) % 251) as u8 {
                mismatches += 1;
            }
            received += 1;
        }
    }
    assert_eq!((received, mismatches), (ONE_GIB, 0), "the download is the upload, byte for byte");
    let peak = peak_rss(server.child.id());
    eprintln!("peak RSS: {} MiB after the upload, {} MiB after the download", after_upload >> 20, peak >> 20);
    assert!(peak < PEAK_RSS_LIMIT, "peak RSS {} MiB is over {} MiB", peak >> 20, PEAK_RSS_LIMIT >> 20);
}
