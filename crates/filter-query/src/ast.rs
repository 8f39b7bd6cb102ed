//! The syntax tree produced by [`parse`](crate::parse), and its canonical rendering.

use std::fmt;

/// A boolean combination of comparisons.
///
/// Trees built by the parser are normalized: `And`/`Or` always hold at least two children and
/// never hold a direct child of the same kind (`a AND (b AND c)` becomes `And[a, b, c]`), and
/// redundant parentheses leave no trace.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// All children must hold.
    And(Vec<Expr>),
    /// At least one child must hold.
    Or(Vec<Expr>),
    /// A single `property op value` comparison.
    Compare(Comparison),
}

/// `property op value`.
///
/// `position` is the byte offset of the property in the original query, kept for error
/// reporting by later stages. It is **ignored by `PartialEq`**, so trees parsed from different
/// spellings of the same query compare equal.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The left-hand side.
    pub property: Property,
    /// The operator.
    pub op: Op,
    /// The right-hand side. `Op::In` always has a [`Literal::List`]; `Op::Like`/`Op::ILike`
    /// always have a [`Literal::String`]; every other operator has a scalar (never a list).
    pub value: Literal,
    /// Byte offset of the property in the query (not part of equality).
    pub position: usize,
}

impl PartialEq for Comparison {
    fn eq(&self, other: &Self) -> bool {
        self.property == other.property && self.op == other.op && self.value == other.value
    }
}

/// A property reference.
///
/// - `name` → `path = ["name"]`;
/// - `framework.sub` → `path = ["framework", "sub"]` (one custom property whose name contains
///   a dot, see [`Property::name`]);
/// - `` `mlflow.source.type` `` → `path = ["mlflow.source.type"]` (backtick-escaped names are a
///   single part and can never carry a type suffix);
/// - `framework.string_value` → `path = ["framework"]`, `value_type = Some(ValueType::String)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The dotted identifier parts, or the single backtick-escaped name. Never empty.
    pub path: Vec<String>,
    /// The explicit type suffix, if any.
    pub value_type: Option<ValueType>,
}

impl Property {
    /// The property name as stored in the database: the path parts joined with `.`.
    pub fn name(&self) -> String {
        self.path.join(".")
    }
}

/// The explicit value column selected by a `.string_value`, `.int_value`, `.double_value` or
/// `.bool_value` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// `.string_value`
    String,
    /// `.int_value`
    Int,
    /// `.double_value`
    Double,
    /// `.bool_value`
    Bool,
}

impl ValueType {
    /// The suffix / property-table column name: `string_value`, `int_value`, ...
    pub fn column(self) -> &'static str {
        match self {
            ValueType::String => "string_value",
            ValueType::Int => "int_value",
            ValueType::Double => "double_value",
            ValueType::Bool => "bool_value",
        }
    }

    /// Recognizes a suffix (case-insensitively, as upstream does).
    pub fn from_suffix(s: &str) -> Option<Self> {
        [ValueType::String, ValueType::Int, ValueType::Double, ValueType::Bool]
            .into_iter()
            .find(|t| t.column().eq_ignore_ascii_case(s))
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `LIKE`
    Like,
    /// `ILIKE`
    ILike,
    /// `IN`
    In,
}

impl Op {
    /// The canonical spelling (`!=` for [`Op::Ne`], upper-case keywords).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Like => "LIKE",
            Op::ILike => "ILIKE",
            Op::In => "IN",
        }
    }
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A quoted string, escapes resolved.
    String(String),
    /// An integer that fits in `i64`.
    Int(i64),
    /// A finite float.
    Float(f64),
    /// `TRUE` / `FALSE` (any case).
    Bool(bool),
    /// The parenthesized list after `IN`: scalars only, possibly empty, possibly mixed types.
    List(Vec<Literal>),
}

/// Keywords that cannot be used as a bare (unquoted) property name; backticks allow them.
pub(crate) const RESERVED: [&str; 7] = ["AND", "OR", "LIKE", "ILIKE", "IN", "TRUE", "FALSE"];

pub(crate) fn is_reserved(s: &str) -> bool {
    RESERVED.iter().any(|k| k.eq_ignore_ascii_case(s))
}

pub(crate) fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str, quote: char) -> fmt::Result {
    use fmt::Write;
    f.write_char(quote)?;
    for c in s.chars() {
        if c == '\\' || c == quote {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char(quote)
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.column())
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Renders the property as it would be written in a query: bare when possible, otherwise in
/// backticks (with `\` and `` ` `` escaped).
impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bare = match self.path.as_slice() {
            [single] => is_ident(single) && !is_reserved(single),
            [first, rest @ ..] => {
                is_ident(first) && !is_reserved(first) && rest.iter().all(|p| is_ident(p) && ValueType::from_suffix(p).is_none())
            }
            [] => false,
        };
        if bare {
            f.write_str(&self.path.join("."))?;
        } else {
            write_quoted(f, &self.name(), '`')?;
        }
        if let Some(t) = self.value_type {
            write!(f, ".{t}")?;
        }
        Ok(())
    }
}

/// Strings use single quotes (escaping `\` and `'`), floats use Rust's shortest round-trip
/// form (always with a `.` or an exponent), booleans are `TRUE`/`FALSE`.
impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(s) => write_quoted(f, s, '\''),
            Literal::Int(i) => write!(f, "{i}"),
            Literal::Float(x) => write!(f, "{x:?}"),
            Literal::Bool(true) => f.write_str("TRUE"),
            Literal::Bool(false) => f.write_str("FALSE"),
            Literal::List(items) => {
                f.write_str("(")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.property, self.op, self.value)
    }
}

/// The canonical query text. For every tree produced by [`parse`](crate::parse), the output
/// parses back to an equal tree. (Hand-built trees that the parser can never produce, such as
/// an empty `And`, a non-finite float or a type suffix on a name that needs backticks, have no
/// faithful rendering.)
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Compare(c) => write!(f, "{c}"),
            Expr::And(children) => {
                for (i, child) in children.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" AND ")?;
                    }
                    match child {
                        Expr::Compare(_) => write!(f, "{child}")?,
                        _ => write!(f, "({child})")?,
                    }
                }
                Ok(())
            }
            Expr::Or(children) => {
                for (i, child) in children.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" OR ")?;
                    }
                    match child {
                        Expr::Or(_) => write!(f, "({child})")?,
                        _ => write!(f, "{child}")?,
                    }
                }
                Ok(())
            }
        }
    }
}
