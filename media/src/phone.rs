//! A phone's audio over plain RTP (SPEC V5): one SIP leg's media, sans-IO.
//!
//! A phone using Opus is passed its packets as they are. G.711 and G.722 are decoded and
//! encoded at this edge and meet the mixer as PCM, never Opus (issue 19; docs/sip.md gives the
//! cost): what a phone sends becomes 20 ms frames of 48 kHz audio for the mixer, whatever its
//! packet time, and the mix it hears comes as PCM to encode in its codec. RFC 4733 telephone events become key
//! presses. RTCP ([`rtcp`]) goes both ways: the phone's sender
//! reports are read, and Tandem reports every 5 s what it sent and received. When nobody in
//! the call speaks, the phone is sent silence every 20 ms rather than nothing: gateways and
//! NATs take a long RTP silence for a dead call. Nothing at all is sent without the phone's
//! [`consent`]: an acknowledged dialog and its own packets from the address its SDP names.

pub mod consent;
pub mod counts;
pub mod lobby;
pub mod rtcp;
pub mod shared_mix;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use rtp_types::{RtpPacket, RtpPacketBuilder};

use crate::mix::FRAME_SAMPLES;
use crate::pcm_frame::{Native, PcmFrame};
use crate::voice_codec::{CodecError, VoiceCodec, VoiceDecoder, VoiceEncoder};
use consent::{Consent, Withheld};
use counts::{PhoneCounts, PhoneDrop};
use rtcp::{REPORT_INTERVAL, Reception, Sent};

/// What the SIP side agreed for one phone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneMedia {
    /// Where the phone receives RTP, from its SDP.
    pub remote: SocketAddr,
    /// Where it receives RTCP: `remote` when it multiplexes (RFC 5761), else its `a=rtcp`
    /// port or the next one (RFC 3550, 3605).
    pub rtcp: SocketAddr,
    pub codec: VoiceCodec,
    pub payload_type: u8,
    pub dtmf_payload_type: Option<u8>,
    /// Tandem may send (the phone has not put the call on hold).
    pub send: bool,
    /// The phone sends.
    pub receive: bool,
    /// The dialog is confirmed (RFC 3261 13.2.2.4, 13.3.1.4): the phone acknowledged our
    /// answer, or answered the call Tandem placed and we acknowledged it. Nothing is sent to
    /// the phone before (see [`consent`]).
    pub confirmed: bool,
    /// The host the phone's SIP came from: RTP from there, from another address than the
    /// SDP names, is recognised as this phone's and reported (a NAT the phone did not see).
    pub signalling: Option<IpAddr>,
}

/// A phone's RTP came from another address than its SDP names, and was dropped: reported once
/// per leg, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrongAddress {
    /// Where the SDP says the phone is.
    pub expected: SocketAddr,
    /// Where its RTP came from.
    pub actual: SocketAddr,
}

/// What one datagram from the phone gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PhoneInput {
    /// 20 ms of an Opus phone's voice as it sent it, numbered for the mixer's jitter buffer.
    Voice { seq: u16, opus: Vec<u8> },
    /// 20 ms of the voice of a phone of another codec, decoded at the codec's own rate,
    /// numbered likewise (the mixer resamples it only if someone hears 48 kHz).
    Pcm { seq: u16, pcm: Native },
    /// A key pressed (RFC 4733): '0'-'9', '*', '#', 'A'-'D'.
    Dtmf(char),
}

/// Transcoding between the phone's codec and the mixer's PCM (none for an Opus phone).
struct Transcoder {
    decoder: VoiceDecoder,
    encoder: VoiceEncoder,
    /// Audio from the phone, at its codec's rate, not yet a whole 20 ms frame.
    native_in: Vec<i16>,
}

pub struct PhoneLeg {
    media: PhoneMedia,
    transcoder: Option<Transcoder>,
    ssrc: u32,
    seq: u16,
    started: Instant,
    last_sent: Option<Instant>,
    /// Sequence numbers of the 20 ms frames handed to the mixer.
    mix_seq: u16,
    /// The RTP timestamp of the last telephone event reported (each press once).
    last_event: Option<u32>,
    last_transit: Option<i64>,
    jitter: f64,
    counts: PhoneCounts,
    consent: Consent,
    /// The phone's RTP from a wrong address, to report (once: `reported`).
    report: Option<WrongAddress>,
    reported: bool,
    /// Encodes prompts for an Opus phone (made on first use).
    prompt_encoder: Option<VoiceEncoder>,
    /// The last packet sent was silence made here.
    filling: bool,
    reception: Reception,
    /// `started` on the wall clock, for the NTP time of sender reports.
    wall: SystemTime,
    next_report: Instant,
    octets_out: u32,
    sent_since_report: bool,
}

/// Silence starts after this long without audio to send; then it goes every [`TICK`].
const QUIET: Duration = Duration::from_millis(40);
const TICK: Duration = Duration::from_millis(20);

fn transcoder(codec: VoiceCodec) -> Result<Option<Transcoder>, CodecError> {
    if codec == VoiceCodec::Opus {
        return Ok(None);
    }
    Ok(Some(Transcoder {
        decoder: VoiceDecoder::new(codec)?,
        encoder: VoiceEncoder::new(codec)?,
        native_in: Vec::new(),
    }))
}

fn dtmf_digit(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => char::from(b'0' + event),
        10 => '*',
        11 => '#',
        12..=15 => char::from(b'A' + event - 12),
        _ => return None,
    })
}

impl PhoneLeg {
    /// A phone's leg starting at `now`; `wall` is `now` on the wall clock (the caller reads
    /// both clocks), for the NTP time of its RTCP sender reports. The SSRC and the first
    /// sequence number are random (RFC 3550 5.1, 8.1).
    pub fn new(now: Instant, wall: SystemTime, media: PhoneMedia) -> Result<Self, CodecError> {
        Ok(Self {
            transcoder: transcoder(media.codec)?,
            consent: Consent::new(&media),
            media,
            ssrc: rand::random(),
            seq: rand::random(),
            started: now,
            last_sent: None,
            mix_seq: 0,
            last_event: None,
            last_transit: None,
            jitter: 0.0,
            counts: PhoneCounts::default(),
            report: None,
            reported: false,
            prompt_encoder: None,
            filling: false,
            reception: Reception::default(),
            wall,
            // The first report soon, so the phone knows our stream early (RFC 3550 6.2).
            next_report: now + REPORT_INTERVAL / 5,
            octets_out: 0,
            sent_since_report: false,
        })
    }

    /// A re-INVITE changed what was agreed: hold or resume, a new address, another codec.
    pub fn update(&mut self, media: PhoneMedia) -> Result<(), CodecError> {
        if media.codec != self.media.codec {
            self.transcoder = transcoder(media.codec)?;
        }
        self.consent.update(&media);
        self.media = media;
        Ok(())
    }

    pub fn media(&self) -> &PhoneMedia {
        &self.media
    }

    /// The phone's codec is not Opus: its voice reaches the mixer as PCM
    /// ([`PhoneInput::Pcm`]) and its mix is given to [`Self::send_frame`].
    pub fn hears_pcm(&self) -> bool {
        self.transcoder.is_some()
    }

    pub fn remote(&self) -> SocketAddr {
        self.media.remote
    }

    pub fn counts(&self) -> &PhoneCounts {
        &self.counts
    }

    /// RFC 3550 A.8 interarrival jitter, seconds.
    pub fn jitter(&self) -> f64 {
        self.jitter / f64::from(self.media.codec.rtp_clock())
    }

    /// Whether what is due to the phone goes out now, and why not (see [`consent`]). A call on
    /// hold is not asked.
    pub fn consent(&self, now: Instant) -> Result<(), Withheld> {
        self.consent.check(now)
    }

    /// The phone's RTP came from a wrong address: what to report, the first time only.
    pub fn take_report(&mut self) -> Option<WrongAddress> {
        self.report.take()
    }

    fn wrong_address(&mut self, actual: SocketAddr) {
        self.counts.drop_one(PhoneDrop::WrongAddress);
        if !self.reported {
            self.reported = true;
            self.report = Some(WrongAddress {
                expected: self.media.remote,
                actual,
            });
        }
    }

    /// A datagram from `source` that no phone and no browser took: if it looks like this
    /// phone's RTP (an agreed payload type, and its SSRC once the phone has been heard) sent
    /// from another address than its SDP names, on the same host or the one its SIP came from,
    /// it is counted as this phone's, dropped (see [`Self::accepts`]), and reported once
    /// ([`Self::take_report`]). False if it is not this phone's: of two phones behind one NAT
    /// or PBX, the one heard is not blamed for the other's stream.
    pub fn stray(&mut self, source: SocketAddr, data: &[u8]) -> bool {
        let Ok(packet) = RtpPacket::parse(data) else {
            return false;
        };
        let pt = packet.payload_type();
        let host = source.ip();
        let ours = pt == self.media.payload_type || Some(pt) == self.media.dtmf_payload_type;
        if !ours || (host != self.media.remote.ip() && Some(host) != self.media.signalling) {
            return false;
        }
        if self
            .reception
            .ssrc()
            .is_some_and(|heard| heard != packet.ssrc())
        {
            return false;
        }
        self.wrong_address(source);
        true
    }

    /// Whether a datagram from `source` is this phone's: from the address its SDP gave, or RTCP
    /// from its RTCP address. Every phone on a worker shares the worker's port, so a packet from
    /// elsewhere cannot be told apart by where it arrived; learning a new address from it
    /// (latching) would let one phone behind a NAT take another's audio. docs/sip.md says what
    /// this means for NAT. RTP is never taken from the RTCP address: another phone on the same
    /// host may send its RTP from that port (phones pick their ports; the RTCP port is only
    /// implied, RTP's plus one), and taking it would leave that phone unheard and so, without
    /// consent, sent nothing.
    pub fn accepts(&self, source: SocketAddr, data: &[u8]) -> bool {
        source == self.media.remote || (source == self.media.rtcp && is_rtcp(data))
    }

    /// A datagram from the phone. `wanted`: its voice goes to the mixer (it holds a
    /// microphone); otherwise voice is not even decoded.
    pub fn receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        data: &[u8],
        wanted: bool,
    ) -> Vec<PhoneInput> {
        let mut out = Vec::new();
        if is_rtcp(data) {
            if self.reception.rtcp(now, data) {
                self.counts.rtcp_in += 1;
                self.consent.heard(now, source);
            } else {
                self.counts.drop_one(PhoneDrop::Unreadable);
            }
            return out;
        }
        let Ok(packet) = RtpPacket::parse(data) else {
            self.counts.drop_one(PhoneDrop::Unreadable);
            return out;
        };
        let pt = packet.payload_type();
        let is_dtmf = Some(pt) == self.media.dtmf_payload_type;
        if pt != self.media.payload_type && !is_dtmf {
            self.counts.drop_one(PhoneDrop::PayloadType);
            return out;
        }
        if source != self.media.remote {
            // From its RTCP address.
            self.wrong_address(source);
            return out;
        }
        self.consent.heard(now, source);
        self.counts.packets_in += 1;
        self.reception.rtp(packet.ssrc(), packet.sequence_number());
        self.track_jitter(now, packet.timestamp());
        if is_dtmf {
            let p = packet.payload();
            if p.len() >= 4 && self.last_event != Some(packet.timestamp()) {
                self.last_event = Some(packet.timestamp());
                if let Some(d) = dtmf_digit(p[0]) {
                    out.push(PhoneInput::Dtmf(d));
                }
            }
            return out;
        }
        if !wanted || !self.media.receive {
            return out;
        }
        match &mut self.transcoder {
            None => out.push(PhoneInput::Voice {
                seq: packet.sequence_number(),
                opus: packet.payload().to_vec(),
            }),
            Some(t) => {
                t.decoder.decode_native(packet.payload(), &mut t.native_in);
                let rate = self.media.codec.sample_rate();
                let frame = rate / 50;
                while t.native_in.len() >= frame {
                    let samples: Box<[i16]> = t.native_in.drain(..frame).collect();
                    self.mix_seq = self.mix_seq.wrapping_add(1);
                    out.push(PhoneInput::Pcm {
                        seq: self.mix_seq,
                        pcm: Native {
                            rate: rate as u32,
                            samples,
                        },
                    });
                }
            }
        }
        out
    }

    fn track_jitter(&mut self, now: Instant, timestamp: u32) {
        let clock = f64::from(self.media.codec.rtp_clock());
        let arrival = (now.duration_since(self.started).as_secs_f64() * clock) as i64;
        let transit = arrival - i64::from(timestamp);
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs() as f64;
            // A jump of over a minute is a new stream (a restarted phone), not jitter.
            if d < 60.0 * clock {
                self.jitter += (d - self.jitter) / 16.0;
            }
        }
        self.last_transit = Some(transit);
    }

    /// One 20 ms Opus packet of the mix an Opus phone hears, passed on as it is: the RTP
    /// datagram to send, if the call is not on hold. A G.711 or G.722 phone hears PCM
    /// ([`Self::send_frame`], [`Self::send_payload`]); it is given no Opus to decode.
    pub fn send_mix(&mut self, now: Instant, opus: &[u8]) -> Option<Vec<u8>> {
        debug_assert!(self.transcoder.is_none(), "an Opus mix for a PCM phone");
        if self.transcoder.is_some() || !self.media.send || opus.is_empty() || !self.may_send(now) {
            return None;
        }
        self.packetize(now, opus)
    }

    /// 20 ms of 48 kHz audio (a prompt made here): the datagram to send, unless on hold.
    pub fn send_pcm(&mut self, now: Instant, pcm: &[i16; FRAME_SAMPLES]) -> Option<Vec<u8>> {
        self.send_encoded(now, |e| e.encode(pcm))
    }

    /// The mix of a phone that [`Self::hears_pcm`], sent at the codec's rate when the mix has
    /// it, else resampled: the datagram to send, unless on hold.
    pub fn send_frame(&mut self, now: Instant, frame: &PcmFrame) -> Option<Vec<u8>> {
        self.send_encoded(now, |e| e.encode_frame(frame))
    }

    /// 20 ms of silence, unless on hold.
    fn send_silence(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.send_encoded(now, VoiceEncoder::encode_silence)
    }

    /// What `encode` makes with the phone's encoder: the datagram to send, unless on hold (and
    /// then nothing is encoded). An Opus phone needs an encoder only for what is made here; one
    /// for the leg's life, so its frames are one stream.
    fn send_encoded(
        &mut self,
        now: Instant,
        encode: impl FnOnce(&mut VoiceEncoder) -> Vec<u8>,
    ) -> Option<Vec<u8>> {
        if !self.media.send || !self.may_send(now) {
            return None;
        }
        let encoder = match (&mut self.transcoder, &mut self.prompt_encoder) {
            (Some(t), _) => &mut t.encoder,
            (None, Some(e)) => e,
            (None, prompt) => prompt.insert(VoiceEncoder::new(VoiceCodec::Opus).ok()?),
        };
        let payload = encode(encoder);
        self.packetize(now, &payload)
    }

    /// 20 ms already in the phone's codec (the listener mix, encoded once for every phone of
    /// that codec: [`shared_mix`]): the datagram to send, unless on hold. `payload` is asked
    /// only if it goes out, so a phone on hold or without consent costs no encode.
    pub fn send_payload<'a>(
        &mut self,
        now: Instant,
        payload: impl FnOnce() -> Option<&'a [u8]>,
    ) -> Option<Vec<u8>> {
        if !self.media.send || !self.may_send(now) {
            return None;
        }
        self.packetize(now, payload()?)
    }

    /// Whether RTP may go out now; counts it withheld if not. Asked before encoding, so that
    /// what is not sent costs no work either.
    fn may_send(&mut self, now: Instant) -> bool {
        match self.consent.check(now) {
            Ok(()) => true,
            Err(why) => {
                self.counts.withhold_one(why);
                false
            }
        }
    }

    /// The RTP timestamp of `now`: it follows the clock, so a gap in what is sent is a gap in
    /// time. It starts at a random point (the SSRC's value).
    fn rtp_time(&self, now: Instant) -> u32 {
        let clock = f64::from(self.media.codec.rtp_clock());
        let t = (now.duration_since(self.started).as_secs_f64() * clock) as u64 as u32;
        t.wrapping_add(self.ssrc)
    }

    /// Silence while there is no audio to send, and the RTCP report when due: datagrams and
    /// where they go.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        if self.media.send && now >= self.next_silence() {
            if let Some(d) = self.send_silence(now) {
                self.counts.packets_out -= 1;
                self.counts.silence_out += 1;
                out.push((self.media.remote, d));
            } else {
                // Not again at once: the next try is a tick away.
                self.last_sent = Some(now);
            }
            self.filling = true;
        }
        if now >= self.next_report {
            self.next_report = now + REPORT_INTERVAL;
            if let Err(why) = self.consent.check_rtcp(now) {
                self.counts.withhold_one(why);
                return out;
            }
            let sent = Sent {
                ssrc: self.ssrc,
                packets: (self.counts.packets_out + self.counts.silence_out) as u32,
                octets: self.octets_out,
                rtp_timestamp: self.rtp_time(now),
                sending: std::mem::take(&mut self.sent_since_report),
            };
            let jitter = self.jitter as u32;
            if let Some(d) = rtcp::report(
                now,
                (self.started, self.wall),
                sent,
                &mut self.reception,
                jitter,
            ) {
                self.counts.rtcp_out += 1;
                out.push((self.media.rtcp, d));
            }
        }
        out
    }

    fn next_silence(&self) -> Instant {
        match self.last_sent {
            None => self.started + QUIET,
            Some(t) if self.filling => t + TICK,
            Some(t) => t + QUIET,
        }
    }

    /// When [`Self::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Instant {
        if self.media.send {
            self.next_silence().min(self.next_report)
        } else {
            self.next_report
        }
    }

    fn packetize(&mut self, now: Instant, payload: &[u8]) -> Option<Vec<u8>> {
        if payload.is_empty() {
            return None;
        }
        let gap = self
            .last_sent
            .is_none_or(|t| now.duration_since(t).as_millis() > 60);
        self.last_sent = Some(now);
        self.filling = false;
        self.sent_since_report = true;
        self.octets_out = self.octets_out.wrapping_add(payload.len() as u32);
        self.seq = self.seq.wrapping_add(1);
        self.counts.packets_out += 1;
        RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(self.media.payload_type)
            .sequence_number(self.seq)
            .timestamp(self.rtp_time(now))
            .ssrc(self.ssrc)
            .marker_bit(gap)
            .payload(payload)
            .write_vec()
            .ok()
    }
}

/// Which phone of `legs` a datagram from `source` is for: the one whose own address it came
/// from, else one whose RTCP address that is (for RTCP only, [`PhoneLeg::accepts`]). Own
/// address first, because a phone's own port may be another's implied RTCP port.
pub fn owner<'a, K: Copy + 'a>(
    legs: impl Iterator<Item = (K, &'a PhoneLeg)> + Clone,
    source: SocketAddr,
    data: &[u8],
) -> Option<K> {
    legs.clone()
        .find(|(_, leg)| leg.remote() == source)
        .or_else(|| legs.into_iter().find(|(_, leg)| leg.accepts(source, data)))
        .map(|(k, _)| k)
}

/// RTCP, not RTP (RFC 5761: RTCP's packet types 200-204 are RTP payload types 72-76 with the
/// marker bit, which RTP does not use).
fn is_rtcp(data: &[u8]) -> bool {
    data.len() >= 2 && (200..=204).contains(&data[1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tone::{power, sine_frame};
    use rtcp_types::{RtcpPacketWriter, RtcpPacketWriterExt};
    use std::time::Duration;

    fn media(codec: VoiceCodec, pt: u8) -> PhoneMedia {
        PhoneMedia {
            remote: "10.0.0.9:4000".parse().unwrap(),
            rtcp: "10.0.0.9:4000".parse().unwrap(),
            codec,
            payload_type: pt,
            dtmf_payload_type: Some(101),
            send: true,
            receive: true,
            confirmed: true,
            signalling: None,
        }
    }

    /// A leg whose phone has acknowledged the call and sent one packet from its address.
    fn consenting(now: Instant, media: PhoneMedia) -> PhoneLeg {
        let (remote, pt) = (media.remote, media.payload_type);
        let mut leg = PhoneLeg::new(now, SystemTime::now(), media).unwrap();
        leg.receive(now, remote, &rtp(pt, 0, 0, &[]), false);
        leg
    }

    fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(pt)
            .sequence_number(seq)
            .timestamp(ts)
            .ssrc(7)
            .payload(payload)
            .write_vec()
            .unwrap()
    }

    #[test]
    fn a_pcmu_phone_is_heard_by_the_mixer_as_pcm_in_20_ms_frames_whatever_its_packet_time() {
        let now = Instant::now();
        let from: SocketAddr = "10.0.0.9:4000".parse().unwrap();
        let mut leg = PhoneLeg::new(now, SystemTime::now(), media(VoiceCodec::Pcmu, 0)).unwrap();
        let mut enc = VoiceEncoder::new(VoiceCodec::Pcmu).unwrap();
        // 30 ms packets of a 440 Hz tone.
        let mut pcmu = Vec::new();
        for i in 0..30 {
            pcmu.extend(enc.encode(&sine_frame(440.0, 8000.0, i)));
        }
        let mut frames = Vec::new();
        for (i, chunk) in pcmu.chunks(240).enumerate() {
            let at = now + Duration::from_millis(30 * i as u64);
            for input in leg.receive(at, from, &rtp(0, i as u16, (240 * i) as u32, chunk), true) {
                let PhoneInput::Pcm { seq, pcm } = input else {
                    panic!("voice as PCM, not Opus")
                };
                frames.push((seq, pcm));
            }
        }
        // 600 ms in 30 ms packets: 30 frames of 20 ms at 8 kHz, the last whole.
        assert_eq!(frames.len(), 30, "frames of 20 ms");
        assert!(frames.windows(2).all(|w| w[1].0 == w[0].0.wrapping_add(1)));
        assert!(
            frames
                .iter()
                .all(|(_, f)| f.rate == 8_000 && f.samples.len() == 160)
        );
        let mut widen = crate::voice_codec::Widener::new(8_000).unwrap();
        let mut heard: Vec<i16> = Vec::new();
        for (_, f) in &frames {
            let mut wide = [0; FRAME_SAMPLES];
            assert!(widen.widen(&f.samples, &mut wide));
            heard.extend_from_slice(&wide);
        }
        let tail = &heard[heard.len() - 9_600..];
        assert!(power(tail, 440.0) > 100.0 * power(tail, 1000.0).max(1.0));
        assert_eq!(leg.counts().packets_in, 20);
        // Not holding a microphone: nothing for the mixer.
        assert!(
            leg.receive(now, from, &rtp(0, 99, 99_999, &[0xff; 160]), false)
                .is_empty()
        );
    }

    #[test]
    fn the_mix_reaches_the_phone_in_its_codec_until_it_holds_the_call() {
        let now = Instant::now();
        let mut leg = consenting(now, media(VoiceCodec::Pcma, 8));
        let mut dec = VoiceDecoder::new(VoiceCodec::Pcma).unwrap();
        let mut heard = Vec::new();
        for i in 0..25 {
            let at = now + Duration::from_millis(20 * i);
            let datagram = leg
                .send_pcm(at, &sine_frame(1000.0, 8000.0, i))
                .expect("sent");
            let p = RtpPacket::parse(&datagram).unwrap();
            assert_eq!(p.payload_type(), 8);
            assert_eq!(p.payload().len(), 160);
            assert_eq!(p.marker_bit(), i == 0);
            dec.decode(p.payload(), &mut heard);
        }
        let tail = &heard[heard.len() - 9_600..];
        assert!(power(tail, 1000.0) > 100.0 * power(tail, 440.0).max(1.0));
        let mut held = media(VoiceCodec::Pcma, 8);
        held.send = false;
        leg.update(held).unwrap();
        assert_eq!(leg.send_pcm(now, &sine_frame(1000.0, 8000.0, 0)), None);
    }

    #[test]
    fn each_key_press_is_reported_once() {
        let now = Instant::now();
        let from: SocketAddr = "10.0.0.9:4000".parse().unwrap();
        let mut leg = PhoneLeg::new(now, SystemTime::now(), media(VoiceCodec::Pcmu, 0)).unwrap();
        let mut keys = Vec::new();
        for (i, (event, ts)) in [(1u8, 1000u32), (1, 2000), (11, 3000)].iter().enumerate() {
            // Start, two updates, and the end packet three times (RFC 4733 2.5.1.4).
            for (j, end) in [0u8, 0, 0, 0x80, 0x80, 0x80].iter().enumerate() {
                let payload = [*event, *end | 10, 0, (j * 160) as u8];
                let seq = (i * 10 + j) as u16;
                for input in leg.receive(now, from, &rtp(101, seq, *ts, &payload), true) {
                    if let PhoneInput::Dtmf(d) = input {
                        keys.push(d);
                    }
                }
            }
        }
        assert_eq!(keys, vec!['1', '1', '#']);
    }

    #[test]
    fn strangers_garbage_and_rtcp_are_not_voice() {
        let now = Instant::now();
        let mut leg = PhoneLeg::new(now, SystemTime::now(), media(VoiceCodec::Pcmu, 0)).unwrap();
        let voice = rtp(0, 1, 160, &[0xff; 160]);
        assert!(!leg.accepts("10.0.0.10:4000".parse().unwrap(), &voice));
        // Another phone on the same host (or behind the same NAT) is not this one.
        assert!(!leg.accepts("10.0.0.9:5555".parse().unwrap(), &voice));
        let natted: SocketAddr = "10.0.0.9:4000".parse().unwrap();
        assert!(leg.accepts(natted, &voice));
        // Its RTCP port (RTP's plus one, when not multiplexed) takes its RTCP, not another
        // phone's RTP sent from it.
        let rtcp_port: SocketAddr = "10.0.0.9:4001".parse().unwrap();
        let apart = PhoneLeg::new(
            now,
            SystemTime::now(),
            PhoneMedia {
                rtcp: rtcp_port,
                ..media(VoiceCodec::Pcmu, 0)
            },
        )
        .unwrap();
        assert!(!apart.accepts(rtcp_port, &voice));
        assert!(apart.accepts(rtcp_port, &[0x80, 201, 0, 1, 0, 0, 0, 7]));
        assert!(apart.accepts(natted, &voice));
        for junk in [
            &b""[..],
            &[0x80, 200, 0, 1],
            &[1, 2, 3],
            &[0x80; 11],
            &[0x90; 40],
        ] {
            assert!(leg.receive(now, natted, junk, true).is_empty());
        }
        // Another payload type than agreed.
        assert!(
            leg.receive(now, natted, &rtp(18, 2, 320, &[0; 20]), true)
                .is_empty()
        );
        // A real receiver report is RTCP; a truncated one is junk.
        let rr = rtcp_types::CompoundBuilder::default()
            .add_packet(rtcp_types::ReceiverReport::builder(5));
        let mut buf = vec![0; rr.calculate_size().unwrap()];
        rr.write_into(&mut buf).unwrap();
        assert!(leg.receive(now, natted, &buf, true).is_empty());
        let s = leg.counts();
        assert_eq!(s.rtcp_in, 1);
        assert!(s.dropped(PhoneDrop::Unreadable) >= 5, "{s:?}");
        assert_eq!(s.dropped(PhoneDrop::PayloadType), 1, "{s:?}");
    }

    #[test]
    fn a_quiet_call_sends_silence_and_rtcp_reports_go_to_the_rtcp_port() {
        let t0 = Instant::now();
        let mut m = media(VoiceCodec::Pcma, 8);
        m.rtcp = "10.0.0.9:4001".parse().unwrap();
        let mut leg = PhoneLeg::new(t0, SystemTime::now(), m).unwrap();
        // The phone talks: 50 packets, two of them lost.
        for seq in (0..52u16).filter(|s| *s != 10 && *s != 11) {
            leg.receive(
                t0,
                "10.0.0.9:4000".parse().unwrap(),
                &rtp(8, seq, u32::from(seq) * 160, &[0xd5; 160]),
                false,
            );
        }
        // Nothing to hear for 2 s: silence every 20 ms after the first 40 ms, and the first
        // report (an SR, since silence is sent) to the RTCP port.
        let mut silence = 0;
        let mut reports = Vec::new();
        let mut t = t0;
        while t < t0 + Duration::from_secs(2) {
            t = leg.poll_timeout().max(t);
            for (to, d) in leg.handle_timeout(t) {
                if to.port() == 4001 {
                    reports.push(d);
                } else {
                    assert_eq!(to.port(), 4000);
                    let p = RtpPacket::parse(&d).unwrap();
                    assert_eq!(p.payload_type(), 8);
                    assert!(p.payload().iter().all(|b| *b == 0xd5), "A-law silence");
                    silence += 1;
                }
            }
            t += Duration::from_millis(1);
        }
        assert!(
            (95..=100).contains(&silence),
            "{silence} silent packets in 2 s"
        );
        assert_eq!(leg.counts().silence_out, silence);
        assert_eq!(
            leg.counts().packets_out,
            0,
            "silence is not counted as audio"
        );
        assert_eq!(reports.len(), 1);
        let mut packets = rtcp_types::Compound::parse(&reports[0]).unwrap();
        let Some(Ok(rtcp_types::Packet::Sr(sr))) = packets.next() else {
            panic!("an SR")
        };
        assert!(sr.packet_count() > 0);
        let block = sr.report_blocks().next().unwrap();
        assert_eq!(
            (block.cumulative_lost(), block.extended_sequence_number()),
            (2, 51)
        );
        // On hold: no silence, only reports.
        let mut held = leg.media().clone();
        held.send = false;
        leg.update(held).unwrap();
        let before = leg.counts().silence_out;
        for ms in 0..6000 {
            let t = t + Duration::from_millis(ms);
            if leg.poll_timeout() <= t {
                leg.handle_timeout(t);
            }
        }
        assert_eq!(leg.counts().silence_out, before);
        assert!(leg.counts().rtcp_out >= 2);
    }

    /// Everything the leg sends between `from` and `to`, driven as a worker drives it (the
    /// mix every 20 ms, and its timers).
    fn sent(leg: &mut PhoneLeg, from: Instant, to: Instant) -> usize {
        let pcm = sine_frame(1000.0, 8000.0, 0);
        let mut count = 0;
        let mut t = from;
        while t < to {
            count += usize::from(leg.send_pcm(t, &pcm).is_some());
            if leg.poll_timeout() <= t {
                count += leg.handle_timeout(t).len();
            }
            t += TICK;
        }
        count
    }

    #[test]
    fn nothing_goes_to_a_phone_without_its_consent() {
        let t0 = Instant::now();
        let phone: SocketAddr = "10.0.0.9:4000".parse().unwrap();
        let mut unacked = media(VoiceCodec::Pcmu, 0);
        unacked.confirmed = false;
        let mut leg = PhoneLeg::new(t0, SystemTime::now(), unacked.clone()).unwrap();
        // An INVITE never acknowledged: neither the mix, nor silence, nor RTCP reports, even
        // with the phone's RTP arriving (anyone can forge the SDP).
        let t1 = t0 + Duration::from_secs(6);
        leg.receive(t0, phone, &rtp(0, 1, 160, &[0xff; 160]), false);
        assert_eq!(sent(&mut leg, t0, t1), 0);
        let withheld = leg.counts().withheld(Withheld::Unacknowledged);
        assert!(
            withheld >= 500,
            "the mix and silence every 20 ms: {withheld}"
        );
        assert_eq!(leg.consent(t1), Err(Withheld::Unacknowledged));

        // Acknowledged, but its address never sent anything: still nothing.
        let mut leg = PhoneLeg::new(t0, SystemTime::now(), media(VoiceCodec::Pcmu, 0)).unwrap();
        assert_eq!(sent(&mut leg, t0, t1), 0);
        assert!(leg.counts().withheld(Withheld::Unverified) >= 500);
        // RTP from another port of its host (a NAT's, say) is dropped and proves nothing.
        leg.receive(
            t1,
            "10.0.0.9:4001".parse().unwrap(),
            &rtp(0, 2, 320, &[0xff; 160]),
            true,
        );
        assert_eq!(sent(&mut leg, t1, t1 + Duration::from_secs(1)), 0);

        // Its own RTP from the SDP's address: the mix and reports flow.
        let t2 = t1 + Duration::from_secs(1);
        leg.receive(t2, phone, &rtp(0, 3, 480, &[0xff; 160]), true);
        let t3 = t2 + consent::CONSENT_LIFETIME;
        assert!(sent(&mut leg, t2, t3) >= 700);
        // Then nothing for its lifetime: it stops until the phone sends again.
        assert_eq!(sent(&mut leg, t3, t3 + Duration::from_secs(6)), 0);
        assert!(leg.counts().withheld(Withheld::Expired) >= 300);
        let t4 = t3 + Duration::from_secs(6);
        leg.receive(t4, phone, &rtp(0, 4, 640, &[0xff; 160]), true);
        assert!(sent(&mut leg, t4, t4 + Duration::from_secs(1)) >= 50);
    }

    #[test]
    fn rtp_from_another_address_is_dropped_counted_and_reported_once() {
        let now = Instant::now();
        let mut m = media(VoiceCodec::Pcmu, 0);
        m.remote = "192.168.1.20:4000".parse().unwrap();
        m.rtcp = "192.168.1.20:4001".parse().unwrap();
        m.signalling = Some("203.0.113.5".parse().unwrap());
        let mut leg = PhoneLeg::new(now, SystemTime::now(), m).unwrap();
        let voice = rtp(0, 1, 160, &[0xff; 160]);
        // A NAT the phone did not see: its SDP names its private address, its RTP comes from
        // the public one its SIP came from.
        let natted: SocketAddr = "203.0.113.5:31000".parse().unwrap();
        assert!(!leg.accepts(natted, &rtp(0, 1, 160, &[0xff; 160])));
        assert!(leg.stray(natted, &voice));
        assert!(leg.stray(natted, &voice));
        assert_eq!(
            leg.take_report(),
            Some(WrongAddress {
                expected: "192.168.1.20:4000".parse().unwrap(),
                actual: natted,
            })
        );
        assert_eq!(leg.take_report(), None, "reported once");
        // The same host on another port; its RTP from its RTCP port.
        assert!(leg.stray("192.168.1.20:5000".parse().unwrap(), &voice));
        leg.receive(now, "192.168.1.20:4001".parse().unwrap(), &voice, true);
        assert_eq!(leg.counts().dropped(PhoneDrop::WrongAddress), 4);
        assert_eq!(leg.take_report(), None);
        // Not this phone's: another host, another payload type, not RTP.
        assert!(!leg.stray("198.51.100.1:4000".parse().unwrap(), &voice));
        assert!(!leg.stray(natted, &rtp(96, 1, 160, &[0; 10])));
        assert!(!leg.stray(natted, b"junk"));
        assert_eq!(leg.counts().dropped(PhoneDrop::WrongAddress), 4);
        assert_eq!(leg.consent(now), Err(Withheld::Unverified));
    }

    /// Two phones behind one NAT or PBX: once this one has been heard, another stream from its
    /// host (another SSRC) is not taken as its own, so a wrong-address report names the phone
    /// in trouble, not its neighbour; the same stream from another port still is.
    #[test]
    fn a_heard_phone_is_not_blamed_for_another_stream_from_its_host() {
        let now = Instant::now();
        let mut m = media(VoiceCodec::Pcmu, 0);
        m.remote = "192.168.1.20:4000".parse().unwrap();
        m.rtcp = "192.168.1.20:4001".parse().unwrap();
        let elsewhere: SocketAddr = "192.168.1.20:6000".parse().unwrap();
        let mut leg = PhoneLeg::new(now, SystemTime::now(), m).unwrap();
        let neighbour = RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(0)
            .ssrc(8)
            .payload(&[0xff; 160][..])
            .write_vec()
            .unwrap();
        // Not heard yet: any stream of its payload type from its host may be its own.
        assert!(leg.stray(elsewhere, &neighbour));
        leg.receive(
            now,
            "192.168.1.20:4000".parse().unwrap(),
            &rtp(0, 1, 160, &[0xff; 160]),
            false,
        );
        assert!(
            !leg.stray(elsewhere, &neighbour),
            "another SSRC is not this phone's"
        );
        assert!(
            leg.stray(elsewhere, &rtp(0, 2, 320, &[0xff; 160])),
            "its own SSRC is"
        );
        assert_eq!(leg.counts().dropped(PhoneDrop::WrongAddress), 2);
    }
}
