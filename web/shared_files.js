// SPEC F1, basic file transfer: the primary CSR publishes files to the customer they help
// while file transfer runs; the customer's page shows them in a window of its own and saves
// them, checked against the SHA-256 the server computed. Ending file transfer closes the
// window. The server enforces who may do what (docs/protocol.md, section 4 "Files").
import { $, say } from '/assets/tandem.js';

export function size(n) {
  if (n < 1024) return `${n} bytes`;
  const units = ['KB', 'MB', 'GB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

// "12 s left" from bytes done of total since `started` (ms).
function timeLeft(done, total, started) {
  const secs = (performance.now() - started) / 1000;
  if (secs < 0.5 || done === 0) return '';
  const rate = done / secs;
  const left = Math.ceil((total - done) / rate);
  return `, ${size(rate)}/s, ${left} s left`;
}

const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');

// Why the server refused, from its problem document, in words for people.
function refusal(xhr) {
  try {
    const p = JSON.parse(xhr.responseText);
    if (p.detail) return p.detail;
  } catch {
    // Not a problem document: the status says enough.
  }
  return xhr.status ? `the server answered ${xhr.status}` : 'the connection broke off';
}

// The CSR's side, in the Tools tab: ask for file transfer, publish files with progress,
// withdraw them, end file transfer.
export class FilePublisher {
  constructor(box, { conn, panel, session, token }) {
    this.box = box;
    this.conn = conn;
    this.panel = panel;
    this.session = session;
    this.token = token;
    this.uploads = []; // {name, size, sent, state, xhr}
    $('[data-act="file-transfer"]', box).addEventListener('click', () => this.conn.act({ type: 'request_activity', activity: 'file_transfer' }));
    $('[data-act="stop-files"]', box).addEventListener('click', () => this.conn.act({ type: 'stop_activity', activity: 'file_transfer' }, 'File transfer ended: the customer no longer sees the files.'));
    $('.files-form', box).addEventListener('submit', (e) => {
      e.preventDefault();
      const pick = $('input[type="file"]', box);
      for (const f of pick.files) this.upload(f);
      pick.value = '';
    });
  }

  get view() { return this.panel.view; }

  upload(file) {
    const customer = this.view.selected_customer;
    const u = { name: file.name, size: file.size, sent: 0, state: 'sending', started: performance.now() };
    this.uploads.push(u);
    const xhr = new XMLHttpRequest();
    u.xhr = xhr;
    xhr.open('POST', `/api/sessions/${this.session}/files?name=${encodeURIComponent(file.name)}&customer=${encodeURIComponent(customer)}`);
    xhr.setRequestHeader('authorization', `Bearer ${this.token}`);
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.upload.onprogress = (e) => { u.sent = e.loaded; this.render(); };
    xhr.onload = () => {
      if (xhr.status === 201) {
        u.state = 'done';
        say(`${file.name} is published to ${this.panel.name(customer)}.`);
      } else {
        u.state = 'failed';
        u.why = refusal(xhr);
        say(`Could not publish ${file.name}: ${u.why}`, 'error');
      }
      this.render();
    };
    xhr.onerror = () => {
      u.state = 'failed';
      u.why = 'the connection broke off';
      say(`Could not publish ${file.name}: the connection broke off. Try again.`, 'error');
      this.render();
    };
    xhr.send(file);
    this.render();
  }

  render() {
    const v = this.view;
    if (!v) return;
    const box = this.box;
    const me = this.panel.me;
    const primary = v.primary === me;
    const customer = v.selected_customer;
    const on = v.activities.some((a) => a.activity === 'file_transfer' && a.customer === customer);
    const asking = v.pending_consents.some((c) => c.activity === 'file_transfer');
    const who = customer ? this.panel.name(customer) : null;
    $('.files-state', box).textContent = !customer ? 'No customer to send files to yet.'
      : on ? `File transfer with ${who} is on: files you publish appear in a window on their page.`
        : asking ? `Waiting for ${who} to allow file transfer.`
          : `Publish files for ${who} to download; they are asked first.`;
    $('[data-act="file-transfer"]', box).hidden = on || !primary || !customer;
    $('[data-act="file-transfer"]', box).disabled = asking;
    $('.files-form', box).hidden = !on || !primary;
    $('[data-act="stop-files"]', box).hidden = !on || !primary;
    const rows = [];
    for (const f of (v.files || []).filter((x) => x.customer === customer)) {
      const li = document.createElement('li');
      li.append(`${f.name} (${size(f.size)}) · published`);
      if (primary) {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'secondary';
        b.textContent = 'Withdraw';
        b.setAttribute('aria-label', `Withdraw ${f.name}`);
        b.addEventListener('click', () => this.conn.act({ type: 'withdraw_file', file: f.id }, `${f.name} withdrawn.`));
        li.append(' ', b);
      }
      rows.push(li);
    }
    this.uploads = this.uploads.filter((u) => u.state !== 'done');
    for (const u of this.uploads) {
      const li = document.createElement('li');
      if (u.state === 'sending') {
        const bar = document.createElement('progress');
        bar.max = u.size || 1;
        bar.value = u.sent;
        li.append(`${u.name}: sending ${size(u.sent)} of ${size(u.size)}${timeLeft(u.sent, u.size, u.started)} `, bar);
        const cancel = document.createElement('button');
        cancel.type = 'button';
        cancel.className = 'secondary';
        cancel.textContent = 'Cancel';
        cancel.addEventListener('click', () => { u.xhr.abort(); u.state = 'failed'; u.why = 'cancelled'; this.render(); });
        li.append(' ', cancel);
      } else {
        li.className = 'failed';
        li.append(`${u.name}: not published (${u.why}).`);
        const dismiss = document.createElement('button');
        dismiss.type = 'button';
        dismiss.className = 'secondary';
        dismiss.textContent = 'Dismiss';
        dismiss.addEventListener('click', () => { this.uploads = this.uploads.filter((x) => x !== u); this.render(); });
        li.append(' ', dismiss);
      }
      rows.push(li);
    }
    $('.files-list', box).replaceChildren(...rows);
  }
}

// The customer's side: a window listing what the CSR published, each saved with progress and
// checked against its SHA-256; it closes when file transfer ends.
export class FileWindow {
  constructor(box, { panel, session, token }) {
    this.box = box;
    this.panel = panel;
    this.session = session;
    this.token = token;
    this.saving = new Map(); // file id -> {done, total, state, started}
    this.open = false;
  }

  get view() { return this.panel.view; }

  async save(f) {
    const s = { done: 0, total: f.size, state: 'saving', started: performance.now() };
    this.saving.set(f.id, s);
    this.render();
    try {
      const res = await fetch(`/api/sessions/${this.session}/files/${f.id}`, { headers: { authorization: `Bearer ${this.token}` } });
      if (!res.ok) {
        const p = await res.json().catch(() => ({}));
        throw new Error(res.status === 404 ? 'it is no longer offered' : (p.detail || `the server answered ${res.status}`));
      }
      const reader = res.body.getReader();
      const parts = [];
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parts.push(value);
        s.done += value.length;
        this.render();
      }
      const blob = new Blob(parts, { type: 'application/octet-stream' });
      // Checked where the page may (a secure context); the server computed it on receipt.
      if (crypto.subtle) {
        const got = hex(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
        if (got !== f.sha256) throw new Error('it arrived damaged; try again');
        s.state = 'verified';
      } else s.state = 'saved';
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = f.name;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
      say(`${f.name} is saved to your downloads.`);
    } catch (err) {
      s.state = 'failed';
      s.why = err.message;
      say(`Could not save ${f.name}: ${err.message}`, 'error');
    }
    this.render();
  }

  event(ev) {
    if (ev.type === 'file_published' && ev.customer === this.panel.me) say(`${this.panel.name(ev.by)} sent you a file: ${ev.name}.`);
    if (ev.type === 'file_withdrawn' && ev.customer === this.panel.me) this.saving.delete(ev.file);
    if (ev.type === 'activity_stopped' && ev.activity === 'file_transfer' && ev.customer === this.panel.me) {
      this.saving.clear();
      say('File transfer has ended: the files are no longer offered. Files you saved stay on your computer.');
    }
  }

  render() {
    const v = this.view;
    if (!v) return;
    const me = this.panel.me;
    const on = v.activities.some((a) => a.activity === 'file_transfer' && a.customer === me);
    this.box.hidden = !on;
    if (!on) return;
    const mine = (v.files || []).filter((f) => f.customer === me);
    $('.files-empty', this.box).hidden = mine.length > 0;
    const rows = mine.map((f) => {
      const li = document.createElement('li');
      const s = this.saving.get(f.id);
      li.append(`${f.name} (${size(f.size)}) `);
      if (s?.state === 'saving') {
        const bar = document.createElement('progress');
        bar.max = s.total || 1;
        bar.value = s.done;
        li.append(bar, ` ${size(s.done)} of ${size(s.total)}${timeLeft(s.done, s.total, s.started)}`);
      } else {
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = s && s.state !== 'failed' ? 'Save again' : 'Save';
        b.setAttribute('aria-label', `Save ${f.name}`);
        b.addEventListener('click', () => this.save(f));
        li.append(b);
        if (s?.state === 'verified') li.append(' Saved; checked: it is exactly the file that was sent.');
        else if (s?.state === 'saved') li.append(' Saved.');
        else if (s?.state === 'failed') li.append(` Not saved: ${s.why}.`);
      }
      return li;
    });
    $('.files-list', this.box).replaceChildren(...rows);
  }
}
