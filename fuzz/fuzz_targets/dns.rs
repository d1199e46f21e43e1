//! DNS responses from the network never panic the parser, and SRV ordering copes with any set.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_core::dns::{self, Record};

fuzz_target!(|data: &[u8]| {
    if let Ok(response) = dns::parse(data) {
        let srv = response.records.into_iter().filter_map(|(_, r)| if let Record::Srv(s) = r { Some(s) } else { None }).collect();
        let mut n = 0u32;
        let _ = dns::order_srv(srv, || {
            n = n.wrapping_add(0x9E37_79B9);
            n
        });
    }
});
