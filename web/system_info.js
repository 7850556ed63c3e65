// SPEC M1 on the CSR's console: read the customer's computer's system information through
// their Tandem Helper (asked in its window), show it by category, read it again, save it as a
// .txt file and print it. Offered only when the customer's helper says it can (issue 17).
import { $, onComputer, printAlone, say } from '/assets/tandem.js';
import { size } from '/assets/shared_files.js';

const SECTIONS = [
  ['system', 'System'], ['cpu', 'Processor'], ['memory', 'Memory'], ['disks', 'Disks'],
  ['network', 'Network'], ['displays', 'Displays'], ['processes', 'Processes'],
  ['services', 'Services'], ['software', 'Installed software'], ['environment', 'Environment'],
];
// Long lists start folded.
const FOLDED = new Set(['processes', 'services', 'software', 'environment']);

// Columns that say what a row is come first; the rest as they come.
const FIRST = ['name', 'mount', 'device', 'pid', 'user', 'version', 'state', 'value', 'command', 'description'];
const columns = (rows) => {
  const first = rows.find((r) => r && typeof r === 'object');
  const keys = first ? Object.keys(first) : [];
  return [...FIRST.filter((k) => keys.includes(k)), ...keys.filter((k) => !FIRST.includes(k))];
};

const label = (key) => key.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());

// A value as people read it: byte counts in KB/MB/GB with the exact number beside.
function shown(key, value) {
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) return value.join(', ');
  if (typeof value === 'number' && /bytes$/.test(key)) return `${size(value)} (${value} bytes)`;
  if (key === 'read_at' || key === 'boot_time') return new Date(key === 'boot_time' ? value * 1000 : value).toLocaleString();
  return String(value);
}

// The whole information as plain text, for the .txt file.
export function asText(info, who, at) {
  const lines = [`System information of ${who}`, `Read ${new Date(at).toLocaleString()}`, ''];
  for (const [key, title] of SECTIONS) {
    const section = info[key];
    if (section === undefined) continue;
    lines.push(`== ${title} ==`);
    if (Array.isArray(section)) {
      const cols = columns(section);
      if (cols.length) lines.push(cols.map(label).join('\t'));
      for (const row of section) lines.push(cols.map((c) => shown(c, row?.[c])).join('\t'));
      if (!section.length) lines.push('(none)');
    } else {
      for (const [k, v] of Object.entries(section)) lines.push(`${label(k)}: ${shown(k, v)}`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

function table(section) {
  const t = document.createElement('table');
  if (Array.isArray(section)) {
    const cols = columns(section);
    const head = t.createTHead().insertRow();
    for (const c of cols) {
      const th = document.createElement('th');
      th.scope = 'col';
      th.textContent = label(c);
      head.append(th);
    }
    const body = t.createTBody();
    for (const row of section) {
      const tr = body.insertRow();
      for (const c of cols) tr.insertCell().textContent = shown(c, row?.[c]);
    }
  } else {
    const body = t.createTBody();
    for (const [k, v] of Object.entries(section)) {
      const tr = body.insertRow();
      const th = document.createElement('th');
      th.scope = 'row';
      th.textContent = label(k);
      tr.append(th);
      tr.insertCell().textContent = shown(k, v);
    }
  }
  return t;
}

export class SystemInfoPanel {
  constructor(box, { conn, panel }) {
    this.box = box;
    this.conn = conn;
    this.panel = panel;
    this.drawn = null; // the info object last drawn
    $('[data-act="system-info"]', box).addEventListener('click', () => this.conn.act({ type: 'request_activity', activity: 'system_info' }));
    $('[data-act="refresh-system-info"]', box).addEventListener('click', () => this.conn.act({ type: 'refresh_system_info' }, 'Asked Tandem Helper to read the information again.'));
    $('[data-act="stop-system-info"]', box).addEventListener('click', () => this.conn.act({ type: 'stop_activity', activity: 'system_info' }));
    $('[data-act="save-system-info"]', box).addEventListener('click', () => this.save());
    $('[data-act="print-system-info"]', box).addEventListener('click', () => this.print());
  }

  get view() { return this.panel.view; }

  latest() {
    const customer = this.view?.selected_customer;
    return customer ? (this.view.system_info || {})[customer] : null;
  }

  save() {
    const got = this.latest();
    if (!got) return;
    const who = `${this.panel.name(this.view.selected_customer)}'s computer`;
    const blob = new Blob([asText(got.info, who, got.at)], { type: 'text/plain;charset=utf-8' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    const host = got.info.system?.hostname || 'computer';
    a.download = `system-information-${host}.txt`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
  }

  // Prints this information only (style.css, @media print), then the page prints as before.
  print() {
    for (const d of this.box.querySelectorAll('details')) d.open = true;
    printAlone(this.box, 'print-system-info');
  }

  event(ev) {
    if (ev.type === 'system_info_provided' && ev.customer === this.view?.selected_customer) {
      say(`System information of ${this.panel.name(ev.customer)}'s computer arrived.`);
    }
  }

  render() {
    const v = this.view;
    if (!v) return;
    const box = this.box;
    const { primary, customer, who, computer, able, on, asking } = onComputer(this.panel, 'system_info');
    const got = this.latest();
    $('.system-info-state', box).textContent = !customer ? 'No customer yet.'
      : !computer ? `Reading ${who}'s computer needs Tandem Helper there: ask ${who} to run it (their page offers it).`
        : !able ? `${who}'s Tandem Helper cannot read system information.`
          : asking ? `Waiting for ${who} to answer in Tandem Helper.`
            : on && !got ? `Tandem Helper is reading ${who}'s computer…`
              : on ? `System information of ${who}'s computer, read ${new Date(got.at).toLocaleTimeString()}.`
                : got ? `System information of ${who}'s computer, read ${new Date(got.at).toLocaleTimeString()} (reading has ended).`
                  : `Read ${who}'s system, hardware, programs and settings; they are asked first.`;
    $('[data-act="system-info"]', box).hidden = !primary || !able || on;
    $('[data-act="system-info"]', box).disabled = asking;
    $('[data-act="refresh-system-info"]', box).hidden = !primary || !on;
    $('[data-act="stop-system-info"]', box).hidden = !primary || !on;
    $('[data-act="save-system-info"]', box).hidden = !got;
    $('[data-act="print-system-info"]', box).hidden = !got;
    const out = $('.system-info-out', box);
    if (!got) {
      out.replaceChildren();
      this.drawn = null;
      return;
    }
    if (this.drawn === got.info) return;
    this.drawn = got.info;
    const parts = [];
    const h = document.createElement('h4');
    h.textContent = `${who}'s computer: ${got.info.system?.hostname || ''}`;
    parts.push(h);
    for (const [key, title] of SECTIONS) {
      const section = got.info[key];
      if (section === undefined) continue;
      const d = document.createElement('details');
      d.open = !FOLDED.has(key);
      const s = document.createElement('summary');
      s.textContent = Array.isArray(section) ? `${title} (${section.length})` : title;
      d.append(s, table(section));
      parts.push(d);
    }
    out.replaceChildren(...parts);
  }
}
