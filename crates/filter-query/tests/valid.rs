//! Table-driven valid queries with their expected trees.

use filter_query::{parse, Comparison, Expr, Literal, Op, Property, ValueType};

fn prop(path: &[&str]) -> Property {
    Property { path: path.iter().map(|s| s.to_string()).collect(), value_type: None }
}

fn typed(path: &[&str], t: ValueType) -> Property {
    Property { value_type: Some(t), ..prop(path) }
}

fn cmp(property: Property, op: Op, value: Literal) -> Expr {
    Expr::Compare(Comparison {
        property,
        op,
        value,
        position: 0, // ignored by PartialEq
    })
}

fn c(name: &str, op: Op, value: Literal) -> Expr {
    cmp(prop(&[name]), op, value)
}

fn s(v: &str) -> Literal {
    Literal::String(v.to_string())
}

fn i(v: i64) -> Literal {
    Literal::Int(v)
}

fn f(v: f64) -> Literal {
    Literal::Float(v)
}

fn b(v: bool) -> Literal {
    Literal::Bool(v)
}

fn list(items: Vec<Literal>) -> Literal {
    Literal::List(items)
}

fn and(items: Vec<Expr>) -> Expr {
    Expr::And(items)
}

fn or(items: Vec<Expr>) -> Expr {
    Expr::Or(items)
}

fn cases() -> Vec<(&'static str, Expr)> {
    use Op::*;
    vec![
        // --- the examples of contract section 5.3 ---
        (r#"name = "my-model""#, c("name", Eq, s("my-model"))),
        ("name='my-model' AND state='LIVE'", and(vec![c("name", Eq, s("my-model")), c("state", Eq, s("LIVE"))])),
        ("accuracy > 0.95", c("accuracy", Gt, f(0.95))),
        (r#"name LIKE "%tensorflow%""#, c("name", Like, s("%tensorflow%"))),
        (
            r#"(name = "model-a" OR name = "model-b") AND state = "LIVE""#,
            and(vec![or(vec![c("name", Eq, s("model-a")), c("name", Eq, s("model-b"))]), c("state", Eq, s("LIVE"))]),
        ),
        (r#"framework.string_value = "pytorch""#, cmp(typed(&["framework"], ValueType::String), Eq, s("pytorch"))),
        (r#"`mlflow.source.type` = "notebook""#, cmp(prop(&["mlflow.source.type"]), Eq, s("notebook"))),
        ("state IN ('LIVE','ARCHIVED')", c("state", In, list(vec![s("LIVE"), s("ARCHIVED")]))),
        (r#"modelFormatName = "onnx""#, c("modelFormatName", Eq, s("onnx"))),
        ("budget > 1000 AND priority <= 5", and(vec![c("budget", Gt, i(1000)), c("priority", Le, i(5))])),
        // --- every operator ---
        ("a = 1", c("a", Eq, i(1))),
        ("a != 1", c("a", Ne, i(1))),
        ("a <> 1", c("a", Ne, i(1))),
        ("a < 1", c("a", Lt, i(1))),
        ("a <= 1", c("a", Le, i(1))),
        ("a > 1", c("a", Gt, i(1))),
        ("a >= 1", c("a", Ge, i(1))),
        ("a LIKE 'x%'", c("a", Like, s("x%"))),
        ("a ILIKE 'x%'", c("a", ILike, s("x%"))),
        ("a IN (1)", c("a", In, list(vec![i(1)]))),
        ("a>=1", c("a", Ge, i(1))),
        ("a<>'b'", c("a", Ne, s("b"))),
        ("a!=-1", c("a", Ne, i(-1))),
        // --- suffixes and dotted names ---
        ("x.int_value = 3", cmp(typed(&["x"], ValueType::Int), Eq, i(3))),
        ("x.double_value < 3.5", cmp(typed(&["x"], ValueType::Double), Lt, f(3.5))),
        ("x.bool_value = true", cmp(typed(&["x"], ValueType::Bool), Eq, b(true))),
        ("x.STRING_VALUE = 'a'", cmp(typed(&["x"], ValueType::String), Eq, s("a"))),
        ("framework.sub = 'a'", cmp(prop(&["framework", "sub"]), Eq, s("a"))),
        ("a.b.c.double_value >= 1e3", cmp(typed(&["a", "b", "c"], ValueType::Double), Ge, f(1000.0))),
        ("a . b = 1", cmp(prop(&["a", "b"]), Eq, i(1))),
        ("string_value = 'x'", c("string_value", Eq, s("x"))),
        ("_private9 = 1", c("_private9", Eq, i(1))),
        ("a.in = 1", cmp(prop(&["a", "in"]), Eq, i(1))),
        // --- backticks ---
        ("`in` = 1", c("in", Eq, i(1))),
        ("`with space` = 1", c("with space", Eq, i(1))),
        (r"`a\`b\\c\.d` = 1", c(r"a`b\c.d", Eq, i(1))),
        ("`x.string_value` = 1", c("x.string_value", Eq, i(1))),
        // --- IN lists ---
        ("a IN ()", c("a", In, list(vec![]))),
        ("a in ( )", c("a", In, list(vec![]))),
        ("a IN ('x', 1, -2.5, TRUE, false, \"y\")", c("a", In, list(vec![s("x"), i(1), f(-2.5), b(true), b(false), s("y")]))),
        // --- precedence, parentheses, flattening ---
        ("a = 1 OR b = 2 AND c = 3", or(vec![c("a", Eq, i(1)), and(vec![c("b", Eq, i(2)), c("c", Eq, i(3))])])),
        ("a = 1 AND b = 2 OR c = 3", or(vec![and(vec![c("a", Eq, i(1)), c("b", Eq, i(2))]), c("c", Eq, i(3))])),
        ("a = 1 AND (b = 2 OR c = 3)", and(vec![c("a", Eq, i(1)), or(vec![c("b", Eq, i(2)), c("c", Eq, i(3))])])),
        (
            "a = 1 AND (b = 2 AND c = 3) AND d = 4",
            and(vec![c("a", Eq, i(1)), c("b", Eq, i(2)), c("c", Eq, i(3)), c("d", Eq, i(4))]),
        ),
        (
            "(a = 1 OR b = 2) OR (c = 3 OR d = 4)",
            or(vec![c("a", Eq, i(1)), c("b", Eq, i(2)), c("c", Eq, i(3)), c("d", Eq, i(4))]),
        ),
        ("(((a = 1)))", c("a", Eq, i(1))),
        (
            "((a = 1 OR (b = 2 AND (c = 3 OR d = 4))))",
            or(vec![c("a", Eq, i(1)), and(vec![c("b", Eq, i(2)), or(vec![c("c", Eq, i(3)), c("d", Eq, i(4))])])]),
        ),
        // --- case-insensitive keywords ---
        (
            "a like 'x' and b iLiKe 'y' Or c In (TRUE, False)",
            or(vec![and(vec![c("a", Like, s("x")), c("b", ILike, s("y"))]), c("c", In, list(vec![b(true), b(false)]))]),
        ),
        ("a = True", c("a", Eq, b(true))),
        ("a = FALSE", c("a", Eq, b(false))),
        // --- comments and whitespace ---
        ("name = 'a' -- comment", c("name", Eq, s("a"))),
        ("-- leading comment\nname = 'a' -- why\n AND b = 1 --", and(vec![c("name", Eq, s("a")), c("b", Eq, i(1))])),
        ("\t\n name\r\n=\n'a'  ", c("name", Eq, s("a"))),
        ("name = '-- not a comment'", c("name", Eq, s("-- not a comment"))),
        // --- numbers ---
        ("a = -5", c("a", Eq, i(-5))),
        ("a = +5", c("a", Eq, i(5))),
        ("a = 0", c("a", Eq, i(0))),
        ("a = 9223372036854775807", c("a", Eq, i(i64::MAX))),
        ("a = -9223372036854775808", c("a", Eq, i(i64::MIN))),
        ("a = 1.5", c("a", Eq, f(1.5))),
        ("a = .5", c("a", Eq, f(0.5))),
        ("a = -.5", c("a", Eq, f(-0.5))),
        ("a = 1e3", c("a", Eq, f(1000.0))),
        ("a = -2.5E-3", c("a", Eq, f(-0.0025))),
        ("a = 2E+2", c("a", Eq, f(200.0))),
        ("a = 1.0", c("a", Eq, f(1.0))),
        ("a = 99999999999999999999.5", c("a", Eq, f(99999999999999999999.5))),
        // --- strings and escapes ---
        (r"a = 'it\'s'", c("a", Eq, s("it's"))),
        (r#"a = "say \"hi\"""#, c("a", Eq, s(r#"say "hi""#))),
        (r#"a = "it's""#, c("a", Eq, s("it's"))),
        (r#"a = 'say "hi"'"#, c("a", Eq, s(r#"say "hi""#))),
        (r"a = 'back\\slash'", c("a", Eq, s(r"back\slash"))),
        (r"a = 'keep \n \t \% \_'", c("a", Eq, s(r"keep \n \t \% \_"))),
        ("a = ''", c("a", Eq, s(""))),
        ("a = 'multi\nline ünïcödé'", c("a", Eq, s("multi\nline ünïcödé"))),
        // --- injection-looking text stays literal ---
        (r#"name = "x'' OR 1=1 --""#, c("name", Eq, s("x'' OR 1=1 --"))),
        (r"name = 'a\' OR 1=1; DROP TABLE Context; --'", c("name", Eq, s("a' OR 1=1; DROP TABLE Context; --"))),
        (r#"name = "'; DELETE FROM Artifact WHERE 1=1 --""#, c("name", Eq, s("'; DELETE FROM Artifact WHERE 1=1 --"))),
        ("name LIKE '%\\'%'", c("name", Like, s("%'%"))),
        // --- words that are only special in other positions ---
        ("not = 1", c("not", Eq, i(1))),
        ("is = 1", c("is", Eq, i(1))),
        ("null = 'NULL'", c("null", Eq, s("NULL"))),
    ]
}

#[test]
fn valid_queries_parse_to_the_expected_tree() {
    let cases = cases();
    let mut failures = Vec::new();
    for (query, expected) in &cases {
        match parse(query) {
            Ok(Some(got)) if &got == expected => {}
            other => failures.push(format!("{query:?}\n  expected {expected:?}\n  got {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    assert!(cases.len() >= 80, "{}", cases.len());
}

#[test]
fn valid_queries_round_trip_through_display() {
    for (query, expected) in cases() {
        let rendered = expected.to_string();
        let reparsed = parse(&rendered).unwrap_or_else(|e| panic!("{query:?} -> {rendered:?}: {e}"));
        assert_eq!(reparsed.as_ref(), Some(&expected), "{query:?} -> {rendered:?}");
    }
}

#[test]
fn blank_queries_mean_no_filter() {
    for q in ["", " ", "\t\n\r  "] {
        assert_eq!(parse(q), Ok(None), "{q:?}");
    }
}

#[test]
fn canonical_rendering() {
    let cases = [
        ("a = 1 or b = 2 and c = 3", "a = 1 OR b = 2 AND c = 3"),
        ("(a = 1 or b = 2) and c = 3", "(a = 1 OR b = 2) AND c = 3"),
        ("a <> 'x'", "a != 'x'"),
        (r#"a = "it's \\ ok""#, r"a = 'it\'s \\ ok'"),
        ("a in (1,true,.5)", "a IN (1, TRUE, 0.5)"),
        ("a = 1e3", "a = 1000.0"),
        ("a = 1e300", "a = 1e300"),
        ("x.int_value = -1", "x.int_value = -1"),
        ("`a.b` = 1", "`a.b` = 1"),
        ("`plain` = 1", "plain = 1"),
        ("`and` = 1", "`and` = 1"),
        ("a.b = 1", "a.b = 1"),
        ("a ilike 'x'", "a ILIKE 'x'"),
    ];
    for (query, canonical) in cases {
        assert_eq!(parse(query).unwrap().unwrap().to_string(), canonical, "{query:?}");
    }
}

#[test]
fn positions_point_at_the_property() {
    let Some(Expr::And(parts)) = parse("a = 1 AND  `b` = 2").unwrap() else { panic!() };
    let positions: Vec<usize> = parts
        .iter()
        .map(|p| match p {
            Expr::Compare(c) => c.position,
            _ => panic!(),
        })
        .collect();
    assert_eq!(positions, [0, 11]);
}

#[test]
fn property_name_joins_the_path() {
    let Some(Expr::Compare(c)) = parse("a.b.c.string_value = 'x'").unwrap() else { panic!() };
    assert_eq!(c.property.name(), "a.b.c");
    assert_eq!(c.property.value_type.map(ValueType::column), Some("string_value"));
}

#[test]
fn deep_nesting_is_limited() {
    let ok = format!("{}a = 1{}", "(".repeat(64), ")".repeat(64));
    assert!(parse(&ok).is_ok());
    let too_deep = format!("{}a = 1{}", "(".repeat(65), ")".repeat(65));
    let err = parse(&too_deep).unwrap_err();
    assert_eq!(err.to_string(), "invalid filter query: parentheses are nested too deeply (the limit is 64) at position 64");
    // Far beyond the limit must not overflow the stack either.
    assert!(parse(&"(".repeat(100_000)).is_err());
}
