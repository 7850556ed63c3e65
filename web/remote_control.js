// D2 and issue 16 item 6: what the controlling CSR's console sends on the `control` data
// channel (docs/protocol.md, "The control channel"): pointer, buttons, wheel, keys held across
// messages, typed text, the special key combinations, and clipboard text both ways. Nothing is
// sent unless this CSR controls now (the server relays only then anyway); keys and buttons held
// are released when the console loses focus or the tab is hidden. The helper checks everything
// again (helper/src/control.rs), and asks its customer before it sends their clipboard.

// helper/src/control.rs: MAX_TEXT_CHARS, MAX_CLIPBOARD_CHARS, MAX_WHEEL_STEPS.
const MAX_TEXT_CHARS = 1024;
const MAX_CLIPBOARD_CHARS = 8192;
const MAX_WHEEL_STEPS = 20;

// helper/src/combo.rs: the names the helper knows, with the labels the menu shows
// (a unit test there checks that this list names every one).
const COMBOS = [
  ['ctrl_alt_del', 'Ctrl+Alt+Del'],
  ['alt_tab', 'Alt+Tab'],
  ['alt_f4', 'Alt+F4'],
  ['ctrl_esc', 'Ctrl+Esc'],
  ['super', 'Windows/Super key'],
  ['super_l', 'Lock screen (Super+L)'],
  ['print_screen', 'Print Screen'],
];

// What the helper's clipboard answer says when it carries no text.
const NO_TEXT = {
  declined: 'declined to send the text they copied',
  empty: 'has no text copied',
  too_large: `copied more than ${MAX_CLIPBOARD_CHARS} characters, which is too much to send`,
  failed: "computer could not read its clipboard",
};

// Typed text as the helper accepts it: line breaks and tabs, no other control characters,
// in pieces of at most MAX_TEXT_CHARS characters.
export function textPieces(text) {
  const chars = Array.from(text.replace(/\r\n?/g, '\n')).filter((c) => c === '\n' || c === '\t' || !/\p{Cc}/u.test(c));
  const pieces = [];
  for (let i = 0; i < chars.length; i += MAX_TEXT_CHARS) pieces.push(chars.slice(i, i + MAX_TEXT_CHARS).join(''));
  return pieces;
}

// Wheel steps from a wheel event: a notch is about 100 pixels or 3 lines; at least one step
// each way that moved, at most MAX_WHEEL_STEPS.
export function wheelSteps(delta, mode) {
  if (!delta) return 0;
  const per = mode === 1 ? 3 : mode === 2 ? 1 : 100;
  const steps = Math.max(1, Math.round(Math.abs(delta) / per));
  return Math.sign(delta) * Math.min(steps, MAX_WHEEL_STEPS);
}

export class RemoteControl {
  // `stage`: the element showing the customer's screen; `at(e)`: a pointer event's point in
  // picture space; `controlling()`: whether this CSR controls now; `blocked()`: whether an
  // annotation tool has the pointer; `send(text)`: the control channel; `customer()`: the
  // controlled customer's name; `say(text, kind)`.
  constructor(stage, { at, controlling, blocked, send, customer, say }) {
    this.stage = stage;
    this.controlling = controlling;
    this.customer = customer;
    this.say = say;
    this.held = new Set(); // key codes pressed and not yet released
    this.raw = send;
    const pointer = (m) => { if (!blocked()) this.send(m); };
    stage.tabIndex = 0;
    stage.setAttribute('role', 'application');
    stage.setAttribute('aria-label', 'Shared screen: while you control it, your pointer and keys go to the customer');
    stage.addEventListener('pointermove', (e) => pointer({ t: 'move', at: at(e) }));
    stage.addEventListener('pointerdown', (e) => pointer({ t: 'down', at: at(e), button: e.button }));
    stage.addEventListener('pointerup', (e) => pointer({ t: 'up', at: at(e), button: e.button }));
    stage.addEventListener('wheel', (e) => {
      if (!this.controlling() || blocked()) return;
      e.preventDefault();
      const dx = wheelSteps(e.deltaX, e.deltaMode);
      const dy = wheelSteps(e.deltaY, e.deltaMode);
      if (dx || dy) this.send({ t: 'wheel', at: at(e), dx, dy });
    }, { passive: false });
    stage.addEventListener('keydown', (e) => this.key(e, true));
    stage.addEventListener('keyup', (e) => this.key(e, false));
    // Keys held when the CSR's keyboard goes elsewhere would stay pressed on the customer's side.
    stage.addEventListener('blur', () => this.releaseAll());
    document.addEventListener('visibilitychange', () => { if (document.hidden) this.releaseAll(); });
    window.addEventListener('blur', () => this.releaseAll());
    this.root = this.build();
    stage.closest('.viewer')?.after(this.root);
    this.render();
  }

  send(m) {
    if (!this.controlling()) return false;
    this.raw(JSON.stringify(m));
    return true;
  }

  // A key goes by its position (`code`), pressed and released as the CSR does, so modifiers
  // held across messages work (Shift while clicking). A key without a code (some virtual
  // keyboards) is sent as one press of the character.
  key(e, down) {
    if (!this.controlling()) return;
    e.preventDefault();
    if (!e.code || e.code === 'Unidentified') {
      if (down) this.send({ t: 'key', key: e.key });
      return;
    }
    if (down) this.held.add(e.code);
    else this.held.delete(e.code);
    this.send({ t: 'key', code: e.code, key: e.key, down });
  }

  releaseAll() {
    if (!this.held.size) return;
    this.held.clear();
    this.send({ t: 'release_all' });
  }

  build() {
    const root = document.createElement('section');
    root.className = 'remote-control';
    root.setAttribute('aria-label', "Control of the customer's computer");
    root.innerHTML = `
      <div class="remote-row">
        <button type="button" data-act="keys" aria-expanded="false" aria-controls="">Keys</button>
        <button type="button" data-act="get-clipboard">Get their copied text</button>
      </div>
      <div class="remote-keys" role="group" aria-label="Special keys" hidden></div>
      <form class="remote-text">
        <label>Text <textarea rows="2" name="text"></textarea></label>
        <button type="submit" data-act="type-text">Type it</button>
        <button type="button" data-act="set-clipboard">Put on their clipboard</button>
      </form>
      <div class="remote-clipboard" hidden>
        <label>Their copied text <textarea rows="3" readonly name="received"></textarea></label>
        <button type="button" data-act="copy-received">Copy</button>
      </div>`;
    const keys = root.querySelector('.remote-keys');
    keys.id = `remote-keys-${Math.random().toString(36).slice(2)}`;
    const toggle = root.querySelector('[data-act="keys"]');
    toggle.setAttribute('aria-controls', keys.id);
    toggle.addEventListener('click', () => {
      keys.hidden = !keys.hidden;
      toggle.setAttribute('aria-expanded', String(!keys.hidden));
    });
    for (const [name, label] of COMBOS) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = label;
      b.setAttribute('aria-label', `Send ${label} to the customer's computer`);
      b.addEventListener('click', () => {
        if (this.send({ t: 'combo', name })) this.say(`Sent ${label}.`);
        this.stage.focus({ preventScroll: true });
      });
      keys.append(b);
    }
    const text = root.querySelector('textarea[name="text"]');
    root.querySelector('.remote-text').addEventListener('submit', (e) => {
      e.preventDefault();
      const pieces = textPieces(text.value);
      if (!pieces.length) return this.say('Nothing to type.', 'error');
      if (pieces.every((t) => this.send({ t: 'text', text: t }))) {
        this.say(`Typed ${pieces.reduce((n, p) => n + Array.from(p).length, 0)} characters on ${this.customer()}'s computer.`);
        text.value = '';
      }
    });
    root.querySelector('[data-act="set-clipboard"]').addEventListener('click', () => {
      const value = text.value.replace(/[^\P{Cc}\n\r\t]/gu, '');
      if (!value) return this.say('Nothing to put on the clipboard.', 'error');
      if (Array.from(value).length > MAX_CLIPBOARD_CHARS) {
        return this.say(`At most ${MAX_CLIPBOARD_CHARS} characters go on the clipboard at once.`, 'error');
      }
      if (this.send({ t: 'clipboard_set', text: value })) this.say(`Put the text on ${this.customer()}'s clipboard.`);
    });
    root.querySelector('[data-act="get-clipboard"]').addEventListener('click', () => {
      if (this.send({ t: 'clipboard_get' })) {
        this.say(`Asked ${this.customer()} for the text they copied; the question is in Tandem Helper's window.`);
      }
    });
    const received = root.querySelector('textarea[name="received"]');
    root.querySelector('[data-act="copy-received"]').addEventListener('click', async () => {
      received.select();
      try {
        await navigator.clipboard.writeText(received.value);
        this.say('Copied.');
      } catch {
        this.say('Could not copy: select the text and copy it yourself.', 'error');
      }
    });
    return root;
  }

  // The helper's answer to `clipboard_get` (the only message the server passes back on the
  // control channel, and only from the controlled customer's computer).
  receive(data) {
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      return;
    }
    if (m?.t !== 'clipboard') return;
    if (typeof m.text === 'string') {
      const box = this.root.querySelector('.remote-clipboard');
      box.querySelector('textarea').value = m.text;
      box.hidden = false;
      this.say(`${this.customer()} sent the text they copied.`);
    } else {
      this.say(`${this.customer()} ${NO_TEXT[m.none] || 'sent no text'}.`, m.none === 'declined' ? 'error' : 'info');
    }
  }

  // Shown while this CSR controls; held keys are forgotten when control ends (the helper
  // releases them itself then).
  render() {
    const on = this.controlling();
    this.root.hidden = !on;
    if (!on) this.held.clear();
  }
}
