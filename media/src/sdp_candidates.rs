//! The server's ICE candidates in every m-section of the SDP it sends, each closed with
//! `a=end-of-candidates` (RFC 8839 §5.1, §5.4). str0m writes the candidates only into the first
//! m-section (the BUNDLE tag) and never ends them. A client that reads candidates per m-section
//! (aiortc with max-bundle) then has none for its other transports and never connects, and a
//! client that waits for the end of trickled candidates waits forever. The server is ICE-lite
//! with every candidate known before it writes any SDP, so it can say so at once. str0m has no
//! hook for this: its SDP text is rewritten here, after `to_sdp_string`.

/// `sdp` with every candidate line it carries (anywhere) in each m-section that is not rejected
/// (port 0), followed by `a=end-of-candidates`; rejected m-sections and the session part carry
/// none. An SDP without candidates is returned as it is.
pub fn complete_candidates(sdp: &str) -> String {
    let lines: Vec<&str> = sdp.lines().collect();
    let candidates: Vec<&str> = dedup(lines.iter().copied().filter(|l| is_candidate(l)));
    if candidates.is_empty() {
        return sdp.to_owned();
    }
    let mut out = String::with_capacity(sdp.len() + candidates.len() * 80 * 4);
    let mut open = false;
    for line in lines {
        if is_candidate(line) || line == END_OF_CANDIDATES {
            continue;
        }
        if line.starts_with("m=") {
            close(&mut out, open, &candidates);
            open = !rejected(line);
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    close(&mut out, open, &candidates);
    out
}

const END_OF_CANDIDATES: &str = "a=end-of-candidates";

/// Ends an m-section that takes candidates.
fn close(out: &mut String, open: bool, candidates: &[&str]) {
    if !open {
        return;
    }
    for c in candidates {
        out.push_str(c);
        out.push_str("\r\n");
    }
    out.push_str(END_OF_CANDIDATES);
    out.push_str("\r\n");
}

fn is_candidate(line: &str) -> bool {
    line.starts_with("a=candidate:")
}

/// `m=<media> <port> ...` with port 0: the m-section is rejected or stopped (RFC 8843 §7.3.3
/// leaves such a section out of the bundle; it carries no transport).
fn rejected(m_line: &str) -> bool {
    m_line.split_ascii_whitespace().nth(1) == Some("0")
}

/// The same candidates in every m-section were read from every m-section: keep each once.
fn dedup<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = Vec::new();
    for l in lines {
        if !v.contains(&l) {
            v.push(l);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
    use str0m::media::{Direction, MediaKind};
    use str0m::{Candidate, Rtc};

    /// Each m-section's lines, the session part first.
    fn sections(sdp: &str) -> Vec<Vec<&str>> {
        let mut v: Vec<Vec<&str>> = vec![Vec::new()];
        for l in sdp.lines() {
            if l.starts_with("m=") {
                v.push(Vec::new());
            }
            v.last_mut().unwrap().push(l);
        }
        v
    }

    fn rtc(now: std::time::Instant, addr: &str, lite: bool) -> Rtc {
        let mut rtc = Rtc::builder()
            .set_ice_lite(lite)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .build(now);
        rtc.add_local_candidate(Candidate::host(addr.parse().unwrap(), "udp").unwrap());
        rtc
    }

    /// A server's answer to an offer with audio, two videos and a data channel, as str0m
    /// writes it, with the offering client, its pending offer and the server.
    fn exchange() -> (Rtc, SdpPendingOffer, Rtc, String) {
        // As `sfu::init_crypto` does (idempotent); not called, so the modules import one way.
        str0m::crypto::from_feature_flags().install_process_default();
        let now = std::time::Instant::now();
        let mut client = rtc(now, "10.0.0.2:6000", false);
        let mut change = client.sdp_api();
        change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        change.add_channel("control".into());
        let (offer, pending) = change.apply().unwrap();
        let mut server = rtc(now, "10.0.0.1:5000", true);
        let answer = server.sdp_api().accept_offer(offer).unwrap();
        (client, pending, server, answer.to_sdp_string())
    }

    fn str0m_answer() -> String {
        exchange().3
    }

    #[test]
    fn str0m_names_its_candidate_in_the_first_m_section_only() {
        // What this module makes up for; if str0m changes, so can this.
        let sdp = str0m_answer();
        let s = sections(&sdp);
        assert_eq!(s.len(), 5, "{sdp}");
        assert!(s[1].iter().any(|l| is_candidate(l)));
        assert!(s[2..].iter().flatten().all(|l| !is_candidate(l)));
        assert!(!sdp.contains(END_OF_CANDIDATES));
    }

    #[test]
    fn every_m_section_gets_the_candidates_and_their_end() {
        let sdp = str0m_answer();
        let done = complete_candidates(&sdp);
        let s = sections(&done);
        assert!(
            s[0].iter()
                .all(|l| !is_candidate(l) && *l != END_OF_CANDIDATES)
        );
        for m in &s[1..] {
            let c: Vec<_> = m.iter().filter(|l| is_candidate(l)).collect();
            assert_eq!(c.len(), 1, "{m:?}");
            assert!(c[0].contains("10.0.0.1 5000 typ host"), "{c:?}");
            assert_eq!(m.last(), Some(&END_OF_CANDIDATES), "{m:?}");
        }
        assert!(done.ends_with("\r\n") && !done.replace("\r\n", "").contains('\n'));
        // Done twice, nothing changes.
        assert_eq!(complete_candidates(&done), done);
    }

    #[test]
    fn str0m_still_reads_the_result() {
        let (mut client, pending, mut server, sdp) = exchange();
        let done = complete_candidates(&sdp);
        let answer = SdpAnswer::from_sdp_string(&done).unwrap();
        // Read, not skipped: written out again, each m-section keeps its candidate and end.
        let again = answer.to_sdp_string();
        assert_eq!(again.matches("a=candidate:").count(), 4, "{again}");
        assert_eq!(again.matches(END_OF_CANDIDATES).count(), 4, "{again}");
        client.sdp_api().accept_answer(pending, answer).unwrap();
        // And an offer of the server's, completed, is an offer str0m takes.
        let mut change = server.sdp_api();
        change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let (offer, _) = change.apply().unwrap();
        let offer = complete_candidates(&offer.to_sdp_string());
        assert_eq!(offer.matches(END_OF_CANDIDATES).count(), 5, "{offer}");
        let answer = client
            .sdp_api()
            .accept_offer(SdpOffer::from_sdp_string(&offer).unwrap())
            .unwrap();
        assert_eq!(sections(&answer.to_sdp_string()).len(), 6);
    }

    /// SDP in the shape Chromium writes it (a candidate per m-section, a rejected section with
    /// port 0): each open section ends with its candidates and their end, the rejected one has
    /// neither. (Chromium itself takes the result: tests/browser_media.rs.)
    #[test]
    fn rejected_sections_and_chromium_style_sdp() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
                   a=group:BUNDLE 0 2\r\n\
                   m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
                   a=candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host\r\n\
                   a=rtpmap:111 opus/48000/2\r\n\
                   m=video 0 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n\
                   a=candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\n\
                   a=rtpmap:96 VP8/90000\r\n";
        let done = complete_candidates(sdp);
        let s = sections(&done);
        let cand = "a=candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host";
        assert_eq!(
            s[1][3..],
            ["a=rtpmap:111 opus/48000/2", cand, END_OF_CANDIDATES]
        );
        assert_eq!(
            s[2],
            [
                "m=video 0 UDP/TLS/RTP/SAVPF 96",
                "c=IN IP4 0.0.0.0",
                "a=mid:1"
            ]
        );
        assert_eq!(
            s[3][3..],
            ["a=rtpmap:96 VP8/90000", cand, END_OF_CANDIDATES]
        );
        // Nothing to name: nothing changes.
        let bare = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";
        assert_eq!(complete_candidates(bare), bare);
    }
}
