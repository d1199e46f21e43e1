//! SDP (RFC 4566) for audio calls, and RFC 3264 offer/answer: build our offer, parse theirs,
//! answer it with the first codec of our preference list that they offer.

use std::fmt::{self, Write as _};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP line {line}: {problem}")]
    Line { line: usize, problem: String },
    #[error("SDP lacks `{0}`")]
    Missing(&'static str),
    #[error("no audio stream in the offer")]
    NoAudio,
    #[error("none of our codecs ({ours}) is offered ({theirs})")]
    NoCommonCodec { ours: String, theirs: String },
}

/// A codec as negotiated: payload type, name, clock rate, channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    pub payload_type: u8,
    pub name: String,
    pub clock_rate: u32,
    pub channels: u8,
    pub fmtp: Option<String>,
}

impl Codec {
    pub fn pcmu() -> Self {
        Self {
            payload_type: 0,
            name: "PCMU".into(),
            clock_rate: 8000,
            channels: 1,
            fmtp: None,
        }
    }
    pub fn pcma() -> Self {
        Self {
            payload_type: 8,
            name: "PCMA".into(),
            clock_rate: 8000,
            channels: 1,
            fmtp: None,
        }
    }
    /// Opus is always described as 48 kHz stereo in SDP (RFC 7587), even when sent mono.
    pub fn opus() -> Self {
        Self {
            payload_type: 111,
            name: "opus".into(),
            clock_rate: 48000,
            channels: 2,
            fmtp: Some("minptime=10;useinbandfec=1".into()),
        }
    }
    pub fn telephone_event() -> Self {
        Self {
            payload_type: 101,
            name: "telephone-event".into(),
            clock_rate: 8000,
            channels: 1,
            fmtp: Some("0-16".into()),
        }
    }

    /// By configuration name (`[media] codecs`): `pcmu`, `pcma`, `opus`.
    pub fn by_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "pcmu" | "g711u" => Some(Self::pcmu()),
            "pcma" | "g711a" => Some(Self::pcma()),
            "opus" => Some(Self::opus()),
            _ => None,
        }
    }

    fn same_format(&self, other: &Codec) -> bool {
        self.name.eq_ignore_ascii_case(&other.name) && self.clock_rate == other.clock_rate
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    /// What we answer to this offered direction (RFC 3264 §6.1).
    pub fn answer(self) -> Self {
        match self {
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            other => other,
        }
    }
}

/// `sdp` with the audio stream's direction set to `direction` and the origin's version bumped,
/// every other line kept as it was (ICE, DTLS and anything else we do not model survive). A
/// session-level direction is dropped in favour of the media-level one. None when there is no
/// `m=audio` section or no parsable `o=` line.
pub fn with_direction(sdp: &str, direction: Direction) -> Option<String> {
    let mut out: Vec<String> = Vec::new();
    let (mut in_audio, mut seen_audio, mut placed, mut bumped) = (false, false, false, false);
    let is_direction = |line: &str| {
        matches!(
            line,
            "a=sendrecv" | "a=sendonly" | "a=recvonly" | "a=inactive"
        )
    };
    for line in sdp.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("o=") {
            let mut fields: Vec<String> = rest.split(' ').map(str::to_owned).collect();
            let version = fields.get(2).and_then(|v| v.parse::<u64>().ok())?;
            fields[2] = (version + 1).to_string();
            out.push(format!("o={}", fields.join(" ")));
            bumped = true;
            continue;
        }
        if line.starts_with("m=") {
            if in_audio && !placed {
                out.push(format!("a={}", direction.as_str()));
                placed = true;
            }
            in_audio = line.starts_with("m=audio") && !seen_audio;
            seen_audio |= in_audio;
        }
        if is_direction(line) {
            if in_audio && !placed {
                out.push(format!("a={}", direction.as_str()));
                placed = true;
            }
            // Other streams keep theirs; the session-level one gives way to ours.
            if !in_audio && seen_audio {
                out.push(line.to_owned());
            }
            continue;
        }
        out.push(line.to_owned());
    }
    if in_audio && !placed {
        out.push(format!("a={}", direction.as_str()));
        placed = true;
    }
    (placed && bumped).then(|| out.join("\r\n") + "\r\n")
}

/// One `m=audio` section with what we use of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audio {
    /// Connection address for this stream (media-level `c=`, else session-level).
    pub address: String,
    pub port: u16,
    pub protocol: String,
    /// Offered codecs in the offerer's order of preference.
    pub codecs: Vec<Codec>,
    /// RFC 4733 telephone-event payload type, when offered.
    pub telephone_event: Option<u8>,
    pub direction: Direction,
    pub ptime: Option<u32>,
    /// RTP and RTCP share the port (RFC 5761).
    pub rtcp_mux: bool,
    /// SDES-SRTP keys (RFC 4568), for `RTP/SAVP`.
    pub crypto: Vec<Crypto>,
}

/// One `a=crypto` line: `tag suite key-params`, e.g. `1 AES_CM_128_HMAC_SHA1_80 inline:…`.
#[derive(Clone, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub suite: String,
    pub key_params: String,
}

impl fmt::Debug for Crypto {
    // The key is a secret: never in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Crypto({} {} inline:…)", self.tag, self.suite)
    }
}

impl Crypto {
    /// The base64 master key and salt of the first `inline:` key, without lifetime or MKI.
    pub fn inline_key(&self) -> Option<&str> {
        let inline = self.key_params.split(';').next()?.strip_prefix("inline:")?;
        inline.split('|').next()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub session_id: u64,
    pub version: u64,
    pub origin_address: String,
    pub audio: Audio,
}

impl SessionDescription {
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        let mut session_id = None;
        let mut version = 0;
        let mut origin_address = String::new();
        let mut session_address: Option<String> = None;
        let mut audio: Option<(Audio, Vec<u8>, bool)> = None; // (audio, formats, inside the first audio m=)
        let mut other_media = false;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let raw = raw.trim_end_matches('\r');
            if raw.is_empty() {
                continue;
            }
            let bad = |problem: &str| SdpError::Line {
                line,
                problem: problem.to_owned(),
            };
            let (kind, value) = raw
                .split_once('=')
                .ok_or_else(|| bad("expected type=value"))?;
            match kind {
                "o" => {
                    let fields: Vec<&str> = value.split_whitespace().collect();
                    if fields.len() != 6 {
                        return Err(bad("o= needs 6 fields"));
                    }
                    session_id = Some(fields[1].parse().map_err(|_| bad("bad session id"))?);
                    version = fields[2].parse().map_err(|_| bad("bad session version"))?;
                    origin_address = fields[5].to_owned();
                }
                "c" => {
                    let address = value
                        .split_whitespace()
                        .nth(2)
                        .ok_or_else(|| bad("c= needs 3 fields"))?;
                    let address = address.split('/').next().unwrap_or(address).to_owned();
                    match &mut audio {
                        Some((a, _, true)) => a.address = address,
                        _ if !other_media => session_address = Some(address),
                        _ => {}
                    }
                }
                "m" => {
                    if let Some((_, _, current)) = &mut audio {
                        *current = false;
                    }
                    let fields: Vec<&str> = value.split_whitespace().collect();
                    if fields.len() < 4 {
                        return Err(bad("m= needs media, port, protocol and formats"));
                    }
                    if fields[0] == "audio" && audio.is_none() {
                        let port = fields[1]
                            .split('/')
                            .next()
                            .unwrap_or("")
                            .parse()
                            .map_err(|_| bad("bad port"))?;
                        let formats = fields[3..]
                            .iter()
                            .map(|f| f.parse::<u8>().map_err(|_| bad("bad payload type")))
                            .collect::<Result<Vec<_>, _>>()?;
                        let audio_section = Audio {
                            address: session_address.clone().unwrap_or_default(),
                            port,
                            protocol: fields[2].to_owned(),
                            codecs: Vec::new(),
                            telephone_event: None,
                            direction: Direction::SendRecv,
                            ptime: None,
                            rtcp_mux: false,
                            crypto: Vec::new(),
                        };
                        audio = Some((audio_section, formats, true));
                    } else {
                        other_media = true;
                    }
                }
                "a" => {
                    let Some((a, _, true)) = &mut audio else {
                        continue;
                    };
                    let (name, argument) = value.split_once(':').unwrap_or((value, ""));
                    match name {
                        "rtpmap" => {
                            let (pt, encoding) =
                                argument.split_once(' ').ok_or_else(|| bad("bad rtpmap"))?;
                            let pt: u8 = pt.parse().map_err(|_| bad("bad rtpmap payload type"))?;
                            let mut parts = encoding.split('/');
                            let codec_name = parts.next().unwrap_or("").to_owned();
                            let clock_rate = parts
                                .next()
                                .and_then(|r| r.parse().ok())
                                .ok_or_else(|| bad("bad rtpmap clock rate"))?;
                            let channels = parts.next().and_then(|c| c.parse().ok()).unwrap_or(1);
                            a.codecs.retain(|c| c.payload_type != pt);
                            a.codecs.push(Codec {
                                payload_type: pt,
                                name: codec_name,
                                clock_rate,
                                channels,
                                fmtp: None,
                            });
                        }
                        "fmtp" => {
                            if let Some((pt, params)) = argument.split_once(' ')
                                && let Ok(pt) = pt.parse::<u8>()
                                && let Some(codec) =
                                    a.codecs.iter_mut().find(|c| c.payload_type == pt)
                            {
                                codec.fmtp = Some(params.trim().to_owned());
                            }
                        }
                        "sendrecv" => a.direction = Direction::SendRecv,
                        "sendonly" => a.direction = Direction::SendOnly,
                        "recvonly" => a.direction = Direction::RecvOnly,
                        "inactive" => a.direction = Direction::Inactive,
                        "ptime" => a.ptime = argument.trim().parse().ok(),
                        "rtcp-mux" => a.rtcp_mux = true,
                        "crypto" => {
                            let mut fields = argument.split_whitespace();
                            let (Some(tag), Some(suite), Some(key_params)) =
                                (fields.next(), fields.next(), fields.next())
                            else {
                                return Err(bad(
                                    "a=crypto needs a tag, a suite and key parameters",
                                ));
                            };
                            let tag = tag.parse().map_err(|_| bad("bad a=crypto tag"))?;
                            a.crypto.push(Crypto {
                                tag,
                                // Suite names are matched case-insensitively; keep one form.
                                suite: suite.to_ascii_uppercase(),
                                key_params: key_params.to_owned(),
                            });
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        let (mut audio, formats, _) = audio.ok_or(SdpError::NoAudio)?;
        // Static payload types need no rtpmap (RFC 3551).
        for pt in &formats {
            if !audio.codecs.iter().any(|c| c.payload_type == *pt) {
                match pt {
                    0 => audio.codecs.push(Codec::pcmu()),
                    8 => audio.codecs.push(Codec::pcma()),
                    _ => {}
                }
            }
        }
        // Keep the m= line's order (the offerer's preference) and only formats it lists.
        audio.codecs = formats
            .iter()
            .filter_map(|pt| audio.codecs.iter().find(|c| c.payload_type == *pt).cloned())
            .collect();
        audio.telephone_event = audio
            .codecs
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case("telephone-event"))
            .map(|c| c.payload_type);
        audio
            .codecs
            .retain(|c| !c.name.eq_ignore_ascii_case("telephone-event"));
        if audio.address.is_empty() {
            return Err(SdpError::Missing("c="));
        }
        Ok(Self {
            session_id: session_id.ok_or(SdpError::Missing("o="))?,
            version,
            origin_address,
            audio,
        })
    }

    /// Our offer: every codec we support, in our order, plus telephone-event.
    pub fn offer(session_id: u64, address: &str, port: u16, codecs: &[Codec]) -> Self {
        Self {
            session_id,
            version: 1,
            origin_address: address.to_owned(),
            audio: Audio {
                address: address.to_owned(),
                port,
                protocol: "RTP/AVP".into(),
                codecs: codecs.to_vec(),
                telephone_event: Some(Codec::telephone_event().payload_type),
                direction: Direction::SendRecv,
                ptime: Some(20),
                rtcp_mux: false,
                crypto: Vec::new(),
            },
        }
    }

    /// Answers `offer` (RFC 3264 §6): the first codec in *our* preference order that the offer has,
    /// with the offerer's payload type; telephone-event if offered; the mirrored direction.
    pub fn answer(
        offer: &Self,
        session_id: u64,
        address: &str,
        port: u16,
        preferences: &[Codec],
    ) -> Result<(Self, Codec), SdpError> {
        let chosen = preferences
            .iter()
            .find_map(|ours| {
                offer
                    .audio
                    .codecs
                    .iter()
                    .find(|theirs| theirs.same_format(ours))
            })
            .cloned()
            .ok_or_else(|| SdpError::NoCommonCodec {
                ours: preferences
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                theirs: offer
                    .audio
                    .codecs
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let answer = Self {
            session_id,
            version: 1,
            origin_address: address.to_owned(),
            audio: Audio {
                address: address.to_owned(),
                port,
                protocol: offer.audio.protocol.clone(),
                codecs: vec![chosen.clone()],
                telephone_event: offer.audio.telephone_event,
                direction: offer.audio.direction.answer(),
                ptime: offer.audio.ptime.or(Some(20)),
                rtcp_mux: offer.audio.rtcp_mux,
                crypto: Vec::new(),
            },
        };
        Ok((answer, chosen))
    }

    /// From an answer to our offer: the codec the answerer picked (its first listed).
    pub fn chosen_codec(&self) -> Option<&Codec> {
        self.audio.codecs.first()
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = if self.audio.address.contains(':') {
            "IP6"
        } else {
            "IP4"
        };
        let a = &self.audio;
        let mut formats: Vec<String> = a
            .codecs
            .iter()
            .map(|c| c.payload_type.to_string())
            .collect();
        if let Some(pt) = a.telephone_event {
            formats.push(pt.to_string());
        }
        let mut out = String::new();
        let _ = write!(
            out,
            "v=0\r\no=softphone-bridge {} {} IN {ip} {}\r\ns=-\r\nc=IN {ip} {}\r\nt=0 0\r\nm=audio {} {} {}\r\n",
            self.session_id,
            self.version,
            self.origin_address,
            a.address,
            a.port,
            a.protocol,
            formats.join(" ")
        );
        for codec in &a.codecs {
            let _ = write!(
                out,
                "a=rtpmap:{} {}/{}",
                codec.payload_type, codec.name, codec.clock_rate
            );
            if codec.channels > 1 {
                let _ = write!(out, "/{}", codec.channels);
            }
            out.push_str("\r\n");
            if let Some(fmtp) = &codec.fmtp {
                let _ = write!(out, "a=fmtp:{} {fmtp}\r\n", codec.payload_type);
            }
        }
        if let Some(pt) = a.telephone_event {
            let _ = write!(
                out,
                "a=rtpmap:{pt} telephone-event/8000\r\na=fmtp:{pt} 0-16\r\n"
            );
        }
        if let Some(ptime) = a.ptime {
            let _ = write!(out, "a=ptime:{ptime}\r\n");
        }
        if a.rtcp_mux {
            out.push_str("a=rtcp-mux\r\n");
        }
        for crypto in &a.crypto {
            let _ = write!(
                out,
                "a=crypto:{} {} {}\r\n",
                crypto.tag, crypto.suite, crypto.key_params
            );
        }
        let _ = write!(out, "a={}\r\n", a.direction.as_str());
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {

    const WEBRTC: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=sendrecv\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=fingerprint:sha-256 AA:BB\r\n\
        a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n\
        a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\n";

    #[test]
    fn direction_edit_keeps_what_we_do_not_model() {
        let held = with_direction(WEBRTC, Direction::SendOnly).expect("edited");
        let parsed = SessionDescription::parse(&held).expect("parses");
        assert_eq!(parsed.audio.direction, Direction::SendOnly);
        assert_eq!(parsed.version, 3);
        for kept in [
            "a=ice-ufrag:abcd",
            "a=fingerprint:sha-256 AA:BB",
            "a=candidate:1 1 udp",
            "a=group:BUNDLE 0",
            "a=rtcp-mux",
        ] {
            assert!(held.contains(kept), "{kept} lost in {held}");
        }
        assert_eq!(held.matches("a=sendonly").count(), 1, "{held}");
        assert!(!held.contains("a=sendrecv"), "{held}");
        // With no direction line at all, one is added to the audio section.
        let bare = WEBRTC.replace("a=sendrecv\r\n", "");
        let resumed = with_direction(&bare, Direction::RecvOnly).expect("edited");
        assert_eq!(
            SessionDescription::parse(&resumed).map(|d| d.audio.direction),
            Ok(Direction::RecvOnly)
        );
        assert_eq!(with_direction("v=0\r\n", Direction::SendOnly), None);
    }
    use super::*;

    /// An offer as baresip 1.0 sends it (opus first, then G.711, telephone-event).
    const BARESIP_OFFER: &str = "v=0\r\no=- 1447279911 1850591183 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 10688 RTP/AVP 111 0 8 101\r\nb=AS:70\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 stereo=1;sprop-stereo=1\r\n\
a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n\
a=label:1\r\na=ssrc:1392331127 cname:x\r\na=rtcp-rsize\r\na=ptime:20\r\n";

    #[test]
    fn parses_a_real_offer() {
        let sdp = SessionDescription::parse(BARESIP_OFFER).expect("valid");
        let a = &sdp.audio;
        assert_eq!(
            (a.address.as_str(), a.port, a.protocol.as_str()),
            ("127.0.0.1", 10688, "RTP/AVP")
        );
        let names: Vec<&str> = a.codecs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["opus", "PCMU", "PCMA"]);
        assert_eq!(a.codecs[0].fmtp.as_deref(), Some("stereo=1;sprop-stereo=1"));
        assert_eq!(a.telephone_event, Some(101));
        assert_eq!((a.direction, a.ptime), (Direction::SendRecv, Some(20)));
    }

    #[test]
    fn answers_with_our_preference_and_their_payload_type() {
        let offer = SessionDescription::parse(BARESIP_OFFER).expect("valid");
        let (answer, codec) = SessionDescription::answer(
            &offer,
            7,
            "127.0.0.1",
            40000,
            &[Codec::pcma(), Codec::pcmu()],
        )
        .expect("common codec");
        assert_eq!((codec.name.as_str(), codec.payload_type), ("PCMA", 8));
        let text = answer.to_string();
        assert!(text.contains("m=audio 40000 RTP/AVP 8 101\r\n"), "{text}");
        let reparsed = SessionDescription::parse(&text).expect("our answer parses");
        assert_eq!(
            reparsed.chosen_codec().map(|c| c.name.as_str()),
            Some("PCMA")
        );
        assert_eq!(reparsed.audio.telephone_event, Some(101));

        let mut dynamic = offer.clone();
        dynamic.audio.codecs[0].payload_type = 96;
        let (_, opus) =
            SessionDescription::answer(&dynamic, 7, "127.0.0.1", 40000, &[Codec::opus()])
                .expect("opus");
        assert_eq!(
            opus.payload_type, 96,
            "the offerer's dynamic payload type is kept"
        );
    }

    #[test]
    fn no_common_codec_and_direction_rules() {
        let offer = SessionDescription::parse(&BARESIP_OFFER.replace(
            "m=audio 10688 RTP/AVP 111 0 8 101",
            "m=audio 10688 RTP/AVP 111 101",
        ))
        .expect("valid");
        let err = SessionDescription::answer(&offer, 1, "127.0.0.1", 1, &[Codec::pcmu()])
            .expect_err("no codec");
        assert_eq!(
            err,
            SdpError::NoCommonCodec {
                ours: "PCMU".into(),
                theirs: "opus".into()
            }
        );
        let hold = SessionDescription::parse(&BARESIP_OFFER.replace("a=sendrecv", "a=sendonly"))
            .expect("valid");
        let (answer, _) =
            SessionDescription::answer(&hold, 1, "127.0.0.1", 1, &[Codec::pcmu()]).expect("answer");
        assert_eq!(
            answer.audio.direction,
            Direction::RecvOnly,
            "held by them: we only receive"
        );
    }

    #[test]
    fn sdes_crypto_and_rtcp_mux() {
        let offer = BARESIP_OFFER.replace("RTP/AVP", "RTP/SAVP")
            + "a=rtcp-mux\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32\r\n\
               a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj\r\n";
        let sdp = SessionDescription::parse(&offer).expect("valid");
        assert!(sdp.audio.rtcp_mux);
        assert_eq!(sdp.audio.crypto.len(), 2);
        assert_eq!(sdp.audio.crypto[0].suite, "AES_CM_128_HMAC_SHA1_80");
        // Issue 18: suite names match case-insensitively (RFC 4568 implementations vary).
        let lower = SessionDescription::parse(
            &offer.replace("AES_CM_128_HMAC_SHA1_80", "aes_cm_128_HMAC_sha1_80"),
        )
        .expect("parses");
        assert_eq!(lower.audio.crypto[0].suite, "AES_CM_128_HMAC_SHA1_80");
        assert_eq!(
            sdp.audio.crypto[0].inline_key(),
            Some("WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz")
        );
        assert!(
            !format!("{:?}", sdp.audio.crypto[0]).contains("WVNf"),
            "keys stay out of Debug output"
        );
        let (mut answer, _) =
            SessionDescription::answer(&sdp, 1, "127.0.0.1", 1, &[Codec::pcmu()]).expect("answer");
        assert_eq!(
            (answer.audio.protocol.as_str(), answer.audio.rtcp_mux),
            ("RTP/SAVP", true)
        );
        answer.audio.crypto.push(sdp.audio.crypto[1].clone());
        assert_eq!(
            SessionDescription::parse(&answer.to_string()).expect("reparse"),
            answer
        );
        assert!(
            SessionDescription::parse(&offer.replace("a=crypto:1 AES", "a=crypto:x AES")).is_err()
        );
    }

    #[test]
    fn static_payload_types_need_no_rtpmap_and_errors_name_the_line() {
        let minimal = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0 8\r\n";
        let sdp = SessionDescription::parse(minimal).expect("valid");
        assert_eq!(sdp.audio.codecs, vec![Codec::pcmu(), Codec::pcma()]);
        assert_eq!(
            SessionDescription::parse(&minimal.replace("5004", "x")),
            Err(SdpError::Line {
                line: 6,
                problem: "bad port".into()
            })
        );
        assert_eq!(
            SessionDescription::parse("v=0\r\nm=video 1 RTP/AVP 96\r\n"),
            Err(SdpError::NoAudio)
        );
        assert_eq!(
            SessionDescription::parse(&minimal.replace("c=IN IP4 127.0.0.1\r\n", "")),
            Err(SdpError::Missing("c="))
        );
        let offer = SessionDescription::offer(
            42,
            "127.0.0.1",
            4000,
            &[Codec::opus(), Codec::pcmu(), Codec::pcma()],
        );
        let reparsed = SessionDescription::parse(&offer.to_string()).expect("our offer parses");
        assert_eq!(reparsed, offer);
    }
}
