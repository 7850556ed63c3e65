//! What phones' media counted: one leg's, and summed over a call's or the service prompt's legs
//! (those gone included), for the workers' metrics.

use super::consent::Withheld;

/// Why a datagram from (or for) a phone was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PhoneDrop {
    /// Neither RTP nor readable RTCP.
    Unreadable,
    /// RTP of a payload type that was not agreed.
    PayloadType,
    /// The phone's RTP from another address than its SDP names (a NAT, or a phone that does
    /// not send from where it receives): Tandem takes RTP only from the SDP's address.
    WrongAddress,
}

impl PhoneDrop {
    pub const ALL: [Self; 3] = [Self::Unreadable, Self::PayloadType, Self::WrongAddress];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unreadable => "unreadable",
            Self::PayloadType => "payload_type",
            Self::WrongAddress => "wrong_address",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PhoneCounts {
    /// RTP of an agreed payload type from the phone.
    pub packets_in: u64,
    /// RTP sent with audio (the mix, a prompt), and with silence while there was none.
    pub packets_out: u64,
    pub silence_out: u64,
    pub rtcp_in: u64,
    pub rtcp_out: u64,
    /// Datagrams not used, by [`PhoneDrop`] (indexed as [`PhoneDrop::ALL`]).
    dropped: [u64; 3],
    /// RTP and RTCP due to the phone and not sent, by [`Withheld`] (as [`Withheld::ALL`]).
    withheld: [u64; 3],
}

impl PhoneCounts {
    pub fn dropped(&self, why: PhoneDrop) -> u64 {
        self.dropped[why as usize]
    }

    pub fn withheld(&self, why: Withheld) -> u64 {
        self.withheld[why as usize]
    }

    pub(crate) fn drop_one(&mut self, why: PhoneDrop) {
        self.dropped[why as usize] += 1;
    }

    pub(crate) fn withhold_one(&mut self, why: Withheld) {
        self.withheld[why as usize] += 1;
    }

    /// Adds `other` to these.
    pub fn add(&mut self, other: &PhoneCounts) {
        self.packets_in += other.packets_in;
        self.packets_out += other.packets_out;
        self.silence_out += other.silence_out;
        self.rtcp_in += other.rtcp_in;
        self.rtcp_out += other.rtcp_out;
        for i in 0..3 {
            self.dropped[i] += other.dropped[i];
            self.withheld[i] += other.withheld[i];
        }
    }

    /// What was counted between `earlier` and these.
    pub fn since(&self, earlier: &PhoneCounts) -> PhoneCounts {
        PhoneCounts {
            packets_in: self.packets_in - earlier.packets_in,
            packets_out: self.packets_out - earlier.packets_out,
            silence_out: self.silence_out - earlier.silence_out,
            rtcp_in: self.rtcp_in - earlier.rtcp_in,
            rtcp_out: self.rtcp_out - earlier.rtcp_out,
            dropped: std::array::from_fn(|i| self.dropped[i] - earlier.dropped[i]),
            withheld: std::array::from_fn(|i| self.withheld[i] - earlier.withheld[i]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_and_subtract_by_reason() {
        let mut a = PhoneCounts::default();
        a.drop_one(PhoneDrop::WrongAddress);
        a.withhold_one(Withheld::Unverified);
        a.packets_in = 3;
        let mut total = PhoneCounts::default();
        total.add(&a);
        total.add(&a);
        assert_eq!(total.dropped(PhoneDrop::WrongAddress), 2);
        assert_eq!(total.dropped(PhoneDrop::PayloadType), 0);
        let d = total.since(&a);
        assert_eq!(d, a);
        for (i, w) in Withheld::ALL.iter().enumerate() {
            assert_eq!(*w as usize, i);
        }
        for (i, p) in PhoneDrop::ALL.iter().enumerate() {
            assert_eq!(*p as usize, i);
        }
    }
}
