// What both consoles share: the HTTP API, a participant's WebSocket with numbered requests, and
// the session panel (participants, chat, notices). No framework; no build step.

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
    return new Promise((resolve) => {
      const ref = this.next++;
      this.waiting.set(ref, resolve);
      this.ws.send(JSON.stringify({ ...cmd, ref }));
    });
  }
}

export const $ = (sel, root = document) => root.querySelector(sel);

// Shows the server's reason for a refusal, or a notice, where screen readers announce it.
export function say(text, kind = 'info') {
  const box = $('#status');
  box.textContent = text;
  box.dataset.kind = kind;
}

// The participants list, the chat log and join/leave notices of one session.
export class SessionPanel {
  constructor(root, me) {
    this.root = root;
    this.me = me;
    this.people = new Map();
  }

  // One frame from the server: the panel's own events are shown here; other events go to
  // `onEvent`, the end of the connection to `onBye`, refusals to the status line.
  frame(m, onEvent, onBye = () => {}) {
    if (m.type === 'welcome') this.welcome(m.session);
    else if (m.type === 'event' && !this.event(m.event)) onEvent(m.event);
    else if (m.type === 'bye') onBye(m.reason);
    else if (m.type === 'error') say(m.detail, 'error');
  }

  // Everything in the session that can be used, disabled once it is over.
  disable() {
    this.root.querySelectorAll('button, input, textarea').forEach((el) => { el.disabled = true; });
  }

  welcome(view) {
    this.people.clear();
    for (const p of view.participants) this.people.set(p.id, p);
    this.render();
  }

  name(id) {
    const p = this.people.get(id);
    if (!p) return 'someone';
    return id === this.me ? `${p.name} (you)` : p.name;
  }

  // Applies one event; returns true if it was one this panel shows.
  event(ev) {
    switch (ev.type) {
      case 'participant_joined':
        this.people.set(ev.participant.id, ev.participant);
        this.render();
        this.notice(`${ev.participant.name} joined`);
        return true;
      case 'participant_left':
        this.notice(`${this.name(ev.participant)} left`);
        this.people.delete(ev.participant);
        this.render();
        return true;
      case 'chat': {
        const li = document.createElement('li');
        const who = document.createElement('strong');
        who.textContent = `${this.name(ev.from)}${ev.to ? ' (private)' : ''}: `;
        li.append(who, document.createTextNode(ev.text));
        $('.chat-log', this.root).append(li);
        return true;
      }
      default:
        return false;
    }
  }

  notice(text) {
    const li = document.createElement('li');
    li.className = 'notice';
    li.textContent = text;
    $('.chat-log', this.root).append(li);
  }

  render() {
    const list = $('.people', this.root);
    list.replaceChildren(...[...this.people.values()].map((p) => {
      const li = document.createElement('li');
      li.textContent = `${p.id === this.me ? `${p.name} (you)` : p.name} · ${p.role === 'csr' ? 'support' : 'customer'}${p.primary ? ' · in charge' : ''}`;
      return li;
    }));
  }
}

// The chat section (log and message form), built into `slot` for both consoles, and wired to
// the connection: sends, and shows the refusal if there is one.
export function mountChat(slot, conn) {
  slot.setAttribute('aria-labelledby', 'chat-title');
  slot.innerHTML = `
    <h2 id="chat-title">Chat</h2>
    <ul class="chat-log" aria-live="polite" aria-labelledby="chat-title"></ul>
    <form id="chat">
      <label for="chat-text">Message</label>
      <input id="chat-text" name="text" maxlength="2000" autocomplete="off">
      <button type="submit">Send</button>
    </form>`;
  chatForm($('#chat', slot), conn);
}

function chatForm(form, conn) {
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = form.elements.text;
    const text = input.value.trim();
    if (!text) return;
    const r = await conn.request({ type: 'chat', text });
    if (r.type === 'error') say(r.detail, 'error');
    else input.value = '';
  });
}
