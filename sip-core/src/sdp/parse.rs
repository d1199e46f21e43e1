//! Reading a session description: the session level, then each `m=` section. A malformed
//! session level or `m=` line refuses the whole description; a problem inside one audio section
//! (port 0, unknown transport or network type, bad `a=rtpmap` or `a=crypto`) only makes that
//! stream unusable, so another stream can still carry the call (RFC 3264 §6).

use super::{Audio, Codec, Crypto, Direction, MediaLine, SdpError, SessionDescription};

/// Transports an RTP audio stream can use: plain and SDES-SRTP (RFC 3551, 3711, 4585) and the
/// DTLS-SRTP profiles a WebRTC peer offers (RFC 5764).
const RTP_PROFILES: [&str; 6] = [
    "RTP/AVP",
    "RTP/AVPF",
    "RTP/SAVP",
    "RTP/SAVPF",
    "UDP/TLS/RTP/SAVP",
    "UDP/TLS/RTP/SAVPF",
];

/// More `m=` lines than any phone offers (audio, video, data, a few spares): refused, since
/// an answer mirrors every one and must still fit a datagram.
pub const MAX_STREAMS: usize = 16;

/// A line's number (from 1) and its value after `x=`.
type Line<'a> = (usize, &'a str);

struct Section<'a> {
    media: MediaLine,
    /// The `m=` line's number.
    line: usize,
    /// `c=` and `a=` lines of the section, in order.
    lines: Vec<(usize, char, &'a str)>,
}

/// What the session level says for every stream that does not say otherwise.
#[derive(Default)]
struct SessionLevel<'a> {
    connection: Option<Line<'a>>,
    direction: Option<Direction>,
}

pub(super) fn parse(text: &str) -> Result<SessionDescription, SdpError> {
    let mut session_id = None;
    let mut version = 0;
    let mut origin_address = String::new();
    let mut session = SessionLevel::default();
    let mut sections: Vec<Section> = Vec::new();
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
        let mut kinds = kind.chars();
        let (Some(kind), None) = (kinds.next(), kinds.next()) else {
            return Err(bad("expected a one-letter type"));
        };
        if kind == 'm' {
            if sections.len() == MAX_STREAMS {
                return Err(bad(&format!("more than {MAX_STREAMS} media streams")));
            }
            sections.push(Section {
                media: media_line(value).map_err(bad)?,
                line,
                lines: Vec::new(),
            });
            continue;
        }
        if let Some(section) = sections.last_mut() {
            section.lines.push((line, kind, value));
            continue;
        }
        match kind {
            'o' => {
                let fields: Vec<&str> = value.split_whitespace().collect();
                if fields.len() != 6 {
                    return Err(bad("o= needs 6 fields"));
                }
                session_id = Some(fields[1].parse().map_err(|_| bad("bad session id"))?);
                version = fields[2].parse().map_err(|_| bad("bad session version"))?;
                origin_address = fields[5].to_owned();
            }
            'c' => session.connection = Some((line, value)),
            'a' => {
                if let Some(direction) = direction(value) {
                    session.direction = Some(direction);
                }
            }
            _ => {}
        }
    }
    let mut usable = Vec::new();
    let mut first_problem = None;
    for (index, section) in sections.iter().enumerate() {
        if section.media.media != "audio" {
            continue;
        }
        match audio(&session, section) {
            Ok(audio) => usable.push((index, audio)),
            Err(problem) => {
                first_problem.get_or_insert(problem);
            }
        }
    }
    let mut usable = usable.into_iter();
    let Some((audio_index, audio)) = usable.next() else {
        return Err(first_problem.unwrap_or(SdpError::NoAudio));
    };
    let session_id = session_id.ok_or(SdpError::Missing("o="))?;
    let mut audio_line = None;
    let mut other_streams = Vec::new();
    for (index, section) in sections.into_iter().enumerate() {
        if index == audio_index {
            audio_line = Some(section.media);
        } else {
            other_streams.push((index, section.media));
        }
    }
    Ok(SessionDescription {
        session_id,
        version,
        origin_address,
        audio,
        audio_index,
        audio_line,
        other_streams,
        alternatives: usable.collect(),
    })
}

fn media_line(value: &str) -> Result<MediaLine, &'static str> {
    let fields: Vec<&str> = value.split_whitespace().collect();
    if fields.len() < 4 {
        return Err("m= needs media, port, protocol and formats");
    }
    let port = fields[1]
        .split('/')
        .next()
        .unwrap_or("")
        .parse()
        .map_err(|_| "bad port")?;
    Ok(MediaLine {
        media: fields[0].to_owned(),
        port,
        protocol: fields[2].to_owned(),
        formats: fields[3..].iter().map(|f| (*f).to_owned()).collect(),
    })
}

fn direction(attribute: &str) -> Option<Direction> {
    Some(match attribute {
        "sendrecv" => Direction::SendRecv,
        "sendonly" => Direction::SendOnly,
        "recvonly" => Direction::RecvOnly,
        "inactive" => Direction::Inactive,
        _ => return None,
    })
}

/// The address of a `c=` line we can send to: `IN IP4` or `IN IP6` only (RFC 4566 §5.7).
fn connection((line, value): Line) -> Result<String, SdpError> {
    let bad = |problem: String| SdpError::Line { line, problem };
    let fields: Vec<&str> = value.split_whitespace().collect();
    let [network, address_type, address] = fields[..] else {
        return Err(bad("c= needs 3 fields".into()));
    };
    if network != "IN" {
        return Err(bad(format!("unknown network type {network:?}")));
    }
    if !matches!(address_type, "IP4" | "IP6") {
        return Err(bad(format!("unknown address type {address_type:?}")));
    }
    Ok(address.split('/').next().unwrap_or(address).to_owned())
}

/// One audio section as a usable stream, or why it is not one.
fn audio(session: &SessionLevel, section: &Section) -> Result<Audio, SdpError> {
    let at_m = |problem: String| SdpError::Line {
        line: section.line,
        problem,
    };
    let media = &section.media;
    if media.port == 0 {
        return Err(at_m("the stream is refused (port 0)".into()));
    }
    if !RTP_PROFILES.contains(&media.protocol.as_str()) {
        return Err(at_m(format!("unknown transport {:?}", media.protocol)));
    }
    let formats = media
        .formats
        .iter()
        .map(|f| f.parse::<u8>().map_err(|_| at_m("bad payload type".into())))
        .collect::<Result<Vec<_>, _>>()?;
    let mut connection = session.connection;
    let mut audio = Audio {
        address: String::new(),
        port: media.port,
        protocol: media.protocol.clone(),
        codecs: Vec::new(),
        telephone_event: None,
        direction: session.direction.unwrap_or(Direction::SendRecv),
        ptime: None,
        rtcp_mux: false,
        crypto: Vec::new(),
    };
    for &(line, kind, value) in &section.lines {
        let bad = |problem: &str| SdpError::Line {
            line,
            problem: problem.to_owned(),
        };
        match kind {
            'c' => connection = Some((line, value)),
            'a' => attribute(&mut audio, value).map_err(bad)?,
            _ => {}
        }
    }
    audio.address = match connection {
        Some(c) => self::connection(c)?,
        None => return Err(SdpError::Missing("c=")),
    };
    // Static payload types need no rtpmap (RFC 3551).
    for pt in &formats {
        if !audio.codecs.iter().any(|c| c.payload_type == *pt) {
            match pt {
                0 => audio.codecs.push(Codec::pcmu()),
                8 => audio.codecs.push(Codec::pcma()),
                9 => audio.codecs.push(Codec::g722()),
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
    Ok(audio)
}

/// One media-level `a=` line. Unknown attributes are ignored (RFC 4566 §5.13).
fn attribute(audio: &mut Audio, value: &str) -> Result<(), &'static str> {
    if let Some(direction) = direction(value) {
        audio.direction = direction;
        return Ok(());
    }
    let (name, argument) = value.split_once(':').unwrap_or((value, ""));
    match name {
        "rtpmap" => {
            let (pt, encoding) = argument.split_once(' ').ok_or("bad rtpmap")?;
            let pt: u8 = pt.parse().map_err(|_| "bad rtpmap payload type")?;
            let mut parts = encoding.split('/');
            let name = parts.next().unwrap_or("").to_owned();
            let clock_rate = parts
                .next()
                .and_then(|r| r.parse().ok())
                .ok_or("bad rtpmap clock rate")?;
            let channels = parts.next().and_then(|c| c.parse().ok()).unwrap_or(1);
            audio.codecs.retain(|c| c.payload_type != pt);
            audio.codecs.push(Codec {
                payload_type: pt,
                name,
                clock_rate,
                channels,
                fmtp: None,
            });
        }
        "fmtp" => {
            if let Some((pt, params)) = argument.split_once(' ')
                && let Ok(pt) = pt.parse::<u8>()
                && let Some(codec) = audio.codecs.iter_mut().find(|c| c.payload_type == pt)
            {
                codec.fmtp = Some(params.trim().to_owned());
            }
        }
        "ptime" => audio.ptime = argument.trim().parse().ok(),
        "rtcp-mux" => audio.rtcp_mux = true,
        "crypto" => {
            let crypto = crypto(argument)?;
            // RFC 4568 §9.1: tags are unique within a stream; a repeated one leaves the
            // answerer unable to say which key it took.
            if audio.crypto.iter().any(|c| c.tag == crypto.tag) {
                return Err("a=crypto tag repeated");
            }
            audio.crypto.push(crypto);
        }
        _ => {}
    }
    Ok(())
}

/// `tag suite key-params`, e.g. `1 AES_CM_128_HMAC_SHA1_80 inline:…` (RFC 4568 §9.1).
fn crypto(argument: &str) -> Result<Crypto, &'static str> {
    let mut fields = argument.split_whitespace();
    let (Some(tag), Some(suite), Some(key_params)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err("a=crypto needs a tag, a suite and key parameters");
    };
    let tag = tag.parse().map_err(|_| "bad a=crypto tag")?;
    let crypto = Crypto {
        tag,
        // Suite names are matched case-insensitively; keep one form.
        suite: suite.to_ascii_uppercase(),
        key_params: key_params.to_owned(),
    };
    // Only the inline key method exists for SDES; a line without a key offers nothing.
    if crypto.inline_key().is_none_or(str::is_empty) {
        return Err("a=crypto has no inline key");
    }
    Ok(crypto)
}
