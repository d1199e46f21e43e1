//! SIP parsing: datagrams and streams never panic, and whatever parses serializes (the parser
//! never yields a CR, LF or NUL the serializer would refuse) and parses back to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_core::message::{parse_datagram, parse_stream};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = parse_datagram(data) {
        let bytes = message.try_to_bytes().expect("a parsed message serializes");
        let again = parse_datagram(&bytes);
        assert_eq!(again.as_ref(), Ok(&message));
        let _ = (message.cseq(), message.top_via(), message.from(), message.to());
    }
    let _ = parse_stream(data);
});
