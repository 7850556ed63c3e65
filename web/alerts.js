// Issue 18, item 3: what tells a CSR that something happened in a session they are not looking
// at: an unread count on its tab and in the page's title, an optional sound, and a desktop
// notification while the page is in the background (with the CSR's permission). The CSR's
// choices are kept in this browser (localStorage).

const TITLE = document.title;
const PREFS = 'tandem.alerts';

export class Alerts {
  constructor({ sound, notify }) {
    this.sessions = new Map(); // key -> { tab, badge, count, shown() }
    this.prefs = { sound: false, notify: false, ...readPrefs() };
    sound.checked = this.prefs.sound;
    notify.checked = this.prefs.notify && 'Notification' in window && Notification.permission === 'granted';
    sound.addEventListener('change', () => this.save({ sound: sound.checked }));
    notify.addEventListener('change', async () => {
      if (!notify.checked) return this.save({ notify: false });
      if (!('Notification' in window)) {
        notify.checked = false;
        return this.onSay?.('This browser cannot show desktop notifications.', 'error');
      }
      const answer = await Notification.requestPermission();
      notify.checked = answer === 'granted';
      if (answer !== 'granted') this.onSay?.('Desktop notifications are blocked for this site: allow them in the browser\'s site settings.', 'error');
      return this.save({ notify: notify.checked });
    });
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) for (const [key, s] of this.sessions) if (s.shown()) this.seen(key);
    });
  }

  save(change) {
    this.prefs = { ...this.prefs, ...change };
    localStorage.setItem(PREFS, JSON.stringify(this.prefs));
  }

  // A session's tab; `shown()` says whether the CSR is looking at it now.
  add(key, tab, shown) {
    // The count as seen, and as read out ("3 unread") by a screen reader.
    const badge = document.createElement('span');
    badge.className = 'badge';
    badge.setAttribute('aria-hidden', 'true');
    badge.hidden = true;
    const spoken = document.createElement('span');
    spoken.className = 'visually-hidden';
    tab.append(badge, spoken);
    this.sessions.set(key, { tab, badge, spoken, count: 0, shown });
  }

  remove(key) {
    this.sessions.delete(key);
    this.render();
  }

  // Something happened in session `key` (`text`, in words). Counted unless the CSR is looking
  // at that session in the foreground.
  raise(key, text) {
    const s = this.sessions.get(key);
    if (!s) return;
    const looking = s.shown() && !document.hidden;
    if (looking) return;
    s.count += 1;
    this.render();
    if (this.prefs.sound) chime();
    if (document.hidden && this.prefs.notify && 'Notification' in window && Notification.permission === 'granted') {
      const n = new Notification(`Tandem: ${s.tab.dataset.name || 'a session'}`, { body: text, tag: key });
      n.onclick = () => {
        window.focus();
        s.tab.click();
        n.close();
      };
    }
  }

  // The CSR looks at session `key`: nothing unread there.
  seen(key) {
    const s = this.sessions.get(key);
    if (!s || !s.count) return;
    s.count = 0;
    this.render();
  }

  render() {
    let total = 0;
    for (const s of this.sessions.values()) {
      total += s.count;
      s.badge.hidden = !s.count;
      s.badge.textContent = String(s.count);
      s.spoken.textContent = s.count ? `, ${s.count} unread` : '';
    }
    document.title = total ? `(${total}) ${TITLE}` : TITLE;
  }
}

function readPrefs() {
  try {
    return JSON.parse(localStorage.getItem(PREFS) || '{}');
  } catch {
    return {};
  }
}

// A short, quiet two-note chime (no sound file to fetch).
export function chime() {
  try {
    const ctx = new AudioContext();
    const gain = ctx.createGain();
    gain.gain.value = 0.08;
    gain.connect(ctx.destination);
    [[660, 0], [880, 0.12]].forEach(([freq, at]) => {
      const osc = ctx.createOscillator();
      osc.frequency.value = freq;
      osc.connect(gain);
      osc.start(ctx.currentTime + at);
      osc.stop(ctx.currentTime + at + 0.1);
    });
    setTimeout(() => ctx.close(), 500);
  } catch {
    // No audio output: the badge and the title still say it.
  }
}
