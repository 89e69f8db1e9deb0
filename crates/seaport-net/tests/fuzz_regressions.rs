//! Saved fuzz inputs, replayed through the checks of the fuzz targets in `fuzz/`.
//!
//! The checks are the fuzz crate's own code (`fuzz/src/wire.rs` and `fuzz/src/hub.rs`,
//! mounted here with `#[path]`), so an input fails here exactly where its fuzz target
//! fails. The inputs live in `tests/data/fuzz/<target>/`, one file each, as libFuzzer
//! writes them: every crash the fuzzers found, and a handful of minimized corpus entries.
//! To keep a new one, copy it from `fuzz/artifacts/<target>/` (or `fuzz/corpus/<target>/`)
//! into that folder. The named tests below spell out the bugs that were found; see
//! `fuzz/README.md`.

use std::fs;
use std::path::Path;

#[allow(dead_code)]
#[path = "../../../fuzz/src/hub.rs"]
mod hub;
#[allow(dead_code)]
#[path = "../../../fuzz/src/wire.rs"]
mod wire;

/// Runs `check` on every saved input of `target`.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz").join(target);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no saved inputs in {}", dir.display());
    for file in files {
        let data = fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        // Printed only when the test fails: which input it was.
        eprintln!("replaying {}", file.display());
        check(&data);
    }
}

#[test]
fn saved_frame_inputs() {
    replay("frame", wire::check_frames);
}

#[test]
fn saved_message_inputs() {
    replay("message", wire::check_messages);
}

#[test]
fn saved_hub_inputs() {
    replay("hub", hub::run);
}

/// Bug: a metadata value of nested one-item lists, two bytes a level, overflowed the
/// decoding thread's stack (a debug build already at 1 000 levels in a 2 MiB thread,
/// Rust's default thread stack), aborting the whole hub on one frame from any
/// client, signed or not. Decoding now refuses values nesting deeper than
/// `seaport_core::value::MAX_DECODE_DEPTH`.
#[test]
fn deeply_nested_metadata_is_refused_not_a_stack_overflow() {
    use seaport_core::message::ClientMessage;
    use seaport_core::value::MAX_DECODE_DEPTH;
    use seaport_net::frame::decode_message;
    // `Update { request: 1, id: "a", meta: {"k": [[[...null...]]]} }`, `levels` lists deep.
    let update = |levels: usize| {
        let mut bytes = vec![2, 1, 1, b'a', 1, 1, b'k'];
        for _ in 0..levels {
            bytes.extend([5, 1]);
        }
        bytes.push(0);
        bytes
    };
    let decode = move || {
        assert!(decode_message::<ClientMessage>(&update(MAX_DECODE_DEPTH - 1)).is_ok());
        assert!(decode_message::<ClientMessage>(&update(MAX_DECODE_DEPTH)).is_err());
        // Half a million levels: a frame just under the 1 MiB limit.
        let err = decode_message::<ClientMessage>(&update(500_000)).unwrap_err();
        assert!(err.to_string().contains("nests more than"), "{err}");
        // The depth count starts over for the next message on the thread.
        assert!(decode_message::<ClientMessage>(&update(3)).is_ok());
    };
    std::thread::Builder::new().stack_size(2 << 20).spawn(decode).unwrap().join().unwrap();
}

fn setup() -> hub::Setup {
    hub::Setup {
        keyed: false,
        hub_key: false,
        seed: 1,
        range: hub::RangeIn::Small,
        timeout: 0,
        max_regs: 3,
        max_subs: 1,
        remember: 3,
        chunk: 2,
        meta: 0,
        partition: 0,
        rate: 0,
    }
}

fn register(session: u8, id: u8, meta: Vec<(hub::Text, hub::ValueIn)>, incarnation: Option<u64>) -> hub::Op {
    let reg = hub::RegIn {
        id: Some(hub::IdRef::Pick(id)),
        role: hub::Text::Pick(0),
        version: None,
        host: None,
        port: hub::PortIn::Any,
        meta,
        incarnation,
    };
    hub::Op::Register { session, signer: 0, reg }
}

/// Bug: registering again a record whose incarnation is `u64::MAX` (a client may ask for
/// any incarnation) overflowed `incarnation + 1`: a panic in debug builds, a wrap to 0
/// in release, after which peers would keep the old record. It now saturates.
#[test]
fn incarnation_at_the_maximum_saturates() {
    use seaport_core::message::{ClientMessage, HubMessage};
    use seaport_core::{Hub, HubConfig, Registration, SessionId, SessionKind, Timestamp};
    let mut core = Hub::new(HubConfig::default());
    let (t0, s) = (Timestamp::ZERO, SessionId(1));
    core.handle_session_opened(t0, s, SessionKind::Client, "10.0.0.1".into());
    for request in 1..=2 {
        let registration =
            Registration { id: Some("a".into()), incarnation: Some(u64::MAX), ..Registration::new("web") };
        core.handle_message(t0, s, None, ClientMessage::Register { request, registration });
        let registered = std::iter::from_fn(|| core.poll_outgoing()).find_map(|t| match t.message {
            HubMessage::Registered { record, .. } => Some(record),
            _ => None,
        });
        assert_eq!(registered.expect("registered").incarnation, u64::MAX);
        core.check_invariants().unwrap();
    }
    let ops = vec![register(0, 0, vec![], Some(u64::MAX)), register(0, 0, vec![], None), register(1, 0, vec![], None)];
    hub::run_input(&hub::Input { setup: setup(), ops });
}

/// Bug: `Hub::check_invariants` compared the view with the winning record by value, and
/// a NaN in the metadata is not equal to itself, so a hub holding such a record reported
/// itself inconsistent. It now compares the `Arc`s first.
#[test]
fn nan_metadata_keeps_the_invariants() {
    let nan = || vec![(hub::Text::Pick(0), hub::ValueIn::Leaf(hub::Leaf::Float(f64::NAN)))];
    let ops = vec![
        hub::Op::Subscribe { session: 1, sub: 0, pattern: hub::Text::Pick(0) },
        register(0, 0, nan(), None),
        hub::Op::Update { session: 0, signer: 0, id: hub::IdRef::Pick(0), meta: nan() },
        register(0, 0, nan(), None),
        hub::Op::Free { session: 2, signer: 0, id: hub::IdRef::Pick(0) },
    ];
    hub::run_input(&hub::Input { setup: setup(), ops });
}
