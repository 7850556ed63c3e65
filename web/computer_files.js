// SPEC F2 on the CSR's console: the customer's folders beside the CSR's own, through the
// customer's Tandem Helper. The CSR opens folders, makes, renames and deletes, sends files or
// a whole folder there, and copies files or folders here (into a folder the CSR chooses, where
// the browser can: Chromium's showDirectoryPicker). Each operation is asked in the helper
// unless the customer shares their screen, and ends with a status line of its own; transfers
// show progress, rate and time left, and can be cancelled. Every file's SHA-256 is checked at
// both ends (docs/protocol.md, "Files on the customer's computer").
import { $, api, onComputer, say } from '/assets/tandem.js';
import { size } from '/assets/shared_files.js';

const STEP = 8 << 20;
const MAX_BATCH = 150_000_000;
const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');
const sha256 = async (blob) => hex(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
const joined = (folder, name) => (folder ? `${folder}/${name}` : name);

function button(text, label, onClick, secondary = true) {
  const b = document.createElement('button');
  b.type = 'button';
  if (secondary) b.className = 'secondary';
  b.textContent = text;
  if (label) b.setAttribute('aria-label', label);
  b.addEventListener('click', onClick);
  return b;
}

// "3.2 MB/s, 12 s left" for `done` of `total` since `started`.
function pace(done, total, started) {
  const secs = (performance.now() - started) / 1000;
  if (secs < 0.3 || !done) return '';
  const rate = done / secs;
  return `, ${size(rate)}/s, ${Math.ceil((total - done) / rate)} s left`;
}

export class ComputerFiles {
  constructor(box, { panel, session, token }) {
    this.box = box;
    this.panel = panel;
    this.session = session;
    this.token = token;
    this.path = '';
    this.listing = null; // {path, entries, truncated}
    this.listOp = null;
    this.ops = new Map(); // op -> {row, onDone}
    this.early = new Map(); // op -> event that came before the request's answer
    this.rows = []; // transfers and operations, newest first
    this.here = null; // the CSR's chosen folder (FileSystemDirectoryHandle)
    this.mine = []; // the CSR's folders opened from it, the one shown last
    this.mineEntries = [];
    this.customer = null;
    $('[data-act="cf-refresh"]', box).addEventListener('click', () => this.list(this.path));
    $('[data-act="cf-up"]', box).addEventListener('click', () => this.list(this.path.split('/').slice(0, -1).join('/')));
    $('.cf-new', box).addEventListener('submit', (e) => {
      e.preventDefault();
      const input = $('input', e.target);
      const name = input.value.trim();
      if (!name) return;
      input.value = '';
      this.ask({ op: 'make_folder', path: joined(this.path, name) }, `New folder ${name}`);
    });
    $('[data-act="cf-send"]', box).addEventListener('click', () => this.send());
    $('[data-act="cf-fetch"]', box).addEventListener('click', () => this.fetchSelected());
    $('[data-act="cf-here"]', box).addEventListener('click', () => this.chooseHere());
    $('[data-act="cf-send-mine"]', box).addEventListener('click', () => this.sendMine());
    $('[data-act="cf-mine-up"]', box).addEventListener('click', () => {
      if (this.mine.length > 1) this.mine.pop();
      this.listMine();
    });
  }

  get view() { return this.panel.view; }

  // Asks the customer's computer for `op`; `onDone(result)` when it ends. A row says how.
  async ask(op, label, onDone, extra = {}) {
    const row = { ...extra, label, state: 'asked', message: 'asked on their computer…' };
    this.rows.unshift(row);
    this.render();
    try {
      const { op: id } = await api('POST', `/api/sessions/${this.session}/computer-files`, op, this.token);
      row.op = id;
      this.ops.set(id, { row, onDone });
      // A quick operation may end before its request is answered.
      if (this.early.has(id)) {
        const ev = this.early.get(id);
        this.early.delete(id);
        this.event(ev);
      }
    } catch (err) {
      row.state = 'failed';
      row.message = err.message;
      say(`${label}: ${err.message}`, 'error');
    }
    this.render();
    return row;
  }

  list(path) {
    // The folder clicked last is the one shown, whichever listing comes back first.
    this.wantList = path;
    const row = { list: path };
    this.ask({ op: 'list', path }, `Open ${path || 'the home folder'}`, null, row);
  }

  event(ev) {
    if (ev.type !== 'computer_files_done') return;
    const op = this.ops.get(ev.op);
    const r0 = ev.result;
    // A listing comes with a list and with what changed a folder: the folder shown is updated.
    const fits = op && (op.row.list !== undefined ? op.row.list === this.wantList : r0.folder === this.path);
    if (fits && r0.ok && r0.listing) {
      this.path = r0.folder;
      this.listing = { path: r0.folder, entries: r0.listing, truncated: r0.truncated };
    }
    if (!op) {
      if (ev.by === this.panel.me) {
        this.early.set(ev.op, ev);
        if (this.early.size > 50) this.early.delete(this.early.keys().next().value);
      }
      return;
    }
    this.ops.delete(ev.op);
    const r = ev.result;
    op.row.state = r.ok ? 'done' : 'failed';
    op.row.message = r.refused ? `${this.panel.name(ev.customer)} said no` : r.message;
    if (op.onDone) op.onDone(r);
    say(`${op.row.label}: ${op.row.message}`, r.ok ? 'info' : 'error');
    this.render();
  }

  // Where copies from the customer's computer go: a folder the CSR picks, where the browser can.
  async chooseHere() {
    if (!window.showDirectoryPicker) {
      say('This browser cannot save into a folder you choose; use Chromium or Edge to copy folders.', 'error');
      return;
    }
    try {
      this.here = await window.showDirectoryPicker({ mode: 'readwrite', id: 'tandem-files' });
      this.mine = [this.here];
      await this.listMine();
    } catch {
      // The CSR closed the picker: nothing changes.
    }
  }

  // The entries of the CSR's folder shown, folders first.
  async listMine() {
    const dir = this.mine.at(-1);
    if (!dir) return;
    const out = [];
    for await (const [name, h] of dir.entries()) {
      if (name.endsWith('.tandem-part')) continue;
      out.push({ name, folder: h.kind === 'directory', size: h.kind === 'file' ? (await h.getFile()).size : 0, handle: h });
    }
    out.sort((a, b) => (b.folder - a.folder) || a.name.localeCompare(b.name));
    this.mineEntries = out;
    this.render();
  }

  selected() {
    return [...this.box.querySelectorAll('.cf-list input[type="checkbox"]:checked')].map((c) => c.value);
  }

  // The selected entries of the customer's folder, copied into the CSR's chosen folder.
  async fetchSelected() {
    const picked = this.selected();
    if (!picked.length) { say('Tick the files or folders to copy first.', 'error'); return; }
    if (!this.here) await this.chooseHere();
    if (!this.here) return;
    const paths = picked.map((n) => joined(this.path, n));
    let poll = null;
    const row = await this.ask({ op: 'send', paths }, `Copy ${picked.join(', ')} to your computer`, (r) => {
      clearInterval(poll);
      if (r.ok && r.batch) this.download(r.batch, row);
    });
    row.cancel = () => this.cancel(row);
    // While their computer sends it to the server, the server says how far it is.
    poll = row.op == null ? null : setInterval(async () => {
      if (row.state !== 'asked') { clearInterval(poll); return; }
      const p = await api('GET', `/api/sessions/${this.session}/computer-files/${row.op}`, null, this.token).catch(() => null);
      if (p) {
        row.message = 'their computer is sending it…';
        row.progress = { done: p.received, total: p.total, started: row.progress?.started ?? performance.now() };
        this.renderRows();
      }
    }, 500);
  }

  async download(batch, row) {
    row.state = 'running';
    const base = `/api/sessions/${this.session}/file-batches/${batch}`;
    const auth = { authorization: `Bearer ${this.token}` };
    // Into the folder of the CSR's shown now, whatever is opened meanwhile.
    const into = this.mine.at(-1) || this.here;
    const made = [];
    try {
      const list = await api('GET', base, null, this.token);
      row.progress = { done: 0, total: list.total, started: performance.now() };
      row.abort = new AbortController();
      row.cancel = () => { row.abort.abort(); };
      const dirOf = async (rel) => {
        let d = into;
        for (const part of rel.split('/').filter(Boolean)) d = await d.getDirectoryHandle(part, { create: true });
        return d;
      };
      // Nothing of the batch may stand there already: copies never replace the CSR's files.
      const tops = new Set([...list.files.map((f) => f.path), ...list.folders].map((p) => p.split('/')[0]));
      for (const t of tops) {
        const exists = await into.getFileHandle(t).then(() => true, () => into.getDirectoryHandle(t).then(() => true, () => false));
        if (exists) throw new Error(`${t} is already in your folder ${into.name}; rename or move it first`);
      }
      made.push(...tops);
      for (const f of list.folders) await dirOf(f);
      for (const [i, f] of list.files.entries()) {
        const parts = f.path.split('/');
        const name = parts.pop();
        const dir = await dirOf(parts.join('/'));
        const res = await fetch(`${base}/${i}`, { headers: auth, signal: row.abort.signal });
        if (!res.ok) throw new Error((await res.json().catch(() => ({}))).detail || `the server answered ${res.status}`);
        const chunks = [];
        const reader = res.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          chunks.push(value);
          row.progress.done += value.length;
          this.renderRows();
        }
        const blob = new Blob(chunks);
        if (await sha256(blob) !== f.sha256) throw new Error(`${f.path} arrived damaged; nothing was kept`);
        // Written under a hidden name and renamed whole, so a half file never shows.
        const part = await dir.getFileHandle(`.tandem-${batch}-${i}.part`, { create: true });
        const w = await part.createWritable();
        await w.write(blob);
        await w.close();
        await part.move(name);
      }
      made.length = 0;
      row.state = 'done';
      row.message = `${list.files.length} files (${size(list.total)}) copied into your folder ${into.name}; every SHA-256 checked`;
      say(row.message);
    } catch (err) {
      row.state = 'failed';
      row.message = err.name === 'AbortError' ? 'cancelled' : err.message;
      say(`${row.label}: ${row.message}`, 'error');
    } finally {
      // What a failed or cancelled copy wrote is removed: it was not there before.
      for (const t of made) await into.removeEntry(t, { recursive: true }).catch(() => {});
      if (made.length) row.message += '; nothing of it was kept';
      await fetch(base, { method: 'DELETE', headers: auth }).catch(() => {});
      row.cancel = null;
      this.listMine();
      this.render();
    }
  }

  // Files or a folder of the CSR's, to the customer's folder shown.
  async send() {
    const picks = [...$('[data-id="cf-files"]', this.box).files, ...$('[data-id="cf-folder"]', this.box).files];
    if (!picks.length) { say('Choose files or a folder to send first.', 'error'); return; }
    $('[data-id="cf-files"]', this.box).value = '';
    $('[data-id="cf-folder"]', this.box).value = '';
    const items = picks.map((f) => ({ path: f.webkitRelativePath || f.name, file: f }));
    await this.upload(items, [], picks.length === 1 ? picks[0].name : `${picks.length} files`);
  }

  // The ticked entries of the CSR's own folder, files and whole folders.
  async sendMine() {
    const ticked = [...this.box.querySelectorAll('.cf-mine-list input[type="checkbox"]:checked')].map((c) => c.value);
    if (!ticked.length) { say('Tick the files or folders of yours to send first.', 'error'); return; }
    const items = [];
    const folders = [];
    const walk = async (handle, path) => {
      if (handle.kind === 'file') {
        items.push({ path, file: await handle.getFile() });
        return;
      }
      folders.push(path);
      for await (const [name, h] of handle.entries()) {
        if (!name.endsWith('.tandem-part')) await walk(h, `${path}/${name}`);
      }
    };
    const dir = this.mine.at(-1);
    for (const name of ticked) {
      const h = await dir.getDirectoryHandle(name).catch(() => dir.getFileHandle(name));
      await walk(h, name);
    }
    await this.upload(items, folders, ticked.join(', '));
  }

  // Files (with their paths in the batch) and folders, to the customer's folder shown.
  async upload(items, extraFolders, what) {
    const folder = this.path;
    const picks = items.map((i) => i.file);
    const total = picks.reduce((t, f) => t + f.size, 0);
    const label = `Send ${what} to ${folder || 'the home folder'}`;
    const row = { label, state: 'running', message: 'checking the files…' };
    this.rows.unshift(row);
    if (total > MAX_BATCH) {
      row.state = 'failed';
      row.message = `these files hold ${size(total)}; a transfer is at most 150 MB`;
      this.render();
      return;
    }
    const base = `/api/sessions/${this.session}/file-batches`;
    const auth = { authorization: `Bearer ${this.token}` };
    row.abort = new AbortController();
    row.cancel = () => row.abort.abort();
    let batch = null;
    try {
      const files = [];
      const folders = new Set(extraFolders);
      for (const { path, file: f } of items) {
        const parts = path.split('/');
        for (let i = 1; i < parts.length; i++) folders.add(parts.slice(0, i).join('/'));
        files.push({ path, size: f.size, sha256: await sha256(f), file: f });
      }
      const made = await api('POST', base, { files: files.map(({ file, ...e }) => e), folders: [...folders] }, this.token);
      batch = made.batch;
      row.progress = { done: 0, total, started: performance.now() };
      row.message = 'sending to the server…';
      for (const [i, f] of files.entries()) {
        for (let off = 0; off < f.size || (off === 0 && f.size === 0); off += STEP) {
          const step = f.file.slice(off, off + STEP);
          const res = await fetch(`${base}/${batch}/${i}?offset=${off}`, {
            method: 'PUT', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: step, signal: row.abort.signal,
          });
          if (!res.ok) throw new Error((await res.json().catch(() => ({}))).detail || `the server answered ${res.status}`);
          row.progress.done += step.size;
          this.renderRows();
          if (f.size === 0) break;
        }
      }
      // Now the customer's computer fetches it; the server says how far it is.
      row.message = 'their computer is fetching it…';
      row.progress = { done: 0, total, started: performance.now() };
      let poll = null;
      let ended = false;
      const sent = batch;
      const receiving = await this.ask({ op: 'receive', batch, folder }, label, (r) => {
        ended = true;
        clearInterval(poll);
        // Refused or failed: the batch is of no more use (the helper removes it when it has it).
        if (!r.ok) fetch(`${base}/${sent}`, { method: 'DELETE', headers: auth }).catch(() => {});
      });
      this.rows = this.rows.filter((r) => r !== row);
      if (receiving.state === 'failed') {
        // Not even asked (file transfer ended meanwhile, say): the batch goes.
        await fetch(`${base}/${batch}`, { method: 'DELETE', headers: auth }).catch(() => {});
      } else if (!ended) {
        receiving.progress = row.progress;
        receiving.cancel = () => this.cancel(receiving);
        poll = setInterval(async () => {
          if (receiving.state !== 'asked') { clearInterval(poll); return; }
          const st = await api('GET', `${base}/${batch}/progress`, null, this.token).catch(() => null);
          if (st) { receiving.progress = { ...row.progress, done: st.served }; this.renderRows(); } else clearInterval(poll);
        }, 1000);
      }
    } catch (err) {
      row.state = 'failed';
      row.message = err.name === 'AbortError' ? 'cancelled; nothing was kept' : err.message;
      if (batch) await fetch(`${base}/${batch}`, { method: 'DELETE', headers: auth }).catch(() => {});
    }
    row.cancel = null;
    this.render();
  }

  cancel(row) {
    if (row.op == null) return;
    this.ask({ op: 'cancel', target: row.op }, `Cancel: ${row.label}`);
  }

  renderRows() {
    $('.cf-transfers', this.box).replaceChildren(...this.rows.slice(0, 20).map((r) => {
      const li = document.createElement('li');
      li.className = r.state;
      const p = r.progress;
      const running = r.state === 'running' || (r.state === 'asked' && p);
      li.append(`${r.label}: ${r.message}${running && p ? ` ${size(p.done)} of ${size(p.total)}${pace(p.done, p.total, p.started)}` : ''} `);
      if (running && p) {
        const bar = document.createElement('progress');
        bar.max = p.total || 1;
        bar.value = p.done;
        li.append(bar);
      }
      if (r.cancel && (r.state === 'running' || r.state === 'asked')) li.append(' ', button('Cancel', `Cancel: ${r.label}`, () => r.cancel()));
      return li;
    }));
  }

  render() {
    const v = this.view;
    if (!v) return;
    const box = this.box;
    const { primary, customer, who, computer, able, on } = onComputer(this.panel, 'file_transfer');
    const usable = primary && computer && able && on;
    box.hidden = !primary || !customer;
    if (customer !== this.customer) {
      this.customer = customer;
      this.listing = null;
      this.listOp = null;
      this.path = '';
    }
    $('.cf-state', box).textContent = !computer ? `With Tandem Helper on ${who}'s computer you can work on their files and move folders both ways (their page offers it).`
      : !able ? `${who}'s Tandem Helper cannot move files.`
        : !on ? `Ask ${who} to allow file transfer above first.`
          : `${who} is asked in Tandem Helper for each operation, unless they share their screen.`;
    $('.cf-panes', box).hidden = !usable;
    if (usable && !this.listing && !this.listOp) {
      this.listOp = true;
      this.list('');
    }
    if (!usable) this.listOp = null;
    $('.cf-where', box).textContent = this.listing ? `${who}'s computer: ${this.listing.path ? `home/${this.listing.path}` : 'home'}` : `${who}'s computer`;
    $('.cf-here-name', box).textContent = this.here ? 'Copies go to your folder shown below.' : 'Choose a folder of yours: its files are listed here, and copies go into it.';
    $('[data-act="cf-up"]', box).disabled = !this.path;
    const rows = (this.listing?.entries || []).map((e) => {
      const tr = document.createElement('tr');
      const pick = document.createElement('input');
      pick.type = 'checkbox';
      pick.value = e.name;
      pick.setAttribute('aria-label', `Select ${e.name}`);
      const name = e.folder ? button(`${e.name}/`, `Open folder ${e.name}`, () => this.list(joined(this.path, e.name))) : document.createTextNode(e.name);
      const cells = [pick, name, document.createTextNode(e.folder ? '' : size(e.size)),
        document.createTextNode(e.modified ? new Date(e.modified).toLocaleString() : '')];
      const actions = document.createElement('span');
      actions.append(
        button('Rename', `Rename ${e.name}`, () => {
          const to = prompt(`New name for ${e.name}`, e.name);
          if (to && to !== e.name) this.ask({ op: 'rename', path: joined(this.path, e.name), to }, `Rename ${e.name} to ${to}`);
        }),
        button('Delete', `Delete ${e.name}`, () => {
          if (confirm(`Delete ${e.name}${e.folder ? ' and everything in it' : ''} on ${who}'s computer?`)) {
            this.ask({ op: 'delete', path: joined(this.path, e.name) }, `Delete ${e.name}`);
          }
        }),
      );
      cells.push(actions);
      for (const c of cells) {
        const td = document.createElement('td');
        td.append(c);
        tr.append(td);
      }
      return tr;
    });
    $('.cf-list tbody', box).replaceChildren(...rows);
    $('.cf-truncated', box).hidden = !this.listing?.truncated;
    const mineShown = this.mine.length > 0;
    $('.cf-mine-tree', box).hidden = !mineShown;
    $('.cf-mine-where', box).textContent = mineShown ? `Your folder: ${this.mine.map((d) => d.name || 'chosen folder').join('/')}` : '';
    $('[data-act="cf-mine-up"]', box).disabled = this.mine.length < 2;
    $('.cf-mine-list tbody', box).replaceChildren(...this.mineEntries.map((e) => {
      const tr = document.createElement('tr');
      const pick = document.createElement('input');
      pick.type = 'checkbox';
      pick.value = e.name;
      pick.setAttribute('aria-label', `Select your ${e.name}`);
      const name = e.folder ? button(`${e.name}/`, `Open your folder ${e.name}`, () => { this.mine.push(e.handle); this.listMine(); }) : document.createTextNode(e.name);
      for (const c of [pick, name, document.createTextNode(e.folder ? '' : size(e.size))]) {
        const td = document.createElement('td');
        td.append(c);
        tr.append(td);
      }
      return tr;
    }));
    this.renderRows();
  }
}
