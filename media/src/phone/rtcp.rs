//! RTCP for a phone's RTP session (RFC 3550 6, A.1, A.3, A.8): what was received from the
//! phone (losses, jitter, the time of its last sender report) and the compound report Tandem
//! sends it every few seconds. Sans-IO; packets are read and written with rtcp-types.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtcp_types::{
    Compound, CompoundBuilder, Packet, ReceiverReport, ReportBlock, ReportBlockBuilder,
    RtcpPacketWriter, RtcpPacketWriterExt, Sdes, SdesChunk, SdesItem, SenderReport,
};

/// How often a report is sent (RFC 3550 6.2's minimum for a two-party session).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);
/// Seconds from 1900 (NTP's epoch) to 1970.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// A jump forward of more than this is not taken as loss until confirmed (RFC 3550 A.1).
const MAX_DROPOUT: u16 = 3000;
/// A number this far behind is a late packet; between the two it is a jump.
const MAX_MISORDER: u16 = 100;

/// What has come from the phone's stream, for the report block about it.
#[derive(Debug, Default)]
pub struct Reception {
    ssrc: Option<u32>,
    base_seq: u32,
    max_seq: u16,
    /// Wraps of the sequence number, shifted left 16 (RFC 3550 A.1).
    cycles: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// After a large jump, the number that would confirm it (the jump's next packet).
    bad_seq: Option<u16>,
    /// The SSRC of the phone's last SR, the middle 32 bits of its NTP time, and when it came.
    last_sr: Option<(u32, u32, Instant)>,
}

impl Reception {
    /// The SSRC of the phone's stream, once its RTP has come.
    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }

    /// Starts counting again at `seq`: a new stream, or one that restarted its numbers.
    fn restart(&mut self, ssrc: u32, seq: u16) {
        *self = Self {
            ssrc: Some(ssrc),
            base_seq: u32::from(seq),
            max_seq: seq,
            received: 1,
            last_sr: self.last_sr,
            ..Self::default()
        };
    }

    /// An RTP packet from the phone (RFC 3550 A.1). A new SSRC (a restarted phone) starts the
    /// count again; so does a large jump in sequence numbers once the next packet confirms it
    /// (a phone renumbering after a re-INVITE), rather than counting the jump as lost.
    pub fn rtp(&mut self, ssrc: u32, seq: u16) {
        if self.ssrc != Some(ssrc) {
            self.restart(ssrc, seq);
            return;
        }
        let delta = seq.wrapping_sub(self.max_seq);
        if delta < MAX_DROPOUT {
            // In order, perhaps after a small gap; a smaller number is a wrap.
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(1 << 16);
            }
            self.max_seq = seq;
        } else if delta <= u16::MAX - MAX_MISORDER {
            if self.bad_seq == Some(seq) {
                self.restart(ssrc, seq);
            } else {
                self.bad_seq = Some(seq.wrapping_add(1));
            }
            return;
        }
        // Else a duplicate or a late packet: received, but not the newest.
        self.received = self.received.wrapping_add(1);
    }

    /// An RTCP compound packet from the phone: the time of its sender report, if it has one.
    /// Unreadable RTCP is ignored (it is counted by the caller).
    pub fn rtcp(&mut self, now: Instant, data: &[u8]) -> bool {
        let Ok(compound) = Compound::parse(data) else {
            return false;
        };
        for packet in compound {
            match packet {
                Ok(Packet::Sr(sr)) => {
                    self.last_sr = Some((sr.ssrc(), (sr.ntp_timestamp() >> 16) as u32, now));
                }
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        true
    }

    fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// The report block about the phone's stream (RFC 3550 6.4.1), `jitter` in timestamp
    /// units; `None` before the phone sent anything.
    fn block(&mut self, now: Instant, jitter: u32) -> Option<ReportBlockBuilder> {
        let ssrc = self.ssrc?;
        let expected = self
            .extended_max()
            .wrapping_sub(self.base_seq)
            .wrapping_add(1);
        let lost = i64::from(expected) - i64::from(self.received);
        // 24-bit signed, clamped.
        let cumulative = lost.clamp(-0x80_0000, 0x7f_ffff) as i32 as u32 & 0xff_ffff;
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        // Only an SR about the stream this block is about (RFC 3550 6.4.1).
        let (lsr, dlsr) = match self.last_sr.filter(|(of, _, _)| *of == ssrc) {
            Some((_, lsr, at)) => {
                let delay = now.saturating_duration_since(at).as_secs_f64() * 65536.0;
                (lsr, delay.min(f64::from(u32::MAX)) as u32)
            }
            None => (0, 0),
        };
        Some(
            ReportBlock::builder(ssrc)
                .fraction_lost(fraction)
                .cumulative_lost(cumulative)
                .extended_sequence_number(self.extended_max())
                .interarrival_jitter(jitter)
                .last_sender_report_timestamp(lsr)
                .delay_since_last_sender_report_timestamp(dlsr),
        )
    }
}

/// What Tandem has sent the phone, for its sender report.
#[derive(Clone, Copy, Debug)]
pub struct Sent {
    pub ssrc: u32,
    /// RTP packets and payload bytes since the stream began.
    pub packets: u32,
    pub octets: u32,
    /// The RTP timestamp that stands for `now`.
    pub rtp_timestamp: u32,
    /// Whether anything was sent since the last report (else a receiver report).
    pub sending: bool,
}

/// NTP time of `now`, given that `anchor` was `wall` (RFC 3550 4).
pub fn ntp(now: Instant, anchor: (Instant, SystemTime)) -> u64 {
    let wall = anchor.1 + now.saturating_duration_since(anchor.0);
    let since = wall.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs() + NTP_UNIX_OFFSET;
    let frac = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The compound report: SR (or RR when Tandem sent nothing lately) with a block about the
/// phone's stream, and SDES with our CNAME.
pub fn report(
    now: Instant,
    anchor: (Instant, SystemTime),
    sent: Sent,
    reception: &mut Reception,
    jitter: u32,
) -> Option<Vec<u8>> {
    let block = reception.block(now, jitter);
    let cname = format!("tandem-{:08x}", sent.ssrc);
    let sdes = Sdes::builder().add_chunk(
        SdesChunk::builder(sent.ssrc).add_item(SdesItem::builder(SdesItem::CNAME, &cname)),
    );
    let compound = if sent.sending {
        let mut sr = SenderReport::builder(sent.ssrc)
            .ntp_timestamp(ntp(now, anchor))
            .rtp_timestamp(sent.rtp_timestamp)
            .packet_count(sent.packets)
            .octet_count(sent.octets);
        if let Some(b) = block {
            sr = sr.add_report_block(b);
        }
        CompoundBuilder::default().add_packet(sr).add_packet(sdes)
    } else {
        let mut rr = ReceiverReport::builder(sent.ssrc);
        if let Some(b) = block {
            rr = rr.add_report_block(b);
        }
        CompoundBuilder::default().add_packet(rr).add_packet(sdes)
    };
    let size = compound.calculate_size().ok()?;
    let mut buf = vec![0; size];
    compound.write_into(&mut buf).ok()?;
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tandem sending nothing yet.
    const QUIET: Sent = Sent {
        ssrc: 1,
        packets: 0,
        octets: 0,
        rtp_timestamp: 0,
        sending: false,
    };

    /// The report block of the RR Tandem would send now.
    fn rr_block(r: &mut Reception) -> Option<(u8, u32, u32, u32)> {
        let bytes = report(Instant::now(), anchor(), QUIET, r, 0).unwrap();
        let Some(Ok(Packet::Rr(rr))) = Compound::parse(&bytes).unwrap().next() else {
            panic!("an RR")
        };
        rr.report_blocks().next().map(|b| {
            (
                b.fraction_lost(),
                b.cumulative_lost(),
                b.extended_sequence_number(),
                b.last_sender_report_timestamp(),
            )
        })
    }

    fn anchor() -> (Instant, SystemTime) {
        (
            Instant::now(),
            UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        )
    }

    #[test]
    fn losses_wraps_and_the_phones_sr_are_reported() {
        let t0 = Instant::now();
        let mut r = Reception::default();
        // 65530..=65535, then 0..=9 with 3 and 4 missing: 14 of 16 arrived, across a wrap.
        for seq in (65530..=65535).chain((0..=9).filter(|s| *s != 3 && *s != 4)) {
            r.rtp(7, seq);
        }
        // The phone's SR: its NTP time's middle bits become our LSR.
        let phone_sr = CompoundBuilder::default()
            .add_packet(SenderReport::builder(7).ntp_timestamp(0x1234_5678_9abc_def0));
        let mut buf = vec![0; phone_sr.calculate_size().unwrap()];
        phone_sr.write_into(&mut buf).unwrap();
        assert!(r.rtcp(t0, &buf));
        assert!(!r.rtcp(t0, b"\x80\xc8garbage"));

        let sent = Sent {
            ssrc: 99,
            packets: 250,
            octets: 40_000,
            rtp_timestamp: 1234,
            sending: true,
        };
        let later = t0 + Duration::from_millis(500);
        let bytes = report(later, anchor(), sent, &mut r, 80).unwrap();
        let mut packets = Compound::parse(&bytes).unwrap();
        let Some(Ok(Packet::Sr(sr))) = packets.next() else {
            panic!("an SR first")
        };
        assert_eq!(
            (sr.ssrc(), sr.packet_count(), sr.octet_count()),
            (99, 250, 40_000)
        );
        assert_eq!(sr.ntp_timestamp() >> 32, 1_800_000_000 + NTP_UNIX_OFFSET);
        let block = sr.report_blocks().next().unwrap();
        assert_eq!(block.ssrc(), 7);
        assert_eq!(block.cumulative_lost(), 2);
        // 2 of 16 lost, in 256ths.
        assert_eq!(block.fraction_lost(), 32);
        assert_eq!(block.extended_sequence_number(), (1 << 16) + 9);
        assert_eq!(block.interarrival_jitter(), 80);
        assert_eq!(block.last_sender_report_timestamp(), 0x5678_9abc);
        assert_eq!(block.delay_since_last_sender_report_timestamp(), 32768);
        assert!(matches!(packets.next(), Some(Ok(Packet::Sdes(_)))));

        // Nothing lost since, nothing sent by us: an RR with a zero fraction.
        r.rtp(7, 10);
        let quiet = Sent {
            sending: false,
            ..sent
        };
        let bytes = report(later, anchor(), quiet, &mut r, 80).unwrap();
        let Some(Ok(Packet::Rr(rr))) = Compound::parse(&bytes).unwrap().next() else {
            panic!("an RR")
        };
        let block = rr.report_blocks().next().unwrap();
        assert_eq!((block.fraction_lost(), block.cumulative_lost()), (0, 2));
    }

    #[test]
    fn a_renumbered_stream_is_not_counted_as_lost_and_an_sr_counts_for_its_own_stream() {
        let mut r = Reception::default();
        for seq in 100..110 {
            r.rtp(7, seq);
        }
        // A lone packet far ahead is not taken as 20,000 lost...
        r.rtp(7, 20_000);
        // ...and a jump confirmed by the next packet starts the count again there.
        r.rtp(7, 30_000);
        r.rtp(7, 30_001);
        r.rtp(7, 30_002);
        // An SR from another SSRC says nothing about this stream.
        let other_sr = CompoundBuilder::default()
            .add_packet(SenderReport::builder(8).ntp_timestamp(0x1111_2222_3333_4444));
        let mut buf = vec![0; other_sr.calculate_size().unwrap()];
        other_sr.write_into(&mut buf).unwrap();
        assert!(r.rtcp(Instant::now(), &buf));
        assert_eq!(rr_block(&mut r), Some((0, 0, 30_002, 0)));
        // Late and duplicate packets are received, not new: one more than expected.
        r.rtp(7, 30_001);
        r.rtp(7, 30_003);
        assert_eq!(
            rr_block(&mut r),
            Some((0, -1i32 as u32 & 0xff_ffff, 30_003, 0))
        );
    }

    #[test]
    fn before_the_phone_sends_the_report_has_no_block() {
        assert_eq!(rr_block(&mut Reception::default()), None);
    }
}
