use super::*;

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
    let (_, opus) = SessionDescription::answer(&dynamic, 7, "127.0.0.1", 40000, &[Codec::opus()])
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
        SessionDescription {
            audio_line: None,
            ..SessionDescription::parse(&answer.to_string()).expect("reparse")
        },
        answer
    );
    assert!(SessionDescription::parse(&offer.replace("a=crypto:1 AES", "a=crypto:x AES")).is_err());
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
    assert_eq!(
        SessionDescription {
            audio_line: None,
            ..reparsed
        },
        offer
    );
}

/// RFC 3264 §10.1's offer: audio (PCMU, PCMA, iLBC) and video (H261, MPV).
const RFC3264_OFFER: &str = "v=0\r\no=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com\r\ns=\r\n\
c=IN IP4 host.atlanta.example.com\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 97\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\na=rtpmap:97 iLBC/8000\r\nm=video 51372 RTP/AVP 31 32\r\na=rtpmap:31 H261/90000\r\n\
a=rtpmap:32 MPV/90000\r\n";

/// The `m=` lines of a description, in order.
fn m_lines(sdp: &str) -> Vec<&str> {
    sdp.lines().filter(|l| l.starts_with("m=")).collect()
}

fn answer_text(offer: &str) -> String {
    let offer = SessionDescription::parse(offer).expect("offer parses");
    let (answer, _) = SessionDescription::answer(&offer, 1, "127.0.0.1", 40000, &[Codec::pcmu()])
        .expect("answer");
    answer.to_string()
}

#[test]
fn rfc3264_an_answer_has_every_offered_stream_in_order_refusing_video() {
    // §10.1: audio and video offered; we take audio and refuse video with port 0, formats kept.
    let answer = answer_text(RFC3264_OFFER);
    assert_eq!(
        m_lines(&answer),
        ["m=audio 40000 RTP/AVP 0", "m=video 0 RTP/AVP 31 32"],
        "{answer}"
    );
    // §10.2 "one of N codecs": the answer names one.
    let one_of_n = "v=0\r\no=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com\r\ns=\r\n\
        c=IN IP4 host.atlanta.example.com\r\nt=0 0\r\nm=audio 62986 RTP/AVP 0 4 18\r\n\
        a=rtpmap:0 PCMU/8000\r\na=rtpmap:4 G723/8000\r\na=rtpmap:18 G729/8000\r\na=inactive\r\n";
    let answer = answer_text(one_of_n);
    assert_eq!(m_lines(&answer), ["m=audio 40000 RTP/AVP 0"]);
    assert!(answer.contains("a=inactive\r\n"), "{answer}");
    // Video first: audio keeps its place, the second line.
    let video_first = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=video 5006 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\nm=audio 5004 RTP/AVP 0\r\n\
        m=application 5008 TCP/BFCP *\r\n";
    let answer = answer_text(video_first);
    assert_eq!(
        m_lines(&answer),
        [
            "m=video 0 RTP/AVP 96",
            "m=audio 40000 RTP/AVP 0",
            "m=application 0 TCP/BFCP *"
        ],
        "{answer}"
    );
    let reparsed = SessionDescription::parse(&answer).expect("our answer parses");
    assert_eq!((reparsed.audio_index, reparsed.other_streams.len()), (1, 2));
}

#[test]
fn of_two_usable_audio_streams_one_is_taken_and_the_other_refused() {
    let two = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 5004 RTP/AVP 0\r\nm=audio 5006 RTP/AVP 8 0\r\n";
    let offer = SessionDescription::parse(two).expect("parses");
    assert_eq!(
        offer
            .audio_streams()
            .map(|(i, a)| (i, a.port))
            .collect::<Vec<_>>(),
        [(0, 5004), (1, 5006)]
    );
    assert_eq!(
        m_lines(&answer_text(two)),
        ["m=audio 40000 RTP/AVP 0", "m=audio 0 RTP/AVP 8 0"]
    );
    // An answerer may prefer the second: the first is then the refused one.
    let mut second = offer.clone();
    assert!(second.choose(1));
    assert!(!second.choose(7), "no stream there");
    let (answer, _) = SessionDescription::answer(&second, 1, "127.0.0.1", 40000, &[Codec::pcmu()])
        .expect("answer");
    assert_eq!(
        m_lines(&answer.to_string()),
        ["m=audio 0 RTP/AVP 0", "m=audio 40000 RTP/AVP 0"]
    );
    assert!(second.choose(0), "and back");
    assert_eq!(second, offer);
}

#[test]
fn streams_we_cannot_use_are_refused_and_the_next_one_taken() {
    let base = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n";
    let good = "m=audio 5006 RTP/AVP 0\r\n";
    for (first, problem) in [
        ("m=audio 0 RTP/AVP 0\r\n", "refused (port 0)"),
        ("m=audio 5004 RTP/FOO 0\r\n", "unknown transport"),
        (
            "m=audio 5004 RTP/AVP 0\r\nc=XIN IP4 127.0.0.1\r\n",
            "unknown network type",
        ),
        (
            "m=audio 5004 RTP/AVP 0\r\nc=IN IPX 127.0.0.1\r\n",
            "unknown address type",
        ),
        (
            "m=audio 5004 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:\r\n",
            "no inline key",
        ),
        (
            "m=audio 5004 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80\r\n",
            "needs a tag, a suite and key parameters",
        ),
        (
            "m=audio 5004 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:QUJD\r\n\
             a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:REVG\r\n",
            "tag repeated",
        ),
    ] {
        // Alone, the stream is refused with the reason named…
        let alone = format!("{base}{first}");
        match SessionDescription::parse(&alone) {
            Err(SdpError::Line { problem: got, .. }) => {
                assert!(got.contains(problem), "{first}: {got}")
            }
            other => panic!("{first}: {other:?}"),
        }
        // …beside a good one, the good one is taken and this one answered with port 0.
        let answer = answer_text(&format!("{alone}{good}"));
        let lines = m_lines(&answer);
        assert!(lines[0].starts_with("m=audio 0 "), "{first}: {answer}");
        assert_eq!(lines[1], "m=audio 40000 RTP/AVP 0", "{answer}");
    }
    // An unknown network type at session level leaves no stream an address.
    assert!(
        SessionDescription::parse(&format!("{}{good}", base.replace("c=IN", "c=XIN"))).is_err()
    );
}

#[test]
fn session_level_direction_and_connection_apply_unless_a_stream_says_otherwise() {
    let sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\na=sendonly\r\n\
        m=audio 5004 RTP/AVP 0\r\n";
    let offer = SessionDescription::parse(sdp).expect("parses");
    assert_eq!(
        (offer.audio.direction, offer.audio.address.as_str()),
        (Direction::SendOnly, "192.0.2.1")
    );
    let answer = answer_text(sdp);
    assert!(
        answer.contains("a=recvonly\r\n") && !answer.contains("a=sendrecv"),
        "{answer}"
    );
    // Media level wins over session level, for both.
    let overridden = sdp.replace(
        "m=audio 5004 RTP/AVP 0\r\n",
        "m=audio 5004 RTP/AVP 0\r\nc=IN IP4 192.0.2.9\r\na=inactive\r\n",
    );
    let offer = SessionDescription::parse(&overridden).expect("parses");
    assert_eq!(
        (offer.audio.direction, offer.audio.address.as_str()),
        (Direction::Inactive, "192.0.2.9")
    );
    // A media-level c= alone is enough.
    let media_only =
        "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\nc=IN IP6 ::1\r\n";
    assert_eq!(
        SessionDescription::parse(media_only)
            .expect("parses")
            .audio
            .address,
        "::1"
    );
}

#[test]
fn hold_edits_the_stream_in_use_not_a_refused_one_before_it() {
    let two = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 5004 RTP/FOO 0\r\nm=audio 5006 RTP/AVP 0\r\n";
    let ours = answer_text(two);
    assert_eq!(
        m_lines(&ours),
        ["m=audio 0 RTP/FOO 0", "m=audio 40000 RTP/AVP 0"]
    );
    let held = with_direction(&ours, Direction::SendOnly).expect("edited");
    let reparsed = SessionDescription::parse(&held).expect("parses");
    assert_eq!(
        (reparsed.audio_index, reparsed.audio.direction),
        (1, Direction::SendOnly)
    );
    assert_eq!(held.matches("a=sendonly").count(), 1, "{held}");
}

/// Refusing a stream we first took keeps its formats as written (static G.722/G.729 without
/// rtpmap included), and more than `MAX_STREAMS` lines are refused outright.
#[test]
fn a_stream_given_up_keeps_its_formats_and_stream_count_is_capped() {
    let two = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 5004 RTP/AVP 9 18 0\r\nm=audio 5006 RTP/AVP 0\r\n";
    let mut offer = SessionDescription::parse(two).expect("parses");
    assert!(offer.choose(1));
    let (answer, _) = SessionDescription::answer(&offer, 1, "127.0.0.1", 40000, &[Codec::pcmu()])
        .expect("answer");
    assert_eq!(
        m_lines(&answer.to_string()),
        ["m=audio 0 RTP/AVP 9 18 0", "m=audio 40000 RTP/AVP 0"]
    );
    let many = format!(
        "{}{}",
        two,
        "m=video 0 RTP/AVP 96\r\n".repeat(parse::MAX_STREAMS)
    );
    assert!(matches!(
        SessionDescription::parse(&many),
        Err(SdpError::Line { problem, .. }) if problem.contains("more than 16 media streams")
    ));
}
