//! Tandem's media port cannot be aimed at a third party (issue 15, item 4): an INVITE's SDP may
//! name any address, so RTP goes to a phone only once its dialog is confirmed (the ACK) and its
//! own RTP came from the address its SDP names (docs/sip.md). The phone here is hand-written
//! SIP over a UDP socket, with a second socket its SDP names for media: the "victim".

use std::net::SocketAddr;

use tandem_media::tone::power;
use tandem_media::voice_codec::{VoiceCodec, VoiceDecoder};
use tokio::net::UdpSocket;

use super::*;
use crate::common::PATIENCE;

/// A call made by hand: its SIP socket, and the socket its SDP names for RTP.
struct RawCall {
    sip: UdpSocket,
    media: UdpSocket,
    server: SocketAddr,
    call_id: String,
    /// Tandem's tag, from its 200.
    tag: String,
    /// Where Tandem takes this call's RTP (its answer's address).
    tandem_media: SocketAddr,
}

impl RawCall {
    /// Sends an INVITE for `number` whose SDP names a fresh socket, and waits for Tandem's 200.
    async fn invite(server: SocketAddr, number: &str) -> RawCall {
        let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let media = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (here, port) = (
            sip.local_addr().unwrap(),
            media.local_addr().unwrap().port(),
        );
        let call_id = format!("consent-{port}@127.0.0.1");
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=rtcp-mux\r\na=sendrecv\r\n"
        );
        let invite = format!(
            "INVITE sip:{number}@{server} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {here};branch=z9hG4bK{port}i\r\n\
             From: \"Victim\" <sip:victim@127.0.0.1>;tag=v{port}\r\n\
             To: <sip:{number}@{server}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:victim@{here}>\r\n\
             Max-Forwards: 70\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        sip.send_to(invite.as_bytes(), server).await.unwrap();
        let mut buf = vec![0u8; 65_536];
        let ok = loop {
            let (n, _) = tokio::time::timeout(PATIENCE, sip.recv_from(&mut buf))
                .await
                .expect("Tandem answers the INVITE")
                .unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with("SIP/2.0 200") {
                break text;
            }
            assert!(
                text.starts_with("SIP/2.0 1"),
                "only provisional responses before the 200: {text}"
            );
        };
        let tag = ok
            .lines()
            .find(|l| l.starts_with("To:"))
            .and_then(|l| l.split("tag=").nth(1))
            .expect("the 200 has a To tag")
            .trim()
            .to_string();
        let ip = ok
            .lines()
            .find_map(|l| l.strip_prefix("c=IN IP4 "))
            .expect("an answer with an address");
        let port = ok
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|l| l.split(' ').next())
            .expect("an audio answer");
        RawCall {
            sip,
            media,
            server,
            call_id,
            tandem_media: format!("{}:{port}", ip.trim()).parse().unwrap(),
            tag,
        }
    }

    /// The ACK of Tandem's 200 (RFC 3261 13.2.2.4).
    async fn ack(&self) {
        let (here, port) = (
            self.sip.local_addr().unwrap(),
            self.media.local_addr().unwrap().port(),
        );
        let ack = format!(
            "ACK sip:tandem@{} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {here};branch=z9hG4bK{port}a\r\n\
             From: \"Victim\" <sip:victim@127.0.0.1>;tag=v{port}\r\n\
             To: <sip:x@{}>;tag={}\r\n\
             Call-ID: {}\r\n\
             CSeq: 1 ACK\r\n\
             Max-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n",
            self.server, self.server, self.tag, self.call_id
        );
        self.sip.send_to(ack.as_bytes(), self.server).await.unwrap();
    }

    /// A datagram Tandem sent to the address the SDP names, if one is waiting.
    fn received(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 2048];
        match self.media.try_recv_from(&mut buf) {
            Ok((n, _)) => Some(buf[..n].to_vec()),
            Err(_) => None,
        }
    }
}

/// One 20 ms PCMU packet of silence, numbered `seq`.
fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x5eed_u32.to_be_bytes());
    p.extend(std::iter::repeat_n(0xff, 160));
    p
}

async fn withheld(t: &TestServer, reason: &str) -> f64 {
    metric(
        &t.metrics().await,
        "tandem_sip_rtp_withheld_total",
        &[&format!("reason=\"{reason}\"")],
    )
}

/// Waits until Tandem has withheld `more` packets for `reason` beyond `before` (what it would
/// have sent the calls by then), or until one of `calls` got a datagram: answers the first
/// datagram any of them got.
async fn nothing_reaches(
    t: &TestServer,
    calls: &[&RawCall],
    reason: &str,
    before: f64,
    more: f64,
) -> Option<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        // Loopback delivers at once: what was sent before the count rose is here by now.
        let done = withheld(t, reason).await >= before + more;
        if let Some(d) = calls.iter().find_map(|c| c.received()) {
            return Some(d);
        }
        if done {
            return None;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Tandem never had {more} packets to withhold ({reason})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invite_never_acknowledged_gets_no_rtp() {
    let t = TestServer::start_with(&[("TANDEM_MEDIA_WORKERS", "1")]).await;
    let sip = sip_addr(&t);
    let carol = t.account("carol", AccountRole::Csr).await;
    let session = t.start_session(&carol, "Reflection").await;
    let number = session["session"]["number"].as_str().unwrap().to_string();
    let mut csr = t.connect(&session).await;
    csr.cmd(json!({"type": "start_voice_call"})).await.unwrap();
    let csr_phone = Phone::connect(&mut csr, 440.0).await;
    eventually("the CSR's media is connected", || csr_phone.connected()).await;

    let before = withheld(&t, "unacknowledged").await;
    // The service number's prompt, and a session's call with a CSR talking in it: each
    // INVITE names an address that never asked for anything and never acknowledges.
    let prompt = RawCall::invite(sip, "100").await;
    let call = RawCall::invite(sip, &number).await;
    let phone = phone_joins(&mut csr).await;
    csr.event_where("voice_joined", |e| e["participant"] == phone.as_str())
        .await;
    // Two seconds of what the two would have been sent.
    let got = nothing_reaches(&t, &[&prompt, &call], "unacknowledged", before, 200.0).await;
    assert_eq!(
        got.map(|d| d.len()),
        None,
        "RTP went to an address whose INVITE was never acknowledged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_acknowledged_phone_hears_the_call_only_from_its_own_address() {
    let t = TestServer::start_with(&[("TANDEM_MEDIA_WORKERS", "1")]).await;
    let sip = sip_addr(&t);
    let carol = t.account("carol", AccountRole::Csr).await;
    let session = t.start_session(&carol, "Reflection").await;
    let number = session["session"]["number"].as_str().unwrap().to_string();
    let mut csr = t.connect(&session).await;
    csr.cmd(json!({"type": "start_voice_call"})).await.unwrap();
    let csr_phone = Phone::connect(&mut csr, 440.0).await;
    eventually("the CSR's media is connected", || csr_phone.connected()).await;

    let call = RawCall::invite(sip, &number).await;
    let phone = phone_joins(&mut csr).await;
    csr.event_where("voice_joined", |e| e["participant"] == phone.as_str())
        .await;
    let before = withheld(&t, "unverified").await;
    call.ack().await;
    // Acknowledged, but nothing ever came from the address the SDP names.
    let got = nothing_reaches(&t, &[&call], "unverified", before, 100.0).await;
    assert_eq!(
        got.map(|d| d.len()),
        None,
        "RTP went to an address that never sent any"
    );

    // Its RTP from another port of its host (a NAT's, or a phone that does not send from
    // where it receives) is dropped and counted, once logged, and proves nothing.
    let elsewhere = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let wrong = metric(
        &t.metrics().await,
        "tandem_sip_rtp_dropped_total",
        &["reason=\"wrong_address\""],
    );
    for seq in 0..5 {
        elsewhere
            .send_to(&rtp(seq), call.tandem_media)
            .await
            .unwrap();
    }
    let mut counted = wrong;
    for _ in 0..100 {
        counted = metric(
            &t.metrics().await,
            "tandem_sip_rtp_dropped_total",
            &["reason=\"wrong_address\""],
        );
        if counted >= wrong + 5.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(counted, wrong + 5.0, "RTP from a wrong address is counted");
    let before = withheld(&t, "unverified").await;
    let got = nothing_reaches(&t, &[&call], "unverified", before, 50.0).await;
    assert_eq!(
        got.map(|d| d.len()),
        None,
        "RTP from another address confirmed nothing"
    );
    let mut buf = [0u8; 2048];
    assert!(
        elsewhere.try_recv_from(&mut buf).is_err(),
        "nothing is sent back to where stray RTP came from"
    );

    // A phone as phones are: its RTP from the address its SDP names. It hears the CSR.
    let mut heard = Vec::new();
    let mut decoder = VoiceDecoder::new(VoiceCodec::Pcmu).unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut seq = 100;
    while heard.len() < 48_000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the phone heard {} samples",
            heard.len()
        );
        call.media
            .send_to(&rtp(seq), call.tandem_media)
            .await
            .unwrap();
        seq += 1;
        let mut buf = vec![0u8; 2048];
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(20), call.media.recv_from(&mut buf)).await
        {
            // RTP of PCMU (RTCP, multiplexed, has payload types 72-76 with the marker).
            if n > 12 && buf[1] & 0x7f == 0 {
                decoder.decode(&buf[12..n], &mut heard);
            }
        }
    }
    let tail = &heard[heard.len() - 24_000..];
    assert!(
        power(tail, 440.0) > 100.0 * power(tail, 1000.0).max(1.0),
        "the phone hears the CSR's tone"
    );
}
