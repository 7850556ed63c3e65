// What both consoles share: the HTTP API, a participant's WebSocket with numbered requests, the
// session as the server last described it (the welcome's view, kept current by events), and
// the participants list and chat. No framework; no build step.

// A refusal's `detail` is a sentence for people; its stable `code` is on the error for the page
// to choose its own words (issue 18: a customer never sees a code).
export async function api(method, url, body, token) {
  let res;
  try {
    res = await fetch(url, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch {
    throw Object.assign(new Error('the server could not be reached: check your network connection and try again'), { code: 'unreachable' });
  }
  const json = await res.json().catch(() => ({}));
  if (!res.ok) {
    const detail = json.detail || (res.status >= 500 ? 'the server had a problem; try again in a moment' : 'the server refused it');
    throw Object.assign(new Error(detail), { code: json.code || null, status: res.status });
  }
  return json;
}

// `text` as a sentence: a capital first letter and an end stop.
export function sentence(text) {
  const t = String(text ?? '').trim();
  if (!t) return t;
  const first = t[0].toUpperCase() + t.slice(1);
  return /[.!?…:)]$/.test(first) ? first : `${first}.`;
}

// One participant's connection: `request` resolves with the frame answering it; everything else
// goes to `onFrame`. A dropped connection is made again by itself, with backoff (the server
// keeps a participant through a short absence, `limits.reconnect_grace_secs`), and the
// server's welcome then brings the session view up to date. `onState(state, info)` says how it
// is: 'connected', 'reconnecting' ({ since, grace } in ms), 'lost' (given up: the session ended
// meanwhile, or the absence outlasted the grace). A frame that closes for good (bye, a
// refusal) stops the retrying; `close()` too.
export class Connection {
  constructor(token, onFrame, { onState } = {}) {
    this.token = token;
    this.onFrame = onFrame;
    this.onState = onState || (() => {});
    this.waiting = new Map();
    this.next = 1;
    this.tries = 0;
    this.graceMs = 20000;
    this.away = null; // when the connection was lost, while reconnecting
    this.done = false; // the server said goodbye, or the page closed it: no reconnecting
    this.opened = new Promise((resolve, reject) => { this.firstOpen = { resolve, reject }; });
    this.open();
  }

  open() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(this.token)}`);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.tries = 0;
      this.firstOpen?.resolve();
      this.firstOpen = null;
      if (this.away !== null) {
        this.away = null;
        this.onState('connected');
      }
    };
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.type === 'welcome' && m.limits?.reconnect_grace_secs) this.graceMs = m.limits.reconnect_grace_secs * 1000;
      if (m.type === 'bye') this.done = true;
      if (m.ref && this.waiting.has(m.ref)) {
        this.waiting.get(m.ref)(m);
        this.waiting.delete(m.ref);
      } else {
        onFrameSafely(this.onFrame, m);
      }
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      for (const resolve of this.waiting.values()) resolve({ type: 'error', code: 'not_connected', detail: 'The connection to the session was lost; try again in a moment.' });
      this.waiting.clear();
      if (this.firstOpen) {
        // Never connected at all: nothing to resume.
        this.firstOpen.reject(new Error('could not connect to the session'));
        this.firstOpen = null;
        this.done = true;
      }
      if (this.done) {
        this.onFrame({ type: 'closed' });
        return;
      }
      if (this.away === null) this.away = Date.now();
      this.onState('reconnecting', { since: this.away, grace: this.graceMs });
      this.retry(opened);
    };
  }

  // After a drop: why the server would not take us back, if it would not (the session ended,
  // the sign-in was revoked); else another try after a pause that grows to 5 s.
  async retry(wasOpen) {
    if (!wasOpen) {
      const why = await this.probe();
      if (why) {
        this.done = true;
        this.onState('lost', { why });
        this.onFrame({ type: 'bye', reason: why });
        return;
      }
    }
    // Past the grace the server counts us gone: one more look, then give up.
    if (Date.now() - this.away > this.graceMs + 15000) {
      this.done = true;
      this.onState('lost', { why: 'connection lost' });
      this.onFrame({ type: 'bye', reason: 'connection lost' });
      return;
    }
    const pause = Math.min(5000, 500 * 2 ** this.tries++);
    setTimeout(() => { if (!this.done) this.open(); }, pause);
  }

  // The WebSocket's address over plain HTTP answers what the upgrade would: 410 once the session
  // has ended, 401 for a token no longer good, 400 (not a WebSocket) while the session lives.
  async probe() {
    try {
      const res = await fetch(`/ws?token=${encodeURIComponent(this.token)}`);
      if (res.status === 410) return 'session ended';
      if (res.status === 401 || res.status === 403) return 'signed out';
      return null;
    } catch {
      return null; // the network itself: keep trying
    }
  }

  close() {
    this.done = true;
    this.ws.close();
  }

  request(cmd) {
    if (this.ws.readyState !== WebSocket.OPEN) {
      return Promise.resolve({ type: 'error', code: 'not_connected', detail: 'Not connected to the session right now; try again in a moment.' });
    }
    return new Promise((resolve) => {
      const ref = this.next++;
      this.waiting.set(ref, resolve);
      this.ws.send(JSON.stringify({ ...cmd, ref }));
    });
  }

  // Sends a command and shows a refusal's reason; resolves true if it was carried out.
  async act(cmd, done) {
    const r = await this.request(cmd);
    if (r.type === 'error') {
      say(this.explain?.(r) || sentence(r.detail), 'error');
      return false;
    }
    if (done) say(done);
    return true;
  }
}

// Issue 18: what a page says about connections, its own and the others'. `box` is the
// page's `.connection-state` line; `name(id)` names a participant; `primary()` is the primary
// CSR's id; `mine` whether this page is the primary CSR's (their absence ends the session).
export class ConnectionState {
  constructor(box, { name, primary, me }) {
    this.box = box;
    this.name = name;
    this.primary = primary;
    this.me = me;
    this.own = null; // { since, grace } while this page reconnects
    this.away = new Map(); // participant id -> { since, grace } while their connection is lost
    this.timer = null;
    this.notice = ''; // a short-lived line ("Connected again.")
  }

  // The page's own connection (Connection's onState).
  mine(state, info = {}) {
    this.own = state === 'reconnecting' ? info : null;
    if (state === 'connected') this.flash('Connected again. The session is up to date.');
    if (state === 'lost') {
      this.notice = info.why === 'session ended' ? 'The connection was lost, and the session ended meanwhile.'
        : info.why === 'signed out' ? 'The connection was lost: you were signed out.'
          : 'The connection to the session is lost.';
    }
    this.render();
  }

  // A `presence` frame: someone else's connection dropped or came back.
  presence(m) {
    if (m.away) this.away.set(m.participant, { since: Date.now(), grace: m.grace_secs * 1000 });
    else if (this.away.delete(m.participant)) this.flash(`${this.name(m.participant)} is connected again.`);
    this.render();
  }

  // A welcome: who is away now (the times are counted from now).
  welcome(view, graceSecs) {
    this.away = new Map((view.away || []).map((id) => [id, { since: Date.now(), grace: (graceSecs || 20) * 1000 }]));
    this.render();
  }

  gone(id) {
    if (this.away.delete(id)) this.render();
  }

  flash(text) {
    this.notice = text;
    clearTimeout(this.flashTimer);
    this.flashTimer = setTimeout(() => { if (this.notice === text) { this.notice = ''; this.render(); } }, 6000);
  }

  render() {
    const left = ({ since, grace }) => Math.max(0, Math.ceil((since + grace - Date.now()) / 1000));
    const lines = [];
    let kind = 'info';
    if (this.own) {
      kind = 'error';
      const primary = this.primary() === this.me;
      lines.push(left(this.own) > 0
        ? `Connection lost. Reconnecting… ${primary ? `The session ends in ${left(this.own)} s unless you are back.` : `You keep your place for ${left(this.own)} s.`}`
        : 'Connection lost. Still trying to reconnect…');
    }
    for (const [id, t] of this.away) {
      if (!this.own) kind = 'warning';
      const who = this.name(id);
      lines.push(id === this.primary()
        ? `${who}'s connection dropped. Waiting for them to come back (the session ends in ${left(t)} s otherwise).`
        : `${who}'s connection dropped. Waiting ${left(t)} s for them to come back.`);
    }
    if (this.notice && !this.own) lines.push(this.notice);
    this.box.textContent = lines.join(' ');
    this.box.dataset.kind = this.own || this.notice.startsWith('The connection') ? 'error' : kind;
    this.box.hidden = !lines.length;
    // Count down while anyone is away.
    const counting = this.own || this.away.size;
    if (counting && !this.timer) this.timer = setInterval(() => this.render(), 1000);
    if (!counting && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}

// A page's frame handler that throws must not stop the connection from reading on.
function onFrameSafely(onFrame, m) {
  try {
    onFrame(m);
  } catch (err) {
    console.error(err);
  }
}

export const $ = (sel, root = document) => root.querySelector(sel);

// Prints `target` alone: `bodyClass` names the print rules in style.css (@media print) that
// hide everything else; the page prints as before afterwards.
export function printAlone(target, bodyClass) {
  target.classList.add('print-target');
  document.body.classList.add(bodyClass);
  window.addEventListener('afterprint', () => {
    document.body.classList.remove(bodyClass);
    target.classList.remove('print-target');
  }, { once: true });
  window.print();
}
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

// Shows the server's reason for a refusal, or a notice, where screen readers announce it.
// Issue 18, item 8: feedback goes beside the control that caused it. A message said within a
// few seconds of a click or a submit is shown right after that control (its row, toolbar,
// list or form); anything else, in the page's status line at the top, which stays in view.
// It is one element, moved, so a message is never shown twice.
const CAUSED_WITHIN_MS = 5000;
let cause = null;
for (const type of ['click', 'submit']) {
  document.addEventListener(type, (e) => { cause = { el: e.target, at: Date.now() }; }, true);
}
const statusBox = document.getElementById('status');
const statusHome = statusBox && { parent: statusBox.parentNode, next: statusBox.nextSibling };

function besideCause() {
  if (!cause || Date.now() - cause.at > CAUSED_WITHIN_MS || !cause.el.isConnected) return null;
  const el = cause.el;
  // Not from dialogs (they close), tabs, the page's header, or what is not on screen.
  if (el.closest('dialog, [role="tablist"], header.top, #signin, .stage')) return null;
  if (!el.closest('.session, #session, #home')) return null;
  const anchor = el.closest('.row, [role="toolbar"], .viewer-bar, ul, ol, table, form') || el;
  return anchor.closest('[hidden]') || !anchor.parentNode ? null : anchor;
}

// A message beside a control that is then hidden (its section closes, its tab is left) goes
// back to the top, still said.
if (statusBox) {
  new MutationObserver(() => {
    if (statusBox.classList.contains('beside') && !statusBox.checkVisibility()) statusToTop();
  }).observe(document.body, { attributes: true, attributeFilter: ['hidden', 'class', 'open'], subtree: true });
}

// Puts the status line back at the top of the page (a tab hiding it was chosen).
export function statusToTop() {
  if (!statusBox || statusBox.parentNode === statusHome.parent) return;
  statusHome.parent.insertBefore(statusBox, statusHome.next);
  statusBox.classList.remove('beside');
}

export function say(text, kind = 'info') {
  const box = statusBox || $('#status');
  const anchor = besideCause();
  if (anchor) {
    if (box.previousSibling !== anchor) anchor.after(box);
    box.classList.add('beside');
  } else {
    statusToTop();
  }
  box.textContent = sentence(text);
  box.dataset.kind = kind;
}

// The session as last described: the welcome's view, with each event applied to it.
export function applyEvent(view, ev) {
  const people = view.participants;
  const call = view.voice_call;
  switch (ev.type) {
    case 'participant_joined':
      people.push({ ...ev.participant, primary: false });
      break;
    case 'participant_left':
      view.participants = people.filter((p) => p.id !== ev.participant);
      view.cameras = view.cameras.filter((id) => id !== ev.participant);
      view.files = (view.files || []).filter((f) => f.customer !== ev.participant);
      view.signed_in_as = without(view.signed_in_as, ev.participant);
      break;
    case 'customer_selected':
      view.selected_customer = ev.customer;
      break;
    case 'activity_started':
      view.activities.push({ activity: ev.activity, customer: ev.customer });
      break;
    case 'activity_stopped':
      view.activities = view.activities.filter((a) => !(a.activity === ev.activity && a.customer === ev.customer));
      // F1: ending file transfer takes back every file published to that customer.
      if (ev.activity === 'file_transfer') view.files = (view.files || []).filter((f) => f.customer !== ev.customer);
      // M4: nobody is signed in as another user there once it stops.
      if (ev.activity === 'login_as_user') view.signed_in_as = without(view.signed_in_as, ev.customer);
      break;
    case 'login_as_user_started':
      if (view.activities.some((a) => a.activity === 'login_as_user' && a.customer === ev.customer)) {
        view.signed_in_as = { ...(view.signed_in_as || {}), [ev.customer]: ev.user };
      }
      break;
    case 'login_as_user_ended':
      view.signed_in_as = without(view.signed_in_as, ev.customer);
      break;
    case 'file_published':
      view.files = [...(view.files || []), {
        id: ev.file, customer: ev.customer, by: ev.by, name: ev.name, size: ev.size, sha256: ev.sha256,
      }];
      break;
    case 'computer_restarting':
      view.restarting = [...(view.restarting || []).filter((c) => c !== ev.customer), ev.customer];
      break;
    case 'system_info_provided':
      view.system_info = { ...(view.system_info || {}), [ev.customer]: { at: Date.now(), info: ev.info } };
      break;
    case 'file_withdrawn':
      view.files = (view.files || []).filter((f) => f.id !== ev.file);
      break;
    case 'consent_requested':
      view.pending_consents.push({
        request: ev.request, activity: ev.activity, customer: ev.customer, by: ev.by,
        computer: ev.computer ?? null, helper_needed: Boolean(ev.helper_needed),
      });
      break;
    case 'computer_attached':
      for (const p of people) {
        if (p.id !== ev.computer) continue;
        p.computer_of = ev.customer;
        // What only a helper does, and this one said it can (issue 17), as the view's `can`.
        p.can = ev.abilities || [];
      }
      view.restarting = (view.restarting || []).filter((c) => c !== ev.customer);
      break;
    case 'consent_answered':
      {
        const asked = view.pending_consents.find((c) => c.request === ev.request);
        if (asked && ev.allow_all && !view.allow_all.includes(asked.customer)) view.allow_all.push(asked.customer);
        view.pending_consents = view.pending_consents.filter((c) => c.request !== ev.request);
      }
      break;
    case 'consent_withdrawn':
      view.pending_consents = view.pending_consents.filter((c) => c.request !== ev.request);
      break;
    case 'voice_call_started':
      view.voice_call = { started_by: ev.by, members: [], microphone_holders: [], asking: [] };
      break;
    case 'voice_call_ended':
      view.voice_call = null;
      break;
    case 'voice_joined':
      if (call && !call.members.includes(ev.participant)) call.members.push(ev.participant);
      break;
    case 'voice_left':
      if (call) {
        call.members = call.members.filter((id) => id !== ev.participant);
        call.asking = (call.asking || []).filter((id) => id !== ev.participant);
      }
      break;
    case 'microphone_volume':
      view.volumes = { ...(view.volumes || {}), [ev.participant]: ev.percent };
      break;
    case 'speak_asked':
      if (call) {
        call.asking = (call.asking || []).filter((id) => id !== ev.participant);
        if (ev.asking) call.asking.push(ev.participant);
      }
      break;
    case 'microphone_holders':
      if (call) {
        call.microphone_holders = ev.holders;
        call.asking = (call.asking || []).filter((id) => !ev.holders.includes(id));
      }
      break;
    case 'display_mode':
      view.display_mode = ev.mode;
      break;
    case 'camera_started':
      if (!view.cameras.includes(ev.participant)) view.cameras.push(ev.participant);
      break;
    case 'camera_stopped':
      view.cameras = view.cameras.filter((id) => id !== ev.participant);
      break;
    case 'control_handed':
      view.primary = ev.to;
      for (const p of people) p.primary = p.id === ev.to;
      break;
    case 'transfer_accepted':
      view.primary = ev.primary;
      view.status = 'active';
      for (const p of people) p.primary = p.id === ev.primary;
      break;
    case 'session_transferred':
      view.status = 'waiting';
      view.primary = null;
      break;
    case 'notes_updated':
      view.notes = ev.text;
      break;
    case 'session_ended':
      view.status = 'ended';
      break;
    default:
  }
}

// `map` (an object keyed by participant id) without `id`.
function without(map, id) {
  const { [id]: _gone, ...rest } = map || {};
  return rest;
}

// What the primary CSR may do on the selected customer's computer with `activity` (issue 17):
// the customer, their name, their Tandem Helper if connected, whether it said it can, and
// whether the activity runs or is being asked.
export function onComputer(panel, activity) {
  const v = panel.view;
  const customer = v.selected_customer;
  const computer = customer && v.participants.find((p) => p.computer_of === customer);
  return {
    primary: v.primary === panel.me,
    customer,
    who: customer ? panel.name(customer) : null,
    computer,
    able: Boolean(computer?.can?.includes(activity)),
    on: v.activities.some((a) => a.activity === activity && a.customer === customer),
    asking: v.pending_consents.some((c) => c.activity === activity && c.customer === customer),
  };
}

export const running = (view, activity, customer) =>
  view.activities.some((a) => a.activity === activity && (!customer || a.customer === customer));

// The participants list, the chat log and join/leave notices of one session.
export class SessionPanel {
  constructor(root, me) {
    this.root = root;
    this.me = me;
    this.view = null;
    this.speaking = new Set();
    // The journal number of the last chat line shown: a welcome (after a reconnect) adds only
    // the lines said since.
    this.chatSeq = -1;
    // Extra controls for one person's entry (the CSR console's Remove button), or nothing.
    this.controls = () => [];
  }

  person(id) {
    return this.view?.participants.find((p) => p.id === id);
  }

  name(id) {
    const p = this.person(id);
    if (!p) return 'someone';
    return id === this.me ? `${p.name} (you)` : p.name;
  }

  // The notice an event makes in the chat log, if any.
  noticeFor(ev) {
    switch (ev.type) {
      case 'participant_joined': return `${ev.participant.name} joined`;
      case 'participant_left': return ev.reason === 'removed'
        ? `${this.name(ev.participant)} was removed from the session`
        : `${this.name(ev.participant)} left`;
      case 'voice_call_started': return `${this.name(ev.by)} started a voice call`;
      case 'voice_call_ended': return 'The voice call ended';
      case 'voice_joined': return `${this.name(ev.participant)} joined the voice call`;
      case 'voice_left': return `${this.name(ev.participant)} left the voice call`;
      case 'speak_asked': return ev.asking ? `${this.name(ev.participant)} asks to speak in the call` : null;
      case 'control_handed': return `${this.name(ev.from)} handed control to ${this.name(ev.to)}`;
      case 'session_transferred': return `The session was transferred${ev.message ? `: ${ev.message}` : ''}`;
      case 'transfer_accepted': return `${this.name(ev.primary)} took over the session`;
      case 'display_mode': return ev.mode === 'sampling' ? 'Shared screens are sent for speed' : 'Shared screens are sent in standard quality';
      default: return null;
    }
  }

  // The chat kept by the server (a welcome's `chat`): the lines not shown yet, in order.
  history(lines = []) {
    for (const l of lines) {
      if (l.seq > this.chatSeq) this.chat(l, l);
    }
  }

  // Applies one event to the view and shows what it changed; the caller handles the rest.
  // `frame`: the event's frame, for its journal number and time.
  event(ev, frame = {}) {
    if (ev.type === 'participant_left') this.notice(this.noticeFor(ev));
    applyEvent(this.view, ev);
    if (ev.type === 'chat') this.chat(ev, frame);
    else if (ev.type !== 'participant_left' && this.noticeFor(ev)) this.notice(this.noticeFor(ev));
    this.render();
  }

  chat(ev, { seq, at } = {}) {
    if (seq !== undefined) {
      if (seq <= this.chatSeq) return;
      this.chatSeq = seq;
    }
    const li = document.createElement('li');
    if (at) {
      const when = document.createElement('time');
      when.dateTime = new Date(at).toISOString();
      when.textContent = `${new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })} `;
      li.append(when);
    }
    const who = document.createElement('strong');
    const to = ev.to ? ` to ${this.name(ev.to)} (private)` : '';
    who.textContent = `${this.name(ev.from)}${to}: `;
    li.append(who, document.createTextNode(ev.text));
    this.log(li);
  }

  notice(text) {
    const li = document.createElement('li');
    li.className = 'notice';
    li.textContent = text;
    this.log(li);
  }

  log(li) {
    const log = $('.chat-log', this.root);
    log.append(li);
    log.scrollTop = log.scrollHeight;
  }

  // Everything in the session that can be used, disabled once it is over.
  disable() {
    $$('button, input, textarea, select', this.root).forEach((el) => { el.disabled = true; });
  }

  render() {
    const v = this.view;
    if (!v) return;
    const holders = v.voice_call?.microphone_holders || [];
    const members = v.voice_call?.members || [];
    $('.people', this.root).replaceChildren(...v.participants.map((p) => {
      const li = document.createElement('li');
      const role = p.role === 'customer' ? 'customer' : (p.primary ? 'support' : 'assistant');
      const tags = [role];
      if (p.primary) tags.push('in charge');
      if (p.id === v.selected_customer && v.participants.filter((q) => q.role === 'customer').length > 1) tags.push('being helped');
      if (members.includes(p.id)) tags.push('in the call');
      if (v.cameras.includes(p.id)) tags.push('camera on');
      li.append(document.createTextNode(`${this.name(p.id)} · ${tags.join(' · ')}`));
      if (holders.includes(p.id)) {
        const mic = document.createElement('span');
        mic.className = `mic${this.speaking.has(p.id) ? ' speaking' : ''}`;
        mic.textContent = this.speaking.has(p.id) ? 'speaking' : 'microphone';
        mic.title = 'Holds a microphone';
        li.append(' ', mic);
      }
      li.append(...this.controls(p));
      li.dataset.id = p.id;
      return li;
    }));
    const to = $('.chat-to', this.root);
    if (to) {
      const keep = to.value;
      to.replaceChildren(new Option('Everyone', ''), ...v.participants.filter((p) => p.id !== this.me).map((p) => new Option(p.name, p.id)));
      to.value = [...to.options].some((o) => o.value === keep) ? keep : '';
    }
  }

  // Who is speaking now, for the indicator next to each microphone holder.
  setSpeaking(ids) {
    const next = new Set(ids);
    if (next.size === this.speaking.size && [...next].every((id) => this.speaking.has(id))) return;
    this.speaking = next;
    this.render();
  }
}

let chats = 0;

// The chat section (log, recipient, message form), built into `slot` and wired to the
// connection: sends, and shows the refusal if there is one.
export function mountChat(slot, conn) {
  const n = ++chats;
  slot.setAttribute('aria-labelledby', `chat-title-${n}`);
  slot.innerHTML = `
    <h3 id="chat-title-${n}">Chat</h3>
    <ul class="chat-log" tabindex="0" aria-live="polite" aria-labelledby="chat-title-${n}"></ul>
    <form class="chat-form">
      <label for="chat-to-${n}">To</label>
      <select id="chat-to-${n}" class="chat-to"><option value="">Everyone</option></select>
      <label for="chat-text-${n}">Message</label>
      <input id="chat-text-${n}" name="text" autocomplete="off">
      <button type="submit">Send</button>
    </form>`;
  const form = $('form', slot);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = form.elements.text;
    const text = input.value.trim();
    if (!text) return;
    const to = $('.chat-to', slot).value || undefined;
    if (await conn.act({ type: 'chat', text, to })) input.value = '';
  });
}

// Tabs per the WAI-ARIA pattern: arrow keys, Home and End move between tabs; the panel of the
// selected tab is the only one shown. `tabs` are buttons with aria-controls.
export function tablist(list, onSelect = () => {}) {
  const tabs = () => $$('[role="tab"]', list);
  const select = (tab, focus) => {
    for (const t of tabs()) {
      const on = t === tab;
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute('aria-controls')).hidden = !on;
    }
    if (statusBox?.closest('[hidden]')) statusToTop();
    if (focus) tab.focus();
    onSelect(tab);
  };
  list.addEventListener('click', (e) => {
    const tab = e.target.closest('[role="tab"]');
    if (tab) select(tab, false);
  });
  list.addEventListener('keydown', (e) => {
    const all = tabs();
    const i = all.indexOf(document.activeElement);
    if (i < 0) return;
    const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: all.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    select(all[(to + all.length) % all.length], true);
  });
  return { select };
}
