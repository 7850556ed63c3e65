//! Phones that called the service number and are not in a session yet (SPEC V5): each hears a
//! prompt, over and over with a pause between, while it keys in a session number (RFC 4733).
//! Sans-IO, like the [`Sfu`](crate::sfu::Sfu) beside it on a media worker.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::mix::FRAME_SAMPLES;
use crate::phone::{PhoneInput, PhoneLeg, PhoneMedia};
use crate::transmit::Transmit;
use crate::voice_codec::CodecError;
use crate::voice_mixer::TICK;

/// Silence between two plays of the prompt.
const PAUSE: Duration = Duration::from_secs(3);

struct Waiting {
    leg: PhoneLeg,
    prompt: Arc<[i16]>,
    /// Where in the prompt the next frame starts.
    at: usize,
    /// Silent until then, between plays.
    quiet_until: Option<Instant>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LobbyDtmf<K> {
    pub leg: K,
    pub digit: char,
}

pub struct Lobby<K> {
    local: SocketAddr,
    legs: BTreeMap<K, Waiting>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<LobbyDtmf<K>>,
    next_tick: Option<Instant>,
    packets_in: u64,
    packets_out: u64,
}

impl<K: Copy + Ord> Lobby<K> {
    /// `local` is the worker's address as phones reach it.
    pub fn new(local: SocketAddr) -> Self {
        Self {
            local,
            legs: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_tick: None,
            packets_in: 0,
            packets_out: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.legs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.legs.is_empty()
    }

    /// RTP packets from and to the phones waiting here so far.
    pub fn packets(&self) -> (u64, u64) {
        (self.packets_in, self.packets_out)
    }

    /// A phone starts waiting, or what it hears or agreed changes (a new prompt plays from its
    /// start). `wall` is `now` on the wall clock, for a new phone's RTCP sender reports.
    pub fn add(
        &mut self,
        now: Instant,
        wall: SystemTime,
        key: K,
        media: PhoneMedia,
        prompt: Arc<[i16]>,
    ) -> Result<(), CodecError> {
        match self.legs.get_mut(&key) {
            Some(w) => {
                w.leg.update(media)?;
                w.prompt = prompt;
                w.at = 0;
                w.quiet_until = None;
            }
            None => {
                self.legs.insert(
                    key,
                    Waiting {
                        leg: PhoneLeg::new(now, wall, media)?,
                        prompt,
                        at: 0,
                        quiet_until: None,
                    },
                );
            }
        }
        self.next_tick.get_or_insert(now);
        Ok(())
    }

    pub fn remove(&mut self, key: K) {
        self.legs.remove(&key);
        if self.legs.is_empty() {
            self.next_tick = None;
        }
    }

    /// A datagram; false if it is no waiting phone's.
    pub fn handle_receive(&mut self, now: Instant, source: SocketAddr, data: &[u8]) -> bool {
        let Some((&key, w)) = self.legs.iter_mut().find(|(_, w)| w.leg.accepts(source)) else {
            return false;
        };
        self.packets_in += 1;
        for input in w.leg.receive(now, source, data, false) {
            if let PhoneInput::Dtmf(digit) = input {
                self.events.push_back(LobbyDtmf { leg: key, digit });
            }
        }
        true
    }

    /// Sends each phone the next 20 ms of its prompt, if a tick is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(due) = self.next_tick else {
            return;
        };
        if now < due {
            return;
        }
        let mut next = due + TICK;
        while next <= now {
            next += TICK;
        }
        self.next_tick = Some(next);
        let mut frame = [0i16; FRAME_SAMPLES];
        for w in self.legs.values_mut() {
            if w.quiet_until.is_some_and(|t| now < t) {
                frame.fill(0);
            } else {
                w.quiet_until = None;
                let end = (w.at + FRAME_SAMPLES).min(w.prompt.len());
                let n = end.saturating_sub(w.at);
                frame[..n].copy_from_slice(&w.prompt[w.at..end]);
                frame[n..].fill(0);
                w.at = end;
                if w.at >= w.prompt.len() {
                    w.at = 0;
                    w.quiet_until = Some(now + PAUSE);
                }
            }
            if let Some(datagram) = w.leg.send_pcm(now, &frame) {
                self.packets_out += 1;
                self.transmits.push_back(Transmit {
                    source: self.local,
                    destination: w.leg.remote(),
                    contents: datagram,
                });
            }
            // Its RTCP report, when due (the prompt leaves no room for silence).
            for (destination, contents) in w.leg.handle_timeout(now) {
                self.transmits.push_back(Transmit {
                    source: self.local,
                    destination,
                    contents,
                });
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_tick
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<LobbyDtmf<K>> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tone::{power, sine_frame};
    use crate::voice_codec::{VoiceCodec, VoiceDecoder};
    use rtp_types::{RtpPacket, RtpPacketBuilder};

    #[test]
    fn a_waiting_phone_hears_its_prompt_and_keys_in_digits() {
        let now = Instant::now();
        let phone: SocketAddr = "10.0.0.9:4000".parse().unwrap();
        let mut lobby = Lobby::new("192.0.2.1:7000".parse().unwrap());
        let prompt: Vec<i16> = (0..25).flat_map(|i| sine_frame(660.0, 8000.0, i)).collect();
        let media = PhoneMedia {
            remote: phone,
            rtcp: phone,
            codec: VoiceCodec::Pcmu,
            payload_type: 0,
            dtmf_payload_type: Some(101),
            send: true,
            receive: true,
        };
        lobby
            .add(now, SystemTime::now(), 1u64, media, prompt.into())
            .unwrap();
        let mut dec = VoiceDecoder::new(VoiceCodec::Pcmu).unwrap();
        let mut heard = Vec::new();
        for i in 0..40 {
            lobby.handle_timeout(now + TICK * i);
            while let Some(t) = lobby.poll_transmit() {
                assert_eq!(t.destination, phone);
                dec.decode(RtpPacket::parse(&t.contents).unwrap().payload(), &mut heard);
            }
        }
        // Half a second of prompt, then the pause.
        assert!(
            power(&heard[4_800..19_200], 660.0) > 1e5,
            "the prompt is heard"
        );
        assert!(
            power(&heard[heard.len() - 9_600..], 660.0) < 1e3,
            "then quiet"
        );
        let press = |ts: u32, event: u8| {
            RtpPacketBuilder::<&[u8], &[u8]>::new()
                .payload_type(101)
                .timestamp(ts)
                .ssrc(9)
                .payload(&[event, 0x80 | 10, 0, 160][..])
                .write_vec()
                .unwrap()
        };
        assert!(lobby.handle_receive(now, phone, &press(100, 4)));
        assert!(lobby.handle_receive(now, phone, &press(100, 4)));
        assert!(lobby.handle_receive(now, phone, &press(200, 11)));
        assert!(!lobby.handle_receive(now, "10.0.0.8:4000".parse().unwrap(), &press(300, 1)));
        let keys: Vec<char> = std::iter::from_fn(|| lobby.poll_event())
            .map(|e| e.digit)
            .collect();
        assert_eq!(keys, vec!['4', '#']);
        lobby.remove(1);
        assert_eq!(lobby.poll_timeout(), None);
    }
}
