// What both consoles share: the HTTP API, a participant's WebSocket with numbered requests, the
// session as the server last described it (the welcome's view, kept current by events), and
// the participants list and chat. No framework; no build step.

export async function api(method, url, body, token) {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(json.detail || `${res.status} ${res.statusText}`);
  return json;
}

// One participant's connection: `request` resolves with the frame answering it; everything else
// goes to `onFrame`.
export class Connection {
  constructor(token, onFrame) {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    this.ws = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`);
    this.waiting = new Map();
    this.next = 1;
    this.opened = new Promise((resolve, reject) => { this.ws.onopen = resolve; this.ws.onerror = reject; });
    this.ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.ref && this.waiting.has(m.ref)) {
        this.waiting.get(m.ref)(m);
        this.waiting.delete(m.ref);
      } else {
        onFrame(m);
      }
    };
    this.ws.onclose = () => onFrame({ type: 'closed' });
  }

  request(cmd) {
    if (this.ws.readyState !== WebSocket.OPEN) {
      return Promise.resolve({ type: 'error', code: 'not_connected', detail: 'not connected to the session' });
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
      say(r.detail, 'error');
      return false;
    }
    if (done) say(done);
    return true;
  }
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

// Shows the server's reason for a refusal, or a notice, where screen readers announce it.
export function say(text, kind = 'info') {
  const box = $('#status');
  box.textContent = text;
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
      view.voice_call = { started_by: ev.by, members: [], microphone_holders: [] };
      break;
    case 'voice_call_ended':
      view.voice_call = null;
      break;
    case 'voice_joined':
      if (call && !call.members.includes(ev.participant)) call.members.push(ev.participant);
      break;
    case 'voice_left':
      if (call) call.members = call.members.filter((id) => id !== ev.participant);
      break;
    case 'microphone_holders':
      if (call) call.microphone_holders = ev.holders;
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
      case 'control_handed': return `${this.name(ev.from)} handed control to ${this.name(ev.to)}`;
      case 'session_transferred': return `The session was transferred${ev.message ? `: ${ev.message}` : ''}`;
      case 'transfer_accepted': return `${this.name(ev.primary)} took over the session`;
      case 'display_mode': return ev.mode === 'sampling' ? 'Shared screens are sent for speed' : 'Shared screens are sent in standard quality';
      default: return null;
    }
  }

  // Applies one event to the view and shows what it changed; the caller handles the rest.
  event(ev) {
    if (ev.type === 'participant_left') this.notice(this.noticeFor(ev));
    applyEvent(this.view, ev);
    if (ev.type === 'chat') this.chat(ev);
    else if (ev.type !== 'participant_left' && this.noticeFor(ev)) this.notice(this.noticeFor(ev));
    this.render();
  }

  chat(ev) {
    const li = document.createElement('li');
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
    <ul class="chat-log" aria-live="polite" aria-labelledby="chat-title-${n}"></ul>
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
