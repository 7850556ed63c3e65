//! A participant's media connection for the tests: the str0m client of tandem-media on a real UDP
//! socket on loopback, negotiated over the participant's WebSocket.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tandem_media::client::{Client, ClientConfig, Pattern, VideoConfig};
use tandem_media::policy::ChannelKind;
use tandem_media::tone::power as tone_power;
use tokio::net::UdpSocket;

use super::Ws;

/// A participant's media connection, running in its own task until dropped.
pub struct Phone {
    client: Arc<Mutex<Client>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Phone {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Phone {
    /// Negotiates over `ws` and speaks `tone` (Hz) every 20 ms once connected.
    pub async fn connect(ws: &mut Ws, tone: f64) -> Phone {
        Self::connect_with_video(ws, tone, vec![]).await
    }

    /// Negotiates over `ws` and only listens: sends no audio.
    pub async fn listen(ws: &mut Ws) -> Phone {
        Self::negotiate(ws, None, vec![], None).await
    }

    /// Negotiates over `ws` as `config` says (Tandem Helper's [`ClientConfig::helper`], say),
    /// sending `video`.
    pub async fn connect_as(ws: &mut Ws, config: ClientConfig, video: Vec<VideoConfig>) -> Phone {
        Self::negotiate_as(ws, config, video, None).await
    }

    /// As [`Self::connect`], also sending `video` (synthetic frames, e.g. a screen share).
    pub async fn connect_with_video(ws: &mut Ws, tone: f64, video: Vec<VideoConfig>) -> Phone {
        Self::negotiate(ws, Some(tone), video, None).await
    }

    /// Negotiates over `ws` with the tracks of `video` and sends `pattern` (real frames on the
    /// track of its purpose, beeps for audio) once connected: media whose sync can be measured.
    pub async fn connect_with_pattern(
        ws: &mut Ws,
        video: Vec<VideoConfig>,
        pattern: Pattern,
    ) -> Phone {
        Self::negotiate(ws, None, video, Some(pattern)).await
    }

    async fn negotiate(
        ws: &mut Ws,
        tone: Option<f64>,
        video: Vec<VideoConfig>,
        pattern: Option<Pattern>,
    ) -> Phone {
        let config = ClientConfig {
            tone,
            ..ClientConfig::default()
        };
        Self::negotiate_as(ws, config, video, pattern).await
    }

    async fn negotiate_as(
        ws: &mut Ws,
        config: ClientConfig,
        video: Vec<VideoConfig>,
        pattern: Option<Pattern>,
    ) -> Phone {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let (mut client, offer, video) = Client::new(Instant::now(), addr, config, video).unwrap();
        if let Some(pattern) = pattern {
            client.send_pattern(pattern).unwrap();
        }
        let answer = ws
            .request(json!({"type": "media_offer", "sdp": offer, "video": video}))
            .await;
        assert_eq!(answer["type"], "media_answer", "{answer}");
        client
            .accept_answer(
                Instant::now(),
                answer["sdp"].as_str().unwrap(),
                answer["void_offers"].as_u64().unwrap(),
            )
            .unwrap();
        let phone = Phone {
            client: Arc::new(Mutex::new(client)),
            stop: Arc::default(),
        };
        let (client, stop) = (phone.client.clone(), phone.stop.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                let wake = {
                    let mut c = client.lock().unwrap();
                    let now = Instant::now();
                    if c.poll_timeout() <= now {
                        c.handle_timeout(now).unwrap();
                    }
                    while let Some(t) = c.poll_transmit() {
                        let _ = socket.try_send_to(&t.contents, t.destination);
                    }
                    c.poll_timeout()
                };
                tokio::select! {
                    r = socket.recv_from(&mut buf) => {
                        let (n, source) = r.unwrap();
                        let mut c = client.lock().unwrap();
                        c.handle_receive(Instant::now(), source, &buf[..n]).unwrap();
                        while let Some(t) = c.poll_transmit() {
                            let _ = socket.try_send_to(&t.contents, t.destination);
                        }
                    }
                    _ = tokio::time::sleep_until(wake.max(Instant::now()).into()) => {}
                }
            }
        });
        phone
    }

    pub fn connected(&self) -> bool {
        self.client.lock().unwrap().connected
    }

    /// When the pattern this phone sends started, once it has.
    pub fn pattern_origin(&self) -> Option<Instant> {
        self.client.lock().unwrap().pattern_origin()
    }

    /// Tone power over the last half second heard.
    pub fn recent(&self, freq: f64) -> f64 {
        let c = self.client.lock().unwrap();
        let heard = &c.heard;
        if heard.len() < 24_000 {
            return 0.0;
        }
        tone_power(&heard[heard.len() - 24_000..], freq)
    }

    /// Root-mean-square level of the last half second heard (0 when less was heard): what
    /// tells speech from silence when the sound is not a known tone.
    pub fn loudness(&self) -> f64 {
        let c = self.client.lock().unwrap();
        let heard = &c.heard;
        if heard.len() < 24_000 {
            return 0.0;
        }
        let tail = &heard[heard.len() - 24_000..];
        (tail.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / tail.len() as f64).sqrt()
    }

    pub fn packets(&self) -> u64 {
        self.client.lock().unwrap().audio_packets_in
    }

    /// Answers the server's next `media_offer` on `ws` (video to receive added or removed).
    pub async fn answer_offer(&self, ws: &mut Ws) {
        let offer = ws.frame("media_offer").await;
        let number = offer["offer"].as_u64().unwrap();
        let answer = self
            .client
            .lock()
            .unwrap()
            .accept_offer(Instant::now(), number, offer["sdp"].as_str().unwrap())
            .unwrap()
            .expect("an offer this phone can answer");
        ws.send(json!({"type": "media_answer", "offer": number, "sdp": answer}))
            .await;
    }

    /// Frames received so far on each video track, by the server's stream id
    /// (`<purpose>-<participant>`).
    pub fn video_frames(&self) -> Vec<(String, u64)> {
        let c = self.client.lock().unwrap();
        c.video_in
            .values()
            .map(|v| (v.stream.clone(), v.frames))
            .collect()
    }

    /// Sends text on the data channel of `kind`; false if it is not open.
    pub fn send_channel(&self, kind: ChannelKind, text: &str) -> bool {
        self.client
            .lock()
            .unwrap()
            .send_channel(Instant::now(), kind, text.as_bytes())
    }

    /// The texts received on the data channel of `kind`, in order.
    pub fn channel_texts(&self, kind: ChannelKind) -> Vec<String> {
        let c = self.client.lock().unwrap();
        c.channel_in
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, d)| String::from_utf8_lossy(d).into_owned())
            .collect()
    }
}

/// Waits (up to the harness's patience) for a condition on live media.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + super::PATIENCE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A voice call of two: a session of `csr` with the customer Dave, the call started by the CSR
/// (who holds the microphone) and joined by Dave, both connected: the CSR's phone speaks 440 Hz,
/// Dave's 1000 Hz.
pub struct Call {
    pub session: serde_json::Value,
    pub csr: Ws,
    pub dave: Ws,
    pub csr_phone: Phone,
    pub dave_phone: Phone,
}

pub async fn two_party_call(t: &super::TestServer, csr: &super::Account, topic: &str) -> Call {
    let (session, mut csr, mut dave) = voice_call(t, csr, topic).await;
    let csr_phone = Phone::connect(&mut csr, 440.0).await;
    let dave_phone = Phone::connect(&mut dave, 1000.0).await;
    eventually("both are connected", || {
        csr_phone.connected() && dave_phone.connected()
    })
    .await;
    Call {
        session,
        csr,
        dave,
        csr_phone,
        dave_phone,
    }
}

/// A session of `csr` with the customer Dave, both in the voice call the CSR started (the CSR
/// holding the microphone), before any media connection: the session and the two WebSockets.
pub async fn voice_call(
    t: &super::TestServer,
    csr: &super::Account,
    topic: &str,
) -> (serde_json::Value, Ws, Ws) {
    let session = t.start_session(csr, topic).await;
    let mut csr = t.connect(&session).await;
    let c = t
        .join_by_number(session["session"]["number"].as_str().unwrap(), "Dave")
        .await;
    let mut dave = t.connect(&c).await;
    csr.cmd(json!({"type": "start_voice_call"})).await.unwrap();
    dave.cmd(json!({"type": "join_voice"})).await.unwrap();
    (session, csr, dave)
}
