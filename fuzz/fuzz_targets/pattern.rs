//! Text: `Pattern::parse` and `VersionRange::parse` on arbitrary UTF-8, and their
//! `Display` round trips. See `seaport_fuzz::pattern::check_text`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seaport_fuzz::pattern::check_text(data));
