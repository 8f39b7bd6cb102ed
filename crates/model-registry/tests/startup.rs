//! What the real binary tells the person who starts it: a port it cannot bind and a config file
//! it cannot read, each named with what to do; plain-text logs off a terminal.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::server::{Server, BIN};

/// Runs the binary to its exit, which must come within 10 s; returns its output.
fn run_to_exit(args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("HOME", "/nonexistent")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after 10 s: {:?}", child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_port_in_use_is_named_with_the_flags_and_variables_that_change_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();

    let out = run_to_exit(&["proxy", "--hostname", "127.0.0.1", "--port", &port]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(text.contains(&format!("cannot listen on 127.0.0.1:{port} for the API: Address already in use")), "{text}");
    assert!(text.contains("another process is listening there"), "{text}");
    assert!(text.contains("--port/-p (MR_PORT)") && text.contains("--hostname/-n (MR_HOSTNAME)"), "{text}");

    let out = run_to_exit(&["proxy", "--hostname", "127.0.0.1", "--port", "0", "--metrics-port", &port]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(text.contains(&format!("cannot listen on 127.0.0.1:{port} for /metrics")), "{text}");
    assert!(text.contains("--metrics-port (MR_METRICS_PORT)"), "{text}");
}

#[test]
fn an_unreadable_config_file_is_named_with_its_path() {
    let out = run_to_exit(&["proxy", "--config", "/nonexistent/mr.yaml"]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(text.contains("cannot read config file /nonexistent/mr.yaml: No such file or directory"), "{text}");
    assert!(text.contains("--config/-c (MR_CONFIG)"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let out = run_to_exit(&["proxy", "--config", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&format!("cannot read config file {}:", dir.path().display())), "{}", stderr(&out));
}

#[tokio::test]
async fn text_logs_to_a_file_have_no_colour_escapes() {
    let server = Server::start_logging(&["--log-format", "text"]).await;
    server.wait_ready(Duration::from_secs(30)).await;
    let log = server.stop();
    assert!(log.contains("listening") && log.contains("ready"), "{log}");
    assert!(!log.contains('\x1b'), "{log:?}");
}

/// On a terminal (a pseudo-terminal from `script`) the same lines keep their colours.
#[test]
fn text_logs_on_a_terminal_keep_their_colours() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("registry.db");
    let command = format!("timeout -s INT 3 {BIN} proxy --hostname 127.0.0.1 --port 0 --embedmd-database-dsn {}", db.display());
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("HOME", "/nonexistent")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .output()
        .expect("script (util-linux) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("listening"), "{text}");
    assert!(text.contains("\x1b["), "{text:?}");
}
