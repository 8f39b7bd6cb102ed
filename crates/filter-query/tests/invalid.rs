//! Table-driven malformed queries with their exact error messages.

use filter_query::parse;

#[rustfmt::skip]
const CASES: &[(&str, &str)] = &[
        (
            r#"invalid <<< syntax"#,
            r#"invalid filter query: expected a comparison operator (=, !=, <>, <, <=, >, >=, LIKE, ILIKE, IN) after "invalid", found "<<<" at position 8"#,
        ),
        (
            r#"name = 'abc"#,
            r#"invalid filter query: unterminated string: missing closing ' at position 7"#,
        ),
        (
            r#"name = "abc"#,
            r#"invalid filter query: unterminated string: missing closing " at position 7"#,
        ),
        (
            r#"name = 'abc\'"#,
            r#"invalid filter query: unterminated string: missing closing ' at position 7"#,
        ),
        (
            r#"name ="#,
            r#"invalid filter query: expected a value after "=", found end of input at position 6"#,
        ),
        (
            r#"name = 'a' AND"#,
            r#"invalid filter query: expected a property name or "(", found end of input at position 14"#,
        ),
        (
            r#"name = 'a' OR"#,
            r#"invalid filter query: expected a property name or "(", found end of input at position 13"#,
        ),
        (
            r#"(name = 'a'"#,
            r#"invalid filter query: expected ")" to close the "(" at position 0, found end of input at position 11"#,
        ),
        (
            r#"name = 'a')"#,
            r#"invalid filter query: unexpected ")" without a matching "(" at position 10"#,
        ),
        (
            r#"NOT name = 'a'"#,
            r#"invalid filter query: NOT is not supported (negate the comparison instead, for example != instead of =) at position 0"#,
        ),
        (
            r#"NOT (name = 'a')"#,
            r#"invalid filter query: NOT is not supported (negate the comparison instead, for example != instead of =) at position 0"#,
        ),
        (
            r#"name NOT LIKE 'a%'"#,
            r#"invalid filter query: NOT is not supported (negate the comparison instead, for example != instead of =) at position 5"#,
        ),
        (
            r#"name IS NULL"#,
            r#"invalid filter query: IS NULL / IS NOT NULL is not supported at position 5"#,
        ),
        (
            r#"name IS NOT NULL"#,
            r#"invalid filter query: IS NULL / IS NOT NULL is not supported at position 5"#,
        ),
        (
            r#"name BETWEEN 1 AND 2"#,
            r#"invalid filter query: BETWEEN is not supported (use two comparisons joined with AND) at position 5"#,
        ),
        (
            r#"name LIKE 5"#,
            r#"invalid filter query: expected a quoted string pattern after "LIKE", found "5" at position 10"#,
        ),
        (
            r#"name ILIKE TRUE"#,
            r#"invalid filter query: expected a quoted string pattern after "ILIKE", found "TRUE" at position 11"#,
        ),
        (
            r#"name IN 'a'"#,
            r#"invalid filter query: expected a parenthesized list after "IN", found "'a'" at position 8"#,
        ),
        (
            r#"name = ('a')"#,
            r#"invalid filter query: expected a value after "=", found "(" (a list is only allowed after IN) at position 7"#,
        ),
        (
            r#"= 'a'"#,
            r#"invalid filter query: expected a property name or "(", found "=" at position 0"#,
        ),
        (
            r#"name = 'it''s'"#,
            r#"invalid filter query: unexpected "'s'" after the end of the query (a doubled quote is not an escape: write \' or \" inside a string) at position 11"#,
        ),
        (
            r#"'it''s'"#,
            r#"invalid filter query: expected a property name or "(", found "'it'" at position 0"#,
        ),
        (
            r#"name = 'a' ; DROP TABLE x"#,
            r#"invalid filter query: unexpected ";" after the end of the query at position 11"#,
        ),
        (
            r#"`unterminated = 1"#,
            r#"invalid filter query: unterminated backtick-quoted name: missing closing ` at position 0"#,
        ),
        (
            r#"`` = 1"#,
            r#"invalid filter query: empty backtick-quoted name at position 0"#,
        ),
        (
            r#"x = 9999999999999999999999"#,
            r#"invalid filter query: integer "9999999999999999999999" is out of range (it must fit in a signed 64-bit integer) at position 4"#,
        ),
        (
            r#"x = -9999999999999999999999"#,
            r#"invalid filter query: integer "-9999999999999999999999" is out of range (it must fit in a signed 64-bit integer) at position 4"#,
        ),
        (
            r#"x = 1e999"#,
            r#"invalid filter query: number "1e999" is out of range at position 4"#,
        ),
        (
            r#"name.string_value.x = 1"#,
            r#"invalid filter query: the type suffix ".string_value" must be the last part of a property name at position 5"#,
        ),
        (
            r#"()"#,
            r#"invalid filter query: expected a property name or "(", found ")" at position 1"#,
        ),
        (
            r#"name = 'a' AND ()"#,
            r#"invalid filter query: expected a property name or "(", found ")" at position 16"#,
        ),
        (
            r#"x = 1."#,
            r#"invalid filter query: invalid number "1.": expected a digit after the decimal point at position 4"#,
        ),
        (
            r#"x = 1e"#,
            r#"invalid filter query: invalid number "1e" at position 4"#,
        ),
        (
            r#"x = 1abc"#,
            r#"invalid filter query: invalid number "1abc" at position 4"#,
        ),
        (
            r#"x = - 5"#,
            r#"invalid filter query: expected a value after "=", found "-" at position 4"#,
        ),
        (
            r#"name == 'a'"#,
            r#"invalid filter query: expected a comparison operator (=, !=, <>, <, <=, >, >=, LIKE, ILIKE, IN) after "name", found "==" at position 5"#,
        ),
        (
            r#"name => 'a'"#,
            r#"invalid filter query: expected a comparison operator (=, !=, <>, <, <=, >, >=, LIKE, ILIKE, IN) after "name", found "=>" at position 5"#,
        ),
        (
            r#"name ! 'a'"#,
            r#"invalid filter query: expected a comparison operator (=, !=, <>, <, <=, >, >=, LIKE, ILIKE, IN) after "name", found "!" at position 5"#,
        ),
        (
            r#"name = foo"#,
            r#"invalid filter query: expected a value after "=", found "foo" (strings must be quoted) at position 7"#,
        ),
        (
            r#"name = NULL"#,
            r#"invalid filter query: expected a value after "=", found "NULL" (strings must be quoted) at position 7"#,
        ),
        (
            r#"x IN (1, 2"#,
            r#"invalid filter query: expected "," or ")" in the IN list, found end of input at position 10"#,
        ),
        (
            r#"x IN (1, 2,)"#,
            r#"invalid filter query: expected a value after "," in the IN list, found ")" at position 11"#,
        ),
        (
            r#"x IN (1 2)"#,
            r#"invalid filter query: expected "," or ")" in the IN list, found "2" at position 8"#,
        ),
        (
            r#"x IN ((1))"#,
            r#"invalid filter query: expected a value after "(" in the IN list, found "(" (lists cannot be nested) at position 6"#,
        ),
        (
            r#"x IN (,)"#,
            r#"invalid filter query: expected a value after "(" in the IN list, found "," at position 6"#,
        ),
        (
            r#"AND = 1"#,
            r#"invalid filter query: expected a property name or "(", found "AND" at position 0"#,
        ),
        (
            r#"name = 'a' name = 'b'"#,
            r#"invalid filter query: unexpected "name" after the end of the query (expected AND, OR or the end of the query) at position 11"#,
        ),
        (
            r#"name = 'a' AND AND b = 1"#,
            r#"invalid filter query: expected a property name or "(", found "AND" at position 15"#,
        ),
        (
            r#"a. = 1"#,
            r#"invalid filter query: expected a name after ".", found "=" at position 3"#,
        ),
        (
            r#"a.5 = 1"#,
            r#"invalid filter query: expected a comparison operator (=, !=, <>, <, <=, >, >=, LIKE, ILIKE, IN) after "a", found ".5" at position 1"#,
        ),
        (
            r#"`a`.string_value = 1"#,
            r#"invalid filter query: a backtick-quoted name cannot be followed by "." (put the whole name inside the backticks; type suffixes need an unquoted name) at position 3"#,
        ),
        (
            r#"name = 'a' OR (b = 1"#,
            r#"invalid filter query: expected ")" to close the "(" at position 14, found end of input at position 20"#,
        ),
        (
            r#"-- only a comment"#,
            r#"invalid filter query: expected a property name or "(", found end of input at position 17"#,
        ),
        (
            r#"name = 'é' AND ü = 1"#,
            r#"invalid filter query: expected a property name or "(", found "ü" at position 16"#,
        ),
        (
            r#"name = 'a' && b = 1"#,
            r#"invalid filter query: unexpected "&" after the end of the query at position 11"#,
        ),
        (
            r#"x = +"#,
            r#"invalid filter query: expected a value after "=", found "+" at position 4"#,
        ),
        (
            r#"name = 'x'' OR 1=1 --'"#,
            r#"invalid filter query: unexpected "' OR 1=1 --'" after the end of the query (a doubled quote is not an escape: write \' or \" inside a string) at position 10"#,
        ),
        (
            r#"x = 1.5.3"#,
            r#"invalid filter query: invalid number "1.5.3" at position 4"#,
        ),
        (
            r#"name = 'a' AND ("#,
            r#"invalid filter query: expected a property name or "(", found end of input at position 16"#,
        ),
        (
            r#"x IN ('a'"#,
            r#"invalid filter query: expected "," or ")" in the IN list, found end of input at position 9"#,
        ),
        (
            r#"name LIKE"#,
            r#"invalid filter query: expected a quoted string pattern after "LIKE", found end of input at position 9"#,
        ),
        (
            r#"name IN"#,
            r#"invalid filter query: expected a parenthesized list after "IN", found end of input at position 7"#,
        ),
        (
            r#"'"#,
            r#"invalid filter query: unterminated string: missing closing ' at position 0"#,
        ),
        (
            r#"x = 'a' 'b'"#,
            r#"invalid filter query: unexpected "'b'" after the end of the query at position 8"#,
        ),
        (
            r#"a IN (1) IN (2)"#,
            r#"invalid filter query: unexpected "IN" after the end of the query (expected AND, OR or the end of the query) at position 9"#,
        ),
        (
            r#"a = 1 2"#,
            r#"invalid filter query: unexpected "2" after the end of the query at position 6"#,
        ),
        (
            r#"a = 'x' OR b"#,
            r#"invalid filter query: expected a comparison operator (=, !=, <>, <, <=, >, >=, LIKE, ILIKE, IN) after "b", found end of input at position 12"#,
        ),
        (
            r#"a.b.c"#,
            r#"invalid filter query: expected a comparison operator (=, !=, <>, <, <=, >, >=, LIKE, ILIKE, IN) after "a.b.c", found end of input at position 5"#,
        ),
];

#[test]
fn malformed_queries_give_exact_messages() {
    let mut failures = Vec::new();
    for (query, expected) in CASES {
        match parse(query) {
            Err(e) if e.to_string() == *expected => {
                let prefix = format!("invalid filter query: {} at position ", e.message);
                assert_eq!(e.to_string(), format!("{prefix}{}", e.position));
                assert!(e.position <= query.len(), "{query:?}");
            }
            other => failures.push(format!("{query:?}\n  expected {expected}\n  got {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    assert!(CASES.len() >= 20);
}

#[test]
fn error_is_a_std_error() {
    let e: Box<dyn std::error::Error> = Box::new(parse("a =").unwrap_err());
    assert!(e.to_string().starts_with("invalid filter query: "));
}

#[test]
fn limits_are_errors_naming_the_limit_and_the_largest_allowed_query_parses() {
    use filter_query::{MAX_COMPARISONS, MAX_DEPTH, MAX_LIST_ITEMS, MAX_QUERY_BYTES};
    let terms = |n: usize| vec!["a = 1"; n].join(" OR ");
    assert!(parse(&terms(MAX_COMPARISONS)).is_ok());
    let e = parse(&terms(MAX_COMPARISONS + 1)).unwrap_err();
    assert_eq!(e.message, format!("too many comparisons (the limit is {MAX_COMPARISONS})"));
    assert_eq!(e.position, MAX_COMPARISONS * "a = 1 OR ".len());

    let list = |n: usize| format!("a IN ({})", vec!["1"; n].join(","));
    assert!(parse(&list(MAX_LIST_ITEMS)).is_ok());
    let e = parse(&list(MAX_LIST_ITEMS + 1)).unwrap_err();
    assert_eq!(e.message, format!("too many values in the IN list (the limit is {MAX_LIST_ITEMS})"));

    let padded = |n: usize| format!("a = '{}'", "x".repeat(n - "a = ''".len()));
    assert!(parse(&padded(MAX_QUERY_BYTES)).is_ok());
    let e = parse(&padded(MAX_QUERY_BYTES + 1)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "invalid filter query: the query is {} bytes long (the limit is {MAX_QUERY_BYTES}) at position {MAX_QUERY_BYTES}",
            MAX_QUERY_BYTES + 1
        )
    );

    let nested = |n: usize| format!("{}a = 1{}", "(".repeat(n), ")".repeat(n));
    assert!(parse(&nested(MAX_DEPTH)).is_ok());
    assert!(parse(&nested(MAX_DEPTH + 1)).unwrap_err().message.contains("nested too deeply"));
    // Far beyond the limit, the query is refused before the parser recurses.
    assert!(parse(&nested(MAX_QUERY_BYTES)).is_err());
}
