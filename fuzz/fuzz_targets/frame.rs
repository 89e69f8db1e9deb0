//! Frames: `parse_frame` with a small limit on arbitrary bytes, the preamble, and a
//! round trip of every message found. See `seaport_fuzz::wire::check_frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seaport_fuzz::wire::check_frames(data));
