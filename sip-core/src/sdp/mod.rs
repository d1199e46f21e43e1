//! SDP (RFC 4566) for audio calls, and RFC 3264 offer/answer: build our offer, parse theirs,
//! answer it with the first codec of our preference list that they offer.

use std::fmt::{self, Write as _};

mod parse;

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
    /// G.722 says 8000 in SDP and RTP though it samples at 16 kHz (RFC 3551 §4.5.2).
    pub fn g722() -> Self {
        Self {
            payload_type: 9,
            name: "G722".into(),
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

    /// By configuration name (`[media] codecs`): `pcmu`, `pcma`, `g722`, `opus`.
    pub fn by_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "pcmu" | "g711u" => Some(Self::pcmu()),
            "pcma" | "g711a" => Some(Self::pcma()),
            "g722" => Some(Self::g722()),
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
            // The call's stream: the first audio line not refused (port 0) in the answer.
            in_audio = line.starts_with("m=audio")
                && line.split(' ').nth(1).is_some_and(|port| port != "0")
                && !seen_audio;
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

/// `sdp` with `extra` streams appended refused (port 0) and the origin's version bumped: the
/// answer to a re-offer that added streams has as many `m=` lines (RFC 3264 §8). None when
/// there is no parsable `o=` line.
pub fn with_refused_streams(sdp: &str, extra: &[MediaLine]) -> Option<String> {
    let mut out: Vec<String> = Vec::new();
    let mut bumped = false;
    for line in sdp.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        match line.strip_prefix("o=") {
            Some(rest) if !bumped => {
                let mut fields: Vec<String> = rest.split(' ').map(str::to_owned).collect();
                let version = fields.get(2).and_then(|v| v.parse::<u64>().ok())?;
                fields[2] = version.saturating_add(1).to_string();
                out.push(format!("o={}", fields.join(" ")));
                bumped = true;
            }
            _ => out.push(line.to_owned()),
        }
    }
    for line in extra {
        let refused = line.refused();
        out.push(format!(
            "m={} 0 {} {}",
            refused.media,
            refused.protocol,
            refused.formats.join(" ")
        ));
    }
    bumped.then(|| out.join("\r\n") + "\r\n")
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

/// An `m=` line as written: what an answer mirrors for a stream it refuses (RFC 3264 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    pub media: String,
    pub port: u16,
    pub protocol: String,
    pub formats: Vec<String>,
}

impl MediaLine {
    /// The same line refused: port 0, its formats kept (an `m=` line needs at least one).
    fn refused(&self) -> Self {
        Self {
            port: 0,
            ..self.clone()
        }
    }

    fn of(audio: &Audio) -> Self {
        let mut formats: Vec<String> = audio
            .codecs
            .iter()
            .map(|c| c.payload_type.to_string())
            .collect();
        formats.extend(audio.telephone_event.map(|pt| pt.to_string()));
        Self {
            media: "audio".into(),
            port: audio.port,
            protocol: audio.protocol.clone(),
            formats,
        }
    }
}

/// A session description reduced to the one audio stream a call uses, with the position of
/// every other `m=` line so an answer has as many, in the same order (RFC 3264 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub session_id: u64,
    pub version: u64,
    pub origin_address: String,
    /// The stream the call uses: the first usable audio stream unless [`Self::choose`] says
    /// otherwise.
    pub audio: Audio,
    /// `audio`'s position among the `m=` lines, from 0.
    pub audio_index: usize,
    /// `audio`'s `m=` line as written, when parsed: refusing it later (see [`Self::choose`])
    /// mirrors it exactly, formats we do not know included.
    pub audio_line: Option<MediaLine>,
    /// Every other `m=` line with its position (video, a second audio stream, refused ones).
    pub other_streams: Vec<(usize, MediaLine)>,
    /// The other usable audio streams with their positions, for an answerer that prefers one
    /// (an SRTP stream offered beside a plain one).
    pub alternatives: Vec<(usize, Audio)>,
}

impl SessionDescription {
    /// Parses a description. Fails when the session level or an `m=` line is malformed, or
    /// when no audio stream is usable; the error then names the first audio stream's problem.
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        parse::parse(text)
    }

    /// Usable audio streams with their positions, the current one first.
    pub fn audio_streams(&self) -> impl Iterator<Item = (usize, &Audio)> {
        std::iter::once((self.audio_index, &self.audio)).chain(
            self.alternatives
                .iter()
                .map(|(index, audio)| (*index, audio)),
        )
    }

    /// Makes the usable audio stream at `index` the call's stream; false when there is none
    /// there.
    pub fn choose(&mut self, index: usize) -> bool {
        if index == self.audio_index {
            return true;
        }
        let Some(at) = self.alternatives.iter().position(|(i, _)| *i == index) else {
            return false;
        };
        let (_, chosen) = self.alternatives.remove(at);
        let previous = std::mem::replace(&mut self.audio, chosen);
        let chosen_line = self
            .other_streams
            .iter()
            .position(|(i, _)| *i == index)
            .map(|at| self.other_streams.remove(at).1);
        let previous_line = std::mem::replace(&mut self.audio_line, chosen_line)
            .unwrap_or_else(|| MediaLine::of(&previous));
        self.other_streams.push((self.audio_index, previous_line));
        self.other_streams.sort_by_key(|(i, _)| *i);
        self.alternatives.push((self.audio_index, previous));
        self.alternatives.sort_by_key(|(i, _)| *i);
        self.audio_index = index;
        true
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
            audio_index: 0,
            audio_line: None,
            other_streams: Vec::new(),
            alternatives: Vec::new(),
        }
    }

    /// Answers `offer`'s chosen audio stream (RFC 3264 §6): the first codec in *our* preference
    /// order that the stream has, with the offerer's payload type; telephone-event if offered;
    /// the mirrored direction. Every other `m=` line is answered refused (port 0), in place.
    pub fn answer(
        offer: &Self,
        session_id: u64,
        address: &str,
        port: u16,
        preferences: &[Codec],
    ) -> Result<(Self, Codec), SdpError> {
        let chosen = offer.audio.common_codec(preferences)?;
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
            audio_index: offer.audio_index,
            audio_line: None,
            other_streams: offer
                .other_streams
                .iter()
                .map(|(index, line)| (*index, line.refused()))
                .collect(),
            alternatives: Vec::new(),
        };
        Ok((answer, chosen))
    }

    /// From an answer to our offer: the codec the answerer picked (its first listed).
    pub fn chosen_codec(&self) -> Option<&Codec> {
        self.audio.codecs.first()
    }
}

impl Audio {
    /// The first codec in our preference order that this stream offers, with its payload type.
    pub fn common_codec(&self, preferences: &[Codec]) -> Result<Codec, SdpError> {
        let names = |codecs: &mut dyn Iterator<Item = &Codec>| {
            codecs
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        preferences
            .iter()
            .find_map(|ours| self.codecs.iter().find(|theirs| theirs.same_format(ours)))
            .cloned()
            .ok_or_else(|| SdpError::NoCommonCodec {
                ours: names(&mut preferences.iter()),
                theirs: names(&mut self.codecs.iter()),
            })
    }

    /// This stream's section, from its `m=` line on.
    fn write_section(&self, out: &mut String) {
        let line = MediaLine::of(self);
        let _ = write!(
            out,
            "m=audio {} {} {}\r\n",
            self.port,
            self.protocol,
            line.formats.join(" ")
        );
        for codec in &self.codecs {
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
        if let Some(pt) = self.telephone_event {
            let _ = write!(
                out,
                "a=rtpmap:{pt} telephone-event/8000\r\na=fmtp:{pt} 0-16\r\n"
            );
        }
        if let Some(ptime) = self.ptime {
            let _ = write!(out, "a=ptime:{ptime}\r\n");
        }
        if self.rtcp_mux {
            out.push_str("a=rtcp-mux\r\n");
        }
        for crypto in &self.crypto {
            let _ = write!(
                out,
                "a=crypto:{} {} {}\r\n",
                crypto.tag, crypto.suite, crypto.key_params
            );
        }
        let _ = write!(out, "a={}\r\n", self.direction.as_str());
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = if self.audio.address.contains(':') {
            "IP6"
        } else {
            "IP4"
        };
        let mut out = String::new();
        let _ = write!(
            out,
            "v=0\r\no=softphone-bridge {} {} IN {ip} {}\r\ns=-\r\nc=IN {ip} {}\r\nt=0 0\r\n",
            self.session_id, self.version, self.origin_address, self.audio.address,
        );
        // Positions are those of the description parsed or answered: `other_streams` fills
        // every one but `audio_index`, in order.
        let mut others = self.other_streams.iter().map(|(_, line)| line);
        for index in 0..=self.other_streams.len() {
            if index == self.audio_index {
                self.audio.write_section(&mut out);
            } else if let Some(line) = others.next() {
                let _ = write!(
                    out,
                    "m={} {} {} {}\r\n",
                    line.media,
                    line.port,
                    line.protocol,
                    line.formats.join(" ")
                );
            }
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests;
