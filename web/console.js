// The CSR console: sign in, then a dashboard with one tab per session (S3, S13): start a
// session, assist a colleague's by number (S5), take sessions transferred to this agent (S8).
import { $, api, say, tablist } from '/assets/tandem.js';
import { CsrSession } from '/assets/csr_session.js';
import { offerSignOutEverywhere, showAccounts } from '/assets/accounts.js';
import { ScriptLibrary } from '/assets/script_library.js';
import { Alerts } from '/assets/alerts.js';
import { DashboardFeed } from '/assets/dashboard_feed.js';

let account = null;
let sessions = 0;
const alerts = new Alerts({ sound: $('#alert-sound'), notify: $('#alert-notify') });
alerts.onSay = say;
// Looking at a session's tab: nothing unread there any more.
const tabs = tablist($('#session-tabs'), (tab) => alerts.seen(tab.dataset.session));
// The sessions open in tabs, by session id.
const openSessions = new Map();
// What happens on the dashboard (a customer waiting, a recording ready) is counted on its tab.
const home = $('#tab-home');
home.dataset.session = 'dashboard';
home.dataset.name = 'Dashboard';
alerts.add('dashboard', home, () => home.getAttribute('aria-selected') === 'true');
let feed = null;

// Issue 18: the sign-in and the open sessions survive a reload of this tab. They are kept in
// this tab's sessionStorage: the browser never sends them by itself (so no request can be
// forged on the CSR's behalf, as a cookie would allow without CSRF tokens), another tab or site
// cannot read them, and closing the tab forgets them. A script injected into the page could
// read them, as it could use the page itself; the pages load no third-party scripts.
const KEPT = 'tandem.console';
function keep() {
  if (!account) {
    sessionStorage.removeItem(KEPT);
    return;
  }
  const open = [...openSessions.values()].map((s) => ({ joined: s.joined, invite: s.invite || null }));
  sessionStorage.setItem(KEPT, JSON.stringify({ account, open }));
}

$('#signin').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = e.target.elements;
  try {
    signedIn(await api('POST', '/api/login', { username: f.username.value, password: f.password.value }));
    say(`Signed in as ${f.username.value}.`);
    $('#topic').focus();
    await assistByInvite();
  } catch (err) {
    say(`Sign-in failed: ${err.message}`, 'error');
  }
});

// Sign out: the open sessions are left (those this CSR leads end), the server ends this
// sign-in (its token stops working) and this tab forgets it. ("Sign out everywhere" ends every
// sign-in of the account.)
$('#signout').addEventListener('click', async () => {
  const open = [...openSessions.values()].filter((s) => !s.ended);
  if (open.length && !confirm(`Sign out? You leave your ${open.length === 1 ? 'open session' : `${open.length} open sessions`}; a session you lead ends.`)) return;
  for (const s of open) await s.leaveForSignOut();
  feed?.stop();
  // The server ends this sign-in too: its token stops working at once (issue 18).
  await api('POST', '/api/logout', {}, account.token).catch(() => {});
  account = null;
  keep();
  location.reload();
});

// What a sign-in shows: the dashboard and what the account may use.
function signedIn(signed) {
  account = signed;
  keep();
  $('#signin').hidden = true;
  $('#dashboard').hidden = false;
  $('#signout').hidden = false;
  for (const pref of document.querySelectorAll('.alert-pref')) pref.hidden = false;
  $('#who').textContent = `Signed in as ${account.user.display_name}`;
  feed?.stop();
  feed = new DashboardFeed(account.token, (name, data) => {
    if (name === 'offers') showOffers(data);
    else if (name === 'recordings') showRecordings(data);
  }, say);
  offerSignOutEverywhere(account);
  if (account.user.role === 'admin') showAccounts(account);
  new ScriptLibrary(account); // eslint-disable-line no-new
  if (account.user.role === 'csr' || account.user.role === 'agent') {
    $('#softphone').hidden = false;
    refreshSoftphone();
  }
  if (account.user.role === 'agent') $('#waiting').hidden = false;
}

// Issue 18: an assistant invite link (`/?assist=<invite>`) opens the console; once signed in,
// the CSR joins that session as an assistant. The invite is kept through the sign-in.
const ASSIST = 'tandem.assist';
{
  const invite = new URLSearchParams(location.search).get('assist');
  if (invite) {
    sessionStorage.setItem(ASSIST, invite);
    history.replaceState(null, '', location.pathname);
  }
}

async function assistByInvite() {
  const invite = sessionStorage.getItem(ASSIST);
  if (!invite || !account) return;
  sessionStorage.removeItem(ASSIST);
  try {
    const joined = await api('POST', '/api/join', { invite }, account.token);
    await open(joined, null);
    say(`You are assisting in session ${joined.session.number}, as you were invited.`);
  } catch (err) {
    say(`Could not join the session you were invited to: ${err.message}`, 'error');
  }
}

// After a reload: the sign-in, if it still holds, and the sessions that were open, as tabs.
async function resume() {
  let kept;
  try {
    kept = JSON.parse(sessionStorage.getItem(KEPT) || 'null');
  } catch {
    kept = null;
  }
  if (!kept?.account?.token) {
    if (sessionStorage.getItem(ASSIST)) say('You were invited to assist in a session: sign in, and it opens.');
    return;
  }
  try {
    const me = await api('GET', '/api/me', null, kept.account.token);
    signedIn({ ...kept.account, user: { ...kept.account.user, ...me } });
  } catch {
    sessionStorage.removeItem(KEPT);
    say('Your sign-in has expired or was ended: sign in again.', 'error');
    return;
  }
  const gone = [];
  for (const { joined, invite } of kept.open || []) {
    // The WebSocket's address over HTTP says whether the session is still there (410: ended).
    const res = await fetch(`/ws?token=${encodeURIComponent(joined.token)}`).catch(() => null);
    if (res?.status === 410 || res?.status === 401) {
      gone.push(joined.session.number);
      continue;
    }
    await open(joined, invite).catch(() => gone.push(joined.session.number));
  }
  keep();
  if (sessionStorage.getItem(ASSIST)) {
    await assistByInvite();
    return;
  }
  say(gone.length ? `Welcome back. Session ${gone.join(', ')} ended while this page was away.`
    : openSessions.size ? `Welcome back: your ${openSessions.size === 1 ? 'session is' : 'sessions are'} open again.` : `Signed in as ${account.user.display_name}.`);
}

// Opens a session the account has joined (`joined`: the join answer) in a tab of its own.
async function open(joined, invite) {
  const n = ++sessions;
  const tab = document.createElement('button');
  tab.type = 'button';
  tab.setAttribute('role', 'tab');
  tab.id = `tab-s${n}`;
  tab.setAttribute('aria-controls', `s${n}`);
  tab.textContent = `${joined.session.topic} · ${joined.session.number}`;
  tab.dataset.session = joined.session.id;
  tab.dataset.name = tab.textContent;
  $('#session-tabs').append(tab);
  const root = document.createElement('section');
  root.id = `s${n}`;
  root.className = 'session';
  root.setAttribute('role', 'tabpanel');
  root.setAttribute('aria-labelledby', tab.id);
  $('#dashboard').append(root);
  const session = new CsrSession(root, `s${n}`, { account, joined, invite });
  alerts.add(joined.session.id, tab, () => tab.getAttribute('aria-selected') === 'true');
  session.onAlert = (text) => alerts.raise(joined.session.id, text);
  session.onClose = () => {
    alerts.remove(joined.session.id);
    tab.remove();
    root.remove();
    openSessions.delete(joined.session.id);
    keep();
    tabs.select($('#tab-home'), true);
  };
  openSessions.set(joined.session.id, session);
  keep();
  tabs.select(tab, false);
  await session.start();
  keep();
  return session;
}

$('#start').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const started = await api('POST', '/api/sessions', { topic: e.target.elements.topic.value || null }, account.token);
    e.target.reset();
    const session = await open(started, started.invite);
    say(`Session ${started.session.number} started. Send the customer the invite link or the number.`);
    // Issue 18: the focus goes to the new session, where the CSR works next.
    session.root.querySelector('[data-act="copy"]')?.focus();
  } catch (err) {
    say(`Could not start the session: ${err.message}`, 'error');
  }
});

$('#assist').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const joined = await api('POST', '/api/assist', { number: e.target.elements.number.value.replace(/\D/g, '') }, account.token);
    e.target.reset();
    await open(joined, null);
    say(`You are assisting in session ${joined.session.number}.`);
  } catch (err) {
    say(`Could not join the session: ${err.message}`, 'error');
  }
});

// S8: the sessions waiting for this agent, as the feed sends them; one that was not there
// before raises an alert.
let offered = null;
function showOffers(offers) {
  const fresh = offered ? offers.filter((o) => !offered.has(o.session)) : [];
  offered = new Set(offers.map((o) => o.session));
  for (const o of fresh) alerts.raise('dashboard', `A customer is waiting${o.queue_name ? ` in ${o.queue_name}` : ' for you'}.`);
  $('#offers').replaceChildren(...offers.map((o) => {
    const li = document.createElement('li');
    const since = new Date(o.since).toLocaleTimeString([], { timeStyle: 'short' });
    li.textContent = `${o.queue_name || 'To you'} · waiting since ${since}${o.message ? ` · ${o.message}` : ''} `;
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = 'Take this session';
    b.addEventListener('click', async () => {
      try {
        const joined = await api('POST', `/api/transfers/${o.session}/accept`, null, account.token);
        await open(joined, null);
        say(joined.message ? `You took over the session. Message: ${joined.message}` : 'You took over the session.');
      } catch (err) {
        say(`Could not take the session: ${err.message}`, 'error');
      }
    });
    li.append(b);
    return li;
  }));
  if (!offers.length) $('#offers').replaceChildren(Object.assign(document.createElement('li'), { textContent: 'No session is waiting.' }));
}

// R4: the account's recordings as the feed sends them (and again as an export goes on); a
// ready one plays here through a signed, expiring link. One that is done (ready, or failed)
// raises an alert.
let doneBefore = null;
function showRecordings(recordings) {
  const done = new Set(recordings.filter((r) => ['ready', 'failed'].includes(r.status)).map((r) => r.id));
  if (doneBefore) {
    for (const r of recordings) {
      if (done.has(r.id) && !doneBefore.has(r.id)) alerts.raise('dashboard', r.status === 'ready' ? `Recording ready: ${r.name}.` : `A recording could not be made ready: ${r.name}.`);
    }
  }
  doneBefore = done;
  $('#recording-list').replaceChildren(...recordings.map((r) => {
    const li = document.createElement('li');
    const secs = r.duration_ms ? Math.round(r.duration_ms / 1000) : 0;
    const converting = `Converting… ${Math.floor((r.progress || 0) * 100)}%`;
    const state = { recording: 'recording now', processing: converting, ready: 'ready', failed: `failed: ${r.error || ''}` }[r.status] || r.status;
    // Issue 18: when, and with whom, so the list says which recording is which.
    const when = new Date(r.created_at).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
    const who = [r.csr && `with ${r.csr}`, r.customers?.length && `for ${r.customers.join(', ')}`].filter(Boolean).join(' ');
    li.textContent = `${r.name} · ${when}${who ? ` · ${who}` : ''} · ${Math.floor(secs / 60)} min ${secs % 60} s · ${state} `;
    if (r.status === 'ready') {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = `Play ${r.name}`;
      b.addEventListener('click', async () => {
        try {
          const link = await api('POST', `/api/recordings/${r.id}/links`, {}, account.token);
          const player = $('#player');
          player.src = link.url;
          player.hidden = false;
          player.focus();
        } catch (err) {
          say(`Could not play it: ${err.message}`, 'error');
        }
      });
      const mail = document.createElement('button');
      mail.type = 'button';
      mail.className = 'secondary';
      mail.textContent = `E-mail a link to ${r.name}`;
      mail.addEventListener('click', () => {
        const form = $('#email-recording');
        form.dataset.recording = r.id;
        form.hidden = false;
        $('#email-to').focus();
      });
      li.append(b, ' ', mail);
    }
    return li;
  }));
  if (!recordings.length) $('#recording-list').replaceChildren(Object.assign(document.createElement('li'), { textContent: 'No recordings yet.' }));
}

// R4 "e-mail a link": the server sends a streaming link to the address given.
$('#email-recording').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = e.target;
  try {
    const sent = await api('POST', `/api/recordings/${form.dataset.recording}/email`, { to: form.elements.to.value }, account.token);
    say(`Link sent to ${sent.to}.`);
    form.hidden = true;
    form.reset();
  } catch (err) {
    say(`Could not send the link: ${err.message}`, 'error');
  }
});

// V5: the account's softphone. It registers with the SIP password set here (digest; the
// server keeps only hashes of it) and joins a session by dialling its number.
async function refreshSoftphone() {
  try {
    const sip = await api('GET', `/api/users/${account.user.id}/sip`, null, account.token);
    const where = sip.server
      ? `Register your softphone as ${sip.uri} at ${sip.server} (user ${sip.username}, realm ${sip.realm}). Join a session by dialling sip:<session number>@${sip.server}.`
      : 'SIP is turned off on this server.';
    $('#softphone-status').textContent = `${sip.configured ? 'SIP password set.' : 'No SIP password yet.'} ${where}`;
    $('#softphone-remove').hidden = !sip.configured;
    $('#softphone-registrations').replaceChildren(...sip.registrations.map((r) => {
      const until = new Date(r.expires_at).toLocaleTimeString();
      return Object.assign(document.createElement('li'), {
        textContent: `${r.user_agent || 'A softphone'} at ${r.contact} (${r.transport}), registered until ${until}`,
      });
    }));
    if (sip.configured && !sip.registrations.length) {
      $('#softphone-registrations').replaceChildren(Object.assign(document.createElement('li'), { textContent: 'No softphone registered.' }));
    }
  } catch (err) {
    say(`Could not read the softphone settings: ${err.message}`, 'error');
  }
}
$('#softphone-refresh').addEventListener('click', refreshSoftphone);

$('#softphone-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = e.target;
  try {
    await api('PUT', `/api/users/${account.user.id}/sip`, {
      password: form.elements.password.value,
      current_password: form.elements.current_password.value,
    }, account.token);
    form.reset();
    say('SIP password set. Softphones registered with the old one must register again.');
    refreshSoftphone();
  } catch (err) {
    say(`Could not set the SIP password: ${err.message}`, 'error');
  }
});

$('#softphone-remove').addEventListener('click', async () => {
  try {
    await api('DELETE', `/api/users/${account.user.id}/sip`, null, account.token);
    say('SIP password removed; no softphone can register or call as you.');
    refreshSoftphone();
  } catch (err) {
    say(`Could not remove the SIP password: ${err.message}`, 'error');
  }
});

resume();
