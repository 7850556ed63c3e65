//! The media workers' metrics: their names, once, and the functions the workers record them
//! with (docs/metrics.md). The phones' RTP counters are here too, since the workers carry
//! phone audio.

use std::time::Duration;

use metrics::{counter, gauge, histogram};
use tandem_media::phone::consent::Withheld;
use tandem_media::phone::counts::{PhoneCounts, PhoneDrop};
use tandem_media::sfu::SfuStats;

pub const COMMANDS_REFUSED: &str = "tandem_media_commands_refused_total";
pub const OFFERS_REFUSED: &str = "tandem_media_offers_refused_total";
pub const CALL_TICK: &str = "tandem_media_call_tick_seconds";
pub const CALL_FAILURES: &str = "tandem_media_call_failures_total";
pub const CALLS: &str = "tandem_media_calls";
pub const PEERS: &str = "tandem_media_peers";
pub const TRACKS: &str = "tandem_media_tracks";
pub const DISCONNECTS: &str = "tandem_media_disconnects_total";
pub const UNROUTED_DATAGRAMS: &str = "tandem_media_unrouted_datagrams_total";
pub const RTT: &str = "tandem_media_rtt_seconds";
pub const LOSS: &str = "tandem_media_loss_ratio";
pub const AUDIO_PACKETS: &str = "tandem_media_audio_packets_total";
pub const VIDEO_FRAMES: &str = "tandem_media_video_frames_total";
pub const FORWARDED_FRAMES: &str = "tandem_media_forwarded_frames_total";
pub const FORWARDED_BYTES: &str = "tandem_media_forwarded_bytes_total";
pub const KEYFRAME_REQUESTS: &str = "tandem_media_keyframe_requests_total";
pub const CHANNEL_MESSAGES: &str = "tandem_media_channel_messages_total";
pub const BAD_DATAGRAMS: &str = "tandem_media_bad_datagrams_total";
pub const DROPPED_BY_POLICY: &str = "tandem_media_dropped_by_policy_total";
pub const RECORDER_LOST_ITEMS: &str = "tandem_arf_lost_items_total";
pub const PHONE_RTP_PACKETS: &str = "tandem_sip_rtp_packets_total";
pub const PHONE_RTP_DROPPED: &str = "tandem_sip_rtp_dropped_total";
pub const PHONE_RTP_WITHHELD: &str = "tandem_sip_rtp_withheld_total";
pub const PHONE_SILENCE_PACKETS: &str = "tandem_sip_rtp_silence_packets_total";
pub const PHONE_RTCP_PACKETS: &str = "tandem_sip_rtcp_packets_total";
pub const PHONE_JITTER: &str = "tandem_sip_rtp_jitter_seconds";

/// A command waited for room in a worker's full queue and was refused.
pub fn command_refused() {
    counter!(COMMANDS_REFUSED).increment(1);
}

/// An SDP offer was refused.
pub fn offer_refused() {
    counter!(OFFERS_REFUSED).increment(1);
}

/// Advancing one call that was due took this long.
pub fn call_ticked(took: Duration) {
    histogram!(CALL_TICK).record(took.as_secs_f64());
}

/// A call panicked inside its worker and was dropped.
pub fn call_failed() {
    counter!(CALL_FAILURES).increment(1);
}

/// What one worker carries now; `worker` is its bound address.
pub fn worker_load(worker: &str, calls: usize, peers: usize, tracks: usize) {
    gauge!(CALLS, "worker" => worker.to_string()).set(calls as f64);
    gauge!(PEERS, "worker" => worker.to_string()).set(peers as f64);
    gauge!(TRACKS, "worker" => worker.to_string()).set(tracks as f64);
}

/// A participant's media connection was dropped by ICE or DTLS.
pub fn disconnected() {
    counter!(DISCONNECTS).increment(1);
}

/// A datagram that no call on the worker accepted.
pub fn unrouted_datagram() {
    counter!(UNROUTED_DATAGRAMS).increment(1);
}

/// A connection's RTCP figures: round-trip time, and the fractions lost each way.
pub fn connection_stats(rtt: Option<Duration>, loss_in: Option<f32>, loss_out: Option<f32>) {
    if let Some(rtt) = rtt {
        histogram!(RTT).record(rtt.as_secs_f64());
    }
    if let Some(l) = loss_in {
        histogram!(LOSS, "direction" => "in").record(f64::from(l));
    }
    if let Some(l) = loss_out {
        histogram!(LOSS, "direction" => "out").record(f64::from(l));
    }
}

/// What a call counted since its last report (`d`), with its phones' jitter when phone packets
/// arrived.
pub fn call_counted(d: SfuStats, phone_jitters: impl IntoIterator<Item = f64>) {
    counter!(AUDIO_PACKETS, "direction" => "in").increment(d.audio_in);
    counter!(AUDIO_PACKETS, "direction" => "out").increment(d.audio_out);
    counter!(VIDEO_FRAMES, "direction" => "in").increment(d.video_frames_in);
    counter!(FORWARDED_FRAMES).increment(d.video_frames_out);
    counter!(FORWARDED_BYTES).increment(d.video_bytes_out);
    counter!(KEYFRAME_REQUESTS).increment(d.keyframe_requests);
    counter!(CHANNEL_MESSAGES).increment(d.channel_messages_relayed);
    counter!(BAD_DATAGRAMS).increment(d.bad_datagrams);
    phones_counted(&d.phone);
    if d.phone.packets_in > 0 {
        for j in phone_jitters {
            histogram!(PHONE_JITTER).record(j);
        }
    }
    for (reason, n) in d.dropped {
        counter!(DROPPED_BY_POLICY, "reason" => reason.as_str()).increment(n);
    }
}

/// What phones' media counted since the last count (in a call, or at the service prompt).
pub fn phones_counted(d: &PhoneCounts) {
    counter!(PHONE_RTP_PACKETS, "direction" => "in").increment(d.packets_in);
    counter!(PHONE_RTP_PACKETS, "direction" => "out").increment(d.packets_out);
    counter!(PHONE_SILENCE_PACKETS).increment(d.silence_out);
    counter!(PHONE_RTCP_PACKETS, "direction" => "in").increment(d.rtcp_in);
    counter!(PHONE_RTCP_PACKETS, "direction" => "out").increment(d.rtcp_out);
    for why in PhoneDrop::ALL {
        counter!(PHONE_RTP_DROPPED, "reason" => why.as_str()).increment(d.dropped(why));
    }
    for why in Withheld::ALL {
        counter!(PHONE_RTP_WITHHELD, "reason" => why.as_str()).increment(d.withheld(why));
    }
}

/// The recorder's queue had no room for a media item.
pub fn recorder_item_lost() {
    counter!(RECORDER_LOST_ITEMS).increment(1);
}
