//! Malformed SIP and SDP never panic the parsers. Deterministic mutations (xorshift) of real
//! messages; the cargo-fuzz targets in `fuzz/` explore further with coverage guidance.

use sip_core::auth::Challenge;
use sip_core::message::{NameAddr, Uri, Via, bad_request, parse_datagram, parse_stream};
use sip_core::sdp::SessionDescription;

const SEEDS: &[&str] = &[
    "INVITE sip:1002@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKx;rport\r\nMax-Forwards: 70\r\n\
From: \"A\" <sip:1001@127.0.0.1>;tag=1\r\nTo: <sip:1002@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:1001@127.0.0.1:5070>\r\nContent-Type: application/sdp\r\nContent-Length: 128\r\n\r\n\
v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n",
    "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bKy;received=127.0.0.1;rport=5070\r\n\
From: <sip:1001@127.0.0.1>;tag=2\r\nTo: <sip:1001@127.0.0.1>;tag=3\r\nCall-ID: c2\r\nCSeq: 2 REGISTER\r\n\
WWW-Authenticate: Digest realm=\"127.0.0.1\", nonce=\"abc\", qop=\"auth\", algorithm=SHA-256\r\nContent-Length: 0\r\n\r\n",
    // RFC 4475 wsinv's head: folding, LWS around every separator, quoted-pairs, compact forms.
    "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\nTO :\r\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\r\n\
from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8\r\nMaX-fOrWaRdS: 0068\r\nCall-ID: wsinv.ndaksdj@192.0.2.1\r\n\
Content-Length   : 0\r\ncseq: 0009\r\n  INVITE\r\nVia  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\ns :\r\n\
v:  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239\r\n\
m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =\r\n      newvalue ;\r\n  secondparam ; q = 0.33\r\n\r\n",
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
    for seed in SEEDS {
        assert!(parse_datagram(seed.as_bytes()).is_ok(), "{seed}");
    }
    let (mut ok, mut err, mut answered) = (0, 0, 0);
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
            Err(error) => {
                err += 1;
                // A 400 is a response, never more than one message, never a line the peer wrote
                // raw: each line ends in CRLF and holds no CR or NUL of its own.
                if let Some(reply) = bad_request(&bytes, &error) {
                    let text = String::from_utf8(reply).expect("UTF-8");
                    assert!(text.starts_with("SIP/2.0 400 Bad Request ("), "{text:?}");
                    assert!(text.ends_with("Content-Length: 0\r\n\r\n"), "{text:?}");
                    assert!(!text.contains('\0'), "{text:?}");
                    assert_eq!(text.matches('\r').count(), text.matches("\r\n").count());
                    answered += 1;
                }
            }
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
        ok > 1_000 && err > 1_000 && answered > 1_000,
        "every path exercised: {ok} parsed, {err} rejected, {answered} answered"
    );
}
