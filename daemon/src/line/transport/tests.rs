//! Malformed SIP on each kind of transport: a request comes with the 400 to send back, a
//! response or a broken head with nothing (issue 18: requests were dropped in silence).

use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UdpSocket};

use super::{Inbound, Kind, Target, Transport};

const BAD_HEADER: &str = "OPTIONS sip:1001@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKbad\r\n\
From: <sip:pbx@127.0.0.1>;tag=p1\r\n\
To: <sip:1001@127.0.0.1>\r\n\
Call-ID: malformed-1\r\n\
CSeq: 7 OPTIONS\r\n\
Max Forwards 70\r\n\
Content-Length: 0\r\n\r\n";

fn target(peer: SocketAddr) -> Target<'static> {
    Target {
        peer,
        server_name: "127.0.0.1",
        ws_path: "/",
        ca_file: None,
        tls_pin: None,
    }
}

/// The reply, if `inbound` is garbage.
fn reply(inbound: Inbound) -> Option<String> {
    match inbound {
        Inbound::Garbage { reply, .. } => reply.map(|r| String::from_utf8_lossy(&r).into_owned()),
        other => panic!("garbage expected, got {other:?}"),
    }
}

#[tokio::test]
async fn a_malformed_udp_request_carries_its_400_and_a_response_nothing() {
    let pbx = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut line = Transport::connect(Kind::Udp, target(pbx.local_addr().expect("addr")))
        .await
        .expect("connect");
    let ours = line.local_addr().expect("addr");
    pbx.send_to(BAD_HEADER.as_bytes(), ours)
        .await
        .expect("send");
    let answer = reply(line.recv().await.expect("recv")).expect("a 400");
    assert!(answer.starts_with("SIP/2.0 400 Bad Request (malformed header line)\r\n"));
    assert!(answer.contains("Call-ID: malformed-1\r\n"), "{answer}");
    assert!(answer.contains("CSeq: 7 OPTIONS\r\n"), "{answer}");
    let response = BAD_HEADER.replace("OPTIONS sip:1001@127.0.0.1 SIP/2.0", "SIP/2.0 200 OK");
    pbx.send_to(response.as_bytes(), ours).await.expect("send");
    assert_eq!(reply(line.recv().await.expect("recv")), None);
}

#[tokio::test]
async fn a_malformed_head_on_a_stream_is_answered_and_the_next_message_still_arrives() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let peer = listener.local_addr().expect("addr");
    let (line, accepted) = tokio::join!(
        Transport::connect(Kind::Tcp, target(peer)),
        listener.accept()
    );
    let (mut line, (mut pbx, _)) = (line.expect("connect"), accepted.expect("accept"));
    pbx.write_all(BAD_HEADER.as_bytes()).await.expect("write");
    let answer = reply(line.recv().await.expect("recv")).expect("a 400");
    assert!(answer.contains("Call-ID: malformed-1\r\n"), "{answer}");
    let good = BAD_HEADER.replace("Max Forwards 70", "Max-Forwards: 70");
    pbx.write_all(good.as_bytes()).await.expect("write");
    assert!(matches!(
        line.recv().await.expect("recv"),
        Inbound::Message(_)
    ));
}
