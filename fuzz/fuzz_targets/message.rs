//! Messages: `decode_message` as `ClientMessage` and `HubMessage` on arbitrary bytes, a
//! round trip of whatever decodes, and a decoded client message fed to fresh hubs. See
//! `seaport_fuzz::wire::check_messages`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seaport_fuzz::wire::check_messages(data));
