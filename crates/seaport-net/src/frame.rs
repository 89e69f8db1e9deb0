//! The seaport-rs wire format: preamble, frames and message encoding.
//!
//! Everything here is pure and synchronous (no I/O), so it can be fuzzed and
//! property-tested directly; [`crate::connection`] drives it over async
//! streams. This is the only module that calls `bincode`.
//!
//! # Preamble
//!
//! The client sends a 12-byte preamble first and the hub answers with its own:
//!
//! ```text
//! +---------------------------------+-----------------------------+
//! | magic: b"SEAPORT\x00" (8 bytes) | version: u32 big-endian (1) |
//! +---------------------------------+-----------------------------+
//! ```
//!
//! A stream that starts with something else is refused with
//! [`FrameError::BadMagic`]. [`looks_like_json_lines`] tells, from the very
//! first byte, whether the peer is more likely speaking the line-delimited
//! JSON of the Node.js `seaport` package.
//!
//! # Frames
//!
//! After the preamble, both directions carry frames:
//!
//! ```text
//! +------------------------+------------------+
//! | N: u32 big-endian      | body: N bytes    |
//! +------------------------+------------------+
//! ```
//!
//! `N` must be at least 1 and at most the receiver's limit
//! ([`DEFAULT_MAX_FRAME`], 1 MiB, unless configured otherwise). An oversized
//! `N` is refused from the 4 length bytes alone, before anything is allocated.
//!
//! Byte 0 of the body is the kind:
//!
//! ```text
//! kind 0, unsigned: | 0 | message ...                                      |
//! kind 1, signed:   | 1 | seq: u64 BE | key: 32 bytes | sig: 64 bytes | message ... |
//! ```
//!
//! `key` is a raw ed25519 public key and `sig` an ed25519 signature over
//!
//! ```text
//! DOMAIN_TAG (b"seaport-rs frame v1\x00") || nonce (32 bytes) || seq (u64 BE) || message
//! ```
//!
//! where `nonce` is chosen by the hub for each connection and sent in its
//! hello, so a frame captured on one connection is worthless on another, and
//! `seq` strictly increases on a connection, so it cannot be replayed on the
//! same one either. See [`crate::auth`].
//!
//! # Messages
//!
//! A message is any `serde` type encoded with bincode 2's standard
//! configuration (little-endian, varint integers) with a decoding limit of
//! 1 MiB ([`decode_message`] also refuses trailing bytes). bincode cannot
//! decode self-describing constructs (`#[serde(untagged)]`,
//! `#[serde(flatten)]`, `serde_json::Value`, ...): such messages fail with
//! [`FrameError::Decode`], never a panic.
//!
//! # Encoding once for many receivers
//!
//! [`encode_unsigned`] appends a complete frame (length prefix included) to a
//! buffer; the resulting bytes can be shared by every subscriber. For a
//! message that must be framed several ways, [`encode_message`] gives just the
//! message bytes and [`Frame::encode`] frames them.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::auth::Signer;
use crate::error::FrameError;

/// The 8 bytes every seaport-rs connection starts with, in both directions.
pub const MAGIC: [u8; 8] = *b"SEAPORT\x00";

/// The protocol version this implementation speaks.
pub const PROTOCOL_VERSION: u32 = 2;

/// Length of the preamble: magic plus big-endian version.
pub const PREAMBLE_LEN: usize = 12;

/// Default limit on a frame's body length: 1 MiB.
pub const DEFAULT_MAX_FRAME: u32 = 1 << 20;

/// Length of the frame length prefix.
pub const LEN_PREFIX: usize = 4;

/// Length of the signed header after the kind byte: seq, key, signature.
pub const SIGNED_HEADER_LEN: usize = 8 + 32 + 64;

/// Prefix of every signed byte string, separating seaport-rs frame
/// signatures from any other use of the same key.
pub const DOMAIN_TAG: &[u8] = b"seaport-rs frame v1\x00";

/// Maximum number of bytes bincode may claim while decoding one message.
const DECODE_LIMIT: usize = 1 << 20;

/// The bincode configuration of the wire format.
fn bincode_config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<DECODE_LIMIT>,
> {
    bincode::config::standard().with_limit::<DECODE_LIMIT>()
}

/// Appends the preamble announcing `version` (normally [`PROTOCOL_VERSION`]).
pub fn write_preamble(version: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&version.to_be_bytes());
}

/// Checks the magic of a received preamble and returns the peer's version.
pub fn parse_preamble(bytes: &[u8; PREAMBLE_LEN]) -> Result<u32, FrameError> {
    let (magic, version) = bytes.split_at(MAGIC.len());
    let mut found = [0; 8];
    found.copy_from_slice(magic);
    if found != MAGIC {
        return Err(FrameError::BadMagic { found });
    }
    let mut version_bytes = [0; 4];
    version_bytes.copy_from_slice(version);
    Ok(u32::from_be_bytes(version_bytes))
}

/// Whether a connection whose first byte is `first_byte` looks like the
/// line-delimited JSON of the Node.js `seaport` package: `[` or ASCII
/// whitespace. (A seaport-rs peer starts with `S`.)
pub fn looks_like_json_lines(first_byte: u8) -> bool {
    first_byte == b'[' || first_byte.is_ascii_whitespace()
}

/// The kind byte of a frame body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    /// Kind 0: the body is the message.
    Unsigned = 0,
    /// Kind 1: the body is a [`SignedHeader`] followed by the message.
    Signed = 1,
}

/// The header of a signed frame, between the kind byte and the message.
///
/// The bytes are as received; [`crate::auth::Verifier`] checks them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignedHeader {
    /// Sequence number, strictly increasing on a connection (first is 1).
    pub seq: u64,
    /// Raw ed25519 public key of the signer.
    pub key: [u8; 32],
    /// ed25519 signature, see the [module docs](self).
    pub sig: [u8; 64],
}

impl SignedHeader {
    /// Appends the 104 header bytes (seq, key, signature).
    fn write(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.seq.to_be_bytes());
        out[8..40].copy_from_slice(&self.key);
        out[40..SIGNED_HEADER_LEN].copy_from_slice(&self.sig);
    }

    /// Reads a header from exactly [`SIGNED_HEADER_LEN`] bytes.
    fn read(bytes: &[u8; SIGNED_HEADER_LEN]) -> Self {
        let mut seq = [0; 8];
        let mut key = [0; 32];
        let mut sig = [0; 64];
        seq.copy_from_slice(&bytes[..8]);
        key.copy_from_slice(&bytes[8..40]);
        sig.copy_from_slice(&bytes[40..]);
        SignedHeader { seq: u64::from_be_bytes(seq), key, sig }
    }
}

impl fmt::Debug for SignedHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedHeader")
            .field("seq", &self.seq)
            .field("key", &format_args!("{}", hex(&self.key)))
            .field("sig", &format_args!("{}", hex(&self.sig)))
            .finish()
    }
}

/// Lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A parsed frame borrowing its message from the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The signed header, for a signed frame.
    pub signed: Option<SignedHeader>,
    /// The bincode message bytes; decode with [`decode_message`].
    pub message: &'a [u8],
}

impl<'a> Frame<'a> {
    /// An unsigned frame around message bytes.
    pub fn unsigned(message: &'a [u8]) -> Self {
        Frame { signed: None, message }
    }

    /// The frame's kind.
    pub fn kind(&self) -> FrameKind {
        match self.signed {
            Some(_) => FrameKind::Signed,
            None => FrameKind::Unsigned,
        }
    }

    /// Length of the body (kind byte included), without the length prefix.
    pub fn body_len(&self) -> usize {
        let header = if self.signed.is_some() { SIGNED_HEADER_LEN } else { 0 };
        1 + header + self.message.len()
    }

    /// Appends the encoded frame, length prefix included, to `out`.
    ///
    /// Fails only when the body does not fit the 32-bit length prefix; the
    /// receiver's own limit (typically [`DEFAULT_MAX_FRAME`]) is not checked
    /// here.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let body_len = self.body_len();
        let len = checked_len(body_len)?;
        out.reserve(LEN_PREFIX + body_len);
        out.extend_from_slice(&len.to_be_bytes());
        match &self.signed {
            None => out.push(FrameKind::Unsigned as u8),
            Some(header) => {
                out.push(FrameKind::Signed as u8);
                let start = out.len();
                out.resize(start + SIGNED_HEADER_LEN, 0);
                header.write(&mut out[start..]);
            }
        }
        out.extend_from_slice(self.message);
        Ok(())
    }

    /// Decodes the message as a `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, FrameError> {
        decode_message(self.message)
    }

    /// Copies the frame out of the buffer it borrows from.
    pub fn to_owned_frame(&self) -> OwnedFrame {
        OwnedFrame { signed: self.signed, message: self.message.to_vec() }
    }
}

/// A frame that owns its message bytes (what
/// [`FrameReader`](crate::connection::FrameReader) returns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedFrame {
    /// The signed header, for a signed frame.
    pub signed: Option<SignedHeader>,
    /// The bincode message bytes.
    pub message: Vec<u8>,
}

impl OwnedFrame {
    /// Borrows as a [`Frame`].
    pub fn as_frame(&self) -> Frame<'_> {
        Frame { signed: self.signed, message: &self.message }
    }

    /// Decodes the message as a `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, FrameError> {
        decode_message(&self.message)
    }
}

/// The body length as the u32 of the length prefix.
fn checked_len(body_len: usize) -> Result<u32, FrameError> {
    u32::try_from(body_len).map_err(|_| FrameError::TooLarge { len: body_len as u64, max: u32::MAX })
}

/// Encodes just the message bytes of `msg` (no frame header).
pub fn encode_message<T: Serialize + ?Sized>(msg: &T) -> Result<Vec<u8>, FrameError> {
    bincode::serde::encode_to_vec(msg, bincode_config()).map_err(encode_error)
}

/// Appends the bincode encoding of `msg` to `out`, leaving `out` as it was on
/// failure.
fn append_message<T: Serialize + ?Sized>(msg: &T, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let start = out.len();
    bincode::serde::encode_into_std_write(msg, out, bincode_config()).map(|_| ()).map_err(|e| {
        out.truncate(start);
        encode_error(e)
    })
}

fn encode_error(e: bincode::error::EncodeError) -> FrameError {
    FrameError::Encode { reason: e.to_string() }
}

/// Appends an unsigned frame carrying `msg` (length prefix included) to
/// `out`, encoding the message in place. On error `out` is left unchanged.
pub fn encode_unsigned<T: Serialize + ?Sized>(msg: &T, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; LEN_PREFIX]);
    out.push(FrameKind::Unsigned as u8);
    let result = append_message(msg, out)
        .and_then(|()| checked_len(out.len() - start - LEN_PREFIX))
        .map(|len| out[start..start + LEN_PREFIX].copy_from_slice(&len.to_be_bytes()));
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Appends a signed frame carrying `msg` to `out`, signed by `signer` with
/// its next sequence number. On error `out` is left unchanged (and no
/// sequence number is used).
pub fn encode_signed<T: Serialize + ?Sized>(msg: &T, signer: &mut Signer, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let start = out.len();
    let header_at = start + LEN_PREFIX + 1;
    let message_at = header_at + SIGNED_HEADER_LEN;
    out.resize(message_at, 0);
    out[start + LEN_PREFIX] = FrameKind::Signed as u8;
    let result = append_message(msg, out).and_then(|()| checked_len(out.len() - start - LEN_PREFIX)).map(|len| {
        let header = signer.sign(&out[message_at..]);
        header.write(&mut out[header_at..message_at]);
        out[start..start + LEN_PREFIX].copy_from_slice(&len.to_be_bytes());
    });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Parses one frame at the start of `buf`, refusing bodies over `max` bytes.
///
/// Returns `Ok(None)` when `buf` does not hold a whole frame yet (read more
/// and call again), or the frame and the number of bytes it used. Errors are
/// final: the stream cannot be resynchronized. An oversized length is
/// refused as soon as the 4 length bytes are there.
pub fn parse_frame(buf: &[u8], max: u32) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let Some(len) = frame_len(buf, max)? else {
        return Ok(None);
    };
    let Some(body) = buf.get(LEN_PREFIX..LEN_PREFIX + len) else {
        return Ok(None);
    };
    Ok(Some((parse_body(body)?, LEN_PREFIX + len)))
}

/// Reads and checks the length prefix at the start of `buf`: `Ok(None)` if
/// fewer than 4 bytes are there, else the body length (1 ..= `max`).
pub fn frame_len(buf: &[u8], max: u32) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.first_chunk::<LEN_PREFIX>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*prefix);
    if len > max {
        return Err(FrameError::TooLarge { len: u64::from(len), max });
    }
    if len == 0 {
        return Err(FrameError::Empty);
    }
    // Cannot fail on 64-bit targets; on 32-bit ones the whole frame must
    // still be addressable.
    usize::try_from(len)
        .ok()
        .filter(|len| len.checked_add(LEN_PREFIX).is_some())
        .map(Some)
        .ok_or(FrameError::TooLarge { len: u64::from(len), max })
}

/// Parses a whole frame body (kind byte first).
fn parse_body(body: &[u8]) -> Result<Frame<'_>, FrameError> {
    let Some((&kind, rest)) = body.split_first() else {
        return Err(FrameError::Empty);
    };
    match kind {
        k if k == FrameKind::Unsigned as u8 => Ok(Frame::unsigned(rest)),
        k if k == FrameKind::Signed as u8 => {
            let Some((header, message)) = rest.split_first_chunk::<SIGNED_HEADER_LEN>() else {
                return Err(FrameError::ShortSignedFrame { len: body.len(), min: 1 + SIGNED_HEADER_LEN });
            };
            Ok(Frame { signed: Some(SignedHeader::read(header)), message })
        }
        kind => Err(FrameError::UnknownKind { kind }),
    }
}

/// Decodes message bytes as a `T`, refusing trailing bytes.
pub fn decode_message<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, bincode_config())
        .map_err(|e| FrameError::Decode { reason: e.to_string() })?;
    match bytes.len() - used {
        0 => Ok(value),
        extra => Err(FrameError::TrailingBytes { extra }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{KeyPair, Verifier};
    use proptest::prelude::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    /// A representative message type: strings, maps, vecs, options, u64, f64.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Msg {
        Ping,
        Register { role: String, port: Option<u16>, meta: BTreeMap<String, String> },
        Query(Vec<String>),
        Stats { count: u64, load: f64, tags: Vec<Option<i32>> },
        Nested(Option<Box<Msg>>),
    }

    fn arb_msg() -> impl Strategy<Value = Msg> {
        let leaf = prop_oneof![
            Just(Msg::Ping),
            (".*", any::<Option<u16>>(), prop::collection::btree_map(".*", ".*", 0..4))
                .prop_map(|(role, port, meta)| Msg::Register { role, port, meta }),
            prop::collection::vec(".*", 0..4).prop_map(Msg::Query),
            (
                any::<u64>(),
                any::<f64>().prop_filter("NaN != NaN", |f| !f.is_nan()),
                prop::collection::vec(any::<Option<i32>>(), 0..8)
            )
                .prop_map(|(count, load, tags)| Msg::Stats { count, load, tags }),
        ];
        leaf.prop_recursive(3, 8, 1, |inner| prop::option::of(inner).prop_map(|m| Msg::Nested(m.map(Box::new))))
    }

    fn sample() -> Msg {
        Msg::Register { role: "web@1.2.3".into(), port: Some(8080), meta: [("host".to_owned(), "a".to_owned())].into() }
    }

    #[test]
    fn preamble_round_trip() {
        let mut out = Vec::new();
        write_preamble(PROTOCOL_VERSION, &mut out);
        assert_eq!(out, b"SEAPORT\x00\x00\x00\x00\x02");
        let bytes: [u8; PREAMBLE_LEN] = out.as_slice().try_into().unwrap();
        assert_eq!(parse_preamble(&bytes).unwrap(), 2);
    }

    #[test]
    fn preamble_bad_magic() {
        let bytes = *b"[\"hello\"]\n\0\0";
        match parse_preamble(&bytes) {
            Err(FrameError::BadMagic { found }) => assert_eq!(&found, b"[\"hello\""),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_lines_sniffing() {
        assert!(looks_like_json_lines(b'['));
        assert!(looks_like_json_lines(b' '));
        assert!(looks_like_json_lines(b'\n'));
        assert!(!looks_like_json_lines(MAGIC[0]));
        assert!(!looks_like_json_lines(b'{'));
    }

    #[test]
    fn unsigned_wire_layout() {
        let mut out = Vec::new();
        encode_unsigned(&7u64, &mut out).unwrap();
        // len 2: kind 0, varint 7.
        assert_eq!(out, [0, 0, 0, 2, 0, 7]);
        let (frame, used) = parse_frame(&out, DEFAULT_MAX_FRAME).unwrap().unwrap();
        assert_eq!(used, out.len());
        assert_eq!(frame.kind(), FrameKind::Unsigned);
        assert_eq!(frame.decode::<u64>().unwrap(), 7);
    }

    #[test]
    fn encode_message_then_frame_matches_encode_unsigned() {
        let msg = sample();
        let mut direct = Vec::new();
        encode_unsigned(&msg, &mut direct).unwrap();
        let bytes = encode_message(&msg).unwrap();
        let mut framed = Vec::new();
        Frame::unsigned(&bytes).encode(&mut framed).unwrap();
        assert_eq!(direct, framed);
    }

    #[test]
    fn signed_wire_layout_and_verify() {
        let key = KeyPair::generate();
        let nonce = [9; 32];
        let mut signer = Signer::new(key.clone(), nonce);
        let mut out = Vec::new();
        encode_signed(&sample(), &mut signer, &mut out).unwrap();
        encode_signed(&Msg::Ping, &mut signer, &mut out).unwrap();

        let mut verifier = Verifier::new(nonce);
        let (frame, used) = parse_frame(&out, DEFAULT_MAX_FRAME).unwrap().unwrap();
        assert_eq!(out[4], 1);
        let header = frame.signed.unwrap();
        assert_eq!(header.seq, 1);
        assert_eq!(header.key, key.public().to_bytes());
        assert_eq!(out[5..13], 1u64.to_be_bytes());
        assert_eq!(verifier.verify(&header, frame.message), Ok(key.public()));
        assert_eq!(frame.decode::<Msg>().unwrap(), sample());

        let (frame, used2) = parse_frame(&out[used..], DEFAULT_MAX_FRAME).unwrap().unwrap();
        assert_eq!(used + used2, out.len());
        let header = frame.signed.unwrap();
        assert_eq!(header.seq, 2);
        assert!(verifier.verify(&header, frame.message).is_ok());
        assert_eq!(frame.decode::<Msg>().unwrap(), Msg::Ping);

        // Re-encoding the parsed frame gives the same bytes.
        let mut again = Vec::new();
        frame.encode(&mut again).unwrap();
        assert_eq!(again, &out[used..]);
    }

    #[test]
    fn incomplete_is_none() {
        let mut out = Vec::new();
        encode_unsigned(&sample(), &mut out).unwrap();
        for end in 0..out.len() {
            assert!(parse_frame(&out[..end], DEFAULT_MAX_FRAME).unwrap().is_none());
        }
    }

    #[test]
    fn oversized_length_refused_from_prefix_alone() {
        let four_gib = [0xff; 4];
        match parse_frame(&four_gib, DEFAULT_MAX_FRAME) {
            Err(FrameError::TooLarge { len, max }) => {
                assert_eq!(len, u64::from(u32::MAX));
                assert_eq!(max, DEFAULT_MAX_FRAME);
            }
            other => panic!("{other:?}"),
        }
        let just_over = (DEFAULT_MAX_FRAME + 1).to_be_bytes();
        assert!(matches!(parse_frame(&just_over, DEFAULT_MAX_FRAME), Err(FrameError::TooLarge { .. })));
        // A configurable limit.
        let mut out = Vec::new();
        encode_unsigned("0123456789", &mut out).unwrap();
        assert!(matches!(parse_frame(&out, 5), Err(FrameError::TooLarge { len: 12, max: 5 })));
        assert!(parse_frame(&out, 12).unwrap().is_some());
    }

    #[test]
    fn malformed_frames() {
        assert!(matches!(parse_frame(&[0, 0, 0, 0], DEFAULT_MAX_FRAME), Err(FrameError::Empty)));
        assert!(matches!(parse_frame(&[0, 0, 0, 1, 2], DEFAULT_MAX_FRAME), Err(FrameError::UnknownKind { kind: 2 })));
        let mut short = vec![0, 0, 0, 50, 1];
        short.extend([0; 49]);
        assert!(matches!(
            parse_frame(&short, DEFAULT_MAX_FRAME),
            Err(FrameError::ShortSignedFrame { len: 50, min: 105 })
        ));
    }

    #[test]
    fn trailing_bytes_refused() {
        let mut bytes = encode_message(&sample()).unwrap();
        bytes.push(0);
        assert!(matches!(decode_message::<Msg>(&bytes), Err(FrameError::TrailingBytes { extra: 1 })));
    }

    #[test]
    fn wrong_type_is_decode_error() {
        assert!(matches!(decode_message::<String>(&[0xff, 0xff, 0xff]), Err(FrameError::Decode { .. })));
        // No variant 7.
        let bytes = encode_message(&7u32).unwrap();
        assert!(matches!(decode_message::<Msg>(&bytes), Err(FrameError::Decode { .. })));
        // Invalid UTF-8.
        assert!(matches!(decode_message::<String>(&[2, 0xc3, 0x28]), Err(FrameError::Decode { .. })));
    }

    #[test]
    fn huge_claimed_collection_is_refused() {
        // Variant 2 (Query), then a varint length of u64::MAX strings.
        let mut bytes = vec![2, 0xfd];
        bytes.extend(u64::MAX.to_le_bytes());
        assert!(matches!(decode_message::<Msg>(&bytes), Err(FrameError::Decode { .. })));
    }

    #[test]
    fn encode_error_leaves_buffer_unchanged() {
        struct Failing;
        impl Serialize for Failing {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("nope"))
            }
        }
        let mut out = vec![1, 2, 3];
        assert!(matches!(encode_unsigned(&Failing, &mut out), Err(FrameError::Encode { .. })));
        assert_eq!(out, [1, 2, 3]);
        let mut signer = Signer::new(KeyPair::generate(), [0; 32]);
        assert!(encode_signed(&Failing, &mut signer, &mut out).is_err());
        assert_eq!(out, [1, 2, 3]);
        assert_eq!(signer.next_seq(), 1);
    }

    proptest! {
        // Signing and verifying are slow in debug builds: fewer cases.
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn signed_round_trip(msgs in prop::collection::vec(arb_msg(), 1..5), nonce in any::<[u8; 32]>()) {
            let key = KeyPair::generate();
            let mut signer = Signer::new(key.clone(), nonce);
            let mut out = Vec::new();
            for msg in &msgs {
                encode_signed(msg, &mut signer, &mut out).unwrap();
            }
            let mut verifier = Verifier::new(nonce);
            let mut rest = &out[..];
            for msg in &msgs {
                let (frame, used) = parse_frame(rest, DEFAULT_MAX_FRAME).unwrap().unwrap();
                let header = frame.signed.unwrap();
                prop_assert_eq!(verifier.verify(&header, frame.message), Ok(key.public()));
                prop_assert_eq!(&frame.decode::<Msg>().unwrap(), msg);
                rest = &rest[used..];
            }
            prop_assert!(rest.is_empty());
        }
    }

    proptest! {
        #[test]
        fn unsigned_round_trip(msg in arb_msg(), prefix in prop::collection::vec(any::<u8>(), 0..8)) {
            let mut out = prefix.clone();
            encode_unsigned(&msg, &mut out).unwrap();
            prop_assert_eq!(&out[..prefix.len()], &prefix[..]);
            let (frame, used) = parse_frame(&out[prefix.len()..], DEFAULT_MAX_FRAME).unwrap().unwrap();
            prop_assert_eq!(used, out.len() - prefix.len());
            prop_assert!(frame.signed.is_none());
            prop_assert_eq!(frame.decode::<Msg>().unwrap(), msg);
        }

        #[test]
        fn parse_frame_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512), max in any::<u32>()) {
            if let Ok(Some((frame, used))) = parse_frame(&bytes, max) {
                prop_assert!(used <= bytes.len());
                prop_assert!(frame.body_len() + LEN_PREFIX == used);
                let _ = frame.decode::<Msg>();
            }
        }

        #[test]
        fn parse_frame_arbitrary_body_never_panics(body in prop::collection::vec(any::<u8>(), 0..300)) {
            // Valid length prefix, arbitrary body: exercises the kind/header paths.
            let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
            bytes.extend(&body);
            match parse_frame(&bytes, DEFAULT_MAX_FRAME) {
                Ok(Some((frame, used))) => {
                    prop_assert_eq!(used, bytes.len());
                    let mut again = Vec::new();
                    frame.encode(&mut again).unwrap();
                    prop_assert_eq!(again, bytes);
                }
                Ok(None) => prop_assert!(false, "complete frame reported incomplete"),
                Err(_) => {}
            }
        }

        #[test]
        fn decode_message_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_message::<Msg>(&bytes);
            let _ = decode_message::<Vec<Msg>>(&bytes);
            let _ = decode_message::<BTreeMap<String, Vec<u64>>>(&bytes);
        }

        #[test]
        fn decode_mutated_message_never_panics(msg in arb_msg(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
            let mut bytes = encode_message(&msg).unwrap();
            for (at, value) in flips {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            let _ = decode_message::<Msg>(&bytes);
        }

        #[test]
        fn over_limit_refused(len in (DEFAULT_MAX_FRAME + 1)..=u32::MAX) {
            let is_too_large = matches!(
                parse_frame(&len.to_be_bytes(), DEFAULT_MAX_FRAME),
                Err(FrameError::TooLarge { .. })
            );
            prop_assert!(is_too_large);
        }
    }
}
