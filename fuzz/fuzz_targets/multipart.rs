//! Finding the SDP in a (multipart) body never panics, and what it finds lies inside the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_core::message::sdp_of;

fuzz_target!(|data: &[u8]| {
    // First line: the Content-Type; the rest: the body.
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let Ok(content_type) = std::str::from_utf8(&data[..split]) else { return };
    let body = data.get(split + 1..).unwrap_or_default();
    if let Ok(Some(sdp)) = sdp_of(Some(content_type), body) {
        let (start, end) = (body.as_ptr() as usize, body.as_ptr() as usize + body.len());
        let at = sdp.as_ptr() as usize;
        assert!(at >= start && at + sdp.len() <= end, "a slice of the body");
    }
});
