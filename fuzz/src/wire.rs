//! Checks on the wire format: the preamble, frames, and message round trips.
//!
//! Used by the `frame` and `message` fuzz targets and by
//! `crates/seaport-net/tests/fuzz_regressions.rs`. Every check panics on a violation.

use std::fmt::Debug;
use std::time::Duration;

use seaport_core::message::{ClientMessage, HubMessage};
use seaport_core::{Hub, HubConfig, KeyId, SessionId, SessionKind, Timestamp};
use seaport_net::frame::{
    self, decode_message, encode_message, encode_unsigned, parse_frame, parse_preamble, write_preamble, Frame,
    DEFAULT_MAX_FRAME, LEN_PREFIX, MAGIC, PREAMBLE_LEN, SIGNED_HEADER_LEN,
};
use seaport_net::{FrameError, Verifier};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Frame size limits the `frame` target picks from with its first byte: small ones, so
/// that inputs reach the limit.
pub const MAX_FRAMES: [u32; 4] = [1, 16, 200, DEFAULT_MAX_FRAME];

/// The `frame` target: byte 0 picks the frame limit, the rest is a byte stream that is
/// checked as a preamble and parsed as a sequence of frames.
///
/// For every frame: the length is within 1..=max, re-encoding gives the same bytes, one
/// byte less is "incomplete", and a body that decodes as a [`ClientMessage`] or a
/// [`HubMessage`] round-trips. For the first error: it is the one the format says.
pub fn check_frames(data: &[u8]) {
    let Some((&pick, stream)) = data.split_first() else { return };
    let max = MAX_FRAMES[usize::from(pick) % MAX_FRAMES.len()];
    check_preamble(stream);
    let mut rest = stream;
    loop {
        match parse_frame(rest, max) {
            Ok(None) => {
                check_incomplete(rest, max);
                break;
            }
            Err(e) => {
                check_error(rest, max, &e);
                break;
            }
            Ok(Some((frame, used))) => {
                check_frame(rest, max, &frame, used);
                rest = &rest[used..];
            }
        }
    }
}

/// A preamble is accepted exactly when it starts with the magic, and gives back the version.
pub fn check_preamble(stream: &[u8]) {
    let Some(bytes) = stream.first_chunk::<PREAMBLE_LEN>() else { return };
    let (magic, version) = bytes.split_at(MAGIC.len());
    match parse_preamble(bytes) {
        Ok(v) => {
            assert_eq!(magic, MAGIC, "preamble accepted with a wrong magic");
            assert_eq!(v.to_be_bytes(), version, "preamble version");
            let mut again = Vec::new();
            write_preamble(v, &mut again);
            assert_eq!(again, bytes, "write_preamble(parse_preamble(x)) != x");
        }
        Err(FrameError::BadMagic { found }) => {
            assert_ne!(magic, MAGIC, "preamble refused with the right magic");
            assert_eq!(found, magic, "BadMagic reports other bytes");
        }
        Err(e) => panic!("parse_preamble: unexpected error {e:?}"),
    }
    // A seaport-rs peer is never mistaken for a node seaport one.
    assert!(!frame::looks_like_json_lines(MAGIC[0]));
    let _ = frame::looks_like_json_lines(bytes[0]);
}

fn prefix_len(buf: &[u8]) -> Option<u32> {
    buf.first_chunk::<LEN_PREFIX>().map(|p| u32::from_be_bytes(*p))
}

fn check_incomplete(buf: &[u8], max: u32) {
    if let Some(len) = prefix_len(buf) {
        assert!((1..=max).contains(&len), "length {len} (max {max}) reported incomplete instead of refused");
        let need = LEN_PREFIX + len as usize;
        assert!(buf.len() < need, "complete frame of {need} bytes reported incomplete ({} buffered)", buf.len());
    }
}

fn check_error(buf: &[u8], max: u32, e: &FrameError) {
    let len = prefix_len(buf).expect("an error before the 4 length bytes are in");
    let body = buf.get(LEN_PREFIX..LEN_PREFIX + len as usize);
    match e {
        FrameError::TooLarge { len: l, max: m } => {
            assert!(len > max, "length {len} refused as too large for max {max}");
            assert_eq!((*l, *m), (u64::from(len), max));
        }
        FrameError::Empty => assert_eq!(len, 0, "frame of length {len} refused as empty"),
        FrameError::UnknownKind { kind } => {
            let body = body.expect("kind refused before the whole body was in");
            assert!(len <= max && *kind > 1 && body[0] == *kind, "wrong UnknownKind {kind} for body {body:?}");
        }
        FrameError::ShortSignedFrame { len: l, min } => {
            let body = body.expect("signed frame refused before the whole body was in");
            assert_eq!(body[0], 1);
            assert_eq!((*l, *min), (body.len(), 1 + SIGNED_HEADER_LEN));
            assert!(body.len() < 1 + SIGNED_HEADER_LEN);
        }
        other => panic!("parse_frame: unexpected error {other:?}"),
    }
}

fn check_frame(buf: &[u8], max: u32, frame: &Frame<'_>, used: usize) {
    let len = prefix_len(buf).expect("a frame without a length prefix") as usize;
    assert!((1..=max as usize).contains(&len), "frame of {len} bytes accepted with max {max}");
    assert_eq!(used, LEN_PREFIX + len, "bytes used");
    assert_eq!(frame.body_len(), len, "body length");
    assert_eq!(buf[LEN_PREFIX], u8::from(frame.signed.is_some()), "kind byte");
    // Re-encoding the parsed frame gives the bytes it came from.
    let mut again = Vec::new();
    frame.encode(&mut again).expect("a parsed frame re-encodes");
    assert_eq!(again, &buf[..used], "Frame::encode(parse_frame(x)) != x");
    // Frames are found incrementally: one byte less is not a frame yet.
    assert!(matches!(parse_frame(&buf[..used - 1], max), Ok(None)), "a frame cut short is not incomplete");
    if let Some(header) = &frame.signed {
        // Random keys and signatures are refused, never a panic.
        let _ = Verifier::new([0; 32]).verify(header, frame.message);
    }
    check_message_bytes(frame.message);
}

/// The `message` target: the bytes as a message of either direction; a client message
/// that decodes is also fed to a fresh open hub and a fresh keyed hub.
pub fn check_messages(data: &[u8]) {
    if let Some(m) = check_message_bytes(data) {
        feed_fresh_hubs(m);
    }
}

/// Decodes `bytes` as a [`ClientMessage`] and as a [`HubMessage`]; whatever decodes must
/// round-trip. Returns the client message, if the bytes were one.
pub fn check_message_bytes(bytes: &[u8]) -> Option<ClientMessage> {
    if let Ok(m) = decode_message::<HubMessage>(bytes) {
        round_trip(&m);
    }
    let m = decode_message::<ClientMessage>(bytes).ok()?;
    round_trip(&m);
    Some(m)
}

/// A decoded message re-encodes, re-decodes equal, and encodes to the same bytes again
/// (so it also survives framing: `encode_unsigned` then `parse_frame`).
pub fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let bytes = encode_message(value).unwrap_or_else(|e| panic!("decoded message does not encode: {e}\n{value:?}"));
    let again: T =
        decode_message(&bytes).unwrap_or_else(|e| panic!("re-encoded message does not decode: {e}\n{value:?}"));
    // Metadata floats may be NaN, which is not equal to itself: compare bytes then.
    if !format!("{value:?}").contains("NaN") {
        assert_eq!(&again, value, "decode(encode(m)) != m");
    }
    let bytes2 = encode_message(&again).expect("encodes");
    assert_eq!(bytes, bytes2, "encode(decode(encode(m))) != encode(m)");
    let mut framed = Vec::new();
    encode_unsigned(value, &mut framed).expect("frames");
    let limit = u32::try_from(framed.len()).unwrap_or(u32::MAX);
    let (frame, used) = parse_frame(&framed, limit).expect("own frame parses").expect("own frame is complete");
    assert_eq!((frame.message, used), (&bytes[..], framed.len()), "encode_unsigned frames other bytes");
}

/// The hub key of the keyed hub in [`feed_fresh_hubs`].
const FEED_KEY: KeyId = KeyId([9; 32]);

/// Feeds `m` to a fresh open hub (unsigned) and a fresh keyed hub (signed by an
/// authorized key), each with one session: invariants hold and every output encodes.
pub fn feed_fresh_hubs(m: ClientMessage) {
    for keyed in [false, true] {
        let mut config = HubConfig { seed: 1, timeout: Duration::from_secs(45), ..HubConfig::default() };
        if keyed {
            config.authorized.insert(FEED_KEY);
        }
        let mut hub = Hub::new(config);
        let t0 = Timestamp::from_millis(0);
        let s = SessionId(1);
        hub.handle_session_opened(t0, s, SessionKind::Client, "10.0.0.1".into());
        hub.handle_message(t0, s, keyed.then_some(FEED_KEY), m.clone());
        hub.check_invariants().unwrap_or_else(|e| panic!("check_invariants after {m:?}: {e}"));
        while let Some(t) = hub.poll_outgoing() {
            check_hub_message_encodes(&t.message);
        }
        while hub.poll_event().is_some() {}
        hub.handle_session_closed(t0, s);
        hub.check_invariants().unwrap_or_else(|e| panic!("check_invariants after closing: {e}"));
        assert!(hub.registry().is_empty(), "records outlive their session");
    }
}

/// A message the hub sends encodes as a frame a client accepts (within
/// [`DEFAULT_MAX_FRAME`]), and decodes back to the same bytes.
pub fn check_hub_message_encodes(m: &HubMessage) {
    let mut out = Vec::new();
    encode_unsigned(m, &mut out).unwrap_or_else(|e| panic!("hub message does not encode: {e}\n{m:?}"));
    let parsed = parse_frame(&out, DEFAULT_MAX_FRAME)
        .unwrap_or_else(|e| panic!("hub frame of {} bytes refused by a client: {e}", out.len()))
        .expect("a whole frame");
    let decoded: HubMessage = parsed.0.decode().unwrap_or_else(|e| panic!("hub message does not decode: {e}"));
    let again = encode_message(&decoded).expect("encodes");
    assert_eq!(again, parsed.0.message, "hub message changes through decode");
}
