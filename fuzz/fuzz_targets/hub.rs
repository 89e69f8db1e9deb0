//! The hub state machine driven by an arbitrary sequence of operations and checked after
//! every step. See `seaport_fuzz::hub`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seaport_fuzz::hub::run(data));
