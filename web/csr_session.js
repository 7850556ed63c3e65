// One session in the CSR console, with the tabs of S13: Tools (invite, voice, chat, video,
// file transfer, notes), Desktop, Application and Session (record, transfer control, transfer
// session, end). What the server refuses is shown with its reason; the server decides.
import { $, $$, api, Connection, ConnectionState, mountChat, printAlone, running, say, SessionPanel, tablist } from '/assets/tandem.js';
import { MediaLink } from '/assets/media.js';
import { VoicePanel } from '/assets/voice.js';
import { CameraPanel } from '/assets/video.js';
import { Viewer } from '/assets/viewer.js';
import { RemoteControl } from '/assets/remote_control.js';
import { FilePublisher } from '/assets/shared_files.js';
import { ComputerFiles } from '/assets/computer_files.js';
import { SystemInfoPanel } from '/assets/system_info.js';
import { ScriptRuns } from '/assets/script_runs.js';
import { RestartPanel } from '/assets/restart.js';
import { LoginAsUserPanel } from '/assets/login_as_user.js';

const SHARES = ['view_desktop', 'control_desktop', 'view_application', 'control_application'];
const DOING = {
  system_info: 'Reading the system information of',
  run_script: 'Running scripts on the computer of',
  login_as_user: 'Signing in as another user on the computer of',
  recording: 'Recording the session with',
  file_transfer: 'Transferring files with',
  view_desktop: 'Viewing the desktop of',
  control_desktop: 'Controlling the desktop of',
  view_application: 'Viewing an application of',
  control_application: 'Controlling an application of',
};
const ASKED = {
  system_info: 'to read their system information',
  login_as_user: 'to let you sign in on their computer as another user',
  file_transfer: 'to allow file transfer',
  recording: 'to record the session',
  view_desktop: 'to view their desktop',
  control_desktop: 'to control their desktop',
  view_application: 'to view an application',
  control_application: 'to control an application',
};

// D3, D7: the CSR shows their own screen; no consent is asked (S9), either side ends it (D5).
const SHOWS = ['show_desktop', 'show_applications'];
// Why showing stopped when this CSR did not stop it, in words.
const SHOW_ENDED = {
  customer_changed: 'you selected another customer',
  customer_left: 'the customer left',
  control_handed_over: 'control of the session was handed over',
  transferred: 'the session was transferred',
  session_ended: 'the session ended',
};

// What the CSR is told when control waits for the customer's Tandem Helper (issue 16, item 9).
function helperNeeded(customer) {
  return `${customer} needs to run Tandem Helper before you can use their mouse and keyboard: ask them to run it. Their page offers the download and a code; the question goes to Tandem Helper once it is connected.`;
}

// Whose answer a pending request waits for, and where.
// "805353999" as people read it out: "805 353 999".
export function groupNumber(number) {
  return String(number || '').replace(/(\d{3})(?=\d)/g, '$1 ');
}

function waitingFor(request, customer) {
  if (request.helper_needed) return `Waiting for ${customer} to run Tandem Helper (their page offers it).`;
  if (request.computer) return `Waiting for ${customer} to answer in Tandem Helper.`;
  return `Waiting for ${customer} to answer.`;
}

export class CsrSession {
  constructor(root, prefix, { account, joined, invite }) {
    this.root = root;
    this.prefix = prefix;
    this.account = account;
    this.joined = joined;
    this.invite = invite;
    this.screens = new Map(); // participant id -> received screen stream
    this.onClose = () => {};
    // Issue 18: something the CSR should notice here (web/alerts.js counts it when they are
    // looking elsewhere).
    this.onAlert = () => {};
  }

  async start() {
    const root = this.root;
    root.append($('#session-template').content.cloneNode(true));
    for (const el of $$('[data-id]', root)) el.id = `${this.prefix}-${el.dataset.id}`;
    for (const l of $$('label[data-for]', root)) l.htmlFor = `${this.prefix}-${l.dataset.for}`;
    for (const t of $$('[data-tab]', root)) {
      const panel = $(`[data-panel="${t.dataset.tab}"]`, root);
      t.id = `${this.prefix}-tab-${t.dataset.tab}`;
      panel.id = `${this.prefix}-${t.dataset.tab}`;
      t.setAttribute('aria-controls', panel.id);
      panel.setAttribute('aria-labelledby', t.id);
    }
    tablist($('.tools-tabs', root)).select($('[data-tab="tools"]', root), false);
    $('.topic', root).textContent = this.joined.session.topic;
    // Issue 18: the number as it is read out, and what to tell a customer on the phone.
    const grouped = groupNumber(this.joined.session.number);
    $('.number', root).textContent = grouped;
    $('.join-by-number', root).textContent = `Or tell the customer: go to ${location.host}/join and enter ${grouped}.`;

    this.panel = new SessionPanel(root, this.joined.participant.id);
    // Issue 18: this page's connection, and the others', said in the session's header.
    this.presence = new ConnectionState($('.connection-state', root), {
      name: (id) => this.panel.name(id), primary: () => this.view?.primary, me: this.panel.me,
    });
    this.conn = new Connection(this.joined.token, (m) => this.frame(m), {
      onState: (state, info) => {
        this.presence.mine(state, info);
        // Back: the media connection too, if it did not survive the absence.
        if (state === 'connected') this.link.revive();
      },
    });
    this.link = new MediaLink(this.conn, {
      stream: (id, s) => this.received(id, s),
      streamEnded: (id) => this.received(id, null),
      audio: (s) => this.voice.hear(s),
      channel: (label, data) => {
        if (label === 'annotation') this.viewer.receive(data);
        else if (label === 'control') this.remote?.receive(data);
      },
      error: (text) => say(`Media: ${text}`, 'error'),
    });
    const parts = { conn: this.conn, link: this.link, panel: this.panel, staff: true };
    this.voice = new VoicePanel($('.voice', root), parts);
    this.camera = new CameraPanel($('.video', root), parts);
    mountChat($('.chat', root), this.conn);
    this.mountPhrases();
    this.files = new FilePublisher($('.files', root), {
      conn: this.conn, panel: this.panel, session: this.joined.session.id, token: this.joined.token,
    });
    this.computerFiles = new ComputerFiles($('.computer-files', root), {
      panel: this.panel, session: this.joined.session.id, token: this.joined.token,
    });
    this.systemInfo = new SystemInfoPanel($('.system-info', root), { conn: this.conn, panel: this.panel });
    this.restart = new RestartPanel($('.restart', root), { conn: this.conn, panel: this.panel });
    this.loginAsUser = new LoginAsUserPanel($('.login-as-user', root), { conn: this.conn, panel: this.panel });
    this.scriptRuns = new ScriptRuns($('.script-runs', root), {
      conn: this.conn, panel: this.panel, account: this.account, session: this.joined.session.id, token: this.joined.token,
    });
    this.viewer = new Viewer($('.screen', root), {
      title: 'Shared screen',
      send: (text) => this.link.message('annotation', text),
      say,
    });
    this.wire();
    await this.conn.opened;
    await this.link.connect();
    if (!this.invite) {
      this.invite = await api('POST', `/api/sessions/${this.joined.session.id}/invites`, { role: 'customer' }, this.account.token).catch(() => null);
    }
    $('[data-id="invite-link"]', root).value = this.invite?.short_link || this.invite?.link || '';
    this.queues();
    window.addEventListener('beforeunload', (e) => {
      if (this.view?.status === 'active' && this.view.primary === this.panel.me) e.preventDefault();
    });
  }

  // Signing out (web/console.js): this CSR leaves; a session they lead ends, with the notes as
  // they stand.
  async leaveForSignOut() {
    if (this.ended) return;
    const primary = this.view?.primary === this.panel.me;
    await this.conn.request(primary
      ? { type: 'end_session', confirm: true, notes: $('[data-id="notes"]', this.root).value }
      : { type: 'leave' });
    this.conn.close();
  }

  get view() {
    return this.panel.view;
  }

  // S10: the admin's quick phrases, sent with one choice to whoever the chat is addressed to.
  mountPhrases() {
    const form = $('.chat .chat-form', this.root);
    const label = document.createElement('label');
    label.htmlFor = `${this.prefix}-phrase`;
    label.textContent = 'Quick phrase';
    const pick = document.createElement('select');
    pick.id = `${this.prefix}-phrase`;
    pick.className = 'quick-phrase';
    const box = document.createElement('div');
    box.className = 'quick-phrases';
    box.hidden = true;
    box.append(label, pick);
    form.after(box);
    pick.addEventListener('change', async () => {
      if (pick.value === '') return;
      const to = $('.chat .chat-to', this.root).value || undefined;
      await this.conn.act({ type: 'chat', phrase: Number(pick.value), to });
      pick.value = '';
    });
  }

  renderPhrases(phrases) {
    const box = $('.quick-phrases', this.root);
    box.hidden = !phrases?.length;
    $('.quick-phrase', this.root).replaceChildren(
      new Option('Choose one to send…', ''),
      ...(phrases || []).map((p, i) => new Option(p, String(i))),
    );
  }

  wire() {
    const root = this.root;
    const on = (act, f) => $(`[data-act="${act}"]`, root).addEventListener('click', f);
    // V5: Tandem rings the CSR's registered softphone, which joins this session as them.
    on('call-softphone', async (e) => {
      const button = e.currentTarget;
      button.disabled = true;
      say('Calling your softphone…');
      try {
        const r = await api('POST', `/api/sessions/${this.joined.session.id}/softphone`, {}, this.account.token);
        say(`Your softphone joined as ${r.participant_name}.`);
      } catch (err) {
        say(`Could not call your softphone: ${err.message}`, 'error');
      } finally {
        button.disabled = false;
      }
    });
    on('copy', async () => {
      const input = $('[data-id="invite-link"]', root);
      input.select();
      try {
        await navigator.clipboard.writeText(input.value);
        say('Invite link copied.');
      } catch {
        say('Select the link and copy it (the browser did not allow copying).');
      }
    });
    $('.invite-email', root).addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        const inv = await api('POST', `/api/sessions/${this.joined.session.id}/invites`, { role: 'customer', email: e.target.elements.email.value }, this.account.token);
        const a = $('.mailto', root);
        a.href = inv.mailto;
        a.hidden = false;
        say('The invitation is ready: open it in your mail program to send it.');
        a.focus();
      } catch (err) {
        say(`Could not make the invitation: ${err.message}`, 'error');
      }
    });
    on('assistant-link', async () => {
      try {
        const inv = await api('POST', `/api/sessions/${this.joined.session.id}/invites`, { role: 'assistant' }, this.account.token);
        const input = $('.assistant-link', root);
        input.value = inv.short_link || inv.link;
        input.hidden = false;
        input.select();
        say(`Send this link to a colleague, or tell them the session number ${inv.number}.`);
      } catch (err) {
        say(`Could not make the link: ${err.message}`, 'error');
      }
    });
    on('select', () => this.conn.act({ type: 'select_customer', customer: $('[data-id="select"]', root).value }));
    on('save-notes', () => this.conn.act({ type: 'set_notes', text: $('[data-id="notes"]', root).value }, 'Notes saved.'));
    for (const activity of SHARES) {
      on(activity, () => this.conn.act({ type: 'request_activity', activity }));
    }
    const stop = (kinds) => async () => {
      const now = kinds.filter((a) => running(this.view, a));
      if (!now.length) say('Nothing of that is shared now.', 'error');
      for (const activity of now) await this.conn.act({ type: 'stop_activity', activity });
    };
    on('stop-desktop', stop(['control_desktop', 'view_desktop']));
    on('record', () => this.conn.act({ type: 'request_activity', activity: 'recording' }));
    on('stop-record', stop(['recording']));
    on('stop-application', stop(['control_application', 'view_application']));
    $('[data-id="display-mode"]', root).addEventListener('change', async (e) => {
      if (!(await this.conn.act({ type: 'set_display_mode', mode: e.target.value }))) e.target.value = this.view.display_mode;
    });
    on('hand', () => {
      const to = $('[data-id="hand-to"]', root).value;
      if (!to) say('No assistant is in the session to take over.', 'error');
      else this.conn.act({ type: 'hand_control', to });
    });
    $('.transfer', root).addEventListener('submit', (e) => {
      e.preventDefault();
      const f = e.target.elements;
      if (!f.queue.value) { say('There is no queue to transfer to.', 'error'); return; }
      this.conn.act({ type: 'transfer', target: { kind: 'queue', queue: f.queue.value }, message: f.message.value || undefined });
    });
    const dialog = $('.end-dialog', root);
    on('end-session', () => {
      $('[data-id="end-notes"]', root).value = $('[data-id="notes"]', root).value;
      dialog.showModal();
    });
    on('cancel-end', () => dialog.close());
    on('confirm-end', async () => {
      dialog.close();
      await this.conn.act({ type: 'end_session', confirm: true, notes: $('[data-id="end-notes"]', root).value });
    });
    on('leave-session', () => this.conn.act({ type: 'leave' }));
    // Issue 15: the primary CSR removes someone (a stranger who joined with the number), after
    // confirming; their link then no longer works.
    const removing = $('.remove-dialog', root);
    this.panel.controls = (p) => {
      if (this.view?.primary !== this.panel.me || p.id === this.panel.me) return [];
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'secondary remove';
      b.textContent = 'Remove';
      b.setAttribute('aria-label', `Remove ${p.name} from the session`);
      b.addEventListener('click', () => {
        removing.dataset.participant = p.id;
        $('.remove-title', removing).textContent = `Remove ${p.name} from the session?`;
        removing.showModal();
      });
      return [' ', b];
    };
    on('cancel-remove', () => removing.close());
    on('confirm-remove', async () => {
      removing.close();
      const name = this.panel.name(removing.dataset.participant);
      await this.conn.act({ type: 'remove_participant', participant: removing.dataset.participant }, `${name} was removed.`);
    });
    on('close-tab', () => this.onClose());
    on('print-report', () => printAlone(this.root, 'print-report'));
    // The icon bar.
    const tools = $('.tools-tabs', root);
    const show = (tab) => $(`[data-tab="${tab}"]`, tools).click();
    on('q-chat', () => $('.chat input[name="text"]', root).focus());
    on('q-mute', () => {
      const muted = this.voice.toggleMute();
      say(muted ? 'Your microphone is muted.' : 'Your microphone is on.');
    });
    // The icon bar's mute shows the microphone's state however it was muted (here or in the
    // voice panel).
    this.voice.onMute = (muted) => {
      const b = $('[data-act="q-mute"]', root);
      b.setAttribute('aria-pressed', String(muted));
      b.title = muted ? 'Unmute microphone' : 'Mute microphone';
    };
    on('q-camera', () => {
      if (this.view.cameras.includes(this.panel.me)) this.conn.act({ type: 'stop_camera' });
      else this.camera.start();
    });
    on('q-screen', () => {
      if (this.viewer.root.hidden) say('Nothing is shared now.', 'error');
      else this.viewer.stage.focus();
    });
    on('q-end', () => { show('session'); $('[data-act="end-session"]', root).click(); });
    this.control();
    this.showing();
    this.givingControl();
  }

  // D4: "Give control of my desktop" through this CSR's own Tandem Helper. Without a helper of
  // hers attached, the console gets a pairing code for her computer and shows it with the
  // command; the request goes once the helper is there, and is asked in its window. While it
  // runs, "Take control back" takes the pointer from the customer (who takes it again by
  // clicking the screen on their page), and "Stop giving control" ends it (D5).
  givingControl() {
    this.giveWanted = false;
    const box = document.createElement('div');
    box.className = 'give-control';
    box.innerHTML = `
      <h3>Give control of my desktop</h3>
      <p class="give-state" aria-live="polite"></p>
      <div class="give-pairing" hidden>
        <p>Run Tandem Helper on this computer with this code (it works once, for 10 minutes):
          <strong class="give-code"></strong></p>
        <pre class="give-command"></pre>
        <p>Waiting for your Tandem Helper...</p>
      </div>
      <button type="button" data-give="start">Give control of my desktop</button>
      <button type="button" data-give="take">Take control back</button>
      <button type="button" data-give="stop" class="secondary">Stop giving control</button>`;
    $('[data-panel="desktop"]', this.root).append(box);
    this.giveBox = box;
    $('[data-give="start"]', box).addEventListener('click', () => this.giveControl());
    $('[data-give="take"]', box).addEventListener('click', () => this.conn.act({ type: 'take_control' }));
    $('[data-give="stop"]', box).addEventListener('click', () => this.conn.act({ type: 'stop_activity', activity: 'give_control' }));
  }

  // This CSR's own computer (Tandem Helper), if attached.
  myComputer(v) {
    return v && v.participants.find((p) => p.computer_of === this.panel.me);
  }

  async giveControl() {
    if (this.myComputer(this.view)) {
      this.giveWanted = false;
      await this.conn.act({ type: 'request_activity', activity: 'give_control' });
      return;
    }
    try {
      const code = await api('POST', '/api/helper/codes', {}, this.joined.token);
      this.giveWanted = true;
      $('.give-code', this.giveBox).textContent = code.code;
      $('.give-command', this.giveBox).textContent = code.command;
      this.renderGiving(this.view);
    } catch (err) {
      say(`Could not get a code for your Tandem Helper: ${err.message}`, 'error');
    }
  }

  renderGiving(v) {
    const box = this.giveBox;
    if (!box || !v) return;
    const given = v.activities.find((a) => a.activity === 'give_control');
    const asked = v.pending_consents.find((p) => p.activity === 'give_control');
    const primary = v.primary === this.panel.me;
    const who = given ? this.panel.name(given.customer) : '';
    let text = 'Nobody controls your desktop.';
    if (given && v.control_holder === 'csr') text = `You took control back: ${who} can see your screen but not use it (they may click it to take control again).`;
    else if (given) text = `${who} controls your desktop through your Tandem Helper.`;
    else if (asked) text = 'Answer the question in your Tandem Helper to give control.';
    else if (this.giveWanted) text = 'Waiting for your Tandem Helper to connect.';
    $('.give-state', box).textContent = text;
    $('.give-pairing', box).hidden = !this.giveWanted || Boolean(this.myComputer(v));
    $('[data-give="start"]', box).hidden = !primary || Boolean(given) || Boolean(asked);
    $('[data-give="take"]', box).hidden = !primary || !given || v.control_holder === 'csr';
    $('[data-give="stop"]', box).hidden = !primary || !given;
  }

  // D3, D7: "Show my screen" and "Show my applications" (several windows, one pick each:
  // getDisplayMedia offers one surface per call in every browser, so each further pick adds a
  // track), "Stop showing", and what is shown, in words. The screen is captured first, on the
  // click (browsers allow the picker only then); the activity is asked for once there is
  // something to show, so a cancelled picker starts nothing.
  showing() {
    this.shownTracks = []; // the tracks this console sends while show_* runs
    this.stoppingShow = false;
    const build = (panel, html) => {
      const box = document.createElement('div');
      box.className = 'show-mine';
      box.innerHTML = html;
      $(`[data-panel="${panel}"]`, this.root).append(box);
      return box;
    };
    const desk = build('desktop', `
      <h3>Show my screen</h3>
      <p class="show-state" aria-live="polite"></p>
      <button type="button" data-show="show_desktop">Show my screen</button>
      <button type="button" data-show="stop" class="secondary">Stop showing</button>`);
    const apps = build('application', `
      <h3>Show my applications</h3>
      <p class="show-state" aria-live="polite"></p>
      <p class="hint">Pick one window at a time; pick again to show another beside it.</p>
      <button type="button" data-show="show_applications">Show my applications</button>
      <button type="button" data-show="stop" class="secondary">Stop showing</button>`);
    for (const box of [desk, apps]) {
      $('[data-show="stop"]', box).addEventListener('click', () => this.stopShowing());
    }
    $('[data-show="show_desktop"]', desk).addEventListener('click', () => this.showMine('show_desktop'));
    $('[data-show="show_applications"]', apps).addEventListener('click', () => this.showMine('show_applications'));
  }

  async showMine(activity) {
    const adding = activity === 'show_applications' && running(this.view, activity);
    let track;
    try {
      const window = activity === 'show_applications';
      const stream = await navigator.mediaDevices.getDisplayMedia({
        video: window ? { displaySurface: 'window' } : { displaySurface: 'monitor' },
        audio: false,
      });
      track = stream.getVideoTracks()[0];
    } catch (err) {
      if (err.name === 'NotAllowedError' || err.name === 'AbortError') {
        say(adding ? 'You closed the picker: no other window was added.' : 'You closed the picker without choosing: nothing is shown.');
      } else {
        say(`Your browser could not capture the screen (${err.message}): nothing is shown.`, 'error');
      }
      return;
    }
    // Until its activity_started arrives (before or after the OK), the track is kept.
    if (!adding) this.showAsked = activity;
    if (!adding && !(await this.conn.act({ type: 'request_activity', activity }))) {
      this.showAsked = null;
      track.stop();
      return;
    }
    this.shownTracks.push(track);
    this.link.send(track, 'screen');
    // The browser's own "Stop sharing" bar ends that window; the last one ends the showing.
    track.addEventListener('ended', () => {
      this.shownTracks = this.shownTracks.filter((t) => t !== track);
      if (!this.shownTracks.length) this.stopShowing();
      else this.render();
    });
    this.render();
  }

  async stopShowing() {
    const now = SHOWS.filter((a) => running(this.view, a));
    if (!now.length) {
      say('You are not showing your screen.', 'error');
      return;
    }
    this.stoppingShow = true;
    for (const activity of now) await this.conn.act({ type: 'stop_activity', activity });
    this.stoppingShow = false;
  }

  // What this console shows, in words; tracks go once showing is over, however it ended.
  renderShowing(v) {
    const shown = v.activities.find((a) => SHOWS.includes(a.activity));
    if ((!shown && !this.showAsked) || v.primary !== this.panel.me) {
      for (const t of this.shownTracks) this.link.unsend(t);
      this.shownTracks = [];
    }
    const who = shown ? this.panel.name(shown.customer) : '';
    const n = this.shownTracks.length;
    const text = !shown ? 'You are not showing your screen.'
      : v.primary !== this.panel.me ? `${this.panel.name(v.primary)} is showing their screen to ${who}.`
        : shown.activity === 'show_desktop' ? `You are showing your screen to ${who} and everyone in the session.`
          : `You are showing ${n === 1 ? 'one application window' : `${n} application windows`} to ${who} and everyone in the session.`;
    for (const p of $$('.show-state', this.root)) p.textContent = text;
    const mine = shown && v.primary === this.panel.me;
    for (const b of $$('[data-show="stop"]', this.root)) b.hidden = !mine;
    $('[data-show="show_desktop"]', this.root).hidden = Boolean(shown);
    const apps = $('[data-show="show_applications"]', this.root);
    apps.hidden = Boolean(shown) && shown.activity !== 'show_applications';
    apps.textContent = shown?.activity === 'show_applications' ? 'Show another application' : 'Show my applications';
  }

  // D2: while this CSR controls the customer's desktop or application, pointer, wheel and keys
  // over the shared screen, the Keys menu, typed text and clipboard text go to the customer on
  // the control channel (the server relays them only then; web/remote_control.js). Annotation
  // tools take the pointer while one is picked.
  control() {
    // M4: signed in as another user on the customer's computer, the primary controls that
    // user's screen (the customer allowed it, and their own desktop is not shown).
    const controlling = () => Boolean(this.view && this.view.primary === this.panel.me
      && (running(this.view, 'control_desktop') || running(this.view, 'control_application')
        || this.signedInAs(this.view.selected_customer)));
    this.remote = new RemoteControl(this.viewer.stage, {
      at: (e) => this.viewer.at(e),
      controlling,
      blocked: () => Boolean(this.viewer.tool),
      send: (text) => this.link.message('control', text),
      customer: () => this.panel.name(this.view?.selected_customer),
      say,
    });
  }

  async queues() {
    try {
      const list = await api('GET', '/api/queues', null, this.account.token);
      $('[data-id="queue"]', this.root).replaceChildren(...list.map((q) => new Option(q.name, q.id)));
    } catch {
      // The transfer form then says there is no queue.
    }
  }

  frame(m) {
    if (this.link.handle(m)) return;
    if (m.type === 'welcome') {
      this.panel.view = m.session;
      // The server's limits (SPEC S8, S10, S11), so the page does not restate them.
      $('[data-id="transfer-message"]', this.root).maxLength = m.limits.transfer_message_chars;
      $('[data-id="notes"]', this.root).maxLength = m.limits.notes_chars;
      $('[data-id="end-notes"]', this.root).maxLength = m.limits.notes_chars;
      $('.chat-form input[name="text"]', this.root).maxLength = m.limits.chat_chars;
      $('[data-id="notes"]', this.root).value = m.session.notes || '';
      this.renderPhrases(m.session.quick_phrases);
      this.presence.welcome(m.session, m.limits.reconnect_grace_secs);
      this.panel.render();
      this.panel.history(m.session.chat);
      this.render();
    } else if (m.type === 'event') {
      // The request an answer or a withdrawal is about, before the view forgets it.
      this.about = this.view?.pending_consents.find((c) => c.request === m.event.request) || null;
      const alert = this.alertFor(m.event);
      if (alert) this.onAlert(alert);
      this.restart.event(m.event);
      // Before the view changes: signing out needs to know who was signed in.
      this.loginAsUser.event(m.event);
      this.panel.event(m.event, m);
      this.event(m.event);
      this.systemInfo.event(m.event);
      this.scriptRuns.event(m.event);
      this.computerFiles.event(m.event);
      if (m.event.type === 'participant_left') this.presence.gone(m.event.participant);
      this.render();
    } else if (m.type === 'presence') {
      this.presence.presence(m);
    } else if (m.type === 'bye') {
      this.over(m.reason);
    } else if (m.type === 'error') {
      say(m.detail, 'error');
    }
  }

  // Issue 18: every request still waiting for an answer, with a way to take it back.
  renderPending(v) {
    const me = this.panel.me;
    const mine = v.pending_consents.filter((c) => c.activity !== 'give_control' && (c.by === me || v.primary === me));
    const list = $('.pending-requests', this.root);
    list.hidden = !mine.length;
    list.replaceChildren(...mine.map((c) => {
      const li = document.createElement('li');
      const who = this.panel.name(c.customer);
      const what = ASKED[c.activity] || `for ${c.activity.replaceAll('_', ' ')}`;
      const state = c.helper_needed ? 'they have not run Tandem Helper yet' : c.computer ? 'no answer yet in Tandem Helper' : 'no answer yet';
      li.append(`Asked ${who} ${what}: ${state}. `);
      const cancel = document.createElement('button');
      cancel.type = 'button';
      cancel.className = 'secondary';
      cancel.textContent = 'Cancel request';
      cancel.addEventListener('click', () => this.conn.act({ type: 'cancel_request', request: c.request }));
      li.append(cancel);
      return li;
    }));
  }

  // What of `ev` the CSR should notice when looking elsewhere, in words (before the view
  // applies it, so that a leaver still has a name).
  alertFor(ev) {
    const me = this.panel.me;
    const name = (id) => this.panel.name(id);
    switch (ev.type) {
      case 'chat': return ev.from === me ? null : `${name(ev.from)}: ${ev.text}`;
      case 'participant_joined': return ev.participant.id === me ? null : `${ev.participant.name} joined`;
      case 'participant_left': return ev.participant === me ? null : `${name(ev.participant)} left`;
      case 'voice_joined': return ev.participant === me ? null : `${name(ev.participant)} joined the voice call`;
      case 'speak_asked': return ev.asking ? `${name(ev.participant)} asks to speak in the call` : null;
      case 'consent_answered': return ev.granted ? 'The customer allowed your request.' : 'The customer declined your request.';
      case 'session_ended': return 'The session ended.';
      default: return null;
    }
  }

  event(ev) {
    const me = this.panel.me;
    const name = (id) => this.panel.name(id);
    switch (ev.type) {
      case 'consent_requested':
        if (ev.by !== me) break;
        if (ev.activity === 'give_control') {
          say(`Answer in your Tandem Helper to give ${name(ev.customer)} control of your desktop.`);
          break;
        }
        // Issue 16: control needs Tandem Helper; the customer's page offers it.
        if (ev.helper_needed) say(helperNeeded(name(ev.customer)));
        else if (ev.computer) say(`Asked ${name(ev.customer)} ${ASKED[ev.activity] || `for ${ev.activity}`} in Tandem Helper's window; waiting for their answer.`);
        else say(`Asked ${name(ev.customer)} ${ASKED[ev.activity] || `for ${ev.activity}`}; waiting for their answer.`);
        break;
      case 'consent_answered': {
        const who = this.about ? name(this.about.customer) : 'The customer';
        if (ev.reason === 'cannot_share') say(`${who} cannot share a screen from this device (phone and tablet browsers cannot). Ask them to join from a computer.`, 'error');
        else if (ev.reason === 'share_failed') say(`${who} allowed it, but their browser did not start sharing (they may have closed its window). Ask again.`, 'error');
        else say(ev.granted ? `${who} allowed it.` : `${who} declined.`, ev.granted ? 'info' : 'error');
        break;
      }
      case 'consent_withdrawn':
        if (ev.cause === 'cancelled') say('The request was cancelled.');
        else if (ev.cause === 'timed_out') say(`${this.about ? name(this.about.customer) : 'The customer'} did not answer in time, so the request was withdrawn. Ask again if you still need it.`, 'error');
        break;
      case 'computer_attached':
        // D4: her helper is there: the request she made goes now, to its window.
        if (ev.customer === me && this.giveWanted) this.giveControl();
        break;
      case 'control_taken':
        this.view.control_holder = ev.holder;
        say(ev.holder === 'csr' ? 'You have control of your desktop back.' : `${name(ev.customer)} took control of your desktop.`);
        break;
      case 'activity_started':
        if (ev.activity === 'give_control') this.view.control_holder = 'customer';
        if (ev.activity === this.showAsked) this.showAsked = null;
        if (SHOWS.includes(ev.activity) && this.view.primary === me) say(`${name(ev.customer)} now sees your ${ev.activity === 'show_desktop' ? 'screen' : 'applications'}.`);
        if (DOING[ev.activity]) this.panel.notice(`${DOING[ev.activity]} ${name(ev.customer)}`);
        break;
      case 'activity_stopped':
        if (ev.activity === 'give_control') {
          this.view.control_holder = null;
          say(ev.cause === 'computer_left' ? 'Your Tandem Helper closed: nobody controls your desktop now.' : 'Nobody controls your desktop now.');
        }
        // D5: the customer may stop watching; say who ended the showing, and why.
        if (!SHOWS.includes(ev.activity) || !this.shownTracks.length) {
          // Not this console's showing (an assistant sees the primary's end in the panel).
        } else if (!this.stoppingShow) {
          say(ev.cause === 'stopped' ? `${name(ev.customer)} stopped watching your screen.`
            : `Showing your screen stopped: ${SHOW_ENDED[ev.cause] || 'it could not go on'}.`);
        } else say('You stopped showing your screen.');
        if (DOING[ev.activity]) this.panel.notice(`Stopped ${DOING[ev.activity].toLowerCase()} ${name(ev.customer)}`);
        if (ev.cause === 'computer_left') say(`${name(ev.customer)}'s Tandem Helper closed, so you no longer control their computer.`, 'error');
        break;
      case 'notes_updated':
        if (ev.by !== me && document.activeElement !== $('[data-id="notes"]', this.root)) $('[data-id="notes"]', this.root).value = ev.text;
        break;
      case 'control_handed':
        say(ev.to === me ? 'You are now in charge of the session.' : `${name(ev.to)} is now in charge of the session.`);
        break;
      case 'participant_left':
        if (ev.participant === me) this.leftBecause = ev.reason;
        break;
      case 'session_ended':
        this.over('session ended');
        break;
      default:
    }
  }

  received(id, stream) {
    if (this.camera.received(id, stream)) return;
    if (id.startsWith('screen-')) {
      if (stream) this.screens.set(id.slice(7), stream);
      else this.screens.delete(id.slice(7));
      this.render();
    }
  }

  // M4: the user the CSR is signed in as on `customer`'s computer, if any.
  signedInAs(customer) {
    return (customer && this.view?.signed_in_as?.[customer]) || null;
  }

  render() {
    const v = this.view;
    if (!v) return;
    const root = this.root;
    const me = this.panel.me;
    const primary = v.primary === me;
    $('.my-role', root).textContent = v.status === 'waiting' ? 'waiting for an agent to take over'
      : primary ? 'you are in charge' : `you are assisting${v.primary ? `; ${this.panel.name(v.primary)} is in charge` : ''}`;
    // A customer's computer (Tandem Helper) is shown beside them, never helped on its own.
    const customers = v.participants.filter((p) => p.role === 'customer' && !p.computer_of);
    const pick = $('.select-customer', root);
    pick.hidden = customers.length < 2;
    const sel = $('[data-id="select"]', root);
    const keep = sel.value;
    sel.replaceChildren(...customers.map((c) => new Option(`${c.name}${c.id === v.selected_customer ? ' (being helped)' : ''}`, c.id)));
    sel.value = customers.some((c) => c.id === keep) ? keep : (v.selected_customer || '');
    $('[data-id="display-mode"]', root).value = v.display_mode || 'standard';
    const assistants = v.participants.filter((p) => p.role === 'csr' && p.id !== me);
    $('[data-id="hand-to"]', root).replaceChildren(...assistants.map((p) => new Option(p.name, p.id)));
    // Issue 18: only what this account may do here. Handing control needs an assistant;
    // transferring to a queue or agents is for the primary whose account is an agent (S8).
    $('.hand', root).hidden = !primary || !assistants.length;
    $('.transfer', root).hidden = !primary || this.account.user.role !== 'agent';
    const customer = v.selected_customer;
    const shares = SHARES.filter((a) => running(v, a, customer));
    const waiting = v.pending_consents.filter((c) => SHARES.includes(c.activity));
    const signedIn = this.signedInAs(customer);
    $('.share-state', root).textContent = signedIn ? `Signed in as ${signedIn} on ${this.panel.name(customer)}'s computer: you see and control ${signedIn}'s screen.`
      : shares.length ? `${DOING[shares[shares.length - 1]]} ${this.panel.name(customer)}.`
      : waiting.length ? waitingFor(waiting[0], this.panel.name(waiting[0].customer))
        : customer ? `${this.panel.name(customer)} is not sharing.` : 'No customer has joined yet.';
    // Only the buttons that apply: asking again for what runs, or ending what does not, does not.
    for (const [kind, view, control] of [['desktop', 'view_desktop', 'control_desktop'], ['application', 'view_application', 'control_application']]) {
      const viewing = running(v, view, customer);
      const controlling = running(v, control, customer);
      const asked = v.pending_consents.some((c) => [view, control].includes(c.activity));
      $(`[data-act="${view}"]`, root).hidden = viewing;
      $(`[data-act="${control}"]`, root).hidden = controlling;
      $(`[data-act="stop-${kind}"]`, root).hidden = !(viewing || controlling || asked);
    }
    const recording = running(v, 'recording');
    const asking = v.pending_consents.some((c) => c.activity === 'recording');
    // R3: with automatic recording the customer is asked on joining, and no CSR may stop it.
    const automatic = Boolean(v.automatic_recording);
    $('.record-state', root).textContent = automatic
      ? (recording ? 'Recording automatically: the session is recorded until it ends; it cannot be stopped.'
        : asking ? 'Recording is automatic: waiting for the customer to allow it.'
          : 'Recording is automatic, but the customer has not allowed it.')
      : recording ? 'Recording: the session is being recorded.'
        : asking ? 'Waiting for the customer to allow recording.' : 'Not recording.';
    $('[data-act="record"]', root).hidden = recording;
    $('[data-act="stop-record"]', root).hidden = !recording || automatic;
    // The share of any customer (only the selected one's runs), seen by everyone (D13).
    // An assistant also sees the primary CSR's screen while it is shown (D13).
    const sharer = [...this.screens.keys()].find((id) => this.signedInAs(id) || v.activities.some((a) => a.customer === id && SHARES.includes(a.activity)))
      || (v.activities.some((a) => SHOWS.includes(a.activity)) && this.screens.has(v.primary) ? v.primary : null);
    const label = !sharer ? null : this.signedInAs(sharer) ? `${this.signedInAs(sharer)}'s screen on ${this.panel.name(sharer)}'s computer`
      : `${this.panel.name(sharer)}'s shared screen`;
    this.viewer.show(sharer ? this.screens.get(sharer) : null, label);
    $('.screen-empty', root).hidden = !this.viewer.root.hidden;
    this.renderPending(v);
    this.renderShowing(v);
    this.renderGiving(v);
    this.files.render();
    this.computerFiles.render();
    this.systemInfo.render();
    this.scriptRuns.render();
    this.restart.render();
    this.loginAsUser.render();
    this.voice.render();
    this.camera.render();
    this.remote?.render();
  }

  async over(reason) {
    if (this.ended) return;
    this.ended = true;
    this.presence.own = null;
    this.presence.away.clear();
    this.presence.render();
    this.voice.stop();
    this.link.close();
    this.viewer.show(null);
    this.panel.disable();
    $('[data-act="close-tab"]', this.root).disabled = false;
    $('[data-act="print-report"]', this.root).disabled = false;
    // Over: the tab is a page to read (the report first), no longer a workspace.
    this.root.classList.add('ended');
    if (this.leftBecause === 'transferred') say('The session was transferred. You have left it.');
    else if (reason === 'session ended') say('The session has ended. Its notes are saved with the session report.');
    else if (reason === 'transferred') say('The session was transferred. You have left it.');
    else if (reason === 'left') say('You left the session.');
    else if (reason === 'connection lost') say('The connection to the session was lost for too long: you are no longer in it.', 'error');
    else if (reason === 'signed out') say('You were signed out, so you left the session.', 'error');
    else if (reason !== 'closed') say(`You are no longer in the session (${reason}).`);
    try {
      const report = await api('GET', `/api/sessions/${this.joined.session.id}/report`, null, this.account.token);
      this.showReport(report);
    } catch {
      // Only participants' accounts may read it; nothing more to show.
      $('.report', this.root).hidden = false;
    }
  }

  // Issue 18, item 7: the report at the top of the session's tab, in view: times, people, the
  // chat as it was said, what was asked and answered, what ran, files, recordings and notes;
  // printable alone.
  showReport(r) {
    const body = $('.report-body', this.root);
    body.replaceChildren();
    const time = (ms) => (ms ? new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }) : '');
    const section = (title, rows, cells) => {
      const h = document.createElement('h4');
      h.textContent = title;
      body.append(h);
      if (!rows.length) {
        const p = document.createElement('p');
        p.textContent = 'None.';
        body.append(p);
        return;
      }
      const table = document.createElement('table');
      table.setAttribute('aria-label', title);
      table.append(...rows.map((row) => {
        const tr = document.createElement('tr');
        tr.append(...cells(row).map((text) => Object.assign(document.createElement('td'), { textContent: text })));
        return tr;
      }));
      body.append(table);
    };
    const s = r.session;
    const mins = s.ended_at ? Math.max(1, Math.round((s.ended_at - s.created_at) / 60000)) : null;
    const ended = { ended_by_csr: 'ended by the support representative', primary_disconnected: "ended when the support representative's connection was lost", interrupted: 'interrupted by a server restart' }[s.end_reason] || s.end_reason || 'still running';
    const summary = document.createElement('dl');
    for (const [term, value] of [
      ['Topic', s.topic], ['Session number', s.number],
      ['Started', new Date(s.created_at).toLocaleString()], ['Ended', s.ended_at ? new Date(s.ended_at).toLocaleString() : 'still running'],
      ['Duration', mins ? `${mins} min` : '–'], ['How it ended', ended],
    ]) {
      summary.append(Object.assign(document.createElement('dt'), { textContent: term }), Object.assign(document.createElement('dd'), { textContent: value }));
    }
    body.append(summary);
    const role = (p) => (p.role === 'customer' ? 'customer' : 'support');
    section('Participants', r.participants, (p) => [p.name, role(p), `joined ${time(p.joined_at)}`, p.left_at ? `left ${time(p.left_at)}${p.leave_reason ? ` (${p.leave_reason.replaceAll('_', ' ')})` : ''}` : '']);
    section('Chat', r.chat, (c) => [time(c.at), c.to_name ? `${c.from_name} to ${c.to_name} (private)` : c.from_name, c.text]);
    const asked = new Map();
    for (const c of r.consent) if (c.answer === 'asked') asked.set(c.request, c);
    section('Consents', r.consent.filter((c) => c.answer !== 'asked'), (c) => {
      const q = asked.get(c.request) || {};
      const why = c.reason || c.cause;
      return [time(c.at), `${(q.activity || '').replaceAll('_', ' ')} (${q.customer_name || 'customer'})`, `${c.answer}${why ? `: ${why.replaceAll('_', ' ')}` : ''}`];
    });
    section('Activities', r.activities, (a) => [time(a.at), a.activity.replaceAll('_', ' '), a.what === 'started' ? 'started' : `stopped${a.cause ? ` (${a.cause.replaceAll('_', ' ')})` : ''}`]);
    section('Files', (r.files || []).filter((f) => f.what === 'published'), (f) => [time(f.at), f.name, `to ${f.customer_name}`]);
    section('Recordings', r.recordings || [], (rec) => [time(rec.created_at), rec.name, rec.status]);
    const h = document.createElement('h4');
    h.textContent = 'Notes';
    const notes = document.createElement('p');
    notes.className = 'report-notes';
    notes.textContent = r.notes || '(none)';
    body.append(h, notes);
    const report = $('.report', this.root);
    // At the top of the tab, where the CSR is looking.
    this.root.prepend(report);
    report.hidden = false;
    report.scrollIntoView({ block: 'start' });
    report.focus();
  }

}
