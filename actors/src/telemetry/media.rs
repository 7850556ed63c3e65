//! The media workers' metrics: their names, once, and the functions the workers record them
//! with (docs/metrics.md). The phones' RTP counters are here too, since the workers carry
//! phone audio.

use std::time::Duration;

use metrics::{counter, gauge, histogram};
use tandem_media::phone::consent::Withheld;
use tandem_media::phone::counts::{PhoneCounts, PhoneDrop};
use tandem_media::policy::DropReason;
use tandem_media::sfu::SfuStats;

use super::Metric;

pub const COMMANDS_REFUSED: &str = "tandem_media_commands_refused_total";
pub const OFFERS_REFUSED: &str = "tandem_media_offers_refused_total";
pub const CALL_TICK: &str = "tandem_media_call_tick_seconds";
pub const CALL_FAILURES: &str = "tandem_media_call_failures_total";
pub const CALLS: &str = "tandem_media_calls";
pub const PEERS: &str = "tandem_media_peers";
pub const TRACKS: &str = "tandem_media_tracks";
pub const DISCONNECTS: &str = "tandem_media_disconnects_total";
pub const DATAGRAMS: &str = "tandem_media_datagrams_total";
pub const SOCKET_CALLS: &str = "tandem_media_socket_calls_total";
pub const UNROUTED_DATAGRAMS: &str = "tandem_media_unrouted_datagrams_total";
pub const RTT: &str = "tandem_media_rtt_seconds";
pub const LOSS: &str = "tandem_media_loss_ratio";
pub const AUDIO_PACKETS: &str = "tandem_media_audio_packets_total";
pub const VOICE_CODEC: &str = "tandem_media_voice_codec_operations_total";
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

/// The media workers' metrics, for [`Metric::register`].
pub fn declared() -> Vec<Metric> {
    const IN_OUT: &[&str] = &["in", "out"];
    let drops: Vec<_> = PhoneDrop::ALL.iter().map(|w| w.as_str()).collect();
    let withheld: Vec<_> = Withheld::ALL.iter().map(|w| w.as_str()).collect();
    let policy: Vec<_> = DropReason::ALL.iter().map(|w| w.as_str()).collect();
    vec![
        Metric::counter(
            COMMANDS_REFUSED,
            "Commands to a media worker refused because its queue stayed full",
        ),
        Metric::counter(OFFERS_REFUSED, "SDP offers refused (malformed or unacceptable)"),
        Metric::histogram(
            CALL_TICK,
            &[
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
            ],
            "Time to advance one call that was due (its connections and its mixer tick)",
        ),
        Metric::counter(
            CALL_FAILURES,
            "Calls dropped because handling them panicked inside a media worker",
        ),
        Metric::gauge(CALLS, "Sessions with a call on each media worker"),
        Metric::gauge(PEERS, "Participants with a media connection, per media worker"),
        Metric::gauge(TRACKS, "Media tracks open, per media worker"),
        Metric::counter(
            DISCONNECTS,
            "Media connections dropped by ICE or DTLS failure or timeout",
        ),
        Metric::counter(
            DATAGRAMS,
            "UDP datagrams the media workers read (in) and the calls sent (out): every packet of every participant's connection and phone",
        )
        .label("direction", IN_OUT),
        Metric::counter(
            SOCKET_CALLS,
            "Reads (in: recvmmsg) and sends (out: sendmsg, with GSO for a run of datagrams) the media workers made on their sockets; datagrams per call is the batching",
        )
        .label("direction", IN_OUT),
        Metric::counter(
            UNROUTED_DATAGRAMS,
            "UDP datagrams no participant's connection accepted",
        ),
        Metric::histogram(
            RTT,
            &[0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.0],
            "Round-trip time to participants, from transport-wide congestion control (TWCC) feedback",
        ),
        Metric::histogram(
            LOSS,
            &[0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0],
            "Fraction lost of what participants send us (in) and we send them (out), from TWCC feedback",
        )
        .label("direction", IN_OUT),
        Metric::counter(
            AUDIO_PACKETS,
            "Opus packets received from participants (in) and mixes sent to them (out)",
        )
        .label("direction", IN_OUT),
        Metric::counter(
            VOICE_CODEC,
            "The voice mixer's Opus work: packets decoded, mixes encoded, and mixes passed on as one sender's packet with neither",
        )
        .label("operation", &["decode", "encode", "pass"]),
        Metric::counter(VIDEO_FRAMES, "Video frames received from participants")
            .label("direction", &["in"]),
        Metric::counter(FORWARDED_FRAMES, "Video frames forwarded, one per receiver"),
        Metric::counter(FORWARDED_BYTES, "Video payload bytes forwarded"),
        Metric::counter(KEYFRAME_REQUESTS, "Keyframe requests sent to video senders"),
        Metric::counter(CHANNEL_MESSAGES, "Data channel messages relayed"),
        Metric::counter(
            BAD_DATAGRAMS,
            "Datagrams from a participant's address that its connection could not use",
        ),
        Metric::counter(
            DROPPED_BY_POLICY,
            "Media and channel messages not passed on, by the session rule that held them back",
        )
        .label("reason", &policy),
        Metric::counter(
            RECORDER_LOST_ITEMS,
            "Media items the recorder's queue had no room for",
        ),
        Metric::counter(PHONE_RTP_PACKETS, "RTP packets from (in) and to (out) phones")
            .label("direction", IN_OUT),
        Metric::counter(PHONE_RTP_DROPPED, "Phone datagrams not used, by why").label("reason", &drops),
        Metric::counter(
            PHONE_RTP_WITHHELD,
            "RTP and RTCP due to a phone and not sent, as it has not consented",
        )
        .label("reason", &withheld),
        Metric::counter(
            PHONE_SILENCE_PACKETS,
            "RTP silence sent to phones while they had nothing to hear",
        ),
        Metric::counter(
            PHONE_RTCP_PACKETS,
            "RTCP compound packets from phones (in) and Tandem's reports to them (out)",
        )
        .label("direction", IN_OUT),
        Metric::histogram(
            PHONE_JITTER,
            &[0.001, 0.002_5, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25],
            "Each phone's RFC 3550 interarrival jitter, sampled when its packets arrive",
        ),
    ]
}

/// A command waited for room in a worker's full queue and was refused.
pub fn command_refused() {
    counter!(COMMANDS_REFUSED).increment(1);
}

/// An SDP offer was refused.
pub fn offer_refused() {
    counter!(OFFERS_REFUSED).increment(1);
}

/// Advancing one call that was due took this long. On the per-pass path, so its handle is
/// looked up once and held (the recorder is installed before any worker runs).
pub fn call_ticked(took: Duration) {
    static TICK: std::sync::OnceLock<metrics::Histogram> = std::sync::OnceLock::new();
    TICK.get_or_init(|| histogram!(CALL_TICK))
        .record(took.as_secs_f64());
}

/// A call panicked inside its worker and was dropped.
pub fn call_failed() {
    counter!(CALL_FAILURES).increment(1);
}

/// What one worker carries now; `worker` is its index in the pool (0, 1, ...), which stays the
/// same across restarts and port changes, unlike its address.
pub fn worker_load(worker: usize, calls: usize, peers: usize, tracks: usize) {
    let worker = worker.to_string();
    gauge!(CALLS, "worker" => worker.clone()).set(calls as f64);
    gauge!(PEERS, "worker" => worker.clone()).set(peers as f64);
    gauge!(TRACKS, "worker" => worker).set(tracks as f64);
}

/// A participant's media connection was dropped by ICE or DTLS.
pub fn disconnected() {
    counter!(DISCONNECTS).increment(1);
}

/// Datagrams a worker read and its calls sent since its last report, and the socket calls
/// that read and sent them.
pub fn datagrams(read: u64, sent: u64, read_calls: u64, send_calls: u64) {
    counter!(DATAGRAMS, "direction" => "in").increment(read);
    counter!(DATAGRAMS, "direction" => "out").increment(sent);
    counter!(SOCKET_CALLS, "direction" => "in").increment(read_calls);
    counter!(SOCKET_CALLS, "direction" => "out").increment(send_calls);
}

/// A datagram that no call on the worker accepted (per datagram: the handle is held).
pub fn unrouted_datagram() {
    static UNROUTED: std::sync::OnceLock<metrics::Counter> = std::sync::OnceLock::new();
    UNROUTED
        .get_or_init(|| counter!(UNROUTED_DATAGRAMS))
        .increment(1);
}

/// A connection's figures from str0m's peer stats, every few seconds: round-trip time and the
/// fractions lost each way. str0m computes all three from transport-wide congestion control
/// (TWCC) feedback, not from RTCP receiver reports: a client that did not negotiate
/// transport-cc gives none.
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
    counter!(VOICE_CODEC, "operation" => "decode").increment(d.voice_decodes);
    counter!(VOICE_CODEC, "operation" => "encode").increment(d.voice_encodes);
    counter!(VOICE_CODEC, "operation" => "pass").increment(d.voice_passed);
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

/// Logs, once per phone leg, that its RTP came from another address than its SDP names.
pub(crate) fn log_wrong_address(leg: &str, report: tandem_media::phone::WrongAddress) {
    tracing::warn!(
        leg,
        sdp_address = %report.expected,
        rtp_from = %report.actual,
        "a phone's RTP comes from another address than its SDP names and is dropped: Tandem \
         takes RTP only from the SDP's address (docs/sip.md, NAT)"
    );
}
