//! SDP parsing and answering never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_core::sdp::{Codec, SessionDescription};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(offer) = SessionDescription::parse(text) {
        let _ = SessionDescription::answer(&offer, 1, "127.0.0.1", 4000, &[Codec::opus(), Codec::pcmu(), Codec::pcma()]);
        let _ = SessionDescription::parse(&offer.to_string());
    }
});
