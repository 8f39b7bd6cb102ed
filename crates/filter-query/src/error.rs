//! The parse error.

use std::fmt;

/// A filter query that could not be parsed.
///
/// `position` is a byte offset into the query string; `message` says what was found and what
/// was expected. [`Display`](fmt::Display) renders
/// `invalid filter query: <message> at position <position>`, the text the REST layer returns
/// with status 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset of the offending token (or of the end of the input).
    pub position: usize,
    /// Human-readable description, without the `invalid filter query:` prefix.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(position: usize, message: impl Into<String>) -> Self {
        Self { position, message: message.into() }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid filter query: {} at position {}", self.message, self.position)
    }
}

impl std::error::Error for ParseError {}
