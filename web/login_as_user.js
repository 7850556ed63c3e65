// SPEC M4 on the CSR's console: sign in on the selected customer's computer as another user,
// through their Tandem Helper (the customer allows it in its window first). The password goes
// in one `login_as_user` command and is cleared from the form at once; the server hands it to
// that computer alone. While signed in, the CSR sees and controls that user's screen.
import { $, onComputer, say } from '/assets/tandem.js';

// How signing in failed on the computer, in words.
const FAILED = {
  auth_failed: () => 'The user name or password was not accepted',
  not_allowed: () => 'That user may not be signed in here',
  busy: (user) => `${user} is already signed in elsewhere`,
  failed: (user) => `Could not start ${user}'s session`,
};

// The server's refusals of a sign-in, in words (the server's own detail otherwise).
const REFUSED = {
  bad_login: 'Check the user name (up to 32 letters, digits, dots, dashes or underscores) and the password.',
  too_many_logins: 'Too many sign-ins on this computer in the last minute: wait a little, then try again.',
  login_pending: 'The customer\'s computer has not answered the last sign-in yet: wait for it.',
  activity_not_running: 'The customer has not allowed signing in as another user (or it has ended): ask again.',
  helper_required: 'The customer\'s Tandem Helper cannot sign in as another user.',
  not_primary: 'Only the support person in charge can sign in.',
  no_customer_selected: 'Select a customer first.',
};

export class LoginAsUserPanel {
  constructor(box, { conn, panel }) {
    this.box = box;
    this.conn = conn;
    this.panel = panel;
    this.said = new Map(); // customer id -> the last status line about signing in there
    this.refusal = ''; // why the last sign-in was refused, beside the form
    $('[data-act="login-as-user"]', box).addEventListener('click', () => this.conn.act({ type: 'request_activity', activity: 'login_as_user' }));
    $('[data-act="stop-login-as-user"]', box).addEventListener('click', () => this.conn.act({ type: 'stop_activity', activity: 'login_as_user' }));
    $('.login-form', box).addEventListener('submit', (e) => {
      e.preventDefault();
      this.signIn(e.target.elements);
    });
  }

  get view() { return this.panel.view; }

  async signIn(f) {
    const user = f.user.value.trim();
    const password = f.password.value;
    // Cleared before it is even sent: the page keeps no copy of it.
    f.password.value = '';
    this.refusal = '';
    const r = await this.conn.request({ type: 'login_as_user', user, password });
    if (r.type === 'error') this.refusal = REFUSED[r.code] || r.detail;
    this.render();
    f.password.focus();
  }

  event(ev) {
    // Signing out (the CSR's Sign out, the customer's Stop): the helper ends that session and
    // says so; until then the line says it is on its way.
    if (ev.type === 'activity_stopped' && ev.activity === 'login_as_user' && this.view?.signed_in_as?.[ev.customer]) {
      this.said.set(ev.customer, `Signing out of ${this.view.signed_in_as[ev.customer]}'s session…`);
      return;
    }
    if (!ev.type.startsWith('login_as_user_')) return;
    const { user, customer } = ev;
    const line = {
      login_as_user_attempted: `Signing in as ${user}…`,
      login_as_user_started: `Signed in as ${user} — you now see and control ${user}'s screen`,
      login_as_user_failed: (FAILED[ev.code] || FAILED.failed)(user),
      login_as_user_ended: ev.reason === 'failed'
        ? `${user}'s session broke off; the customer's screen is back`
        : `${user} signed out; the customer's screen is back`,
    }[ev.type];
    if (!line) return;
    this.said.set(customer, line);
    if (ev.type !== 'login_as_user_attempted') say(line, ev.type === 'login_as_user_failed' ? 'error' : 'info');
  }

  render() {
    const v = this.view;
    if (!v) return;
    const box = this.box;
    const { primary, customer, who, computer, able, on, asking } = onComputer(this.panel, 'login_as_user');
    $('.login-state', box).textContent = !customer ? 'No customer yet.'
      : !computer ? `Signing in on ${who}'s computer needs Tandem Helper there: ask ${who} to run it (their page offers it).`
        : !able ? `${who}'s Tandem Helper cannot sign in as another user.`
          : asking ? `Waiting for ${who} to allow it in Tandem Helper.`
            : on ? (this.said.get(customer) || `${who} allowed it: type the user name and password.`)
              : this.said.get(customer) || `Sign in on ${who}'s computer as another user; ${who} is asked first.`;
    $('[data-act="login-as-user"]', box).hidden = !primary || !able || on;
    $('[data-act="login-as-user"]', box).disabled = asking;
    $('.login-form', box).hidden = !primary || !on;
    $('[data-act="stop-login-as-user"]', box).hidden = !primary || !on;
    $('.login-refused', box).textContent = on ? this.refusal : '';
    if (!on) this.refusal = '';
  }
}
