//! Parser of the Model Registry `filterQuery` language (the `filterQuery` parameter of every
//! list endpoint), a small SQL-`WHERE`-like boolean language over entity properties.
//!
//! [`parse`] turns the query into an [`Expr`] tree; turning that tree into SQL (property
//! resolution, custom properties, value-column inference) is the job of a later stage.
//!
//! # Grammar
//!
//! ```text
//! query      = [ or ] ;                       (* blank input: no filter *)
//! or         = and , { "OR" , and } ;
//! and        = term , { "AND" , term } ;       (* AND binds tighter than OR *)
//! term       = "(" , or , ")" | comparison ;
//! comparison = prop , op , value ;
//! prop       = EscapedIdent
//!            | Ident , { "." , Ident } , [ "." , suffix ] ;
//! suffix     = "string_value" | "int_value" | "double_value" | "bool_value" ;
//! op         = "=" | "!=" | "<>" | "<" | "<=" | ">" | ">=" | "LIKE" | "ILIKE" | "IN" ;
//! value      = single                          (* after =, !=, <>, <, <=, >, >= *)
//!            | String                          (* after LIKE and ILIKE *)
//!            | "(" , [ single , { "," , single } ] , ")" ;   (* after IN only *)
//! single     = String | Int | Float | "TRUE" | "FALSE" ;
//!
//! Ident        = [a-zA-Z_] [a-zA-Z0-9_]* ;    (* not AND OR LIKE ILIKE IN TRUE FALSE *)
//! EscapedIdent = "`" , { char | "\" char } , "`" ;   (* non-empty; "\x" stands for x *)
//! Int          = [-+]? [0-9]+ ;                (* must fit in i64 *)
//! Float        = [-+]? ( [0-9]+ | [0-9]* "." [0-9]+ ) ( [eE] [-+]? [0-9]+ )? ;
//!                                              (* with a "." and/or an exponent; finite *)
//! String       = "'" ... "'" | '"' ... '"' ;   (* backslash escapes, see below *)
//! Comment      = "--" to the end of the line ;
//! ```
//!
//! Keywords (`AND`, `OR`, `LIKE`, `ILIKE`, `IN`, `TRUE`, `FALSE`) and type suffixes are
//! case-insensitive. Whitespace and comments may appear between any two tokens.
//!
//! Decisions where the contract is silent (mostly following the upstream participle lexer):
//!
//! - **Numbers**: `.5` and `-.5` are floats; `1.` and `1e` are errors (`invalid number`), as is
//!   a number glued to a word (`1abc`). Integers beyond `i64` and floats beyond `f64` are
//!   errors, never silently widened. A sign is part of the number (`-5`, `+5`); `- 5` is an
//!   error.
//! - **String escapes**: `\'`, `\"` and `\\` stand for the quote/backslash; any other `\x`
//!   (including `\n`, `\t`, `\%`, `\_`) is kept verbatim as the two characters `\x`, so LIKE
//!   patterns pass `\%` through unchanged. A doubled `''` is not an escape: `'it''s'` is two
//!   adjacent strings and an error.
//! - **Backtick names**: `\x` stands for `x` (so `` \` ``, `\\`, `\.`); the name must not be
//!   empty; a backtick name is a single path part and cannot take a type suffix.
//! - **Type suffixes** are only recognized after a dot and must be the last part:
//!   `a.string_value.x` is an error; a lone `string_value` is an ordinary name.
//! - Keywords cannot be bare property names (`` `in` = 1 `` works). The first part of a dotted
//!   name is checked, later parts may be anything matching `Ident`.
//! - `NOT`, `IS [NOT] NULL` and `BETWEEN` are rejected with a dedicated message. A property
//!   that is really called `not` still works (`not = 1`).
//! - A query made only of comments is an error (upstream rejects it too); only an empty or
//!   all-whitespace query means "no filter".
//! - Parentheses nest at most [`MAX_DEPTH`] deep; a query has at most [`MAX_QUERY_BYTES`]
//!   bytes, [`MAX_COMPARISONS`] comparisons and [`MAX_LIST_ITEMS`] values per `IN` list, so
//!   that whatever it becomes fits every database's statement limits.
//!
//! # Examples
//!
//! ```
//! use filter_query::{parse, Expr, Literal, Op, ValueType};
//!
//! let expr = parse(r#"(name = "model-a" OR name = "model-b") AND state = "LIVE""#)
//!     .unwrap()
//!     .unwrap();
//! let Expr::And(parts) = &expr else { panic!() };
//! assert!(matches!(parts[0], Expr::Or(_)));
//! assert_eq!(
//!     expr.to_string(),
//!     "(name = 'model-a' OR name = 'model-b') AND state = 'LIVE'"
//! );
//!
//! let Some(Expr::Compare(c)) = parse("framework.string_value = 'pytorch'").unwrap() else {
//!     panic!()
//! };
//! assert_eq!(c.property.path, ["framework"]);
//! assert_eq!(c.property.value_type, Some(ValueType::String));
//! assert_eq!(c.op, Op::Eq);
//! assert_eq!(c.value, Literal::String("pytorch".into()));
//!
//! assert_eq!(parse("   ").unwrap(), None);
//!
//! let err = parse("invalid <<< syntax").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "invalid filter query: expected a comparison operator (=, !=, <>, <, <=, >, >=, \
//!      LIKE, ILIKE, IN) after \"invalid\", found \"<<<\" at position 8"
//! );
//! ```
//!
//! Other accepted queries: `name='my-model' AND state='LIVE'`, `accuracy > 0.95`,
//! `name LIKE "%tensorflow%"`, `` `mlflow.source.type` = "notebook" ``,
//! `state IN ('LIVE','ARCHIVED')`, `budget > 1000 AND priority <= 5`, `x in ()`,
//! `score >= -2.5E-3 -- trailing comment`.

mod ast;
mod error;
mod lexer;
mod parser;

pub use ast::{Comparison, Expr, Literal, Op, Property, ValueType};
pub use error::ParseError;
pub use parser::{MAX_COMPARISONS, MAX_DEPTH, MAX_LIST_ITEMS, MAX_QUERY_BYTES};

/// Parses a filter query.
///
/// Returns `Ok(None)` when the query is empty or only whitespace (no filter), otherwise the
/// normalized tree (see [`Expr`]) or the first error.
pub fn parse(input: &str) -> Result<Option<Expr>, ParseError> {
    if input.trim().is_empty() {
        return Ok(None);
    }
    if input.len() > MAX_QUERY_BYTES {
        let message = format!("the query is {} bytes long (the limit is {MAX_QUERY_BYTES})", input.len());
        return Err(ParseError::new(MAX_QUERY_BYTES, message));
    }
    let mut p = parser::Parser::new(input)?;
    p.parse_query().map(Some)
}
