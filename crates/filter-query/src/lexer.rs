//! The tokenizer. Tokens are produced on demand, so errors are reported in input order.

use crate::error::ParseError;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    /// `[a-zA-Z_][a-zA-Z0-9_]*`, including keywords (recognized by the parser, any case).
    Ident(String),
    /// `` `...` `` with escapes resolved.
    EscapedIdent(String),
    /// `'...'` or `"..."` with escapes resolved.
    Str(String),
    Int(i64),
    Float(f64),
    /// A maximal run of `<`, `>`, `=`, `!`. It may not be a valid operator (`<<<`); the parser
    /// decides, which gives a better message than splitting it up.
    Op(String),
    LParen,
    RParen,
    Comma,
    Dot,
    /// Any other character (`;`, `*`, a lone `-`, non-ASCII, ...).
    Unknown(char),
    Eof,
}

/// A token and its byte range in the input.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub start: usize,
    pub end: usize,
}

pub(crate) struct Lexer<'a> {
    input: &'a str,
    pos: usize,
}

const MAX_SHOWN: usize = 40;

/// `"text"` of a slice of the input for messages, shortened when long.
pub(crate) fn quote_source(text: &str) -> String {
    if text.chars().count() > MAX_SHOWN {
        let short: String = text.chars().take(MAX_SHOWN).collect();
        format!("\"{short}...\"")
    } else {
        format!("\"{text}\"")
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl<'a> Lexer<'a> {
    pub fn new(input: &'a str) -> Self {
        Self { input, pos: 0 }
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.input.as_bytes().get(at).copied()
    }

    fn skip_trivia(&mut self) {
        loop {
            match self.byte(self.pos) {
                Some(c) if c.is_ascii_whitespace() => self.pos += 1,
                Some(b'-') if self.byte(self.pos + 1) == Some(b'-') => {
                    while let Some(c) = self.byte(self.pos) {
                        if c == b'\n' || c == b'\r' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                _ => return,
            }
        }
    }

    pub fn next_token(&mut self) -> Result<Token, ParseError> {
        self.skip_trivia();
        let start = self.pos;
        let Some(c) = self.byte(start) else {
            return Ok(Token { kind: TokenKind::Eof, start, end: start });
        };
        let digit_at = |at: usize| self.byte(at).is_some_and(|b| b.is_ascii_digit());
        let kind = match c {
            b'(' => self.single(TokenKind::LParen),
            b')' => self.single(TokenKind::RParen),
            b',' => self.single(TokenKind::Comma),
            b'.' if digit_at(start + 1) => self.number()?,
            b'.' => self.single(TokenKind::Dot),
            b'0'..=b'9' => self.number()?,
            b'-' | b'+' if digit_at(start + 1) || (self.byte(start + 1) == Some(b'.') && digit_at(start + 2)) => self.number()?,
            b'<' | b'>' | b'=' | b'!' => {
                while matches!(self.byte(self.pos), Some(b'<' | b'>' | b'=' | b'!')) {
                    self.pos += 1;
                }
                TokenKind::Op(self.input[start..self.pos].to_string())
            }
            b'\'' | b'"' => TokenKind::Str(self.quoted(c, "string")?),
            b'`' => {
                let name = self.quoted(b'`', "backtick-quoted name")?;
                if name.is_empty() {
                    return Err(ParseError::new(start, "empty backtick-quoted name"));
                }
                TokenKind::EscapedIdent(name)
            }
            c if is_ident_start(c) => {
                while self.byte(self.pos).is_some_and(is_ident_char) {
                    self.pos += 1;
                }
                TokenKind::Ident(self.input[start..self.pos].to_string())
            }
            _ => {
                let ch = self.input[start..].chars().next().unwrap_or('\u{fffd}');
                self.pos += ch.len_utf8();
                TokenKind::Unknown(ch)
            }
        };
        Ok(Token { kind, start, end: self.pos })
    }

    fn single(&mut self, kind: TokenKind) -> TokenKind {
        self.pos += 1;
        kind
    }

    fn digits(&mut self) -> usize {
        let from = self.pos;
        while self.byte(self.pos).is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - from
    }

    /// `[-+]? ( \d+ | \d* "." \d+ ) ( [eE] [-+]? \d+ )?`; integer when there is neither a
    /// fraction nor an exponent.
    fn number(&mut self) -> Result<TokenKind, ParseError> {
        let start = self.pos;
        if matches!(self.byte(self.pos), Some(b'-' | b'+')) {
            self.pos += 1;
        }
        self.digits();
        let mut is_float = false;
        if self.byte(self.pos) == Some(b'.') {
            if self.byte(self.pos + 1).is_some_and(|b| b.is_ascii_digit()) {
                self.pos += 1;
                self.digits();
                is_float = true;
            } else {
                self.pos += 1;
                return Err(self.bad_number(start, ": expected a digit after the decimal point"));
            }
        }
        if matches!(self.byte(self.pos), Some(b'e' | b'E')) {
            let mut at = self.pos + 1;
            if matches!(self.byte(at), Some(b'-' | b'+')) {
                at += 1;
            }
            if self.byte(at).is_some_and(|b| b.is_ascii_digit()) {
                self.pos = at;
                self.digits();
                is_float = true;
            }
        }
        if self.byte(self.pos).is_some_and(|b| is_ident_char(b) || b == b'.') {
            return Err(self.bad_number(start, ""));
        }
        let text = &self.input[start..self.pos];
        if is_float {
            match text.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(TokenKind::Float(x)),
                _ => Err(ParseError::new(start, format!("number {} is out of range", quote_source(text)))),
            }
        } else {
            text.parse::<i64>().map(TokenKind::Int).map_err(|_| {
                ParseError::new(
                    start,
                    format!("integer {} is out of range (it must fit in a signed 64-bit integer)", quote_source(text)),
                )
            })
        }
    }

    /// Error for a malformed number: the token runs to the end of the adjacent word.
    fn bad_number(&mut self, start: usize, detail: &str) -> ParseError {
        while self.byte(self.pos).is_some_and(|b| is_ident_char(b) || b == b'.') {
            self.pos += 1;
        }
        ParseError::new(start, format!("invalid number {}{detail}", quote_source(&self.input[start..self.pos])))
    }

    /// A quoted run closed by `quote`. A backslash escapes the next character:
    /// `\\`, `\'` and `\"` stand for the character itself; in strings any other
    /// `\x` is kept verbatim (both characters, as upstream does), in backtick names it stands
    /// for `x` (so `` \. `` is `.`).
    fn quoted(&mut self, quote: u8, what: &str) -> Result<String, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.input[self.pos..];
            let Some(ch) = rest.chars().next() else {
                let q = quote as char;
                return Err(ParseError::new(start, format!("unterminated {what}: missing closing {q}")));
            };
            self.pos += ch.len_utf8();
            if ch == quote as char {
                return Ok(out);
            }
            if ch != '\\' {
                out.push(ch);
                continue;
            }
            let Some(next) = self.input[self.pos..].chars().next() else {
                continue; // reported as unterminated on the next iteration
            };
            self.pos += next.len_utf8();
            match next {
                '\\' | '\'' | '"' => out.push(next),
                _ if quote == b'`' => out.push(next),
                _ => {
                    out.push('\\');
                    out.push(next);
                }
            }
        }
    }
}
