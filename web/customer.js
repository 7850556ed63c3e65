// The customer's page: join by invite link or session number, chat, answer permission
// requests, leave.
import { $, api, Connection, mountChat, say, SessionPanel } from '/assets/tandem.js';

const invite = new URLSearchParams(location.search).get('invite');
if (invite) $('#number-field').hidden = true;

const WHAT = {
  view_desktop: 'see your screen',
  control_desktop: 'control your mouse and keyboard',
  view_application: 'see an application you choose',
  control_application: 'control an application you choose',
  file_transfer: 'transfer files with your computer',
  recording: 'record this session',
  system_info: 'read information about your computer',
  run_script: 'run a script on your computer',
  reboot: 'restart your computer',
  login_as_user: 'sign in to your computer as another user',
};

let conn = null;
let panel = null;
const asked = [];

$('#join').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = e.target.elements;
  const body = { name: f.name.value, email: f.email.value || null };
  if (invite) body.invite = invite;
  else body.number = f.number.value.replace(/\D/g, '');
  try {
    const joined = await api('POST', '/api/join', body);
    $('#join').hidden = true;
    $('#session').hidden = false;
    panel = new SessionPanel($('#session'), joined.participant.id);
    conn = new Connection(joined.token, (m) => panel.frame(m, onEvent, onBye));
    await conn.opened;
    mountChat($('#chat-section'), conn);
    say('You are in the session.');
    $('#chat-text').focus();
  } catch (err) {
    say(`Could not join: ${err.message}`, 'error');
  }
});

function ask() {
  const next = asked[0];
  if (!next || $('#consent').open) return;
  $('#consent-text').textContent = `${panel.name(next.by)} asks to ${WHAT[next.activity] || next.activity}.`;
  $('#allow-all').checked = false;
  $('#consent').showModal();
  $('#allow').focus();
}

async function reply(grant) {
  const next = asked.shift();
  $('#consent').close();
  const r = await conn.request({ type: 'consent_reply', request: next.request, grant, allow_all: grant && $('#allow-all').checked });
  if (r.type === 'error') say(r.detail, 'error');
  else say(grant ? 'You allowed it.' : 'You declined.');
  ask();
}
$('#allow').addEventListener('click', () => reply(true));
$('#deny').addEventListener('click', () => reply(false));
// Escape declines, as closing the question without an answer would leave the CSR waiting.
$('#consent').addEventListener('cancel', (e) => { e.preventDefault(); reply(false); });

$('#leave').addEventListener('click', async () => {
  const r = await conn.request({ type: 'leave' });
  if (r.type === 'error') say(r.detail, 'error');
});

function onEvent(ev) {
  if (ev.type === 'consent_requested') {
    asked.push(ev);
    ask();
  } else if (ev.type === 'consent_withdrawn') {
    const i = asked.findIndex((a) => a.request === ev.request);
    if (i >= 0) asked.splice(i, 1);
  } else if (ev.type === 'session_ended') {
    say('The support session has ended. Thank you.');
  }
}

function onBye(reason) {
  if (reason === 'left') say('You left the session.');
  else if (reason !== 'session ended') say(`The session is over (${reason}).`);
  panel.disable();
}
