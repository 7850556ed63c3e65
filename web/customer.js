// The customer's page: join by invite link or session number, answer permission requests (S9),
// share the screen or an application the support person may see (D1, D6), the voice call and
// video, annotations on the share, chat, leave. Control of the mouse and keyboard needs Tandem
// Helper (issue 16): the page never promises it; it offers the helper (download, pairing code)
// and, once the helper is connected, says the questions are in its window.
import { $, api, Connection, ConnectionState, mountChat, running, say, sentence, SessionPanel } from '/assets/tandem.js';
import { MediaLink } from '/assets/media.js';
import { VoicePanel } from '/assets/voice.js';
import { CameraPanel } from '/assets/video.js';
import { Viewer } from '/assets/viewer.js';
import { FileWindow } from '/assets/shared_files.js';

const invite = new URLSearchParams(location.search).get('invite');
if (invite) $('#number-field').hidden = true;
// A short link (…/j/<code>) that has expired, or was mistyped, lands here.
if (new URLSearchParams(location.search).get('link') === 'expired') {
  history.replaceState(null, '', location.pathname);
  say('This invitation link has expired or is not right. Enter the session number your support representative gives you.', 'error');
}

const WHAT = {
  view_desktop: 'see your screen',
  control_desktop: 'use your mouse and keyboard through Tandem Helper',
  view_application: 'see an application you choose',
  control_application: 'use an application you choose through Tandem Helper',
  file_transfer: 'transfer files with your computer',
  recording: 'record this session',
  system_info: 'read information about your computer',
  run_script: 'run a script on your computer',
  reboot: 'restart your computer',
  login_as_user: 'sign in to your computer as another user',
};
const SHARES = ['view_desktop', 'control_desktop', 'view_application', 'control_application'];
// D3, D7: the CSR shows their own screen; nothing is asked of the customer, who may stop
// watching (D5).
const SHOWS = ['show_desktop', 'show_applications'];
// D4: the CSR gives this customer control of their desktop (through the CSR's Tandem Helper);
// the CSR's screen is shown as for SHOWS, and either side takes the pointer by clicking.
const GIVE = 'give_control';
const csrScreen = (v) => v.activities.find((a) => SHOWS.includes(a.activity) || a.activity === GIVE);

let conn = null;
let presence = null;
let panel = null;
let link = null;
let voice = null;
let camera = null;
let preview = null;
let shown = null;
let files = null; // F1: the window of files the CSR published
let screen = null; // the track this page shares
let capture = null; // a capture the customer has started choosing, for a share they allowed
let refused = false; // the server would not let this page in; its reason is shown
const others = new Map(); // participant id -> another customer's (or the CSR's) shared screen
const csrViewers = new Map(); // the CSR's shown track id -> { viewer, stream } showing it
let hidden = null; // the showing another customer's "Stop watching" hid on this page only
let stopping = false; // this customer pressed "Stop watching"; the stop is theirs, not the CSR's
const asked = [];
// Issue 16: questions about the computer that the page does not ask itself: control waiting
// for Tandem Helper (`helper_needed`), or asked in the helper's window (`computer`).
const inHelper = [];
let token = null;
let code = null; // the pairing code shown: {code, expires_at, command}
let download = undefined; // {url, sha256} of Tandem Helper, null if the server has none

$('#join').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = e.target.elements;
  const body = { name: f.name.value, email: f.email.value || null };
  if (invite) body.invite = invite;
  else body.number = f.number.value.replace(/\D/g, '');
  try {
    enter(await api('POST', '/api/join', body));
  } catch (err) {
    if (!refused) say(joinRefused(err), 'error');
  }
});

async function enter(joined, resumed = false) {
  try {
    token = joined.token;
    $('#join').hidden = true;
    $('#session').hidden = false;
    $('#now').hidden = false;
    if (joined.session.number) $('h1').textContent = `Support session ${joined.session.number}`;
    panel = new SessionPanel($('#session'), joined.participant.id);
    // Issue 18: this page's connection, and the support representative's, said at the top.
    presence = new ConnectionState($('#connection'), {
      name: (id) => panel.name(id), primary: () => panel.view?.primary, me: joined.participant.id,
    });
    conn = new Connection(joined.token, frame, {
      onState: (state, info) => {
        presence.mine(state, info);
        if (state === 'connected') link.revive();
      },
    });
    conn.explain = refusal;
    link = new MediaLink(conn, {
      stream: (id, s) => received(id, s),
      streamEnded: (id) => received(id, null),
      audio: (s) => voice.hear(s),
      channel: (label, data) => {
        if (label !== 'annotation') return;
        const csrScreen = [...csrViewers.values()][0]?.viewer;
        (screen ? preview : csrScreen || shown).receive(data);
      },
      // The details are for the support person's console; a customer gets what to expect.
      error: (text) => {
        console.error('media', text);
        say('The sound and video connection had a problem. The page tries again by itself; if it stays silent, leave and join again.', 'error');
      },
    });
    const parts = { conn, link, panel, staff: false };
    voice = new VoicePanel($('#voice'), parts);
    camera = new CameraPanel($('#video'), parts);
    const annotate = (text) => link.message('annotation', text);
    preview = new Viewer($('#preview'), { title: 'What you are sharing', send: annotate, say });
    shown = new Viewer($('#shown'), { title: 'Shared screen', send: annotate, say });
    files = new FileWindow($('#files'), { panel, session: joined.session.id, token: joined.token });
    await conn.opened;
    mountChat($('#chat-section'), conn);
    await link.connect();
    if (!refused) say(resumed ? 'Your computer restarted: you are back in the support session.' : 'You are in the session.');
    $('#chat-section input[name="text"]').focus();
  } catch (err) {
    if (!refused) say(joinRefused(err), 'error');
  }
}

function frame(m) {
  if (link.handle(m)) return;
  if (m.type === 'welcome') {
    panel.view = m.session;
    $('h1').textContent = `Support session ${m.session.number}`;
    // The server's limit (SPEC S10), so the page does not restate it.
    $('#chat-section .chat-form input[name="text"]').maxLength = m.limits.chat_chars;
    presence.welcome(m.session, m.limits.reconnect_grace_secs);
    panel.render();
    panel.history(m.session.chat);
    for (const c of m.session.pending_consents) if (c.activity !== GIVE) question(c);
    ask();
    render();
  } else if (m.type === 'event') {
    panel.event(m.event, m);
    onEvent(m.event);
    files.event(m.event);
    render();
  } else if (m.type === 'presence') {
    presence.presence(m);
  } else if (m.type === 'bye') {
    onBye(m.reason);
  } else if (m.type === 'error' && REFUSED[m.code] && !m.ref) {
    // Refused on connecting (or later removed): the server closes the connection next.
    refused = true;
    say(REFUSED[m.code], 'error');
    panel?.disable();
  } else if (m.type === 'error') {
    say(refusal(m), 'error');
  }
}

// Issue 18, item 9: what a customer reads when something is refused is a sentence in plain
// words, never the server's code.
const JOIN_REFUSED = {
  unknown_session: 'There is no session with that number. Check the nine digits with your support representative.',
  session_ended: 'That session has ended. Ask your support representative for a new one.',
  invalid_name: 'Please enter your name (at most 80 characters).',
  number_or_invite: 'Enter the session number your support representative gave you.',
  too_many_joins: 'Too many people are joining this session at once. Wait a few seconds, then try again.',
  too_many_attempts: 'Too many session numbers were tried from here. Wait a minute, then try again.',
  invalid_session_number: 'A session number is nine digits. Check it with your support representative.',
  invalid_token: 'This invitation link is damaged or has expired. Ask your support representative for a new one.',
  token_expired: 'This invitation link has expired. Ask your support representative for a new one.',
  wrong_token_kind: 'This link is not an invitation to a session. Ask your support representative for the right one.',
  unreachable: 'The support server could not be reached. Check your network connection, then try again.',
};
function joinRefused(err) {
  return JOIN_REFUSED[err.code] || REFUSED[err.code]
    || (err.status >= 500 ? 'The support server had a problem. Try again in a moment.' : `Could not join: ${sentence(err.message)}`);
}
// A refusal of something this customer did in the session.
const ACT_REFUSED = {
  csr_camera_first: 'You can start your camera once your support representative has started theirs.',
  camera_not_allowed: 'Only the customer being helped can send video now.',
  bad_chat_text: 'That message is too long: make it shorter, then send it again.',
};
function refusal(r) {
  return ACT_REFUSED[r.code] || REFUSED[r.code] || sentence(r.detail || 'That could not be done.');
}

// Why the server would not let this page into the session, in plain words.
const REFUSED = {
  customer_limit: 'The session is full right now. Ask your support representative, then join again.',
  removed: 'The support representative removed you from this session.',
  unknown_participant: 'This join has expired. Join the session again.',
  session_ended: 'The session has ended.',
};

// A question for this customer: asked on the page, or about the computer (Tandem Helper).
// Issue 18: phone and tablet browsers cannot share a screen: a request to see it is declined
// at once, saying why, instead of a question whose Allow could only fail.
const CAN_SHARE = Boolean(navigator.mediaDevices?.getDisplayMedia);

function question(c) {
  if (SHARES.includes(c.activity) && !CAN_SHARE && !c.helper_needed && !c.computer) {
    conn.request({ type: 'consent_reply', request: c.request, grant: false, reason: 'cannot_share' });
    say(`${panel.name(c.by)} asked to see your screen, but this device cannot share its screen. ${panel.name(c.by)} has been told.`);
    return;
  }
  if (c.helper_needed || c.computer) {
    inHelper.push(c);
    renderHelper();
  } else {
    asked.push(c);
  }
}

// The helper offer while control waits for it; then where the question is. The customer may
// refuse here either way.
async function renderHelper() {
  const box = $('#helper');
  const csr = panel.name(panel.view.primary);
  const waiting = inHelper.filter((c) => c.helper_needed);
  const there = inHelper.filter((c) => c.computer);
  box.hidden = !waiting.length && !there.length;
  if (box.hidden) return;
  if (waiting.length && !code) await newCode();
  if (waiting.length && download === undefined) {
    download = await api('GET', '/api/helper/download').catch(() => null);
  }
  const offer = $('#helper-offer');
  offer.hidden = !waiting.length;
  if (waiting.length) {
    $('#helper-why').textContent = `To let ${panel.name(waiting[0].by)} use your mouse and keyboard, run Tandem Helper.`;
    $('#helper-download').hidden = !download;
    if (download) {
      $('#helper-link').href = download.url;
      $('#helper-sha').textContent = download.sha256;
    }
    $('#helper-none').hidden = Boolean(download);
    $('#helper-code').textContent = code ? code.code : '…';
    $('#helper-expiry').textContent = code
      ? `This code works once, until ${new Date(code.expires_at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}.`
      : '';
    $('#helper-command').textContent = code ? code.command : '';
    $('#helper-state').textContent = myComputer() ? "The question is in Tandem Helper's window." : 'Waiting for Tandem Helper...';
  }
  $('#helper-asked').replaceChildren(...there.map((c) => {
    const li = document.createElement('li');
    li.append(`${panel.name(c.by) || csr} asks to ${WHAT[c.activity] || c.activity}. The question is in Tandem Helper's window. `);
    const no = document.createElement('button');
    no.type = 'button';
    no.className = 'secondary';
    no.textContent = 'Refuse';
    no.addEventListener('click', () => refuse(c));
    li.append(no);
    return li;
  }));
  $('#helper-refuse').hidden = !waiting.length;
}

async function newCode() {
  try {
    code = await api('POST', '/api/helper/codes', {}, token);
  } catch (err) {
    code = null;
    say(`Could not get a code for Tandem Helper: ${err.message}`, 'error');
  }
}

async function refuse(c) {
  await conn.act({ type: 'consent_reply', request: c.request, grant: false }, 'You declined.');
}

// This customer's computer (Tandem Helper), if one is connected.
function myComputer() {
  return panel.view?.participants.find((p) => p.computer_of === panel.me)?.id;
}

$('#helper-new-code').addEventListener('click', async () => { await newCode(); renderHelper(); });
$('#helper-refuse').addEventListener('click', () => {
  for (const c of inHelper.filter((x) => x.helper_needed)) refuse(c);
});

function ask() {
  const next = asked[0];
  if (!next || $('#consent').open) return;
  const automatic = next.activity === 'recording' && panel.view.automatic_recording
    ? ' This site records its support sessions when you allow it.' : '';
  $('#consent-text').textContent = `${panel.name(next.by)} asks to ${WHAT[next.activity] || next.activity}.${automatic}`;
  $('#allow-all').checked = false;
  $('#consent').showModal();
  $('#allow').focus();
}

// The browser lets a page capture the screen only right after the person clicked, so choosing
// what to share starts with the click that allows it.
function choose(activity) {
  const window = activity.endsWith('_application');
  return navigator.mediaDevices.getDisplayMedia({ video: window ? { displaySurface: 'window' } : true, audio: false })
    .then((s) => s.getVideoTracks()[0]);
}

async function reply(grant) {
  const next = asked.shift();
  $('#consent').close();
  if (grant && SHARES.includes(next.activity) && !screen) {
    try {
      capture = choose(next.activity);
    } catch {
      // The browser cannot start a share at all: the CSR hears why, nobody waits.
      await conn.request({ type: 'consent_reply', request: next.request, grant: false, reason: 'share_failed' });
      say('Your browser could not share your screen, so nothing is shared. Your support representative has been told.', 'error');
      ask();
      render();
      return;
    }
  }
  const done = grant ? 'You allowed it.' : 'You declined.';
  if (!(await conn.act({ type: 'consent_reply', request: next.request, grant, allow_all: grant && $('#allow-all').checked }, done))) capture = null;
  ask();
  render();
}
$('#allow').addEventListener('click', () => reply(true));
$('#deny').addEventListener('click', () => reply(false));
// Escape declines, as closing the question without an answer would leave the CSR waiting.
$('#consent').addEventListener('cancel', (e) => { e.preventDefault(); reply(false); });

$('#share-now').addEventListener('click', () => {
  const activity = SHARES.find((a) => running(panel.view, a, panel.me));
  capture = choose(activity);
  render();
});
$('#stop-share').addEventListener('click', () => stopSharing());

async function stopSharing() {
  for (const activity of SHARES.filter((a) => running(panel.view, a, panel.me))) {
    await conn.act({ type: 'stop_activity', activity });
  }
}

$('#leave').addEventListener('click', () => conn.act({ type: 'leave' }));

// D5: the customer being helped ends the showing for the session; another customer, to whom
// it is not addressed, only stops seeing it on this page.
$('#stop-watching').addEventListener('click', async () => {
  const shown = csrScreen(panel.view);
  if (!shown) return;
  if (shown.customer !== panel.me) {
    hidden = shown;
    say('You stopped watching.');
    render();
    return;
  }
  stopping = true;
  if (!(await conn.act({ type: 'stop_activity', activity: shown.activity }, 'You stopped watching.'))) stopping = false;
});

function onEvent(ev) {
  if (ev.type === 'consent_requested' && ev.activity === GIVE) {
    // D4: the CSR answers in her own Tandem Helper; nothing is asked here.
  } else if (ev.type === 'consent_requested' && ev.customer === panel.me) {
    question(ev);
    ask();
  } else if ((ev.type === 'consent_withdrawn' || ev.type === 'consent_answered') && inHelper.some((a) => a.request === ev.request)) {
    inHelper.splice(inHelper.findIndex((a) => a.request === ev.request), 1);
    if (!inHelper.some((a) => a.helper_needed)) code = null;
    renderHelper();
  } else if (ev.type === 'consent_withdrawn') {
    const i = asked.findIndex((a) => a.request === ev.request);
    if (i >= 0) asked.splice(i, 1);
    if (i === 0 && $('#consent').open) { $('#consent').close(); ask(); }
  } else if (ev.type === 'computer_attached' && ev.customer === panel.me) {
    renderHelper();
  } else if (ev.type === 'activity_stopped' && ev.customer === panel.me && ev.cause === 'computer_left') {
    say('Tandem Helper closed: nobody uses your mouse and keyboard now.');
  } else if (ev.type === 'computer_restarting' && ev.customer === panel.me) {
    say('Your computer is restarting. Keep this page open: Tandem Helper rejoins the session by itself once the computer is back.');
  } else if (ev.type === 'login_as_user_started' && ev.customer === panel.me && signedInAs(panel.view)) {
    say(`${SIGNED_IN(signedInAs(panel.view))}.`);
  } else if (ev.type === 'login_as_user_ended' && ev.customer === panel.me) {
    say(`Your support representative is no longer signed in as ${ev.user}; your own screen is back.`);
  } else if (ev.type === 'system_info_provided' && ev.customer === panel.me) {
    say(`Your Tandem Helper sent your computer's information to ${panel.name(panel.view.primary)}.`);
  } else if (ev.type === 'activity_started' && ev.customer === panel.me && ev.pre_approved) {
    say(`${panel.name(panel.view.primary)} started to ${WHAT[ev.activity] || ev.activity} (you allowed everything).`);
  } else if (ev.type === 'control_taken') {
    panel.view.control_holder = ev.holder;
    if (ev.customer === panel.me) say(ev.holder === 'csr' ? `${panel.name(panel.view.primary)} took control back: click the screen to take control.` : 'You control the screen shown.');
  } else if (ev.type === 'activity_started' && ev.activity === GIVE) {
    hidden = null;
    panel.view.control_holder = 'customer';
    if (ev.customer === panel.me) say(`${panel.name(panel.view.primary)} gave you control of their desktop: your pointer and keys on their screen go to their computer.`);
  } else if (ev.type === 'activity_stopped' && ev.activity === GIVE) {
    panel.view.control_holder = null;
    if (stopping && ev.customer === panel.me) stopping = false;
    else say(`${panel.name(panel.view.primary) || 'Your support representative'} no longer gives you control of their desktop.`);
  } else if (ev.type === 'activity_started' && SHOWS.includes(ev.activity)) {
    hidden = null;
    say(`${panel.name(panel.view.primary)} is showing you their ${ev.activity === 'show_desktop' ? 'screen' : 'applications'}.`);
  } else if (ev.type === 'activity_stopped' && SHOWS.includes(ev.activity)) {
    const csr = panel.name(panel.view.primary) || 'Your support representative';
    if (stopping && ev.customer === panel.me) stopping = false;
    else if (ev.cause === 'stopped' && ev.customer !== panel.me) say(`${csr}'s screen is no longer shown.`);
    else if (ev.cause === 'stopped') say(`${csr} stopped showing their screen.`);
    else say(`${csr} is no longer showing their screen.`);
  } else if (ev.type === 'session_ended') {
    say('The support session has ended. Thank you.');
  } else if (ev.type === 'session_transferred') {
    say(`You are being transferred to another support person${ev.message ? `: ${ev.message}` : ''}. Please wait.`);
  }
}

// M4: the other user the CSR is signed in as on this customer's computer, while allowed.
function signedInAs(v) {
  return running(v, 'login_as_user', panel.me) ? v.signed_in_as?.[panel.me] : null;
}
const SIGNED_IN = (user) => `Your support representative is signed in as ${user} on a separate screen`;

// What is going on on this customer's computer, in words (never a code).
function renderActivities(v) {
  const lines = [];
  const user = signedInAs(v);
  if (user) lines.push(SIGNED_IN(user));
  $('#activity-list').replaceChildren(...lines.map((text) => {
    const li = document.createElement('li');
    li.textContent = text;
    return li;
  }));
  $('#activities').hidden = !lines.length;
}

function received(id, stream) {
  if (camera.received(id, stream)) return;
  if (id.startsWith('screen-')) {
    if (stream) {
      others.set(id.slice(7), stream);
      // Several windows of the CSR's come as several tracks of one stream; one may go alone.
      stream.addEventListener('removetrack', () => render());
    } else others.delete(id.slice(7));
    render();
  }
}

// The CSR's screen (D3) or windows (D7), each track in its own viewer, scaled to fit.
function renderCsrScreen(v) {
  const shown = csrScreen(v);
  const stream = shown && v.primary ? others.get(v.primary) : null;
  const off = !shown || (hidden && hidden.activity === shown.activity && hidden.customer === shown.customer);
  const tracks = off || !stream ? [] : stream.getVideoTracks().filter((t) => t.readyState === 'live');
  for (const [id, { viewer }] of csrViewers) {
    if (tracks.some((t) => t.id === id)) continue;
    viewer.show(null);
    viewer.root.remove();
    csrViewers.delete(id);
  }
  const csr = panel.name(v.primary) || 'Your support representative';
  tracks.forEach((t, i) => {
    const title = tracks.length > 1 ? `${csr}'s window ${i + 1}` : `${csr}'s screen`;
    if (!csrViewers.has(t.id)) {
      const box = document.createElement('section');
      $('#csr-windows').append(box);
      const viewer = new Viewer(box, { title, send: (text) => link.message('annotation', text), say });
      giveControlOn(viewer);
      csrViewers.set(t.id, { viewer, stream: new MediaStream([t]) });
    }
    // The same stream (the video keeps playing); the title follows the number of windows.
    const { viewer, stream: one } = csrViewers.get(t.id);
    viewer.show(one, title);
  });
  $('#csr-screen').hidden = off;
  $('#csr-screen-state').textContent = off ? ''
    : shown.activity === GIVE && shown.customer !== panel.me ? `${csr} gave ${panel.name(shown.customer)} control of their screen.`
      : shown.activity === GIVE && v.control_holder === 'csr' ? `${csr} took control back: click the screen to take control.`
        : shown.activity === GIVE ? `You control ${csr}'s screen: your pointer and keys go to their computer.`
          : shown.activity === 'show_desktop' ? `${csr} is showing you their screen.`
      : `${csr} is showing you ${tracks.length > 1 ? `${tracks.length} application windows` : 'an application window'}.`;
  if (!off && !tracks.length) $('#csr-screen-state').textContent += ' The picture is on its way.';
}

// D4: while this customer is given control of the CSR's desktop and holds it, pointer and keys
// over the CSR's screen go on the control channel, in the console's format (csr_session.js
// control(), helper/src/control.rs); while the CSR took it back, a click takes it again.
function giveControlOn(viewer) {
  const stage = viewer.stage;
  stage.tabIndex = 0;
  const given = () => panel.view.activities.some((a) => a.activity === GIVE && a.customer === panel.me);
  const holding = () => given() && panel.view.control_holder === 'customer';
  const send = (m) => { if (holding() && !viewer.tool) link.message('control', JSON.stringify(m)); };
  const at = (e) => viewer.at(e);
  stage.addEventListener('pointermove', (e) => send({ t: 'move', at: at(e) }));
  stage.addEventListener('pointerdown', (e) => {
    if (given() && !holding() && !viewer.tool) {
      conn.act({ type: 'take_control' });
      return;
    }
    // Keys go where the pointer went; the click itself must not scroll the screen away.
    stage.focus({ preventScroll: true });
    send({ t: 'down', at: at(e), button: e.button });
  });
  stage.addEventListener('pointerup', (e) => send({ t: 'up', at: at(e), button: e.button }));
  stage.addEventListener('keydown', (e) => {
    if (!holding()) return;
    e.preventDefault();
    send({ t: 'key', key: e.key, code: e.code });
  });
}

// Starts sending a captured screen once the share it was chosen for runs.
async function share() {
  const pending = capture;
  capture = null;
  try {
    const track = await pending;
    if (screen || !SHARES.some((a) => running(panel.view, a, panel.me))) {
      track.stop();
      return;
    }
    screen = track;
    link.send(track, 'screen');
    // The browser's own "stop sharing" ends the share for everyone.
    track.addEventListener('ended', () => stopSharing());
    preview.show(new MediaStream([track]));
    render();
  } catch (err) {
    say(err?.name === 'NotAllowedError'
      ? 'Nothing is shared: you closed the window without choosing what to share.'
      : 'Nothing is shared: your browser could not share your screen.', 'error');
    stopSharing();
  }
}

// D11: how the screen is sent, as the CSR chose: sharp (standard) or fast (sampling: half the
// resolution, the frame rate kept).
let tuned = null;
async function tune() {
  const mode = panel.view.display_mode || 'standard';
  if (!screen || tuned === `${screen.id}/${mode}`) return;
  const fast = mode === 'sampling';
  screen.contentHint = fast ? 'motion' : 'detail';
  const sender = link.pc?.getSenders().find((s) => s.track === screen);
  const p = sender?.getParameters();
  if (!p?.encodings?.length) return; // not negotiated yet: the next render tries again
  p.degradationPreference = fast ? 'maintain-framerate' : 'maintain-resolution';
  p.encodings[0].scaleResolutionDownBy = fast ? 2 : 1;
  tuned = `${screen.id}/${mode}`;
  await sender.setParameters(p).catch((err) => { tuned = null; console.error('screen quality', err); });
}

function render() {
  const v = panel.view;
  if (!v) return;
  tune();
  files.render();
  const mine = SHARES.filter((a) => running(v, a, panel.me));
  if (!mine.length && screen) {
    link.unsend(screen);
    screen = null;
    preview.show(null);
  }
  // With Tandem Helper connected, it shares and takes control: the page shares nothing new.
  const helper = Boolean(myComputer()) && !screen;
  if (mine.length && !screen && capture && !helper) share();
  const csr = panel.name(v.primary);
  const controlled = mine.some((a) => a.startsWith('control'));
  $('#share-state').textContent = !mine.length ? 'You are not sharing anything.'
    : helper ? (controlled ? `${csr} sees your screen and uses your mouse and keyboard through Tandem Helper.`
      : `${csr} sees your screen through Tandem Helper.`)
      : !screen ? `${csr} may now ${WHAT[mine[mine.length - 1]]}. Choose what to share.`
        : controlled ? `${csr} sees what you share, and uses your mouse and keyboard through Tandem Helper.`
          : `${csr} sees what you share.`;
  $('#share-now').hidden = !(mine.length && !screen && !capture && !helper);
  $('#stop-share').hidden = !mine.length;
  $('#sharing').hidden = !mine.length && !screen;
  // Another customer's share, seen by everyone in the session (D13).
  const sharer = [...others.keys()].find((id) => v.activities.some((a) => a.customer === id && SHARES.includes(a.activity)));
  shown.show(sharer ? others.get(sharer) : null, sharer ? `${panel.name(sharer)}'s shared screen` : null);
  $('#shown').hidden = !sharer;
  renderCsrScreen(v);
  renderActivities(v);
  renderNow(v, csr);
  // The call's panel when there is a call (a customer cannot start one).
  $('#voice').hidden = !v.voice_call;
  voice.render();
  camera.render();
}

// Issue 18, item 8: who is helping, and what they do on this computer now, at the top of the
// page whatever is open below.
function renderNow(v, csr) {
  $('#helping').textContent = v.status === 'waiting' ? 'Waiting for the next support person to take over…'
    : v.primary ? `${csr} is helping you.` : 'Waiting for your support representative…';
  const mine = (a) => running(v, a, panel.me);
  const now = [];
  // Short badges, as a phone has room for; the sections below say the same in full.
  if (running(v, 'recording')) now.push(['recording', 'Recorded']);
  if (mine('control_desktop') || mine('control_application')) now.push(['control', `In control: ${csr}`]);
  else if (mine('view_desktop') || mine('view_application')) now.push(['view', `Screen seen by ${csr}`]);
  if (v.signed_in_as?.[panel.me]) now.push(['control', `Signed in as ${v.signed_in_as[panel.me]}`]);
  const list = $('#indicators');
  const key = JSON.stringify(now);
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  list.replaceChildren(...now.map(([kind, text]) => Object.assign(document.createElement('li'), { className: `indicator ${kind}`, textContent: text })));
  list.hidden = !now.length;
}

function onBye(reason) {
  presence.own = null;
  presence.away.clear();
  presence.render();
  if (reason === 'left') say('You left the session.');
  else if (reason === 'connection lost') say('Your connection to the support session was lost for too long. Join again with the same link or number.', 'error');
  // Ended while this page was away: it missed the event that says so.
  else if (reason === 'session ended' && !$('#status').textContent.startsWith('The support session has ended')) say('The support session has ended.');
  else if (reason === 'removed') say(REFUSED.removed);
  else if (reason !== 'session ended') say('You are no longer in the session.');
  voice?.stop();
  link?.close();
  preview?.show(null);
  panel.disable();
}

// M5: Tandem Helper reopens this page after the computer restarted, with this customer's
// token in the fragment (never sent to a server): back in the same session as the same person.
const resume = new URLSearchParams(location.hash.slice(1)).get('resume');
if (resume) {
  history.replaceState(null, '', location.pathname);
  try {
    const claims = JSON.parse(atob(resume.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    $('#join').hidden = true;
    enter({ token: resume, session: { id: claims.sid, number: null }, participant: { id: claims.sub } }, true);
  } catch {
    say('This link to get back into the session is damaged; use the link you were sent.', 'error');
  }
}
