//! Export and import at the table level against real SQLite, MariaDB and PostgreSQL databases:
//! every value kind and the rows MLMD itself writes survive a round trip exactly; a malformed
//! file, a value the target cannot hold and a target that holds data are refused, naming the
//! line and column, with nothing written; what cannot be exported or backed up is refused.

use embedmd::transfer::{self, TransferError};
use embedmd::{Datastore, PoolConfig, TlsConfig};
use model_registry::registry::mlmd_types;
use serde_json::json;
use sqlx::Connection;
use testkit::{Backend, TestDb};

testkit::on_every_backend!(
    every_value_kind_survives_the_round_trip,
    values_the_target_cannot_hold_are_refused_by_line_and_column,
    a_malformed_file_names_its_line_and_writes_nothing,
    a_target_that_holds_data_is_refused_untouched,
    an_unusable_source_is_not_exported,
);

fn target(db: &TestDb) -> embedmd::ConnectTarget {
    embedmd::dsn::resolve(None, Some(db.url()), &TlsConfig::default()).expect("test URL parses")
}

/// What a server start does: migrate and sync the registry's types.
async fn started(db: &TestDb) {
    let (store, _) = Datastore::open(&target(db), &PoolConfig::default(), &mlmd_types()).await.expect("opens");
    store.close().await;
}

async fn export(db: &TestDb) -> String {
    let mut out = Vec::new();
    transfer::export(&target(db), &mut out, &mut ()).await.expect("exports");
    String::from_utf8(out).expect("the file is UTF-8")
}

async fn import(db: &TestDb, file: impl AsRef<[u8]>) -> Result<transfer::Summary, TransferError> {
    transfer::import(&target(db), file.as_ref(), &mlmd_types(), &mut ()).await
}

/// The rows as JSON values, for files whose lines were edited (and so reordered).
fn parsed_rows(file: &str) -> Vec<serde_json::Value> {
    rows(file).into_iter().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// `file` with `column` of the first line of `table` that matches `when` set to `value`
/// (`None`: removed); returns the line's number too.
fn with_value(file: &str, table: &str, when: &str, column: &str, value: Option<serde_json::Value>) -> (usize, String) {
    let prefix = format!("{{\"table\":\"{table}\"");
    let index = file
        .lines()
        .position(|l| l.starts_with(&prefix) && l.contains(when))
        .unwrap_or_else(|| panic!("no {table} line with {when}"));
    let lines: Vec<String> = file
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i != index {
                return l.to_owned();
            }
            let mut row: serde_json::Map<String, serde_json::Value> = serde_json::from_str(l).unwrap();
            match &value {
                Some(v) => row.insert(column.to_owned(), v.clone()),
                None => row.remove(column),
            };
            serde_json::Value::Object(row).to_string()
        })
        .collect();
    (index + 1, lines.join("\n") + "\n")
}

/// Every line but the header (which names the source and the time).
fn rows(file: &str) -> Vec<&str> {
    file.lines().skip(1).collect()
}

/// An SQLite registry holding what MLMD writes (types with base types, events with paths,
/// struct and proto values) and, written directly, values at the edges of every column kind
/// (byte values too, which MLMD itself neither writes nor reads).
async fn source_with_every_value() -> TestDb {
    let db = TestDb::new(Backend::Sqlite).await;
    started(&db).await;
    db.mlmd_ok_async(&["seed"]).await;
    db.mlmd_ok_async(&["seed-values"]).await;
    let mut conn = sqlx::SqliteConnection::connect(db.url()).await.unwrap();
    let custom = |name: String, column: &str| {
        format!("INSERT INTO ArtifactProperty (artifact_id, name, is_custom_property, {column}) VALUES (1, '{name}', 1, ?)")
    };
    let doubles = [0.1, 1.0 / 3.0, 5e-324, f64::MAX, f64::MIN_POSITIVE, -2.5e-10, 1e300, 123_456_789.123_456_79, -0.0, 7.0];
    for (i, d) in doubles.iter().enumerate() {
        sqlx::query(&custom(format!("double-{i}"), "double_value")).bind(d).execute(&mut conn).await.unwrap();
    }
    let texts = ["", " ", "\"quoted\" \\ / \u{7f} \u{1} \n\r\t", "ünïcödé ✓ 😀", &"x".repeat(100_000)];
    for (i, text) in texts.iter().enumerate() {
        sqlx::query(&custom(format!("text-{i}"), "string_value")).bind(text).execute(&mut conn).await.unwrap();
    }
    let every_byte: Vec<u8> = (0..=255).collect();
    for (i, bytes) in [&every_byte[..0], &every_byte[..1], &every_byte[..]].iter().enumerate() {
        sqlx::query(&custom(format!("bytes-{i}"), "byte_value")).bind(*bytes).execute(&mut conn).await.unwrap();
    }
    for (i, int) in [i64::from(i32::MIN), -1, 0, i64::from(i32::MAX)].iter().enumerate() {
        sqlx::query(&custom(format!("int-{i}"), "int_value")).bind(int).execute(&mut conn).await.unwrap();
    }
    for boolean in [true, false] {
        sqlx::query(&custom(format!("bool-{boolean}"), "bool_value")).bind(boolean).execute(&mut conn).await.unwrap();
    }
    // The longest name and, under PostgreSQL's index limit, the longest uri; times at the edges.
    sqlx::query(
        "INSERT INTO Artifact (type_id, name, uri, state, create_time_since_epoch, last_update_time_since_epoch) \
         SELECT id, ?, ?, 6, ?, 0 FROM Type WHERE name = 'seed.Model'",
    )
    .bind("n".repeat(255))
    .bind("u".repeat(2_692))
    .bind(i64::MAX)
    .execute(&mut conn)
    .await
    .unwrap();
    // Ids past the last row, as deleted rows leave them: the target must not hand them out again.
    sqlx::query("UPDATE sqlite_sequence SET seq = seq + 100 WHERE name = 'Artifact'").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    db
}

async fn every_value_kind_survives_the_round_trip(backend: Backend) {
    let source = source_with_every_value().await;
    let file = export(&source).await;
    let target_db = TestDb::new(backend).await;
    let summary = import(&target_db, &file).await.expect("imports");
    assert_eq!(summary.total_rows() as usize, file.lines().count() - 2);
    let again = export(&target_db).await;
    assert_eq!(rows(&again), rows(&file), "the target holds exactly the source's rows");
    let end = file.lines().last().unwrap();
    let next_artifact: i64 = source.query_text("SELECT seq + 1 FROM sqlite_sequence WHERE name = 'Artifact'").await[0][0]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert!(end.contains(&format!("\"Artifact\":{next_artifact}")), "{end}");
    assert!(again.ends_with(&format!("{end}\n")), "the target's sequences hand out what the source's would");
}

async fn values_the_target_cannot_hold_are_refused_by_line_and_column(backend: Backend) {
    let source = source_with_every_value().await;
    let file = export(&source).await;
    let cases = [
        (
            "ArtifactProperty",
            "\"int-1\"",
            "int_value",
            json!(1_099_511_627_776i64),
            "1099511627776 does not fit the target's 32-bit INT column",
        ),
        (
            "ArtifactProperty",
            "\"double-6\"",
            "double_value",
            json!("Infinity"),
            "\"Infinity\" cannot be stored on MySQL or MariaDB",
        ),
        (
            "ArtifactProperty",
            "\"double-6\"",
            "double_value",
            json!("-Infinity"),
            "\"-Infinity\" cannot be stored on MySQL or MariaDB",
        ),
        ("Context", "seed-parent", "name", json!("y".repeat(256)), "256 characters do not fit the target's VARCHAR(255)"),
    ];
    for (table, when, column, value, message) in cases {
        let (line, bad) = with_value(&file, table, when, column, Some(value.clone()));
        // A started target, so that what a refusal must leave untouched holds the schema and types.
        let db = TestDb::new(backend).await;
        started(&db).await;
        let before = contents(&db).await;
        let refused = match backend {
            Backend::Sqlite => false,
            Backend::Postgres => !message.contains("MySQL"),
            Backend::MySql => true,
        };
        match import(&db, &bad).await {
            Err(e) if refused => {
                assert_eq!(e.to_string(), format!("line {line}: {table}.{column}: {message}"));
                assert_eq!(contents(&db).await, before, "{value}: the refused import changed the target");
            }
            Ok(_) if !refused => assert_eq!(parsed_rows(&export(&db).await), parsed_rows(&bad), "{value} is kept as it is"),
            other => panic!("{backend}: {value}: {other:?}"),
        }
    }
}

/// The state a test compares: the schema with its types, and every table's row count.
async fn contents(db: &TestDb) -> String {
    let mut out = db.schema_dump().await;
    let quote = |t: &str| if db.backend() == Backend::Postgres { format!("\"{t}\"") } else { t.to_owned() };
    for spec in &transfer::TABLES {
        let name = spec.table.camel_name();
        let count = db.query_text(&format!("SELECT COUNT(*) FROM {}", quote(name))).await;
        out.push_str(&format!("{name} {:?}\n", count[0][0]));
    }
    out
}

async fn a_malformed_file_names_its_line_and_writes_nothing(backend: Backend) {
    let source = TestDb::new(Backend::Sqlite).await;
    started(&source).await;
    source.mlmd_ok_async(&["seed"]).await;
    source.mlmd_ok_async(&["seed-values"]).await;
    let file = export(&source).await;
    let lines: Vec<&str> = file.lines().collect();
    let n = lines.len();
    let join = |lines: &[&str]| lines.join("\n") + "\n";
    let first = |table: &str| 1 + lines.iter().position(|l| l.starts_with(&format!("{{\"table\":\"{table}\""))).unwrap();
    let artifact = first("Artifact");
    let mut out_of_order = lines.clone();
    let moved = out_of_order.remove(first("Type") - 1);
    out_of_order.insert(artifact - 1, moved);
    // A row nothing points at, so that every dialect reaches the end line.
    let mut without_a_row = lines.clone();
    without_a_row.remove(first("EventPath") - 1);
    let paths = lines.iter().filter(|l| l.starts_with("{\"table\":\"EventPath\"")).count();
    let mut cut_line = lines.clone();
    cut_line[artifact - 1] = &lines[artifact - 1][..20];
    // Cut inside a line, wherever two thirds of the bytes fall.
    let mut cut = file.len() * 2 / 3;
    while !file.is_char_boundary(cut) || file.as_bytes()[cut - 1] == b'\n' {
        cut += 1;
    }
    let value =
        |table: &str, when: &str, column: &str, value: Option<serde_json::Value>| with_value(&file, table, when, column, value).1;
    let proto = first("ArtifactProperty")
        + lines
            .iter()
            .filter(|l| l.starts_with("{\"table\":\"ArtifactProperty\""))
            .position(|l| l.contains("proto_value"))
            .unwrap();
    let cases: Vec<(Vec<u8>, String)> = vec![
        (file.as_bytes()[..cut].to_vec(), "the file ends in the middle of this line: it is truncated".into()),
        (join(&lines[..n - 3]).into(), format!("line {}: the file ends without its end line: it is truncated", n - 2)),
        (join(&cut_line).into(), format!("line {artifact}: not a JSON object")),
        (
            value("Artifact", "", "type_id", Some(json!("x"))).into(),
            format!("line {artifact}: Artifact.type_id: expected an integer, found \"x\""),
        ),
        (
            value("Artifact", "", "uri", Some(json!(7))).into(),
            format!("line {artifact}: Artifact.uri: expected a string, found 7"),
        ),
        (
            value("Artifact", "", "id", Some(json!(0))).into(),
            format!("line {artifact}: Artifact.id: 0 is not an id (ids start at 1)"),
        ),
        (
            value("Type", "", "type_kind", Some(json!(1.5))).into(),
            "line 2: Type.type_kind: expected an integer, found 1.5".into(),
        ),
        (
            value("Context", "", "name", None).into(),
            format!("line {}: Context.name: missing; the column is NOT NULL", first("Context")),
        ),
        (
            value("Context", "", "colour", Some(json!(1))).into(),
            format!("line {}: Context.colour: no such column", first("Context")),
        ),
        (
            value("Context", "", "table", Some(json!("Kontext"))).into(),
            format!("line {}: unknown table \"Kontext\"", first("Context")),
        ),
        (
            value("ArtifactProperty", "proto_value", "proto_value", Some(json!("not base64!"))).into(),
            format!("line {proto}: ArtifactProperty.proto_value: not base64"),
        ),
        (
            value("EventPath", "", "is_index_step", Some(json!("yes"))).into(),
            format!("line {}: EventPath.is_index_step: expected true or false, found \"yes\"", first("EventPath")),
        ),
        (join(&out_of_order).into(), format!("line {artifact}: a row of Type after rows of Artifact")),
        (
            join(&without_a_row).into(),
            format!("line {}: the end line counts {paths} rows of EventPath, and the file holds {}", n - 1, paths - 1),
        ),
        (file.replace("\"format_version\":1", "\"format_version\":2").into(), "the file is in export format version 2".into()),
        (file.replace("\"mlmd_schema_version\":10", "\"mlmd_schema_version\":9").into(), "MLMD schema version 9".into()),
        (
            file.replace("\"migration_version\":21", "\"migration_version\":99").into(),
            "the file comes from a sqlite database at migration 99, which this release does not know".into(),
        ),
        (file.replace("\"layout\":\"sqlite\"", "\"layout\":\"oracle\"").into(), "a \"oracle\" database".into()),
        (format!("{file}{}\n", lines[1]).into(), format!("line {}: nothing may follow the end line", n + 1)),
        (Vec::new(), "line 1: the file is empty".into()),
        (b"{\"rows\": []}\n".to_vec(), "line 1: not a model-registry export".into()),
        (vec![0xff, 0xfe, b'\n'], "line 1: not a model-registry export".into()),
    ];
    let db = TestDb::new(backend).await;
    started(&db).await;
    let before = contents(&db).await;
    for (bad, message) in &cases {
        let error = import(&db, bad).await.expect_err(message).to_string();
        assert!(error.starts_with(message.as_str()) || error.contains(message.as_str()), "{error:?} does not say {message:?}");
        assert_eq!(contents(&db).await, before, "{error}: the target changed");
    }
    import(&db, &file).await.expect("the whole file still imports");
    assert_eq!(rows(&export(&db).await), rows(&file));
}

async fn a_target_that_holds_data_is_refused_untouched(backend: Backend) {
    let source = TestDb::new(Backend::Sqlite).await;
    started(&source).await;
    source.mlmd_ok_async(&["seed-values"]).await;
    let file = export(&source).await;

    // A type this server does not create counts, even without a row of it.
    let foreign = TestDb::new(backend).await;
    let (store, _) = Datastore::open(&target(&foreign), &PoolConfig::default(), &mlmd_types()).await.unwrap();
    let (kind, table) = match backend {
        Backend::Postgres => ("2", "\"Type\""),
        _ => ("2", "Type"),
    };
    foreign.execute(&format!("INSERT INTO {table} (name, type_kind) VALUES ('their.Type', {kind})")).await;
    store.close().await;
    let before = contents(&foreign).await;
    let error = import(&foreign, &file).await.unwrap_err();
    assert!(matches!(error, TransferError::NotEmpty(_)), "{error}");
    assert!(error.to_string().contains("it has the type \"their.Type\""), "{error}");
    assert_eq!(contents(&foreign).await, before);

    let full = TestDb::new(backend).await;
    started(&full).await;
    import(&full, &file).await.expect("a started but empty database is empty");
    let before = contents(&full).await;
    let error = import(&full, &file).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "the target database is not empty: Artifact holds rows; import writes only into an empty database"
    );
    assert_eq!(contents(&full).await, before);
    // ParentType alone (types linked, no node) counts as well.
    let linked = TestDb::new(backend).await;
    started(&linked).await;
    let parent_type = if backend == Backend::Postgres { "\"ParentType\"" } else { "ParentType" };
    linked.execute(&format!("INSERT INTO {parent_type} (type_id, parent_type_id) VALUES (10, 1)")).await;
    let before = contents(&linked).await;
    let error = import(&linked, &file).await.unwrap_err();
    assert!(error.to_string().contains("ParentType holds rows"), "{error}");
    assert_eq!(contents(&linked).await, before);
}

async fn an_unusable_source_is_not_exported(backend: Backend) {
    let db = TestDb::new(backend).await;
    if backend == Backend::Sqlite {
        let error = transfer::export(&target(&db), Vec::new(), &mut ()).await.unwrap_err();
        assert_eq!(error.to_string(), "the database holds no MLMD schema (no MLMDEnv table)");
        let missing = embedmd::dsn::resolve(None, Some("sqlite:///nonexistent/x.db"), &TlsConfig::default()).unwrap();
        let error = transfer::export(&missing, Vec::new(), &mut ()).await.unwrap_err();
        assert_eq!(error.to_string(), "there is no SQLite database at /nonexistent/x.db");
        let error = transfer::backup(&target(&db), std::path::Path::new(db.name())).await.unwrap_err();
        assert!(error.to_string().ends_with("exists: backup writes a new file"), "{error}");
    } else {
        let error = transfer::backup(&target(&db), std::path::Path::new("/tmp/never.db")).await.unwrap_err();
        assert!(error.to_string().starts_with("backup copies SQLite files"), "{error}");
    }
    started(&db).await;
    if backend != Backend::Postgres {
        // Where MLMD keeps proto values as base64 text, anything else cannot be told apart.
        db.execute(
            "INSERT INTO ArtifactProperty (artifact_id, name, is_custom_property, proto_value) VALUES (1, 'raw', 1, X'00FF')",
        )
        .await;
        let error = transfer::export(&target(&db), Vec::new(), &mut ()).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "ArtifactProperty (artifact_id 1, property \"raw\"): its proto_value is not the base64 text MLMD writes on {backend}, \
                 so it cannot be carried to another database"
            )
        );
        db.execute("DELETE FROM ArtifactProperty").await;
    }
    db.execute("UPDATE schema_migrations SET version = 99").await;
    let error = transfer::export(&target(&db), Vec::new(), &mut ()).await.unwrap_err();
    assert!(error.to_string().contains("at migration 99, which this release does not know"), "{error}");
    db.execute("UPDATE schema_migrations SET version = 21, dirty = TRUE").await;
    let error = transfer::export(&target(&db), Vec::new(), &mut ()).await.unwrap_err();
    assert!(error.to_string().starts_with("the database schema is dirty at version 21"), "{error}");
}
