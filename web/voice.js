// The voice call panel of both consoles (V1-V4): start and end (the primary CSR), join and
// leave (anyone), passing the microphone (the primary), speaker and microphone volume, the
// audio set-up check and the speaking indicator.
import { $, say } from '/assets/tandem.js';
import { meter } from '/assets/media.js';

const SPEAKING = 0.04;
let panels = 0;

export class VoicePanel {
  constructor(root, { conn, link, panel, staff }) {
    const n = ++panels;
    this.conn = conn;
    this.link = link;
    this.panel = panel;
    this.mine = 0;
    this.heard = 0;
    root.setAttribute('aria-labelledby', `voice-title-${n}`);
    root.innerHTML = `
      <h3 id="voice-title-${n}">Voice call</h3>
      <p class="voice-state" aria-live="polite">No voice call.</p>
      <div class="row">
        ${staff ? '<button type="button" data-act="start">Start voice call</button><button type="button" data-act="end" class="secondary">End voice call</button>' : ''}
        <button type="button" data-act="join">Join voice call</button>
        <button type="button" data-act="leave" class="secondary">Leave voice call</button>
      </div>
      ${staff ? `<div class="row staff-voice">
        <label for="pass-to-${n}">Microphone for</label>
        <select id="pass-to-${n}" class="pass-to"></select>
        <button type="button" data-act="pass">Pass microphone</button>
        <button type="button" data-act="take" class="secondary">Take microphone back</button>
      </div>` : ''}
      <details class="audio-setup">
        <summary>Audio settings and check</summary>
        <label for="speaker-${n}">Speaker volume</label>
        <input id="speaker-${n}" class="speaker" type="range" min="0" max="100" value="100">
        <label for="mic-volume-${n}">Microphone volume (%)</label>
        <input id="mic-volume-${n}" class="mic-volume" type="range" min="0" max="400" step="10" value="100">
        <label for="mic-level-${n}">Your microphone level</label>
        <meter id="mic-level-${n}" class="mic-level" min="0" max="1" value="0"></meter>
        <button type="button" data-act="test" class="secondary">Test speakers</button>
      </details>
      <audio class="call-audio" autoplay></audio>`;
    this.root = root;
    this.audio = $('.call-audio', root);
    const on = (act, f) => $(`[data-act="${act}"]`, root)?.addEventListener('click', f);
    on('start', () => conn.act({ type: 'start_voice_call' }));
    on('end', () => conn.act({ type: 'end_voice_call' }));
    on('join', () => conn.act({ type: 'join_voice' }));
    on('leave', () => conn.act({ type: 'leave_voice' }));
    on('pass', () => {
      const to = $('.pass-to', root).value;
      if (!to) say('Nobody else is in the call to pass the microphone to.', 'error');
      else conn.act({ type: 'pass_microphone', to });
    });
    on('take', () => {
      const v = panel.view;
      const from = (v.voice_call?.microphone_holders || []).find((id) => id !== panel.me);
      if (!from) say('Nobody else holds a microphone.', 'error');
      else conn.act({ type: 'take_microphone', from });
    });
    on('test', () => this.testSpeakers());
    $('.speaker', root).addEventListener('input', (e) => { this.audio.volume = e.target.value / 100; });
    $('.mic-volume', root).addEventListener('change', (e) => conn.act({ type: 'set_microphone_volume', percent: Number(e.target.value) }, `Microphone volume set to ${e.target.value} %.`));
  }

  // What the call sounds like here: the mix the server sends this page.
  hear(stream) {
    this.audio.srcObject = stream;
    this.heardMeter?.stop();
    this.heardMeter = meter(stream, (level) => { this.heard = level; this.indicate(); });
  }

  async render() {
    const v = this.panel.view;
    const call = v.voice_call;
    const me = this.panel.me;
    const member = !!call && call.members.includes(me);
    const holders = call?.microphone_holders || [];
    const names = holders.map((id) => this.panel.name(id));
    const state = !call ? 'No voice call.'
      : `${member ? 'You are in the voice call' : 'A voice call is running; you are not in it'}. ${
        holders.includes(me) ? 'You hold a microphone.' : (names.length ? `Microphone: ${names.join(' and ')}.` : 'Nobody holds a microphone.')}`;
    $('.voice-state', this.root).textContent = member && this.muted ? `${state} Your microphone is muted.` : state;
    const show = (act, yes) => { const b = $(`[data-act="${act}"]`, this.root); if (b) b.hidden = !yes; };
    show('start', !call);
    show('end', !!call);
    show('join', !!call && !member);
    show('leave', member);
    const staffVoice = $('.staff-voice', this.root);
    if (staffVoice) {
      staffVoice.hidden = !call;
      const pass = $('.pass-to', this.root);
      const keep = pass.value;
      const others = (call?.members || []).filter((id) => id !== me && !holders.includes(id));
      pass.replaceChildren(...others.map((id) => new Option(this.panel.name(id), id)));
      if (others.includes(keep)) pass.value = keep;
    }
    if (member !== this.member) {
      this.member = member;
      try {
        const mic = await this.link.setMicrophone(member);
        if (mic) mic.enabled = member && !this.muted;
        this.mineMeter?.stop();
        this.mineMeter = null;
        if (member && mic) {
          this.mineMeter = meter(new MediaStream([mic]), (level) => {
            this.mine = level;
            $('.mic-level', this.root).value = level;
            this.indicate();
          });
        }
      } catch (err) {
        say(`Your microphone could not be used: ${err.message}`, 'error');
      }
    }
  }

  // Mutes this page's microphone (it still holds the microphone, and is heard again at once on
  // unmuting). Returns whether it is muted now.
  toggleMute() {
    this.muted = !this.muted;
    if (this.link.mic) this.link.mic.enabled = !!this.member && !this.muted;
    this.render();
    return this.muted;
  }

  // The speaking indicator: this page knows its own level, and the level of what it hears,
  // which comes from the holders other than itself.
  indicate() {
    const holders = this.panel.view?.voice_call?.microphone_holders || [];
    const me = this.panel.me;
    const now = [];
    if (holders.includes(me) && this.mine > SPEAKING) now.push(me);
    if (this.heard > SPEAKING) now.push(...holders.filter((id) => id !== me));
    this.panel.setSpeaking(now);
  }

  // A short tone at the chosen speaker volume.
  testSpeakers() {
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    gain.gain.value = 0.2 * this.audio.volume;
    osc.frequency.value = 660;
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.6);
    osc.onended = () => ctx.close();
    say('Playing a test tone. If you heard nothing, check your speakers and the volume.');
  }

  stop() {
    this.mineMeter?.stop();
    this.heardMeter?.stop();
  }
}
