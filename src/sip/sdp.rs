//! SDP offer/answer for a phone's audio (RFC 3264): which codec, where to send, and whether the
//! phone has put the call on hold. Parsing is sdp-types'; the choices are ours.

use std::net::{IpAddr, SocketAddr};

use sdp_types::Session;
use tandem_media::voice_codec::VoiceCodec;

/// Codecs offered when the INVITE had no offer, best first.
const OFFERED: [(u8, VoiceCodec); 4] = [
    (96, VoiceCodec::Opus),
    (9, VoiceCodec::G722),
    (0, VoiceCodec::Pcmu),
    (8, VoiceCodec::Pcma),
];
/// Payload types of telephone-event (RFC 4733) in our offers, at 8 and 48 kHz.
const DTMF_8K: u8 = 101;
const DTMF_48K: u8 = 102;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("the session description does not parse: {0}")]
    Unreadable(String),
    #[error("no audio stream")]
    NoAudio,
    #[error("no codec in common (Tandem takes PCMU, PCMA, G.722 and Opus over RTP/AVP)")]
    NoCodec,
    #[error("no connection address for the audio")]
    NoAddress,
}

/// What the phone's SDP and ours agreed: what its media leg needs to know.
pub type Negotiated = tandem_media::phone::PhoneMedia;

fn codec_of(name: &str) -> Option<VoiceCodec> {
    let mut parts = name.split('/');
    let (enc, rate) = (parts.next()?, parts.next()?);
    match (enc.to_ascii_uppercase().as_str(), rate) {
        ("PCMU", "8000") => Some(VoiceCodec::Pcmu),
        ("PCMA", "8000") => Some(VoiceCodec::Pcma),
        ("G722", "8000") => Some(VoiceCodec::G722),
        ("OPUS", "48000") => Some(VoiceCodec::Opus),
        _ => None,
    }
}

fn static_codec(pt: u8) -> Option<VoiceCodec> {
    match pt {
        0 => Some(VoiceCodec::Pcmu),
        8 => Some(VoiceCodec::Pcma),
        9 => Some(VoiceCodec::G722),
        _ => None,
    }
}

/// Reads the phone's offer, or its answer to ours, and picks the first audio codec it lists
/// that Tandem has (the offerer's preference, RFC 3264 6.1).
pub fn negotiate(sdp: &[u8]) -> Result<Negotiated, SdpError> {
    let session = Session::parse(sdp).map_err(|e| SdpError::Unreadable(e.to_string()))?;
    let media = session
        .medias
        .iter()
        .find(|m| m.media == "audio" && m.port != 0 && m.proto.eq_ignore_ascii_case("RTP/AVP"))
        .ok_or_else(|| {
            if session.medias.iter().any(|m| m.media == "audio") {
                SdpError::NoCodec
            } else {
                SdpError::NoAudio
            }
        })?;
    let rtpmaps: Vec<(u8, &str)> = media
        .get_attribute_values("rtpmap")
        .filter_map(|v| {
            let (pt, name) = v?.split_once(' ')?;
            Some((pt.trim().parse().ok()?, name.trim()))
        })
        .collect();
    let name_of = |pt: u8| rtpmaps.iter().find(|(p, _)| *p == pt).map(|(_, n)| *n);
    let pts: Vec<u8> = media
        .fmt
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    let (payload_type, codec) = pts
        .iter()
        .find_map(|&pt| {
            let codec = match name_of(pt) {
                Some(name) => codec_of(name),
                None => static_codec(pt),
            }?;
            Some((pt, codec))
        })
        .ok_or(SdpError::NoCodec)?;
    let clock = if codec == VoiceCodec::Opus {
        "48000"
    } else {
        "8000"
    };
    let dtmf_payload_type = pts.iter().copied().find(|&pt| {
        name_of(pt).is_some_and(|n| {
            let mut p = n.split('/');
            p.next()
                .is_some_and(|e| e.eq_ignore_ascii_case("telephone-event"))
                && p.next() == Some(clock)
        })
    });
    let connection = media
        .connections
        .first()
        .or(session.connection.as_ref())
        .ok_or(SdpError::NoAddress)?;
    let ip: IpAddr = connection
        .connection_address
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .ok_or(SdpError::NoAddress)?;
    let direction = ["sendrecv", "sendonly", "recvonly", "inactive"]
        .into_iter()
        .find(|d| media.has_attribute(d))
        .or_else(|| {
            ["sendrecv", "sendonly", "recvonly", "inactive"]
                .into_iter()
                .find(|d| session.has_attribute(d))
        })
        .unwrap_or("sendrecv");
    let held = ip.is_unspecified();
    let remote = SocketAddr::new(ip, media.port);
    // RTCP on the RTP port when multiplexed (RFC 5761), else on a=rtcp's port (RFC 3605) or
    // the next one (RFC 3550 11).
    let rtcp = if media.has_attribute("rtcp-mux") {
        remote
    } else {
        let port = media
            .get_first_attribute_value("rtcp")
            .flatten()
            .and_then(|v| v.split_whitespace().next()?.parse::<u16>().ok())
            .unwrap_or(media.port.wrapping_add(1));
        SocketAddr::new(ip, port)
    };
    Ok(Negotiated {
        remote,
        rtcp,
        codec,
        payload_type,
        dtmf_payload_type,
        send: !held && matches!(direction, "sendrecv" | "recvonly"),
        receive: !held && matches!(direction, "sendrecv" | "sendonly"),
        // The dialog's state and the phone's SIP address are the endpoint's to add.
        confirmed: false,
        signalling: None,
    })
}

fn rtpmap(codec: VoiceCodec) -> &'static str {
    match codec {
        VoiceCodec::Pcmu => "PCMU/8000",
        VoiceCodec::Pcma => "PCMA/8000",
        VoiceCodec::G722 => "G722/8000",
        VoiceCodec::Opus => "opus/48000/2",
    }
}

fn head(local: SocketAddr, version: u64) -> String {
    let family = if local.is_ipv6() { "IP6" } else { "IP4" };
    format!(
        "v=0\r\no=tandem 1 {version} IN {family} {ip}\r\ns=Tandem\r\nc=IN {family} {ip}\r\nt=0 0\r\n",
        ip = local.ip()
    )
}

/// Our answer to `offer`, receiving at `local`. `version` counts our SDP's changes (o= line).
pub fn answer(local: SocketAddr, n: &Negotiated, version: u64) -> String {
    let mut s = head(local, version);
    let pts = match n.dtmf_payload_type {
        Some(d) => format!("{} {d}", n.payload_type),
        None => n.payload_type.to_string(),
    };
    s.push_str(&format!("m=audio {} RTP/AVP {pts}\r\n", local.port()));
    s.push_str(&format!(
        "a=rtpmap:{} {}\r\n",
        n.payload_type,
        rtpmap(n.codec)
    ));
    if let Some(d) = n.dtmf_payload_type {
        let clock = if n.codec == VoiceCodec::Opus {
            48_000
        } else {
            8_000
        };
        s.push_str(&format!(
            "a=rtpmap:{d} telephone-event/{clock}\r\na=fmtp:{d} 0-15\r\n"
        ));
    }
    // We send when the phone lets us, and take what it sends.
    let direction = match (n.receive, n.send) {
        (true, true) => "sendrecv",
        (true, false) => "recvonly",
        (false, true) => "sendonly",
        (false, false) => "inactive",
    };
    // RTCP on the RTP port only if the phone offered it (RFC 5761 5.1.1). Otherwise a=rtcp
    // (RFC 3605) asks the phone to send its RTCP to our one media port anyway: the worker
    // listens on no other, so reports sent to the default port+1 would be lost.
    let rtcp = if n.rtcp == n.remote {
        "a=rtcp-mux\r\n".to_owned()
    } else {
        format!("a=rtcp:{}\r\n", local.port())
    };
    s.push_str(&format!("a=ptime:20\r\n{rtcp}a={direction}\r\n"));
    s
}

/// Our offer, for an INVITE that came without one: every codec we have.
pub fn offer(local: SocketAddr, version: u64) -> String {
    let mut s = head(local, version);
    let pts: Vec<String> = OFFERED
        .iter()
        .map(|(pt, _)| pt.to_string())
        .chain([DTMF_8K.to_string(), DTMF_48K.to_string()])
        .collect();
    s.push_str(&format!(
        "m=audio {} RTP/AVP {}\r\n",
        local.port(),
        pts.join(" ")
    ));
    for (pt, codec) in OFFERED {
        s.push_str(&format!("a=rtpmap:{pt} {}\r\n", rtpmap(codec)));
    }
    s.push_str(&format!(
        "a=rtpmap:{DTMF_8K} telephone-event/8000\r\na=fmtp:{DTMF_8K} 0-15\r\n\
         a=rtpmap:{DTMF_48K} telephone-event/48000\r\na=fmtp:{DTMF_48K} 0-15\r\n\
         a=ptime:20\r\na=rtcp:{port}\r\na=rtcp-mux\r\na=sendrecv\r\n",
        // The same port in a=rtcp, for a phone that does not multiplex (RFC 5761 5.1.3).
        port = local.port()
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdp(body: &str) -> Vec<u8> {
        format!("v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n{body}")
            .into_bytes()
    }

    #[test]
    fn takes_the_offerers_first_codec_we_have() {
        let n = negotiate(&sdp(
            "m=audio 4000 RTP/AVP 18 8 0 101\r\na=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
        ))
        .unwrap();
        assert_eq!(n.codec, VoiceCodec::Pcma);
        assert_eq!(n.payload_type, 8);
        assert_eq!(n.dtmf_payload_type, Some(101));
        assert_eq!(n.remote, "10.0.0.2:4000".parse().unwrap());
        assert!(n.send && n.receive);

        let opus = negotiate(&sdp(
            "m=audio 4000 RTP/AVP 111 0\r\na=rtpmap:111 opus/48000/2\r\n",
        ))
        .unwrap();
        assert_eq!((opus.codec, opus.payload_type), (VoiceCodec::Opus, 111));
        assert_eq!(opus.dtmf_payload_type, None);
    }

    #[test]
    fn hold_is_read_from_direction_and_address() {
        let held = negotiate(&sdp("m=audio 4000 RTP/AVP 0\r\na=sendonly\r\n")).unwrap();
        assert!(!held.send && held.receive);
        let zero = negotiate(
            b"v=0\r\no=- 1 2 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
        )
        .unwrap();
        assert!(!zero.send && !zero.receive);
        let inactive = negotiate(&sdp("a=inactive\r\nm=audio 4000 RTP/AVP 0\r\n")).unwrap();
        assert!(!inactive.send && !inactive.receive);
    }

    #[test]
    fn refuses_what_it_cannot_carry() {
        assert_eq!(
            negotiate(&sdp("m=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n")),
            Err(SdpError::NoCodec)
        );
        assert_eq!(
            negotiate(&sdp("m=audio 4000 RTP/SAVP 0\r\n")),
            Err(SdpError::NoCodec)
        );
        assert_eq!(
            negotiate(&sdp("m=video 4000 RTP/AVP 96\r\n")),
            Err(SdpError::NoAudio)
        );
        assert!(matches!(
            negotiate(b"not sdp at all"),
            Err(SdpError::Unreadable(_))
        ));
    }

    #[test]
    fn our_answer_and_offer_read_back() {
        let local: SocketAddr = "192.0.2.7:7000".parse().unwrap();
        let n = negotiate(&sdp(
            "m=audio 4000 RTP/AVP 9 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n",
        ))
        .unwrap();
        let a = answer(local, &n, 1);
        assert!(a.contains("a=recvonly"), "{a}");
        let back = negotiate(a.as_bytes()).unwrap();
        assert_eq!(back.codec, VoiceCodec::G722);
        assert_eq!(back.remote, local);
        assert_eq!(back.dtmf_payload_type, Some(101));

        let o = offer(local, 1);
        let first = negotiate(o.as_bytes()).unwrap();
        assert_eq!(first.codec, VoiceCodec::Opus);
        assert_eq!(first.dtmf_payload_type, Some(DTMF_48K));
    }

    #[test]
    fn rtcp_goes_where_the_phone_says_and_mux_is_answered_only_when_offered() {
        let local: SocketAddr = "192.0.2.7:7000".parse().unwrap();
        let plain = negotiate(&sdp("m=audio 4000 RTP/AVP 0\r\n")).unwrap();
        assert_eq!(plain.rtcp.port(), 4001, "RTCP on the next port");
        let plain_answer = answer(local, &plain, 1);
        assert!(!plain_answer.contains("rtcp-mux"));
        assert!(
            plain_answer.contains("a=rtcp:7000\r\n"),
            "asks for RTCP on our one port: {plain_answer}"
        );
        let named = negotiate(&sdp("m=audio 4000 RTP/AVP 0\r\na=rtcp:4444\r\n")).unwrap();
        assert_eq!(named.rtcp.port(), 4444);
        let mux = negotiate(&sdp("m=audio 4000 RTP/AVP 0\r\na=rtcp-mux\r\n")).unwrap();
        assert_eq!(mux.rtcp, mux.remote);
        let mux_answer = answer(local, &mux, 1);
        assert!(mux_answer.contains("a=rtcp-mux") && !mux_answer.contains("a=rtcp:"));
        // Our own offer multiplexes, and names the same port for a phone that does not.
        let ours = negotiate(offer(local, 1).as_bytes()).unwrap();
        assert_eq!(ours.rtcp, local);
        let without_mux = offer(local, 1).replace("a=rtcp-mux\r\n", "");
        assert_eq!(negotiate(without_mux.as_bytes()).unwrap().rtcp, local);
    }
}
