//! Error types of seaport-core.
//!
//! Errors hold plain data (no `io::Error`), so tests can compare them with `assert_eq!`.

use std::fmt;

/// What a parser found wrong with its input.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The input was empty where something was required.
    Empty,
    /// A character that is not allowed at this position.
    UnexpectedChar {
        /// The character found.
        found: char,
        /// Byte offset of the character in the input.
        at: usize,
    },
    /// The input ended where more was expected.
    UnexpectedEnd,
    /// A version number part is not a valid number (leading zero, too large, not digits).
    InvalidNumber {
        /// Byte offset where the number starts.
        at: usize,
    },
    /// A prerelease or build identifier is malformed.
    InvalidIdentifier {
        /// Byte offset where the identifier starts.
        at: usize,
    },
    /// A version string is not valid semver.
    InvalidVersion(String),
    /// The input is longer than allowed.
    TooLong {
        /// The maximum accepted length in bytes.
        max: usize,
    },
    /// Any other problem, described in words.
    Other(String),
}

/// An input that could not be parsed: the input itself and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    what: &'static str,
    input: String,
    kind: ParseErrorKind,
}

impl ParseError {
    /// Creates an error for `input`, which was meant to be a `what` (e.g. "version range").
    pub fn new(what: &'static str, input: impl Into<String>, kind: ParseErrorKind) -> ParseError {
        let mut input = input.into();
        if input.len() > 200 {
            let mut cut = 200;
            while !input.is_char_boundary(cut) {
                cut -= 1;
            }
            input.truncate(cut);
            input.push('…');
        }
        ParseError { what, input, kind }
    }

    /// The input that failed to parse (cut to 200 bytes).
    pub fn input(&self) -> &str {
        &self.input
    }

    /// What was wrong with it.
    pub fn kind(&self) -> &ParseErrorKind {
        &self.kind
    }

    /// What the input was meant to be, e.g. `"version range"`.
    pub fn what(&self) -> &'static str {
        self.what
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} {:?}: ", self.what, self.input)?;
        match &self.kind {
            ParseErrorKind::Empty => write!(f, "it is empty"),
            ParseErrorKind::UnexpectedChar { found, at } => {
                write!(f, "unexpected character {found:?} at byte {at}")
            }
            ParseErrorKind::UnexpectedEnd => write!(f, "it ends too early"),
            ParseErrorKind::InvalidNumber { at } => {
                write!(f, "invalid number at byte {at} (no leading zeros, at most 2^53-1)")
            }
            ParseErrorKind::InvalidIdentifier { at } => {
                write!(f, "invalid prerelease or build identifier at byte {at}")
            }
            ParseErrorKind::InvalidVersion(why) => write!(f, "not a valid semver version ({why})"),
            ParseErrorKind::TooLong { max } => write!(f, "longer than {max} bytes"),
            ParseErrorKind::Other(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ParseError {}
