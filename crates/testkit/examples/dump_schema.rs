//! Print the normalized schema dump of a database: `cargo run -p testkit --example dump_schema -- <url> [excluded table...]`
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(url) = args.first() else {
        eprintln!("usage: dump_schema <sqlx url> [excluded table...]");
        std::process::exit(2);
    };
    let exclude: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    print!("{}", testkit::schema_dump_excluding(url, &exclude).await);
}
