//! Malformed SIP and SDP never panic the parsers. Deterministic mutations (xorshift) of real
//! messages; the cargo-fuzz targets in `fuzz/` explore further with coverage guidance.

use sip_core::auth::Challenge;
use sip_core::message::{NameAddr, Uri, Via, parse_datagram, parse_stream};
use sip_core::sdp::SessionDescription;

const SEEDS: &[&str] = &[
    "INVITE sip:1002@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKx;rport\r\nMax-Forwards: 70\r\n\
From: \"A\" <sip:1001@127.0.0.1>;tag=1\r\nTo: <sip:1002@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:1001@127.0.0.1:5070>\r\nContent-Type: application/sdp\r\nContent-Length: 129\r\n\r\n\
v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n",
    "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bKy;received=127.0.0.1;rport=5070\r\n\
From: <sip:1001@127.0.0.1>;tag=2\r\nTo: <sip:1001@127.0.0.1>;tag=3\r\nCall-ID: c2\r\nCSeq: 2 REGISTER\r\n\
WWW-Authenticate: Digest realm=\"127.0.0.1\", nonce=\"abc\", qop=\"auth\", algorithm=SHA-256\r\nContent-Length: 0\r\n\r\n",
];

const PIECES: &[&[u8]] = &[
    b"\r\n",
    b":",
    b";",
    b"<",
    b">",
    b"\"",
    b"@",
    b"[",
    b"]",
    b"=",
    b",",
    b" ",
    b"\xff",
    b"\xc3",
    b"0",
    b"99999999999",
    b"SIP/2.0",
    b"\r\n\r\n",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(4) {
            0 if at < bytes.len() => {
                let end = (at + 1 + rng.below(8)).min(bytes.len());
                bytes.drain(at..end);
            }
            1 => {
                let piece = PIECES[rng.below(PIECES.len())];
                bytes.splice(at..at, piece.iter().copied());
            }
            2 if at < bytes.len() => bytes[at] = rng.next() as u8,
            _ => bytes.truncate(at),
        }
    }
    bytes
}

#[test]
fn mutated_messages_never_panic() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let (mut ok, mut err) = (0, 0);
    for round in 0..30_000 {
        let seed = SEEDS[round % SEEDS.len()].as_bytes();
        let bytes = mutate(&mut rng, seed);
        match parse_datagram(&bytes) {
            Ok(message) => {
                ok += 1;
                // Whatever parsed must serialize and parse again to the same thing.
                assert_eq!(
                    parse_datagram(&message.to_bytes()).as_ref(),
                    Ok(&message),
                    "{:?}",
                    String::from_utf8_lossy(&bytes)
                );
                let _ = (
                    message.cseq(),
                    message.top_via(),
                    message.from(),
                    message.to(),
                );
                if let Ok(sdp) = std::str::from_utf8(message.body()) {
                    let _ = SessionDescription::parse(sdp);
                }
            }
            Err(_) => err += 1,
        }
        let _ = parse_stream(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        for line in text.lines() {
            let value = line.split_once(':').map_or(line, |(_, v)| v);
            let _ = (
                Uri::parse(value),
                NameAddr::parse(value),
                Via::parse(value),
                Challenge::parse(value),
            );
        }
    }
    assert!(
        ok > 1_000 && err > 1_000,
        "both paths exercised: {ok} parsed, {err} rejected"
    );
}
