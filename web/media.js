// A participant's WebRTC connection to the server (docs/protocol.md 5.4a), shared by both
// consoles: perfect negotiation on the session's WebSocket, the microphone on one audio
// transceiver (so joining the call needs no renegotiation), screen, application and camera
// tracks, the three data channels, and the received streams by the server's stream id.

export class MediaLink {
  // `conn`: a Connection (tandem.js). `on`: { stream(id, MediaStream), streamEnded(id),
  // channel(label, data), audio(MediaStream), state(string), error(text) }.
  constructor(conn, on) {
    this.conn = conn;
    this.on = on;
    this.pc = null;
    this.channels = {};
    this.purposes = new Map(); // our video track -> 'camera' | 'screen'
    this.mic = null;
    this.voidOffers = 0;
    this.makingOffer = false;
    this.negotiation = Promise.resolve();
  }

  // Every step of negotiation, ours or the server's, runs in turn.
  inTurn(step) {
    // Once this page closed its media (the session is over for it), a step still under way
    // fails on the closed connection: that is no news for the person.
    this.negotiation = this.negotiation.then(step).catch((err) => { if (!this.closed) this.on.error?.(String(err)); });
    return this.negotiation;
  }

  async connect() {
    this.closed = false;
    const pc = new RTCPeerConnection();
    this.pc = pc;
    this.voidOffers = 0;
    pc.onconnectionstatechange = () => this.on.state?.(pc.connectionState);
    pc.ontrack = (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      if (e.track.kind === 'audio') {
        this.on.audio?.(stream);
        return;
      }
      this.on.stream?.(stream.id, stream);
      // The server takes a track off by renegotiating: the stream loses it.
      stream.onremovetrack = () => { if (!stream.getTracks().length) this.on.streamEnded?.(stream.id); };
    };
    for (const label of ['control', 'pointer', 'annotation']) {
      const ch = pc.createDataChannel(label);
      ch.onmessage = (e) => this.on.channel?.(label, String(e.data));
      this.channels[label] = ch;
    }
    this.audio = pc.addTransceiver('audio', { direction: 'sendrecv' });
    if (this.mic) await this.audio.sender.replaceTrack(this.mic);
    for (const [track, purpose] of this.purposes) pc.addTransceiver(track, { direction: 'sendonly' });
    pc.onnegotiationneeded = () => this.inTurn(() => this.offer());
    await this.inTurn(() => this.offer());
  }

  // Frames of the WebSocket that belong to media; returns true if it was one.
  handle(m) {
    if (m.type === 'media_offer') {
      this.inTurn(() => this.answerServer(m));
      return true;
    }
    if (m.type === 'media_closed') {
      // The server dropped this connection: a new one, with what we send.
      this.pc?.close();
      this.connect();
      return true;
    }
    return false;
  }

  async answerServer(m) {
    const pc = this.pc;
    if (!pc || this.makingOffer || pc.signalingState !== 'stable' || m.offer <= this.voidOffers) return;
    await pc.setRemoteDescription({ type: 'offer', sdp: m.sdp });
    await pc.setLocalDescription();
    this.conn.ws.send(JSON.stringify({ type: 'media_answer', offer: m.offer, sdp: pc.localDescription.sdp }));
  }

  async offer() {
    const pc = this.pc;
    // Not stable: the browser asks again (negotiationneeded) once it is.
    if (!pc || pc.signalingState !== 'stable') return;
    this.makingOffer = true;
    try {
      await pc.setLocalDescription();
      const video = {};
      for (const t of pc.getTransceivers()) {
        const track = t.sender.track;
        if (t.mid && track && this.purposes.has(track)) video[t.mid] = this.purposes.get(track);
      }
      const answer = await this.conn.request({ type: 'media_offer', sdp: pc.localDescription.sdp, video });
      if (answer.type !== 'media_answer') {
        // A lost connection is said by the page's connection line; the offer is made again
        // once it is back (revive), or the session is over.
        if (answer.code !== 'not_connected') this.on.error?.(answer.detail || 'the media offer was refused');
        if (pc.signalingState !== 'closed') await pc.setLocalDescription({ type: 'rollback' });
        return;
      }
      this.voidOffers = Math.max(this.voidOffers, answer.void_offers);
      await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    } finally {
      this.makingOffer = false;
    }
  }

  // The microphone on or off. The server decides who is heard (V3); this only decides whether
  // this page sends at all, and asks for the device only when it is first needed. `track`, if
  // given, is sent instead of the device (the browser tests' page sends a tone of its own).
  async setMicrophone(on, track = null) {
    if (track && track !== this.mic) {
      this.mic?.stop();
      this.mic = track;
    } else if (on && !this.mic) {
      const s = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
      this.mic = s.getAudioTracks()[0];
    }
    if (this.mic) this.mic.enabled = on;
    if (this.audio && this.audio.sender.track !== this.mic) await this.audio.sender.replaceTrack(this.mic);
    return this.mic;
  }

  // Sends a video track for `purpose` ('screen' or 'camera'); the offer says which.
  send(track, purpose) {
    this.purposes.set(track, purpose);
    this.pc.addTransceiver(track, { direction: 'sendonly' });
    track.addEventListener('ended', () => this.unsend(track));
  }

  unsend(track) {
    if (!this.purposes.delete(track)) return;
    track.stop();
    const sender = this.pc?.getSenders().find((s) => s.track === track);
    if (sender) this.pc.removeTrack(sender);
  }

  sending(purpose) {
    return [...this.purposes].filter(([, p]) => p === purpose).map(([t]) => t);
  }

  message(label, data) {
    const ch = this.channels[label];
    if (!ch || ch.readyState !== 'open') return false;
    ch.send(data);
    return true;
  }

  // After the page's WebSocket came back: a media connection that did not survive the absence
  // (ICE gave up) is made again, with what this page sends; the server replaces the old one.
  revive() {
    if (!this.pc || !['failed', 'closed'].includes(this.pc.connectionState)) return;
    this.pc.close();
    this.connect();
  }

  close() {
    this.closed = true;
    for (const t of this.purposes.keys()) t.stop();
    this.purposes.clear();
    this.mic?.stop();
    this.pc?.close();
    this.pc = null;
  }
}

// A level meter (0..1, smoothed RMS) on a stream, for the speaking indicator and the audio
// set-up check. `tick(level)` is called about ten times a second until `stop()`.
export function meter(stream, tick) {
  const ctx = new AudioContext();
  const src = ctx.createMediaStreamSource(stream);
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  src.connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(data);
    let sum = 0;
    for (const v of data) sum += v * v;
    tick(Math.min(1, Math.sqrt(sum / data.length) * 4));
  }, 100);
  return { stop: () => { clearInterval(timer); ctx.close(); } };
}
