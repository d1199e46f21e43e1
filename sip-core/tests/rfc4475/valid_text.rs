//! RFC 4475 §3.1.1.1–§3.1.1.6, valid messages that torture the text: folding, LWS, unusual
//! characters, escapes. Each must parse, with the fields it exercises as sent.

use sip_core::message::{Method, NameAddr, ParseError, parse_datagram};

use super::{SDP_192_0_2_1, expand, request, valid, via, vias};

/// 3.1.1.1: folding everywhere, LWS around `:` `/` `;` `=`, escaped quotes, an empty Subject,
/// compact and long forms mixed, unknown headers and parameters, leading zeros.
#[test]
fn wsinv_a_short_tortuous_invite() {
    let text = r#"
INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : "J Rosenberg \\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : 150
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:"Quoted string \"\"" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.3
s=-
c=IN IP4 192.0.2.4
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
"#;
    let message = valid(&expand(text));
    let invite = request(&message);
    assert_eq!(invite.method, Method::Invite);
    assert_eq!(
        (invite.uri.user.as_deref(), invite.uri.host.as_str()),
        (Some("vivekg"), "chair-dnrc.example.com")
    );
    assert_eq!(invite.uri.params, [("unknownparam".to_owned(), None)]);
    assert_eq!(
        vias(&message),
        [
            via("UDP", "192.0.2.2", Some("390skdjuw")),
            via("TCP", "spindle.example.com", Some("z9hG4bK9ikj8")),
            via("UDP", "192.168.255.111", Some("z9hG4bK30239")),
        ]
    );
    assert_eq!(message.call_id(), "wsinv.ndaksdj@192.0.2.1");
    let cseq = message.cseq().expect("CSeq");
    assert_eq!((cseq.seq, cseq.method), (9, Method::Invite));
    let headers = message.headers();
    assert_eq!(headers.get("Max-Forwards"), Some("0068"));
    assert_eq!(
        headers.get("Subject"),
        Some(""),
        "empty, and `s` is Subject"
    );
    let to = message.to().expect("To");
    assert_eq!(
        (to.display.as_deref(), to.uri.user.as_deref()),
        (None, Some("vivekg"))
    );
    assert_eq!(to.tag(), Some("1918181833n"));
    let from = message.from().expect("From");
    assert_eq!(from.display.as_deref(), Some(r#"J Rosenberg \""#));
    assert_eq!(from.tag(), Some("98asjd8"));
    let contact = NameAddr::parse(headers.get("Contact").expect("m is Contact")).expect("valid");
    assert_eq!(contact.display.as_deref(), Some(r#"Quoted string """#));
    assert_eq!(
        (
            contact.param("newparam"),
            contact.param("secondparam"),
            contact.param("q")
        ),
        (Some("newvalue"), Some(""), Some("0.33"))
    );
    assert_eq!(
        headers.get("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(
        headers.get("UnknownHeaderWithUnusualValue"),
        Some(";;,,;;,;")
    );
    let route = NameAddr::parse(headers.get("Route").expect("Route")).expect("valid");
    assert_eq!(route.uri.param("lr"), Some(""));
    assert_eq!(route.uri.param("unknownwith"), Some("value"));
    assert_eq!(message.body().len(), 150);
}

const INTMETH: &str = r#"
!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0
Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~
To: "BEL:\<hex>07</hex> NUL:\<hex>00</hex> DEL:\<hex>7F</hex>" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>
From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%="<hex>D180D0B0D0B1D0BED182D0B0D18ED189D0B8D0B9</hex>";tag=_token~1'+`*%!-.
Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\/"][?}{
CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~
Max-Forwards: 255
extensionHeader-!.%*+_`'~:<hex>EFBBBFE5A4A7E5819CE99BBB</hex>
Content-Length: 0

"#;

/// 3.1.1.2: every token character in a method, a branch, display-name tokens, a parameter
/// name and a header name; unusual but legal URI characters; word characters in Call-ID. The
/// RFC's message escapes a NUL in To's display name, which we refuse (see the module docs); the
/// same message with that byte changed to %x01 parses.
#[test]
fn intmeth_wide_range_of_valid_characters() {
    const METHOD: &str = "!interesting-Method0123456789_*+`.%indeed'~";
    const USER: &str = "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*";
    let bytes = expand(INTMETH);
    assert!(matches!(
        parse_datagram(&bytes),
        Err(ParseError::Header(line)) if line.starts_with("To: ")
    ));
    let soh = bytes
        .windows(2)
        .position(|w| w == b"\\\0")
        .map(|at| {
            let mut copy = bytes.clone();
            copy[at + 1] = 1;
            copy
        })
        .expect("the escaped NUL");
    let message = valid(&soh);
    let request = request(&message);
    assert_eq!(request.method, Method::Other(METHOD.into()));
    assert_eq!(
        (request.uri.user.as_deref(), request.uri.host.as_str()),
        (Some(USER), "example.com"),
        "`;` and `?` in the user part, the password dropped"
    );
    assert!(request.uri.params.is_empty());
    assert_eq!(
        vias(&message),
        [via("TCP", "host1.example.com", Some("z9hG4bK-.!%66*_+`'~"))]
    );
    let to = message.to().expect("To");
    assert_eq!(
        to.display.as_deref(),
        Some("BEL:\u{7} NUL:\u{1} DEL:\u{7f}")
    );
    assert_eq!(to.uri.user.as_deref(), Some(USER));
    let from = message.from().expect("From");
    assert_eq!(
        from.display.as_deref(),
        Some("token1~` token2'+_ token3*%!.-")
    );
    assert_eq!(from.param("fromParam''~+*_!.-%"), Some("работающий"));
    assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
    assert_eq!(
        message.call_id(),
        r#"intmeth.word%ZK-!.*_+'@word`~)(><:\/"][?}{"#
    );
    let cseq = message.cseq().expect("CSeq");
    assert_eq!(
        (cseq.seq, cseq.method),
        (139122385, Method::Other(METHOD.into()))
    );
    assert_eq!(
        message.headers().get("extensionHeader-!.%*+_`'~"),
        Some("\u{feff}大停電")
    );
    assert!(message.body().is_empty());
}

/// 3.1.1.3: escapes in the Request-URI, To, From and Contact stay escaped: `sips%3Auser%40…` is
/// one user part, not a scheme and a host.
#[test]
fn esc01_valid_use_of_the_percent_escaping_mechanism() {
    let text = format!(
        "{}{SDP_192_0_2_1}",
        r#"
INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0
To: sip:%75se%72@example.com
From: <sip:I%20have%20spaces@example.net>;tag=938
Max-Forwards: 87
i: esc01.239409asdfakjkn23onasd0-3234
CSeq: 234234 INVITE
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw
C: application/sdp
Contact:
  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>
Content-Length: 150
"#
    );
    let message = valid(&expand(&text));
    let invite = request(&message);
    assert_eq!(invite.method, Method::Invite);
    assert_eq!(
        (
            invite.uri.scheme.as_str(),
            invite.uri.user.as_deref(),
            invite.uri.host.as_str()
        ),
        ("sip", Some("sips%3Auser%40example.com"), "example.net")
    );
    assert_eq!(
        vias(&message),
        [via("UDP", "host5.example.net", Some("z9hG4bKkdjuw"))]
    );
    assert_eq!(message.call_id(), "esc01.239409asdfakjkn23onasd0-3234");
    assert_eq!(message.cseq().map(|c| c.seq), Some(234234));
    assert_eq!(
        message.to().and_then(|t| t.uri.user).as_deref(),
        Some("%75se%72")
    );
    let from = message.from().expect("From");
    assert_eq!(from.uri.user.as_deref(), Some("I%20have%20spaces"));
    assert_eq!(from.tag(), Some("938"));
    assert_eq!(
        message.headers().get("Content-Type"),
        Some("application/sdp")
    );
    let contact =
        NameAddr::parse(message.headers().get("Contact").expect("Contact")).expect("valid");
    assert_eq!(contact.uri.user.as_deref(), Some("cal%6Cer"));
    assert_eq!(
        contact.uri.params,
        [
            ("%6C%72".to_owned(), None),
            ("n%61me".to_owned(), Some("v%61lue%25%34%31".to_owned())),
        ]
    );
    assert_eq!(message.body().len(), 150);
}

/// 3.1.1.4: `%00` in user parts is legal and stays three characters; no NUL appears.
#[test]
fn escnull_escaped_nulls_in_uris() {
    let text = r#"
REGISTER sip:example.com SIP/2.0
To: sip:null-%00-null@example.com
From: sip:null-%00-null@example.com;tag=839923423
Max-Forwards: 70
Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw
Contact: <sip:%00@host5.example.com>
Contact: <sip:%00%00@host5.example.com>
L:0

"#;
    let message = valid(&expand(text));
    assert_eq!(request(&message).method, Method::Register);
    assert_eq!(request(&message).uri.to_string(), "sip:example.com");
    assert_eq!(
        message.to().and_then(|t| t.uri.user).as_deref(),
        Some("null-%00-null")
    );
    let from = message.from().expect("From");
    assert_eq!(from.uri.user.as_deref(), Some("null-%00-null"));
    assert_eq!(from.tag(), Some("839923423"));
    let contacts: Vec<String> = message
        .headers()
        .all("Contact")
        .into_iter()
        .filter_map(|c| NameAddr::parse(c).ok()?.uri.user)
        .collect();
    assert_eq!(contacts, ["%00", "%00%00"]);
    assert_eq!(
        message.call_id(),
        "escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd"
    );
    assert_eq!(message.cseq().map(|c| c.seq), Some(14398234));
    assert_eq!(
        vias(&message),
        [via("UDP", "host5.example.com", Some("z9hG4bKkdjuw"))]
    );
    assert!(!message.to_bytes().contains(&0), "no NUL anywhere");
    assert!(message.body().is_empty());
}

/// 3.1.1.5: `%` where it is no escape: in a method (`RE%47IST%45R` is not REGISTER), a display
/// name, a branch and a header name (`C%6Fntact` is not Contact).
#[test]
fn esc02_percent_when_it_is_not_an_escape() {
    let text = r#"
RE%47IST%45R sip:registrar.example.com SIP/2.0
To: "%Z%45" <sip:resource@example.com>
From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23
Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf
Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234
CSeq: 29344 RE%47IST%45R
Max-Forwards: 70
Contact: <sip:alias1@host1.example.com>
C%6Fntact: <sip:alias2@host2.example.com>
Contact: <sip:alias3@host3.example.com>
l: 0

"#;
    let message = valid(&expand(text));
    let method = Method::Other("RE%47IST%45R".into());
    assert_eq!(request(&message).method, method);
    assert_ne!(request(&message).method, Method::Register);
    assert_eq!(
        message.cseq().map(|c| (c.seq, c.method)),
        Some((29344, method))
    );
    assert_eq!(
        message.to().and_then(|t| t.display).as_deref(),
        Some("%Z%45")
    );
    assert_eq!(
        message.from().and_then(|f| f.display).as_deref(),
        Some("%Z%45")
    );
    assert_eq!(
        vias(&message),
        [via("TCP", "host.example.com", Some("z9hG4bK209%fzsnel234"))]
    );
    assert_eq!(
        message.call_id(),
        "esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf"
    );
    assert_eq!(message.headers().all("Contact").len(), 2);
    assert_eq!(
        message.headers().get("C%6Fntact"),
        Some("<sip:alias2@host2.example.com>")
    );
}

/// 3.1.1.6: no LWS between a display name and `<`.
#[test]
fn lwsdisp_no_lws_between_display_name_and_angle_bracket() {
    let text = r#"
OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: caller<sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: lwsdisp.1234abcd@funky.example.com
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw
l: 0

"#;
    let message = valid(&expand(text));
    assert_eq!(request(&message).method, Method::Options);
    let from = message.from().expect("From");
    assert_eq!(from.display.as_deref(), Some("caller"));
    assert_eq!(from.uri.user.as_deref(), Some("caller"));
    assert_eq!(from.tag(), Some("323"));
    assert_eq!(message.call_id(), "lwsdisp.1234abcd@funky.example.com");
    assert_eq!(message.cseq().map(|c| c.seq), Some(60));
    assert_eq!(
        vias(&message),
        [via("UDP", "funky.example.com", Some("z9hG4bKkdjuw"))]
    );
}
