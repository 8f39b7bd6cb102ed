//! Property test: random normalized trees rendered with `Display` parse back to equal trees.

use filter_query::{parse, Comparison, Expr, Literal, Op, Property, ValueType};
use proptest::prelude::*;

const KEYWORDS: [&str; 11] =
    ["and", "or", "like", "ilike", "in", "true", "false", "string_value", "int_value", "double_value", "bool_value"];

fn ident() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_]{0,8}",
        // Occasionally the words with a special meaning, in any case.
        proptest::sample::select(KEYWORDS.to_vec()).prop_map(str::to_uppercase),
        Just("not".to_string()),
    ]
}

fn value_type() -> impl Strategy<Value = Option<ValueType>> {
    proptest::option::of(proptest::sample::select(vec![ValueType::String, ValueType::Int, ValueType::Double, ValueType::Bool]))
}

fn is_special(s: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(s))
}

/// Only properties the parser can produce.
fn property() -> impl Strategy<Value = Property> {
    prop_oneof![
        // Backtick-escaped (or bare when it happens to be a plain identifier): one part, no type.
        any::<String>()
            .prop_filter("non-empty", |s| !s.is_empty())
            .prop_map(|name| Property { path: vec![name], value_type: None }),
        // Dotted identifier with an optional suffix.
        (ident(), proptest::collection::vec(ident(), 0..3), value_type())
            .prop_filter("parser-producible", |(first, rest, _)| {
                !is_special(first) && rest.iter().all(|p| ValueType::from_suffix(p).is_none())
            })
            .prop_map(|(first, rest, value_type)| {
                let mut path = vec![first];
                path.extend(rest);
                Property { path, value_type }
            }),
        // Keywords / odd names need backticks.
        (proptest::sample::select(KEYWORDS.to_vec()), Just(None))
            .prop_map(|(k, value_type)| { Property { path: vec![k.to_string()], value_type } }),
    ]
}

fn scalar() -> impl Strategy<Value = Literal> {
    prop_oneof![
        any::<String>().prop_map(Literal::String),
        "[-'\"\\\\%_ a-z;]{0,12}".prop_map(Literal::String),
        any::<i64>().prop_map(Literal::Int),
        any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(Literal::Float),
        any::<bool>().prop_map(Literal::Bool),
    ]
}

fn comparison() -> impl Strategy<Value = Expr> {
    let op = proptest::sample::select(vec![Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::Like, Op::ILike, Op::In]);
    (property(), op)
        .prop_flat_map(|(property, op)| {
            let value = match op {
                Op::In => proptest::collection::vec(scalar(), 0..5).prop_map(Literal::List).boxed(),
                Op::Like | Op::ILike => any::<String>().prop_map(Literal::String).boxed(),
                _ => scalar().boxed(),
            };
            (Just(property), Just(op), value)
        })
        .prop_map(|(property, op, value)| Expr::Compare(Comparison { property, op, value, position: 0 }))
}

/// Flattens same-kind children, as the parser does.
fn normalize(e: Expr) -> Expr {
    fn flat(children: Vec<Expr>, and: bool) -> Vec<Expr> {
        let mut out = Vec::new();
        for c in children.into_iter().map(normalize) {
            match c {
                Expr::And(cs) if and => out.extend(cs),
                Expr::Or(cs) if !and => out.extend(cs),
                other => out.push(other),
            }
        }
        out
    }
    match e {
        Expr::And(cs) => Expr::And(flat(cs, true)),
        Expr::Or(cs) => Expr::Or(flat(cs, false)),
        c => c,
    }
}

fn expr() -> impl Strategy<Value = Expr> {
    comparison()
        .prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
                proptest::collection::vec(inner, 2..4).prop_map(Expr::Or),
            ]
        })
        .prop_map(normalize)
        .prop_filter("within the comparison limit", |e| comparisons(e) <= filter_query::MAX_COMPARISONS)
}

fn comparisons(e: &Expr) -> usize {
    match e {
        Expr::And(children) | Expr::Or(children) => children.iter().map(comparisons).sum(),
        Expr::Compare(_) => 1,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn display_parses_back_to_the_same_tree(e in expr()) {
        let rendered = e.to_string();
        let parsed = parse(&rendered);
        prop_assert_eq!(parsed, Ok(Some(e)), "rendered: {}", rendered);
    }

    #[test]
    fn arbitrary_input_never_panics(s in any::<String>()) {
        let _ = parse(&s);
    }

    #[test]
    fn query_like_input_never_panics(s in "[a-zA-Z0-9_ ().,'\"`\\\\<>=!;+-]{0,40}") {
        if let Ok(Some(e)) = parse(&s) {
            // Whatever parses renders canonically and re-parses to itself.
            prop_assert_eq!(parse(&e.to_string()), Ok(Some(e)));
        }
    }
}
