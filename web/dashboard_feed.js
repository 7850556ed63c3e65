// Issue 18, item 3: the dashboard's lists kept live over the CSR's own connection
// (`GET /api/feed`, server-sent events read with fetch so the token travels in the
// Authorization header, not in a URL). The server sends each list at once and again when it
// changes; a dropped stream comes back by itself after 1, 2, 4... up to 30 seconds.

const MAX_WAIT = 30000;

export class DashboardFeed {
  // `on(name, data)` gets each event; `state(text, kind)` what to tell the CSR when the
  // stream is lost or back.
  constructor(token, on, state) {
    this.token = token;
    this.on = on;
    this.state = state;
    this.wait = 1000;
    this.stopped = false;
    this.lost = false;
    this.run();
  }

  async run() {
    while (!this.stopped) {
      this.abort = new AbortController();
      try {
        const res = await fetch('/api/feed', {
          headers: { Authorization: `Bearer ${this.token}` },
          signal: this.abort.signal,
        });
        if (res.status === 401 || res.status === 403) {
          const why = await res.json().then((p) => p.detail).catch(() => null);
          this.state(`Your sign-in has ended${why ? ` (${why})` : ''}: sign in again to see waiting sessions and recordings.`, 'error');
          return;
        }
        if (!res.ok) throw new Error(`status ${res.status}`);
        if (this.lost) this.state('The dashboard is up to date again.');
        this.lost = false;
        this.wait = 1000;
        await this.read(res.body.getReader());
      } catch {
        if (this.stopped) return;
      }
      if (this.stopped) return;
      if (!this.lost) this.state('The dashboard lost its connection; its lists may be out of date. Reconnecting…', 'error');
      this.lost = true;
      await new Promise((r) => { setTimeout(r, this.wait); });
      this.wait = Math.min(this.wait * 2, MAX_WAIT);
    }
  }

  // One `event:`/`data:` block per message, blank-line separated (the server sends no ids).
  async read(reader) {
    const text = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += text.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) name = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (data.length) {
          try {
            this.on(name, JSON.parse(data.join('\n')));
          } catch (err) {
            console.error('dashboard feed', err);
          }
        }
      }
    }
  }

  stop() {
    this.stopped = true;
    this.abort?.abort();
  }
}
