//! TestDb on every backend: fresh and empty, usable through its URL with sqlx, unique, and
//! dropped afterwards (also from a multi-thread runtime and outside any runtime); keep().

use sqlx::Connection;
use testkit::{query_text, schema_dump, Backend, TestDb};

/// Does the database (or SQLite file) still exist? Asked through the admin DSN.
async fn exists(backend: Backend, name: &str) -> bool {
    match backend {
        Backend::Sqlite => std::path::Path::new(name).exists(),
        Backend::MySql => {
            let rows = query_text(
                &testkit::admin_dsn(backend).unwrap(),
                &format!("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{name}'"),
            )
            .await;
            !rows.is_empty()
        }
        Backend::Postgres => {
            let rows = query_text(
                &testkit::admin_dsn(backend).unwrap(),
                &format!("SELECT datname FROM pg_database WHERE datname = '{name}'"),
            )
            .await;
            !rows.is_empty()
        }
    }
}

/// Create a table, write and read a row through a plain sqlx connection to `db.url()`.
async fn use_with_sqlx(db: &TestDb) {
    let create = "CREATE TABLE probe (id INT NOT NULL PRIMARY KEY, label VARCHAR(20) NOT NULL)";
    match db.backend() {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(db.url()).await.expect("sqlite url connects");
            sqlx::query(create).execute(&mut c).await.unwrap();
            sqlx::query("INSERT INTO probe VALUES (?, ?)").bind(1).bind("one").execute(&mut c).await.unwrap();
            let (l,): (String,) = sqlx::query_as("SELECT label FROM probe WHERE id = 1").fetch_one(&mut c).await.unwrap();
            assert_eq!(l, "one");
            c.close().await.unwrap();
        }
        Backend::MySql => {
            let mut c = sqlx::MySqlConnection::connect(db.url()).await.expect("mysql url connects");
            let (cur,): (String,) = sqlx::query_as("SELECT DATABASE()").fetch_one(&mut c).await.unwrap();
            assert_eq!(cur, db.name());
            sqlx::query(create).execute(&mut c).await.unwrap();
            sqlx::query("INSERT INTO probe VALUES (?, ?)").bind(1).bind("one").execute(&mut c).await.unwrap();
            let (l,): (String,) = sqlx::query_as("SELECT label FROM probe WHERE id = 1").fetch_one(&mut c).await.unwrap();
            assert_eq!(l, "one");
            c.close().await.unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(db.url()).await.expect("postgres url connects");
            let (cur,): (String,) = sqlx::query_as("SELECT current_database()::text").fetch_one(&mut c).await.unwrap();
            assert_eq!(cur, db.name());
            sqlx::query(create).execute(&mut c).await.unwrap();
            sqlx::query("INSERT INTO probe VALUES ($1, $2)").bind(1).bind("one").execute(&mut c).await.unwrap();
            let (l,): (String,) = sqlx::query_as("SELECT label FROM probe WHERE id = 1").fetch_one(&mut c).await.unwrap();
            assert_eq!(l, "one");
            c.close().await.unwrap();
        }
    }
}

fn check_url(db: &TestDb) {
    match db.backend() {
        Backend::Sqlite => {
            assert!(std::path::Path::new(db.name()).is_absolute(), "{}", db.name());
            assert_eq!(db.url(), format!("sqlite://{}", db.name()));
            assert!(db.url().starts_with("sqlite:///"), "{}", db.url());
        }
        b => {
            assert!(db.name().starts_with("mrt_") && db.name().len() == 16, "{}", db.name());
            let mut expected = url::Url::parse(&testkit::admin_dsn(b).unwrap()).unwrap();
            expected.set_path(&format!("/{}", db.name()));
            assert_eq!(db.url(), expected.as_str());
            if b == Backend::MySql && std::env::var_os("MR_TEST_MYSQL_DSN").is_none() {
                assert_eq!(db.url(), format!("mysql://root@127.0.0.1:3306/{}", db.name()));
                assert_eq!(
                    db.go_mysql_dsn(),
                    format!("root:@tcp(127.0.0.1:3306)/{}?charset=utf8mb4&parseTime=True&loc=Local", db.name())
                );
            }
            if b == Backend::Postgres && std::env::var_os("MR_TEST_POSTGRES_DSN").is_none() {
                assert_eq!(db.url(), format!("postgres://root@127.0.0.1:5432/{}", db.name()));
            }
        }
    }
}

async fn lifecycle(backend: Backend) {
    let db = TestDb::new(backend).await;
    let other = TestDb::new(backend).await;
    assert_eq!(db.backend(), backend);
    assert_ne!(db.name(), other.name(), "names must be unique");
    check_url(&db);
    let name = db.name().to_string();
    assert!(exists(backend, &name).await, "{name} should exist");
    assert_eq!(schema_dump(db.url()).await, "", "a new TestDb is empty");
    use_with_sqlx(&db).await;
    assert!(db.schema_dump().await.starts_with("TABLE probe\n"));
    assert_eq!(db.query_text("SELECT label FROM probe").await, vec![vec![Some("one".to_string())]]);
    drop(db);
    if std::env::var("MR_TEST_KEEP_DB").as_deref() != Ok("1") {
        assert!(!exists(backend, &name).await, "{name} should be dropped");
    }
    assert!(exists(backend, other.name()).await, "the other TestDb is untouched");
}

#[tokio::test]
async fn testdb_sqlite() {
    lifecycle(Backend::Sqlite).await;
}

#[tokio::test]
async fn testdb_mysql() {
    lifecycle(Backend::MySql).await;
}

#[tokio::test]
async fn testdb_postgres() {
    lifecycle(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_inside_multi_thread_runtime() {
    for b in Backend::ALL {
        let db = TestDb::new(b).await;
        let name = db.name().to_string();
        // Keep a connection open: PostgreSQL's DROP ... WITH (FORCE) must still succeed.
        let _open = if b == Backend::Postgres { Some(sqlx::PgConnection::connect(db.url()).await.unwrap()) } else { None };
        drop(db);
        if std::env::var("MR_TEST_KEEP_DB").as_deref() != Ok("1") {
            assert!(!exists(b, &name).await, "{b}: {name} should be dropped");
        }
    }
}

#[test]
fn drop_outside_any_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dbs: Vec<TestDb> = Backend::ALL.iter().map(|b| rt.block_on(TestDb::new(*b))).collect();
    let names: Vec<(Backend, String)> = dbs.iter().map(|d| (d.backend(), d.name().to_string())).collect();
    drop(rt);
    drop(dbs); // no runtime around
    if std::env::var("MR_TEST_KEEP_DB").as_deref() != Ok("1") {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        for (b, n) in names {
            assert!(!rt.block_on(exists(b, &n)), "{b}: {n} should be dropped");
        }
    }
}

#[tokio::test]
async fn keep_leaves_the_database() {
    for b in Backend::ALL {
        let db = TestDb::new(b).await.keep();
        let name = db.name().to_string();
        drop(db);
        assert!(exists(b, &name).await, "{b}: kept {name} should still exist");
        // clean up by hand
        match b {
            Backend::Sqlite => std::fs::remove_dir_all(std::path::Path::new(&name).parent().unwrap()).unwrap(),
            Backend::MySql => testkit::execute_sql(&testkit::admin_dsn(b).unwrap(), &format!("DROP DATABASE `{name}`")).await,
            Backend::Postgres => {
                testkit::execute_sql(&testkit::admin_dsn(b).unwrap(), &format!("DROP DATABASE \"{name}\"")).await
            }
        }
        assert!(!exists(b, &name).await);
    }
}

#[tokio::test]
#[ignore = "helper: run by unreachable_server_panics_naming_the_dsn with a bad DSN"]
async fn helper_new_mysql() {
    if std::env::var_os("TESTKIT_HELPER").is_some() {
        TestDb::new(Backend::MySql).await;
    }
}

#[tokio::test]
#[ignore = "helper: run by unreachable_server_panics_naming_the_dsn with a bad DSN"]
async fn helper_new_postgres() {
    if std::env::var_os("TESTKIT_HELPER").is_some() {
        TestDb::new(Backend::Postgres).await;
    }
}

/// With the admin DSN pointing at a closed port, TestDb::new panics naming the DSN (no skip).
/// Runs the helpers above in a child test process so the environment change stays there.
#[test]
fn unreachable_server_panics_naming_the_dsn() {
    let exe = std::env::current_exe().unwrap();
    for (var, dsn, helper) in [
        ("MR_TEST_MYSQL_DSN", "mysql://root@127.0.0.1:1/test", "helper_new_mysql"),
        ("MR_TEST_POSTGRES_DSN", "postgres://root@127.0.0.1:1/test", "helper_new_postgres"),
    ] {
        let out = std::process::Command::new(&exe)
            .args([helper, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(var, dsn)
            .env("TESTKIT_HELPER", "1")
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "{helper} should fail:\n{text}");
        assert!(text.contains("1 failed"), "{helper} did not run:\n{text}");
        assert!(text.contains(&format!("admin DSN {dsn}")), "{helper}: DSN not named:\n{text}");
    }
}
