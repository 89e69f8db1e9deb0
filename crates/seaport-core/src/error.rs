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

/// Why the registry or hub refused a request.
///
/// Each variant maps to a stable [`ErrorCode`](crate::message::ErrorCode) sent on the wire.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A role, id, version, host or pattern is malformed.
    #[error("{0}")]
    Invalid(#[from] ParseError),
    /// The metadata is too large or nests too deeply.
    #[error(transparent)]
    InvalidMeta(#[from] crate::record::MetaError),
    /// Port 0 was asked for explicitly.
    #[error("port 0 is not a usable port; ask for 1-65535, or for none to get one assigned")]
    InvalidPort,
    /// A port range with its low end above its high end, or starting at 0.
    #[error("port range {low}-{high} is empty or starts at 0; give LOW-HIGH with 1 <= LOW <= HIGH")]
    InvalidPortRange {
        /// Low end as given.
        low: u16,
        /// High end as given.
        high: u16,
    },
    /// Every port in the range is in use on that host.
    #[error("every port in {low}-{high} is in use on host {host}; free some or ask for a wider range")]
    PortRangeExhausted {
        /// The host.
        host: String,
        /// Low end of the range.
        low: u16,
        /// High end of the range.
        high: u16,
    },
    /// No record has this id.
    #[error("no record with id {0:?}")]
    UnknownId(String),
    /// The signer may not do this.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The session holds as many registrations as it may.
    #[error("this connection already holds {max} registrations, the hub's limit")]
    TooManyRegistrations {
        /// The limit.
        max: usize,
    },
    /// The session holds as many subscriptions as it may.
    #[error("this connection already holds {max} subscriptions, the hub's limit")]
    TooManySubscriptions {
        /// The limit.
        max: usize,
    },
    /// Another connected session holds this record; it cannot be displaced.
    #[error("record {0:?} is held by another connected client and cannot be replaced")]
    OwnedElsewhere(String),
    /// No subscription has this id on this session.
    #[error("no subscription with id {0}")]
    UnknownSubscription(u64),
}
