// SPEC M3 on the CSR's console: pick scripts from the library and their order, run them on
// the selected customer's computer (asked in their Tandem Helper's window, which shows each
// script's SHA-256), and read how each ended. Their logs also arrive in chat.
import { $, api, onComputer, say } from '/assets/tandem.js';

export class ScriptRuns {
  constructor(box, { conn, panel, account, session, token }) {
    this.box = box;
    this.conn = conn;
    this.panel = panel;
    this.account = account;
    this.session = session;
    this.token = token;
    this.library = [];
    this.order = [];
    this.results = [];
    this.waiting = false;
    $('[data-act="script-add"]', box).addEventListener('click', () => {
      const s = this.library.find((x) => x.id === $('select', box).value);
      if (s) { this.order.push(s); this.render(); }
    });
    $('[data-act="script-reload"]', box).addEventListener('click', () => this.load());
    $('[data-act="script-run"]', box).addEventListener('click', () => this.run());
    this.load();
  }

  get view() { return this.panel.view; }

  async load() {
    try {
      this.library = (await api('GET', '/api/scripts', null, this.account.token)).scripts;
      this.render();
    } catch (err) {
      say(`Could not load the script library: ${err.message}`, 'error');
    }
  }

  async run() {
    if (!this.order.length) { say('Add the scripts to run first.', 'error'); return; }
    try {
      await api('POST', `/api/sessions/${this.session}/script-runs`, { scripts: this.order.map((s) => s.id) }, this.token);
      this.results = [];
      say(`Asked ${this.panel.name(this.view.selected_customer)} to allow ${this.order.length === 1 ? 'the script' : `${this.order.length} scripts`} in Tandem Helper.`);
      this.order = [];
      this.render();
    } catch (err) {
      say(`The scripts were not asked for: ${err.message}`, 'error');
    }
  }

  event(ev) {
    if (ev.type === 'script_finished') {
      this.results.push(ev);
      const o = ev.outcome;
      const how = o.refused ? `was not run: ${o.refused}` : o.timed_out ? 'was stopped at the time limit' : `ended with exit code ${o.exit_code}`;
      say(`The script ${ev.name} ${how}.`, o.refused || o.timed_out || o.exit_code ? 'error' : 'info');
    }
  }

  render() {
    const v = this.view;
    if (!v) return;
    const box = this.box;
    const { primary, customer, who, computer, able, on: running, asking } = onComputer(this.panel, 'run_script');
    $('.script-runs-state', box).textContent = !customer ? 'No customer yet.'
      : !computer ? `Running scripts on ${who}'s computer needs Tandem Helper there: ask ${who} to run it (their page offers it).`
        : !able ? `${who}'s Tandem Helper cannot run scripts.`
          : asking ? `Waiting for ${who} to allow the scripts in Tandem Helper.`
            : running ? `The scripts are running on ${who}'s computer…`
              : `Choose scripts and their order; ${who} is asked first and sees each one.`;
    box.querySelector('.script-pick').hidden = !primary || !able;
    const sel = $('select', box);
    const keep = sel.value;
    sel.replaceChildren(...this.library.map((s) => new Option(`${s.name} (${s.category_name})`, s.id)));
    if (this.library.some((s) => s.id === keep)) sel.value = keep;
    $('.script-order', box).replaceChildren(...this.order.map((s, i) => {
      const li = document.createElement('li');
      li.append(`${s.name} `);
      const mk = (text, label, f, disabled) => {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'secondary';
        b.textContent = text;
        b.setAttribute('aria-label', label);
        b.disabled = disabled;
        b.addEventListener('click', () => { f(); this.render(); });
        return b;
      };
      li.append(
        mk('Up', `Move ${s.name} up`, () => { [this.order[i - 1], this.order[i]] = [this.order[i], this.order[i - 1]]; }, i === 0),
        mk('Down', `Move ${s.name} down`, () => { [this.order[i + 1], this.order[i]] = [this.order[i], this.order[i + 1]]; }, i === this.order.length - 1),
        mk('Remove', `Remove ${s.name} from the run`, () => { this.order.splice(i, 1); }, false),
      );
      return li;
    }));
    $('[data-act="script-run"]', box).hidden = !primary || !able;
    $('[data-act="script-run"]', box).disabled = !this.order.length || asking || running;
    $('.script-results', box).replaceChildren(...this.results.filter((r) => r.customer === customer).map((r) => {
      const li = document.createElement('li');
      const d = document.createElement('details');
      const sum = document.createElement('summary');
      const o = r.outcome;
      sum.textContent = `${r.name}: ${o.refused ? `not run (${o.refused})` : o.timed_out ? 'stopped at the time limit' : `exit code ${o.exit_code}`}`;
      const pre = document.createElement('pre');
      pre.textContent = o.output || '(no output)';
      d.append(sum, pre);
      li.append(d);
      return li;
    }));
  }
}
