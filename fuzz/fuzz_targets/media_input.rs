//! Any SDP or datagram a participant can send to the media plane: as an offer, as an answer to
//! the server's offer, as a UDP datagram to a connected call (STUN, DTLS, SRTP demultiplexing
//! and parsing), as a datagram from an address nobody is known at (what the worker reads of it
//! to find its call, and what the call says it would take), as a G.711 or G.722 phone's RTP
//! payload of any size (decoded, chunked and mixed at the phones' rate or at 48 kHz), and as a
//! data channel message. Nothing may panic; the call keeps its peers.
#![no_main]

use std::cell::{Cell, RefCell};
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use tandem_media::client::{Synthetic, VideoConfig};
use tandem_media::policy::{ChannelKind, TrackPurpose};
use tandem_media::sfu::{Claim, Datagram};
use tandem_media::testkit::phone_media;
use tandem_media::testkit::sim::{SFU, World};
use tandem_media::voice_codec::VoiceCodec;

/// The phones of the call: a G.711 one and a G.722 one, both holding microphones.
const PHONES: [(u8, &str, VoiceCodec, u8); 2] = [
    (4, "10.7.7.4:4000", VoiceCodec::Pcmu, 0),
    (5, "10.7.7.5:4000", VoiceCodec::G722, 9),
];

thread_local! {
    /// The phones' RTP sequence numbers.
    static SEQ: Cell<u16> = const { Cell::new(0) };
    /// A call of three, connected once (DTLS per input would be too slow), with a share running.
    static WORLD: RefCell<World> = RefCell::new({
        let mut w = World::new();
        w.join(1, Some(440.0), vec![]);
        w.join(
            2,
            None,
            vec![VideoConfig::synthetic(
                TrackPurpose::Screen,
                Synthetic { frame_bytes: 1000, fps: 15, keyframe_every: 30 },
            )],
        );
        w.join(3, None, vec![]);
        for (key, at, codec, payload_type) in PHONES {
            let mut media = phone_media(at.parse().unwrap());
            (media.codec, media.payload_type) = (codec, payload_type);
            let now = w.now;
            w.sfu.add_phone(now, SystemTime::now(), key, media).unwrap();
        }
        w.set_policy(|p| {
            p.voice_members = [1, 2, 3, 4, 5].into();
            p.speakers = [1, 4, 5].into();
            p.screens = [2].into();
            p.control = Some((1, 2));
        });
        w.run(Duration::from_secs(2));
        w
    });
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    WORLD.with(|w| {
        let mut w = w.borrow_mut();
        let now = w.now;
        let text = String::from_utf8_lossy(rest);
        match mode % 4 {
            0 => {
                let _ = w.sfu.accept_offer(now, 9, &text, &Default::default());
                w.sfu.remove_peer(9);
            }
            1 => {
                let _ = w.sfu.accept_answer(now, 3, u64::from(mode), &text);
            }
            2 if mode & 12 == 8 => {
                // A phone's RTP of this payload, the phone chosen by the mode.
                let (_, at, _, payload_type) = PHONES[usize::from(mode >> 4) % PHONES.len()];
                let seq = SEQ.with(|s| {
                    s.set(s.get().wrapping_add(1));
                    s.get()
                });
                let mut rtp = vec![0x80, payload_type, (seq >> 8) as u8, seq as u8];
                rtp.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
                rtp.extend_from_slice(&[0, 0, 0, u8::from(payload_type == 9) + 1]);
                rtp.extend_from_slice(rest);
                w.sfu
                    .handle_receive(now, at.parse().unwrap(), SFU.parse().unwrap(), &rtp);
            }
            2 if mode & 4 == 0 => {
                let from = w.client(1).addr();
                w.sfu.handle_receive(now, from, SFU.parse().unwrap(), rest);
            }
            2 => {
                let from = "10.9.9.9:5555".parse().unwrap();
                let datagram = Datagram::new(now, from, SFU.parse().unwrap(), rest);
                let _ = datagram.stun();
                if w.sfu.claim(&datagram) != Claim::No {
                    w.sfu.handle_receive(now, from, SFU.parse().unwrap(), rest);
                }
            }
            _ => {
                w.send(1, ChannelKind::Annotation, rest);
            }
        }
        w.run(Duration::from_millis(5));
        assert!(w.sfu.peer_count() >= 2, "the call lost its peers");
    });
});
