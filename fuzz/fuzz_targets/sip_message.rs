//! SIP parsing: datagrams and streams never panic, and whatever parses serializes and parses
//! back to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_core::message::{parse_datagram, parse_stream};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = parse_datagram(data) {
        let again = parse_datagram(&message.to_bytes());
        assert_eq!(again.as_ref(), Ok(&message));
        let _ = (message.cseq(), message.top_via(), message.from(), message.to());
    }
    let _ = parse_stream(data);
});
