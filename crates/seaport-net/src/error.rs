//! Error types of the transport layer.
//!
//! * [`FrameError`]: the byte stream is not a valid seaport-rs stream (bad
//!   preamble, oversized or malformed frame, undecodable message, truncated
//!   stream) or the underlying I/O failed. Everything except
//!   [`FrameError::Io`] means the peer is broken or hostile: drop the
//!   connection.
//! * [`AuthError`]: a signed frame failed verification (bad signature,
//!   replayed or reordered sequence number, invalid key).
//! * [`KeyError`]: a key file or PEM could not be loaded or saved. Every
//!   message names the file (when there is one) and says what to do.

use std::io;
use std::path::PathBuf;

/// Failure to read, write, parse or encode frames.
///
/// Only [`FrameError::Io`] carries an [`io::Error`]; every other variant is
/// plain data, so tests can check them with [`matches!`].
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection did not start with the `SEAPORT\0` magic.
    #[error(
        "bad preamble: expected \"{}\", found \"{}\" (not a seaport-rs peer?)",
        escape(&crate::frame::MAGIC),
        escape(.found)
    )]
    BadMagic {
        /// The 8 bytes that were received instead of the magic.
        found: [u8; 8],
    },
    /// The peer speaks a protocol version this side does not support.
    ///
    /// [`read_preamble`](crate::connection::read_preamble) only reports the
    /// version; this variant is for the caller that decides.
    #[error("unsupported protocol version {found} (this side speaks version {supported})")]
    UnsupportedVersion {
        /// The version the peer announced.
        found: u32,
        /// The version this side speaks.
        supported: u32,
    },
    /// A frame length is over the limit; refused before any allocation.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The length announced (or, when encoding, the body length).
        len: u64,
        /// The limit in force.
        max: u32,
    },
    /// A frame announced a length of zero (a frame has at least its kind byte).
    #[error("empty frame (length 0)")]
    Empty,
    /// The frame kind byte is neither 0 (unsigned) nor 1 (signed).
    #[error("unknown frame kind {kind}")]
    UnknownKind {
        /// The kind byte received.
        kind: u8,
    },
    /// A signed frame's body is too short to hold its signed header.
    #[error("signed frame body of {len} bytes is shorter than its {min}-byte header")]
    ShortSignedFrame {
        /// The body length, kind byte included.
        len: usize,
        /// The minimum length of a signed body.
        min: usize,
    },
    /// The message bytes could not be decoded as the expected type.
    #[error("cannot decode message: {reason}")]
    Decode {
        /// The decoder's explanation.
        reason: String,
    },
    /// The message decoded but did not use all of the frame's bytes.
    #[error("message has {extra} trailing bytes")]
    TrailingBytes {
        /// How many bytes were left over.
        extra: usize,
    },
    /// The message could not be serialized.
    #[error("cannot encode message: {reason}")]
    Encode {
        /// The encoder's explanation.
        reason: String,
    },
    /// The stream ended in the middle of a preamble or a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// The underlying reader or writer failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Failure to verify a signed frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The sequence number is not above the last accepted one on this
    /// connection: a replayed or reordered frame.
    #[error("replayed or reordered frame: sequence number {seq} is not above the last accepted {last}")]
    Replay {
        /// The sequence number of the refused frame.
        seq: u64,
        /// The last sequence number accepted on this connection.
        last: u64,
    },
    /// The 32 key bytes are not a usable ed25519 public key.
    #[error("invalid ed25519 public key in signed frame")]
    InvalidKey,
    /// The signature does not match the key, the connection nonce, the
    /// sequence number and the message.
    #[error("bad signature")]
    BadSignature,
}

/// Failure to load, parse or save keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing a key file failed.
    #[error("cannot access key file {}: {source}; check the path and its permissions", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// [`KeyPair::save`](crate::auth::KeyPair::save) refuses to replace a file.
    #[error("refusing to overwrite existing key file {}; delete it first or choose another path", .path.display())]
    Exists {
        /// The file that already exists.
        path: PathBuf,
    },
    /// The key file is not valid JSON or does not have the expected shape.
    #[error(
        "{} is not a valid key file: {source}; a key-pair file is {{\"public\": \"<SPKI PEM>\", \"private\": \"<PKCS#8 PEM>\"}} and an authorized-keys file is a JSON array of SPKI PEM strings",
        origin(.path)
    )]
    Json {
        /// The file, if the JSON came from one.
        path: Option<PathBuf>,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A PEM string is not a valid ed25519 key.
    #[error(
        "{}: {what} is not a valid ed25519 PEM ({reason}); create keys with `openssl genpkey -algorithm ed25519 -out key.pem` and `openssl pkey -in key.pem -pubout`",
        origin(.path)
    )]
    Pem {
        /// The file, if the PEM came from one.
        path: Option<PathBuf>,
        /// Which key: `"public key"`, `"private key"`, `"authorized key #2"`...
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The `public` entry of a key-pair file is not the `private` key's.
    #[error(
        "{}: \"public\" does not match \"private\"; derive it again with `openssl pkey -in private.pem -pubout`",
        origin(.path)
    )]
    Mismatch {
        /// The file, if the JSON came from one.
        path: Option<PathBuf>,
    },
    /// The JSON is neither an object (key pair) nor an array (authorized keys).
    #[error(
        "{}: expected a key-pair object {{\"public\": ..., \"private\": ...}} or an authorized-keys array [\"<SPKI PEM>\", ...], found {found}",
        origin(.path)
    )]
    NotAKeyFile {
        /// The file, if the JSON came from one.
        path: Option<PathBuf>,
        /// What the JSON was instead (`"a string"`, `"a number"`...).
        found: &'static str,
    },
    /// A key-pair file was given where an authorized-keys list was expected,
    /// or the other way round.
    #[error("{} is {found}, but {expected} was expected; check which file was passed where", origin(.path))]
    WrongKind {
        /// The file, if the JSON came from one.
        path: Option<PathBuf>,
        /// What was expected.
        expected: &'static str,
        /// What the file holds.
        found: &'static str,
    },
    /// 32 bytes that are not a valid (or are a weak) ed25519 public key.
    #[error("invalid ed25519 public key bytes (not a curve point, or a weak small-order key)")]
    InvalidPublicKey,
}

/// "key file <path>" or "key JSON" for error messages.
fn origin(path: &Option<PathBuf>) -> String {
    match path {
        Some(path) => format!("key file {}", path.display()),
        None => "key JSON".to_owned(),
    }
}

/// Bytes as printable ASCII with escapes (`SEAPORT\x00`).
fn escape(bytes: &[u8]) -> String {
    bytes.iter().flat_map(|&b| std::ascii::escape_default(b)).map(char::from).collect()
}
