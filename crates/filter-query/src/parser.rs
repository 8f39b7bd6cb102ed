//! Recursive-descent parser over the on-demand token stream (one token of lookahead).

use crate::ast::{is_reserved, Comparison, Expr, Literal, Op, Property, ValueType};
use crate::error::ParseError;
use crate::lexer::{quote_source, Lexer, Token, TokenKind};

/// Maximum nesting depth of parentheses.
pub const MAX_DEPTH: usize = 64;

/// Maximum length of a query, in bytes. With [`MAX_COMPARISONS`] this bounds the bind values
/// a query can become far below SQLite's 32766 per statement: fewer than 8 192 values
/// (`1,` is two bytes), each bound at most twice (an integer tests two value columns).
pub const MAX_QUERY_BYTES: usize = 16 * 1024;

/// Maximum number of comparisons. SQLite nests `a OR b OR c ...` one level per operator and
/// refuses expressions deeper than 1000 ("Expression tree is too large"); PostgreSQL plans
/// each ANDed property test as a join, which took 1.3 s of planning for 100 of them and 75 s
/// for 256 (64 take about 0.2 s).
pub const MAX_COMPARISONS: usize = 64;

/// Maximum number of values in one `IN` list.
pub const MAX_LIST_ITEMS: usize = 1000;

const OPERATORS: &str = "=, !=, <>, <, <=, >, >=, LIKE, ILIKE, IN";

pub(crate) struct Parser<'a> {
    input: &'a str,
    lexer: Lexer<'a>,
    peeked: Token,
    /// End of the last consumed token (to detect adjacent strings).
    prev: Option<Token>,
    depth: usize,
    comparisons: usize,
}

fn keyword(tok: &Token, kw: &str) -> bool {
    matches!(&tok.kind, TokenKind::Ident(s) if s.eq_ignore_ascii_case(kw))
}

impl<'a> Parser<'a> {
    pub fn new(input: &'a str) -> Result<Self, ParseError> {
        let mut lexer = Lexer::new(input);
        let peeked = lexer.next_token()?;
        Ok(Self { input, lexer, peeked, prev: None, depth: 0, comparisons: 0 })
    }

    fn bump(&mut self) -> Result<Token, ParseError> {
        let next = self.lexer.next_token()?;
        let tok = std::mem::replace(&mut self.peeked, next);
        self.prev = Some(tok.clone());
        Ok(tok)
    }

    fn text(&self, tok: &Token) -> &'a str {
        &self.input[tok.start..tok.end]
    }

    /// `end of input` or `"<token text>"`.
    fn found(&self) -> String {
        if self.peeked.kind == TokenKind::Eof {
            "end of input".to_string()
        } else {
            quote_source(self.text(&self.peeked))
        }
    }

    fn error_here(&self, message: String) -> ParseError {
        ParseError::new(self.peeked.start, message)
    }

    /// `where := or EOF`
    pub fn parse_query(&mut self) -> Result<Expr, ParseError> {
        let expr = self.parse_or()?;
        match &self.peeked.kind {
            TokenKind::Eof => Ok(expr),
            TokenKind::RParen => Err(self.error_here("unexpected \")\" without a matching \"(\"".to_string())),
            kind => {
                let mut msg = format!("unexpected {} after the end of the query", self.found());
                if let (TokenKind::Str(_), Some(prev)) = (kind, &self.prev) {
                    if matches!(prev.kind, TokenKind::Str(_)) && prev.end == self.peeked.start {
                        msg.push_str(" (a doubled quote is not an escape: write \\' or \\\" inside a string)");
                    }
                }
                if let TokenKind::Ident(_) | TokenKind::EscapedIdent(_) | TokenKind::LParen = kind {
                    msg.push_str(" (expected AND, OR or the end of the query)");
                }
                Err(self.error_here(msg))
            }
        }
    }

    /// `or := and ( "OR" and )*`
    fn parse_or(&mut self) -> Result<Expr, ParseError> {
        let mut items = Vec::new();
        push_flat(&mut items, self.parse_and()?, false);
        while keyword(&self.peeked, "OR") {
            self.bump()?;
            push_flat(&mut items, self.parse_and()?, false);
        }
        Ok(if items.len() == 1 { items.pop().expect("one item") } else { Expr::Or(items) })
    }

    /// `and := term ( "AND" term )*`
    fn parse_and(&mut self) -> Result<Expr, ParseError> {
        let mut items = Vec::new();
        push_flat(&mut items, self.parse_term()?, true);
        while keyword(&self.peeked, "AND") {
            self.bump()?;
            push_flat(&mut items, self.parse_term()?, true);
        }
        Ok(if items.len() == 1 { items.pop().expect("one item") } else { Expr::And(items) })
    }

    /// `term := "(" or ")" | comparison`
    fn parse_term(&mut self) -> Result<Expr, ParseError> {
        if self.peeked.kind != TokenKind::LParen {
            return Ok(Expr::Compare(self.parse_comparison()?));
        }
        let open = self.bump()?;
        if self.depth >= MAX_DEPTH {
            return Err(ParseError::new(open.start, format!("parentheses are nested too deeply (the limit is {MAX_DEPTH})")));
        }
        self.depth += 1;
        let inner = self.parse_or()?;
        self.depth -= 1;
        if self.peeked.kind != TokenKind::RParen {
            return Err(self.error_here(format!(
                "expected \")\" to close the \"(\" at position {}, found {}",
                open.start,
                self.found()
            )));
        }
        self.bump()?;
        Ok(inner)
    }

    /// `comparison := prop op value`
    fn parse_comparison(&mut self) -> Result<Comparison, ParseError> {
        let start = self.peeked.start;
        self.comparisons += 1;
        if self.comparisons > MAX_COMPARISONS {
            return Err(ParseError::new(start, format!("too many comparisons (the limit is {MAX_COMPARISONS})")));
        }
        let property = self.parse_property()?;
        let prop_end = self.prev.as_ref().map_or(start, |t| t.end);
        let prop_text = &self.input[start..prop_end];
        let op_tok = self.peeked.clone();
        let op = self.parse_op(&property, prop_text, start)?;
        let value = self.parse_value(op, self.text(&op_tok))?;
        Ok(Comparison { property, op, value, position: start })
    }

    /// `prop := EscapedIdent | Ident ( "." Ident )* [ "." suffix ]`
    fn parse_property(&mut self) -> Result<Property, ParseError> {
        match &self.peeked.kind {
            TokenKind::EscapedIdent(name) => {
                let name = name.clone();
                self.bump()?;
                if self.peeked.kind == TokenKind::Dot {
                    return Err(self.error_here(
                        "a backtick-quoted name cannot be followed by \".\" (put the whole name \
                         inside the backticks; type suffixes need an unquoted name)"
                            .to_string(),
                    ));
                }
                return Ok(Property { path: vec![name], value_type: None });
            }
            TokenKind::Ident(name) if !is_reserved(name) => {}
            _ => return Err(self.error_here(format!("expected a property name or \"(\", found {}", self.found()))),
        }
        let first = self.bump()?;
        let TokenKind::Ident(first) = first.kind else { unreachable!("checked above") };
        let mut path = vec![first];
        let mut value_type = None;
        while self.peeked.kind == TokenKind::Dot {
            self.bump()?;
            let TokenKind::Ident(part) = &self.peeked.kind else {
                return Err(self.error_here(format!("expected a name after \".\", found {}", self.found())));
            };
            let part = part.clone();
            let part_tok = self.bump()?;
            if let Some(t) = ValueType::from_suffix(&part) {
                if self.peeked.kind == TokenKind::Dot {
                    return Err(ParseError::new(
                        part_tok.start,
                        format!("the type suffix \".{}\" must be the last part of a property name", self.text(&part_tok)),
                    ));
                }
                value_type = Some(t);
                break;
            }
            path.push(part);
        }
        Ok(Property { path, value_type })
    }

    fn parse_op(&mut self, property: &Property, prop_text: &str, prop_start: usize) -> Result<Op, ParseError> {
        let op = match &self.peeked.kind {
            TokenKind::Op(s) => match s.as_str() {
                "=" => Some(Op::Eq),
                "!=" | "<>" => Some(Op::Ne),
                "<" => Some(Op::Lt),
                "<=" => Some(Op::Le),
                ">" => Some(Op::Gt),
                ">=" => Some(Op::Ge),
                _ => None,
            },
            TokenKind::Ident(s) => match s.to_ascii_uppercase().as_str() {
                "LIKE" => Some(Op::Like),
                "ILIKE" => Some(Op::ILike),
                "IN" => Some(Op::In),
                _ => None,
            },
            _ => None,
        };
        if let Some(op) = op {
            self.bump()?;
            return Ok(op);
        }
        // Unsupported SQL constructs get a dedicated message.
        let bare_not = property.value_type.is_none()
            && matches!(property.path.as_slice(), [p] if p.eq_ignore_ascii_case("NOT"))
            && self.input[prop_start..].starts_with(|c: char| c.is_ascii_alphabetic());
        if bare_not {
            return Err(ParseError::new(
                prop_start,
                "NOT is not supported (negate the comparison instead, for example != instead of =)",
            ));
        }
        if keyword(&self.peeked, "NOT") {
            return Err(
                self.error_here("NOT is not supported (negate the comparison instead, for example != instead of =)".to_string())
            );
        }
        if keyword(&self.peeked, "IS") {
            return Err(self.error_here("IS NULL / IS NOT NULL is not supported".to_string()));
        }
        if keyword(&self.peeked, "BETWEEN") {
            return Err(self.error_here("BETWEEN is not supported (use two comparisons joined with AND)".to_string()));
        }
        Err(self.error_here(format!(
            "expected a comparison operator ({OPERATORS}) after {}, found {}",
            quote_source(prop_text),
            self.found()
        )))
    }

    fn parse_value(&mut self, op: Op, op_text: &str) -> Result<Literal, ParseError> {
        let op_q = quote_source(op_text);
        match op {
            Op::In => {
                if self.peeked.kind != TokenKind::LParen {
                    return Err(self.error_here(format!("expected a parenthesized list after {op_q}, found {}", self.found())));
                }
                self.bump()?;
                let mut items = Vec::new();
                if self.peeked.kind == TokenKind::RParen {
                    self.bump()?;
                    return Ok(Literal::List(items));
                }
                loop {
                    if items.len() == MAX_LIST_ITEMS {
                        return Err(self.error_here(format!("too many values in the IN list (the limit is {MAX_LIST_ITEMS})")));
                    }
                    match self.scalar()? {
                        Some(v) => items.push(v),
                        None => {
                            let after = self.prev.as_ref().map_or(String::new(), |t| quote_source(self.text(t)));
                            let hint = if self.peeked.kind == TokenKind::LParen { " (lists cannot be nested)" } else { "" };
                            return Err(self.error_here(format!(
                                "expected a value after {after} in the IN list, found {}{hint}",
                                self.found()
                            )));
                        }
                    }
                    match self.peeked.kind {
                        TokenKind::Comma => {
                            self.bump()?;
                        }
                        TokenKind::RParen => {
                            self.bump()?;
                            return Ok(Literal::List(items));
                        }
                        _ => {
                            return Err(self.error_here(format!("expected \",\" or \")\" in the IN list, found {}", self.found())))
                        }
                    }
                }
            }
            Op::Like | Op::ILike => match &self.peeked.kind {
                TokenKind::Str(s) => {
                    let s = s.clone();
                    self.bump()?;
                    Ok(Literal::String(s))
                }
                _ => Err(self.error_here(format!("expected a quoted string pattern after {op_q}, found {}", self.found()))),
            },
            _ => match self.scalar()? {
                Some(v) => Ok(v),
                None => {
                    let hint = match &self.peeked.kind {
                        TokenKind::LParen => " (a list is only allowed after IN)",
                        TokenKind::Ident(_) => " (strings must be quoted)",
                        _ => "",
                    };
                    Err(self.error_here(format!("expected a value after {op_q}, found {}{hint}", self.found())))
                }
            },
        }
    }

    /// `single := String | Int | Float | TRUE | FALSE`; `None` (nothing consumed) otherwise.
    fn scalar(&mut self) -> Result<Option<Literal>, ParseError> {
        let v = match &self.peeked.kind {
            TokenKind::Str(s) => Literal::String(s.clone()),
            TokenKind::Int(i) => Literal::Int(*i),
            TokenKind::Float(x) => Literal::Float(*x),
            TokenKind::Ident(s) if s.eq_ignore_ascii_case("TRUE") => Literal::Bool(true),
            TokenKind::Ident(s) if s.eq_ignore_ascii_case("FALSE") => Literal::Bool(false),
            _ => return Ok(None),
        };
        self.bump()?;
        Ok(Some(v))
    }
}

/// Appends `e` to an And (`and == true`) or Or list, splicing in children of the same kind.
fn push_flat(items: &mut Vec<Expr>, e: Expr, and: bool) {
    match e {
        Expr::And(children) if and => items.extend(children),
        Expr::Or(children) if !and => items.extend(children),
        other => items.push(other),
    }
}
