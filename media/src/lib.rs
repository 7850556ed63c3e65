//! Tandem's media plane, sans-IO (SPEC SYS2, SYS3, SYS5).
//!
//! Nothing here owns a socket, spawns a task or reads a clock: every entry point takes `now`, and
//! callers drain `poll_*`/`handle_timeout` as the doc of each part says. The media worker
//! (tandem-actors) drives it with a socket and the clock. Recording is not here: the
//! [`Sfu`](sfu::Sfu) hands copies of what it forwards ([`sfu::Recorded`]) to the recorder in
//! tandem-actors, which writes ARF files with tandem-arf.
//!
//! - [`client`]: a WebRTC peer of the SFU in str0m for programs that are not browsers: Tandem
//!   Helper (screen video, the `control` channel), the tests and the load generator.
//! - [`sfu`]: one session's WebRTC endpoint: a str0m `Rtc` per browser, video forwarded and
//!   renegotiated, data channels relayed, the voice call mixed, phones joined.
//! - [`policy`]: what the session's rules let through right now.
//! - [`sdp_candidates`]: the server's ICE candidates in every m-section of its SDP, ended.
//! - [`voice_mixer`]: every 20 ms, one listener mix and one mix-minus per speaker.
//! - [`jitter`]: one audio source's jitter buffer, feeding the mixer.
//! - [`mix`]: the integer arithmetic of mixing PCM frames.
//! - [`pcm_frame`]: a phone's 20 ms at 48 kHz and at its codec's own rate.
//! - [`phone`]: a SIP leg's audio over plain RTP (with its RTCP), and the lobby where phones wait
//!   for a session.
//! - [`voice_codec`]: the codecs phones speak, to and from the mixer's 48 kHz PCM.
//! - [`tone`]: pure tones, made and measured (the audio set-up check, tests).
//! - [`transmit`]: a datagram the worker's socket is to send.
//! - `testkit` (feature `testkit`, not in the server): an in-memory network joining the SFU and
//!   [`client`]s under simulated time, for tests, benches and fuzzing.

pub mod client;
pub mod jitter;
pub mod mix;
pub mod pcm_frame;
pub mod phone;
pub mod policy;
pub mod sdp_candidates;
pub mod sfu;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tone;
pub mod transmit;
pub mod voice_codec;
pub mod voice_mixer;
