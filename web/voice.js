// The voice call panel of both consoles (V1-V4): start and end (the primary CSR), join and
// leave (anyone), who is in the call and who can speak, with a one-click "Let them speak" for
// the primary CSR, asking to speak and muting oneself, each participant's level in the call,
// this page's speaker volume, the audio set-up check and the speaking indicator.
//
// Issue 18, item 5: a call nobody notices is a call nobody joins. Everyone else is asked, in
// words and with a chime, when the CSR starts one; a listener sees that the CSR decides who
// speaks, and can ask; the CSR sees the ask at once, beside the button that answers it.
import { $, say } from '/assets/tandem.js';
import { meter } from '/assets/media.js';
import { chime } from '/assets/alerts.js';

const SPEAKING = 0.04;
const MAX_MICROPHONES = 2; // SPEC V3
let panels = 0;

export class VoicePanel {
  constructor(root, { conn, link, panel, staff }) {
    const n = ++panels;
    this.conn = conn;
    this.link = link;
    this.panel = panel;
    this.staff = staff;
    this.mine = 0;
    this.heard = 0;
    this.dismissed = false; // "Not now" to this call's invitation
    root.setAttribute('aria-labelledby', `voice-title-${n}`);
    root.innerHTML = `
      <h3 id="voice-title-${n}">Voice call</h3>
      <div class="voice-invite" role="group" aria-labelledby="voice-invite-${n}" hidden>
        <p id="voice-invite-${n}"></p>
        <div class="row">
          <button type="button" data-act="join">Join voice call</button>
          <button type="button" data-act="not-now" class="secondary">Not now</button>
        </div>
      </div>
      <p class="voice-state" aria-live="polite">No voice call.</p>
      <div class="row voice-actions">
        ${staff ? '<button type="button" data-act="start">Start voice call</button>' : ''}
        <button type="button" data-act="join-again" class="secondary">Join voice call</button>
        <button type="button" data-act="mute" class="secondary" aria-pressed="false">Mute my microphone</button>
        <button type="button" data-act="ask">Ask to speak</button>
        <button type="button" data-act="unask" class="secondary">I do not need to speak</button>
        <button type="button" data-act="leave" class="secondary">Leave voice call</button>
        ${staff ? '<button type="button" data-act="end" class="secondary">End voice call</button>' : ''}
      </div>
      <ul class="call-members" aria-label="In the call" hidden></ul>
      <details class="audio-setup">
        <summary>Audio settings and check</summary>
        <label for="speaker-${n}">Speaker volume (this browser)</label>
        <input id="speaker-${n}" class="speaker" type="range" min="0" max="100" value="100">
        <label for="mic-volume-${n}">My microphone's level in the call (%)</label>
        <input id="mic-volume-${n}" class="mic-volume" type="range" min="0" max="400" step="10" value="100">
        <label for="mic-level-${n}">Your microphone level</label>
        <meter id="mic-level-${n}" class="mic-level" min="0" max="1" value="0"></meter>
        <button type="button" data-act="test" class="secondary">Test speakers</button>
      </details>
      <audio class="call-audio" autoplay></audio>`;
    this.root = root;
    this.audio = $('.call-audio', root);
    this.members = $('.call-members', root);
    const on = (act, f) => $(`[data-act="${act}"]`, root)?.addEventListener('click', f);
    on('start', () => conn.act({ type: 'start_voice_call' }));
    on('end', () => conn.act({ type: 'end_voice_call' }));
    on('join', () => conn.act({ type: 'join_voice' }));
    on('join-again', () => conn.act({ type: 'join_voice' }));
    on('not-now', () => {
      this.dismissed = true;
      this.render();
      $('[data-act="join-again"]', root).focus();
    });
    on('leave', () => conn.act({ type: 'leave_voice' }));
    on('ask', () => conn.act({ type: 'ask_to_speak' }, 'You asked to speak. You will hear when you can.'));
    on('unask', () => conn.act({ type: 'ask_to_speak', asking: false }));
    on('mute', () => {
      const muted = this.toggleMute();
      say(muted ? 'Your microphone is muted.' : 'Your microphone is on.');
    });
    on('test', () => this.testSpeakers());
    $('.speaker', root).addEventListener('input', (e) => { this.audio.volume = e.target.value / 100; });
    $('.mic-volume', root).addEventListener('change', (e) => conn.act({ type: 'set_microphone_volume', percent: Number(e.target.value) }, `Your microphone's level set to ${e.target.value} %.`));
    // The primary CSR's controls on each member of the call.
    this.members.addEventListener('click', (e) => {
      const b = e.target.closest('button[data-member]');
      if (b) this.memberAction(b.dataset.do, b.dataset.member);
    });
    this.members.addEventListener('change', (e) => {
      const r = e.target.closest('input[data-member]');
      if (!r) return;
      const who = this.panel.name(r.dataset.member);
      conn.act({ type: 'set_microphone_volume', participant: r.dataset.member, percent: Number(r.value) }, `${who}'s level in the call set to ${r.value} %.`);
    });
  }

  // "Let them speak" takes the microphone back from the longest-speaking other holder first
  // when both are taken (SPEC V3: at most two), so one click always does what it says.
  async memberAction(act, id) {
    const call = this.panel.view.voice_call;
    if (!call) return;
    const who = this.panel.name(id);
    if (act === 'speak') {
      const holders = call.microphone_holders;
      if (holders.length >= MAX_MICROPHONES) {
        const from = holders.find((h) => h !== this.panel.me) ?? holders[0];
        if (!await this.conn.act({ type: 'take_microphone', from })) return;
      }
      this.conn.act({ type: 'pass_microphone', to: id }, `${who} can speak now.`);
    } else if (act === 'silence') {
      this.conn.act({ type: 'take_microphone', from: id }, `${who} is listening now.`);
    }
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
    const primary = v.primary === me;
    const member = !!call && call.members.includes(me);
    const holders = call?.microphone_holders || [];
    const asking = call?.asking || [];
    const speaks = holders.includes(me);
    const starter = call ? this.panel.name(call.started_by) : '';
    const csr = this.panel.name(v.primary);

    // The invitation (V2), with a chime the first time it shows.
    if (!call) this.dismissed = false;
    const invite = !!call && !member && !this.dismissed;
    const box = $('.voice-invite', this.root);
    if (invite && box.hidden && !this.staff) chime();
    box.hidden = !invite;
    if (invite) $('p', box).textContent = `${starter} started a voice call. Join it to talk with ${this.staff ? 'the others' : 'them'}.`;
    // Told once, when it changes: the customer may not be looking at the line above.
    if (member && speaks && this.spoke === false && !primary) say(`${csr} let you speak: the others hear you now.`);
    this.spoke = member ? speaks : undefined;

    let state;
    if (!call) state = 'No voice call.';
    else if (!member) state = 'A voice call is running; you are not in it.';
    else if (speaks) state = this.muted ? 'You are in the call and can speak, but your microphone is muted.' : 'You are in the call and can speak: the others hear you.';
    else if (asking.includes(me)) state = `You are in the call and listening. You asked to speak; ${csr} decides.`;
    else state = `You are in the call and listening: nobody hears you. ${primary ? 'Give yourself a microphone to speak.' : `${csr} decides who speaks; ask if you want to.`}`;
    $('.voice-state', this.root).textContent = state;

    const show = (act, yes) => { const b = $(`[data-act="${act}"]`, this.root); if (b) b.hidden = !yes; };
    show('start', !call && primary);
    show('end', !!call && primary);
    show('join-again', !!call && !member && !invite);
    show('leave', member);
    show('mute', member && speaks);
    show('ask', member && !speaks && !asking.includes(me) && !primary);
    show('unask', member && asking.includes(me));
    const mute = $('[data-act="mute"]', this.root);
    mute.textContent = this.muted ? 'Unmute my microphone' : 'Mute my microphone';
    mute.setAttribute('aria-pressed', String(!!this.muted));
    this.renderMembers(call, primary);

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

  // Who is in the call and who can speak; the primary CSR's buttons and levels beside each.
  renderMembers(call, primary) {
    const list = this.members;
    list.hidden = !call;
    if (!call) return list.replaceChildren();
    const me = this.panel.me;
    const volumes = this.panel.view.volumes || {};
    const focused = document.activeElement && list.contains(document.activeElement)
      ? [document.activeElement.dataset.member, document.activeElement.dataset.do || 'level'] : null;
    list.replaceChildren(...call.members.map((id) => {
      const li = document.createElement('li');
      const name = this.panel.name(id);
      const speaks = call.microphone_holders.includes(id);
      const asks = (call.asking || []).includes(id);
      const who = document.createElement('span');
      who.className = 'member-name';
      who.textContent = name;
      const what = document.createElement('span');
      what.className = `member-state${asks ? ' asking' : ''}`;
      what.textContent = speaks ? 'can speak' : asks ? 'asks to speak' : 'listening';
      li.append(who, ' ', what);
      if (primary) {
        const b = document.createElement('button');
        b.type = 'button';
        b.dataset.member = id;
        b.dataset.do = speaks ? 'silence' : 'speak';
        b.className = speaks ? 'secondary' : '';
        b.textContent = speaks ? (id === me ? 'Stop my microphone' : 'Stop their microphone') : (id === me ? 'Let me speak' : 'Let them speak');
        if (id !== me) b.setAttribute('aria-label', `${speaks ? 'Stop the microphone of' : 'Let speak:'} ${name}`);
        const level = document.createElement('input');
        level.type = 'range';
        level.min = '0';
        level.max = '400';
        level.step = '10';
        level.value = String(volumes[id] ?? 100);
        level.dataset.member = id;
        level.setAttribute('aria-label', `${name}'s level in the call (%)`);
        level.title = `${name}'s level in the call`;
        const labelled = document.createElement('label');
        labelled.className = 'level';
        labelled.append('Level ', level);
        li.append(' ', b, ' ', labelled);
      }
      return li;
    }));
    if (focused) $(`[data-member="${focused[0]}"]${focused[1] === 'level' ? 'input' : 'button'}`, list)?.focus();
  }

  // Mutes this page's microphone (it still holds the microphone, and is heard again at once on
  // unmuting). Returns whether it is muted now.
  toggleMute() {
    this.muted = !this.muted;
    if (this.link.mic) this.link.mic.enabled = !!this.member && !this.muted;
    this.onMute?.(this.muted);
    this.render();
    return this.muted;
  }

  // The speaking indicator: this page knows its own level, and the level of what it hears,
  // which comes from the holders other than itself.
  indicate() {
    const holders = this.panel.view?.voice_call?.microphone_holders || [];
    const me = this.panel.me;
    const now = [];
    if (holders.includes(me) && this.mine > SPEAKING && !this.muted) now.push(me);
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
