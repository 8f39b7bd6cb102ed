//! The shell blocks of README.md and docs/*.md marked runnable (`<!-- runnable -->` on the line
//! right before a ```sh or ```bash fence) run against a fresh server on SQLite and must succeed:
//! the commands the docs give keep working. See docs/development.md.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod support;
use support::server::{Server, BIN};

const MARKER: &str = "<!-- runnable -->";
/// A block is killed after this long (a curl waiting on a server that never answers).
const BLOCK_TIMEOUT_SECS: u32 = 60;
/// curl's options for every block: an HTTP status of 400 or more fails the block, with the body.
const CURLRC: &str = "fail-with-body\nshow-error\n";

struct Block {
    /// `README.md:12`, the fence's line.
    place: String,
    code: String,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// README.md and docs/*.md, in that order.
fn doc_files() -> Vec<PathBuf> {
    let root = repo_root();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    docs.insert(0, root.join("README.md"));
    docs
}

/// The runnable blocks of one file. A marker that is not followed by a shell fence, or a fence
/// that is never closed, is an error: a block must not silently stop being tested.
fn runnable_blocks(name: &str, text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() != MARKER {
            continue;
        }
        let fence = lines.get(i + 1).map(|l| l.trim());
        assert!(
            matches!(fence, Some("```sh" | "```bash")),
            "{name}:{}: {MARKER} must be right before a ```sh or ```bash fence",
            i + 1
        );
        let body: Vec<&str> = lines[i + 2..].iter().take_while(|l| l.trim() != "```").copied().collect();
        assert!(i + 2 + body.len() < lines.len(), "{name}:{}: the runnable block is never closed", i + 2);
        blocks.push(Block { place: format!("{name}:{}", i + 2), code: body.join("\n") });
    }
    blocks
}

/// Runs one block in the server's directory, `model-registry` on PATH and `localhost:8080`
/// pointed at the server; None when it succeeded, else what went wrong.
fn run(block: &Block, server: &Server, dir: &Path, curl_home: &Path) -> Option<String> {
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let code = block.code.replace("localhost:8080", &format!("127.0.0.1:{}", server.port));
    let output = Command::new("timeout")
        .arg(BLOCK_TIMEOUT_SECS.to_string())
        .args(["bash", "-euo", "pipefail", "-c", &code])
        .current_dir(dir)
        .env("PATH", path)
        .env("HOME", dir)
        .env("CURL_HOME", curl_home)
        .output()
        .expect("bash and timeout run");
    if output.status.success() {
        return None;
    }
    Some(format!(
        "{}: {}\n--- block\n{}\n--- stdout\n{}\n--- stderr\n{}\n--- server log\n{}",
        block.place,
        output.status,
        block.code,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        server.log()
    ))
}

#[test]
fn markers_need_a_closed_shell_fence() {
    let ok = "text\n<!-- runnable -->\n```sh\necho a\necho b\n```\n";
    let blocks = runnable_blocks("x.md", ok);
    assert_eq!(blocks.len(), 1);
    assert_eq!((blocks[0].place.as_str(), blocks[0].code.as_str()), ("x.md:3", "echo a\necho b"));
    for bad in [
        "<!-- runnable -->\n```python\nprint(1)\n```\n",
        "<!-- runnable -->\n\n```sh\nls\n```\n",
        "<!-- runnable -->\n```sh\nls\n",
    ] {
        assert!(std::panic::catch_unwind(|| runnable_blocks("x.md", bad)).is_err(), "accepted: {bad:?}");
    }
}

#[tokio::test]
async fn runnable_doc_blocks_succeed_against_a_fresh_server() {
    let root = repo_root();
    let blocks: Vec<Block> = doc_files()
        .iter()
        .flat_map(|file| {
            let name = file.strip_prefix(&root).unwrap().display().to_string();
            runnable_blocks(&name, &std::fs::read_to_string(file).unwrap())
        })
        .collect();
    assert!(blocks.iter().any(|b| b.place.starts_with("README.md:")), "README.md has no runnable block");

    let curl_home = tempfile::tempdir().unwrap();
    std::fs::write(curl_home.path().join(".curlrc"), CURLRC).unwrap();
    let mut failures = Vec::new();
    for block in &blocks {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start_in(&[], Some(dir.path()));
        server.wait_ready(Duration::from_secs(30)).await;
        failures.extend(run(block, &server, dir.path(), curl_home.path()));
    }
    assert!(failures.is_empty(), "{} of {} runnable blocks failed:\n\n{}", failures.len(), blocks.len(), failures.join("\n\n"));
    eprintln!("{} runnable blocks ran: {}", blocks.len(), blocks.iter().map(|b| b.place.as_str()).collect::<Vec<_>>().join(", "));
}
