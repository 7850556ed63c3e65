// The CSR console: sign in, start a session, invite the customer, chat, ask to view the
// customer's desktop, end the session with notes.
import { $, api, Connection, mountChat, say, SessionPanel } from '/assets/tandem.js';

let account = null;
let conn = null;
let panel = null;

$('#signin').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = e.target.elements;
  try {
    account = await api('POST', '/api/login', { username: f.username.value, password: f.password.value });
    $('#signin').hidden = true;
    $('#start').hidden = false;
    say(`Signed in as ${f.username.value}.`);
    $('#topic').focus();
  } catch (err) {
    say(`Sign-in failed: ${err.message}`, 'error');
  }
});

$('#start').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const started = await api('POST', '/api/sessions', { topic: e.target.elements.topic.value || null }, account.token);
    const invite = await api('POST', `/api/sessions/${started.session.id}/invites`, { role: 'customer' }, account.token);
    $('#number').textContent = started.session.number;
    $('#invite-link').value = invite.link;
    $('#start').hidden = true;
    $('#session').hidden = false;
    panel = new SessionPanel($('#session'), started.participant.id);
    conn = new Connection(started.token, (m) => panel.frame(m, onEvent));
    await conn.opened;
    mountChat($('#chat-section'), conn);
    say(`Session ${started.session.number} started. Send the customer the invite link or the number.`);
    $('#copy-link').focus();
  } catch (err) {
    say(`Could not start the session: ${err.message}`, 'error');
  }
});

$('#copy-link').addEventListener('click', async () => {
  $('#invite-link').select();
  try {
    await navigator.clipboard.writeText($('#invite-link').value);
    say('Invite link copied.');
  } catch {
    say('Select the link and copy it (the browser did not allow copying).');
  }
});

$('#view-desktop').addEventListener('click', async () => {
  const r = await conn.request({ type: 'request_activity', activity: 'view_desktop' });
  if (r.type === 'error') say(r.detail, 'error');
  else say('Asked the customer for permission to view their desktop.');
});

$('#end').addEventListener('submit', async (e) => {
  e.preventDefault();
  const r = await conn.request({ type: 'end_session', confirm: true, notes: e.target.elements.notes.value });
  if (r.type === 'error') say(r.detail, 'error');
});

function onEvent(ev) {
  if (ev.type === 'consent_answered') {
    say(ev.granted ? 'The customer allowed it.' : 'The customer declined.', ev.granted ? 'info' : 'error');
  } else if (ev.type === 'activity_started' && ev.activity === 'view_desktop') {
    panel.notice('Viewing the customer\'s desktop');
  } else if (ev.type === 'session_ended') {
    say('The session has ended. Its notes are saved with the session report.');
    panel.disable();
  }
}
