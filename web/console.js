// The CSR console: sign in, then a dashboard with one tab per session (S3, S13): start a
// session, assist a colleague's by number (S5), take sessions transferred to this agent (S8).
import { $, api, say, tablist } from '/assets/tandem.js';
import { CsrSession } from '/assets/csr_session.js';
import { offerSignOutEverywhere, showAccounts } from '/assets/accounts.js';
import { ScriptLibrary } from '/assets/script_library.js';

let account = null;
let sessions = 0;
const tabs = tablist($('#session-tabs'));

$('#signin').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = e.target.elements;
  try {
    account = await api('POST', '/api/login', { username: f.username.value, password: f.password.value });
    $('#signin').hidden = true;
    $('#dashboard').hidden = false;
    $('#who').textContent = `Signed in as ${account.user.display_name}`;
    say(`Signed in as ${f.username.value}.`);
    $('#topic').focus();
    refreshRecordings();
    offerSignOutEverywhere(account);
    if (account.user.role === 'admin') showAccounts(account);
    new ScriptLibrary(account); // eslint-disable-line no-new
    if (account.user.role === 'csr' || account.user.role === 'agent') {
      $('#softphone').hidden = false;
      refreshSoftphone();
    }
    if (account.user.role === 'agent') {
      $('#waiting').hidden = false;
      refreshOffers();
    }
  } catch (err) {
    say(`Sign-in failed: ${err.message}`, 'error');
  }
});

// Opens a session the account has joined (`joined`: the join answer) in a tab of its own.
async function open(joined, invite) {
  const n = ++sessions;
  const tab = document.createElement('button');
  tab.type = 'button';
  tab.setAttribute('role', 'tab');
  tab.id = `tab-s${n}`;
  tab.setAttribute('aria-controls', `s${n}`);
  tab.textContent = `${joined.session.topic} · ${joined.session.number}`;
  $('#session-tabs').append(tab);
  const root = document.createElement('section');
  root.id = `s${n}`;
  root.className = 'session';
  root.setAttribute('role', 'tabpanel');
  root.setAttribute('aria-labelledby', tab.id);
  $('#dashboard').append(root);
  const session = new CsrSession(root, `s${n}`, { account, joined, invite });
  session.onClose = () => {
    tab.remove();
    root.remove();
    tabs.select($('#tab-home'), true);
  };
  tabs.select(tab, false);
  await session.start();
  return session;
}

$('#start').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const started = await api('POST', '/api/sessions', { topic: e.target.elements.topic.value || null }, account.token);
    e.target.reset();
    await open(started, started.invite);
    say(`Session ${started.session.number} started. Send the customer the invite link or the number.`);
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

async function refreshOffers() {
  try {
    const offers = await api('GET', '/api/transfers', null, account.token);
    $('#offers').replaceChildren(...offers.map((o) => {
      const li = document.createElement('li');
      li.textContent = `${o.queue_name || 'To you'}${o.message ? `: ${o.message}` : ''} `;
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
        refreshOffers();
      });
      li.append(b);
      return li;
    }));
    if (!offers.length) $('#offers').replaceChildren(Object.assign(document.createElement('li'), { textContent: 'No session is waiting.' }));
  } catch (err) {
    say(`Could not list waiting sessions: ${err.message}`, 'error');
  }
}
$('#refresh-offers').addEventListener('click', refreshOffers);

// R4: the account's recordings; a ready one plays here through a signed, expiring link. While
// any is being converted to MP4 the list refreshes itself to show how far that is.
let recordingsTimer = null;
async function refreshRecordings() {
  clearTimeout(recordingsTimer);
  try {
    const { recordings } = await api('GET', '/api/recordings', null, account.token);
    $('#recording-list').replaceChildren(...recordings.map((r) => {
      const li = document.createElement('li');
      const secs = r.duration_ms ? Math.round(r.duration_ms / 1000) : 0;
      const converting = `Converting… ${Math.floor((r.progress || 0) * 100)}%`;
      const state = { recording: 'recording now', processing: converting, ready: 'ready', failed: `failed: ${r.error || ''}` }[r.status] || r.status;
      li.textContent = `${r.name} · ${Math.floor(secs / 60)} min ${secs % 60} s · ${state} `;
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
    if (recordings.some((r) => r.status === 'processing')) recordingsTimer = setTimeout(refreshRecordings, 2000);
  } catch (err) {
    say(`Could not list recordings: ${err.message}`, 'error');
  }
}
$('#refresh-recordings').addEventListener('click', refreshRecordings);

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
