//! Phones that called the service number and are not in a session yet (SPEC V5): each hears a
//! prompt, over and over with a pause between, while it keys in a session number (RFC 4733).
//! Sans-IO, like the [`Sfu`](crate::sfu::Sfu) beside it on a media worker. The prompt plays
//! only to a phone that consents ([`super::consent`]): until then it waits at its start.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::mix::FRAME_SAMPLES;
use crate::phone::counts::PhoneCounts;
use crate::phone::{PhoneInput, PhoneLeg, PhoneMedia, WrongAddress};
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
pub enum LobbyEvent<K> {
    /// A key pressed.
    Dtmf { leg: K, digit: char },
    /// The phone's RTP came from another address than its SDP names (once per leg).
    WrongAddress { leg: K, report: WrongAddress },
}

pub struct Lobby<K> {
    local: SocketAddr,
    legs: BTreeMap<K, Waiting>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<LobbyEvent<K>>,
    next_tick: Option<Instant>,
    /// What the legs gone counted.
    retired: PhoneCounts,
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
            retired: PhoneCounts::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.legs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.legs.is_empty()
    }

    /// What the phones that waited here so far counted.
    pub fn counts(&self) -> PhoneCounts {
        let mut c = self.retired.clone();
        for w in self.legs.values() {
            c.add(w.leg.counts());
        }
        c
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
        if let Some(w) = self.legs.remove(&key) {
            self.retired.add(w.leg.counts());
        }
        if self.legs.is_empty() {
            self.next_tick = None;
        }
    }

    /// A datagram; false if it is no waiting phone's.
    pub fn handle_receive(&mut self, now: Instant, source: SocketAddr, data: &[u8]) -> bool {
        let own = super::owner(self.legs.iter().map(|(k, w)| (*k, &w.leg)), source, data);
        let Some((key, w)) = own.and_then(|k| Some((k, self.legs.get_mut(&k)?))) else {
            return false;
        };
        for input in w.leg.receive(now, source, data, false) {
            if let PhoneInput::Dtmf(digit) = input {
                self.events.push_back(LobbyEvent::Dtmf { leg: key, digit });
            }
        }
        if let Some(report) = w.leg.take_report() {
            self.events
                .push_back(LobbyEvent::WrongAddress { leg: key, report });
        }
        true
    }

    /// A datagram nobody on the worker took: true if it is a waiting phone's RTP from a wrong
    /// address (see [`PhoneLeg::stray`]).
    pub fn stray(&mut self, source: SocketAddr, data: &[u8]) -> bool {
        let Some((&key, w)) = self
            .legs
            .iter_mut()
            .find_map(|(k, w)| w.leg.stray(source, data).then_some((k, w)))
        else {
            return false;
        };
        if let Some(report) = w.leg.take_report() {
            self.events
                .push_back(LobbyEvent::WrongAddress { leg: key, report });
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
            if w.leg.consent(now).is_err() {
                // Nothing plays to an address that has not shown it wants it; it will hear
                // the prompt from its start once it has (the leg counts what it withheld).
                w.at = 0;
                w.quiet_until = None;
                frame.fill(0);
            } else if w.quiet_until.is_some_and(|t| now < t) {
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

    pub fn poll_event(&mut self) -> Option<LobbyEvent<K>> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::consent::Withheld;
    use crate::phone::counts::PhoneDrop;
    use crate::tone::{power, sine_frame};
    use crate::voice_codec::{VoiceCodec, VoiceDecoder};
    use rtp_types::{RtpPacket, RtpPacketBuilder};

    fn press(ts: u32, event: u8) -> Vec<u8> {
        RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(101)
            .timestamp(ts)
            .ssrc(9)
            .payload(&[event, 0x80 | 10, 0, 160][..])
            .write_vec()
            .unwrap()
    }

    #[test]
    fn a_waiting_phone_hears_its_prompt_once_it_consents_and_keys_in_digits() {
        let now = Instant::now();
        let phone: SocketAddr = "10.0.0.9:4000".parse().unwrap();
        let mut lobby = Lobby::new("192.0.2.1:7000".parse().unwrap());
        let prompt: Arc<[i16]> = (0..25)
            .flat_map(|i| sine_frame(660.0, 8000.0, i))
            .collect::<Vec<_>>()
            .into();
        let mut media = PhoneMedia {
            remote: phone,
            rtcp: phone,
            codec: VoiceCodec::Pcmu,
            payload_type: 0,
            dtmf_payload_type: Some(101),
            send: true,
            receive: true,
            confirmed: false,
            signalling: None,
        };
        lobby
            .add(now, SystemTime::now(), 1u64, media.clone(), prompt.clone())
            .unwrap();
        // Not acknowledged yet: no prompt, though the phone already keys in.
        for i in 0..25 {
            lobby.handle_timeout(now + TICK * i);
        }
        assert!(lobby.handle_receive(now, phone, &press(100, 4)));
        assert!(lobby.handle_receive(now, phone, &press(100, 4)));
        assert!(lobby.handle_receive(now, phone, &press(200, 11)));
        assert!(!lobby.handle_receive(now, "10.0.0.8:4000".parse().unwrap(), &press(300, 1)));
        assert_eq!(lobby.poll_transmit(), None, "nothing before the ACK");
        assert!(lobby.counts().withheld(Withheld::Unacknowledged) >= 25);
        let keys: Vec<LobbyEvent<u64>> = std::iter::from_fn(|| lobby.poll_event()).collect();
        assert_eq!(
            keys,
            vec![
                LobbyEvent::Dtmf { leg: 1, digit: '4' },
                LobbyEvent::Dtmf { leg: 1, digit: '#' }
            ]
        );
        // The ACK: the prompt plays from its start.
        media.confirmed = true;
        let later = now + TICK * 25;
        lobby
            .add(later, SystemTime::now(), 1, media, prompt)
            .unwrap();
        let mut dec = VoiceDecoder::new(VoiceCodec::Pcmu).unwrap();
        let mut heard = Vec::new();
        for i in 0..40 {
            lobby.handle_timeout(later + TICK * i);
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
        assert!(lobby.counts().packets_out >= 40);
        lobby.remove(1);
        assert_eq!(lobby.poll_timeout(), None);
        assert!(
            lobby.counts().packets_out >= 40,
            "the phones gone still count"
        );
    }

    #[test]
    fn a_waiting_phones_rtp_from_elsewhere_is_reported_once() {
        let now = Instant::now();
        let phone: SocketAddr = "10.0.0.9:4000".parse().unwrap();
        let mut lobby = Lobby::new("192.0.2.1:7000".parse().unwrap());
        let media = PhoneMedia {
            remote: phone,
            rtcp: phone,
            codec: VoiceCodec::Pcmu,
            payload_type: 0,
            dtmf_payload_type: Some(101),
            send: true,
            receive: true,
            confirmed: true,
            signalling: None,
        };
        lobby
            .add(
                now,
                SystemTime::now(),
                7u64,
                media,
                Arc::from(vec![0i16; 960]),
            )
            .unwrap();
        let elsewhere: SocketAddr = "10.0.0.9:4100".parse().unwrap();
        assert!(!lobby.handle_receive(now, elsewhere, &press(1, 5)));
        assert!(lobby.stray(elsewhere, &press(1, 5)));
        assert!(lobby.stray(elsewhere, &press(2, 5)));
        assert!(!lobby.stray("10.0.0.8:4000".parse().unwrap(), &press(3, 5)));
        let report = WrongAddress {
            expected: phone,
            actual: elsewhere,
        };
        assert_eq!(
            std::iter::from_fn(|| lobby.poll_event()).collect::<Vec<_>>(),
            vec![LobbyEvent::WrongAddress { leg: 7, report }]
        );
        assert_eq!(lobby.counts().dropped(PhoneDrop::WrongAddress), 2);
        for i in 0..10 {
            lobby.handle_timeout(now + TICK * i);
        }
        assert_eq!(
            lobby.poll_transmit(),
            None,
            "it never sent from its own address"
        );
    }
}
