//! What the real binary tells the person who starts it: plain-text logs off a terminal.

use std::process::Command;
use std::time::Duration;

mod support;
use support::server::{Server, BIN};

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
