// The shared-screen viewer: the video, the annotation layer drawn live by every participant
// through the `annotation` data channel (D12), and the view options (D10). Strokes are kept in
// coordinates relative to the picture (0..1), so they land on the same spot at any size.

const TOOLS = {
  pen: { width: 3, alpha: 1, mode: 'source-over' },
  highlighter: { width: 18, alpha: 0.35, mode: 'source-over' },
  eraser: { width: 24, alpha: 1, mode: 'destination-out' },
};
const COLOURS = ['#e11d48', '#2563eb', '#16a34a', '#f59e0b'];

let viewers = 0;

export class Viewer {
  // `root`: an element to build into; `send(text)` sends on the annotation channel.
  constructor(root, { title, send, say }) {
    const n = ++viewers;
    this.send = send;
    this.say = say;
    this.segments = [];
    this.tool = null;
    this.colour = COLOURS[0];
    root.classList.add('viewer');
    root.innerHTML = `
      <h3 class="viewer-title"></h3>
      <div class="viewer-bar" role="toolbar" aria-label="Annotation tools">
        <button type="button" data-tool="pen" aria-pressed="false">Pen</button>
        <button type="button" data-tool="highlighter" aria-pressed="false">Highlighter</button>
        <button type="button" data-tool="eraser" aria-pressed="false">Eraser</button>
        <label class="inline" for="colour-${n}">Colour</label>
        <select id="colour-${n}">${COLOURS.map((c, i) => `<option value="${c}">${['Red', 'Blue', 'Green', 'Amber'][i]}</option>`).join('')}</select>
        <button type="button" data-act="clear">Clear all</button>
        <button type="button" data-act="shot">Screenshot</button>
      </div>
      <div class="viewer-bar" role="group" aria-label="View options">
        <label class="inline" for="fit-${n}">View</label>
        <select id="fit-${n}">
          <option value="fit">Scale to fit</option>
          <option value="actual">Actual size</option>
        </select>
        <button type="button" data-act="full">Full screen</button>
      </div>
      <div class="stage fit">
        <video autoplay playsinline muted></video>
        <canvas aria-hidden="true"></canvas>
      </div>`;
    this.root = root;
    this.title = root.querySelector('.viewer-title');
    this.title.textContent = title;
    this.stage = root.querySelector('.stage');
    this.video = root.querySelector('video');
    this.video.setAttribute('aria-label', title);
    this.canvas = root.querySelector('canvas');
    this.g = this.canvas.getContext('2d');
    root.querySelectorAll('[data-tool]').forEach((b) => b.addEventListener('click', () => this.pick(b.dataset.tool)));
    root.querySelector('[data-act="clear"]').addEventListener('click', () => { this.clear(); this.send(JSON.stringify({ t: 'clear' })); });
    root.querySelector('[data-act="shot"]').addEventListener('click', () => this.screenshot());
    root.querySelector('[data-act="full"]').addEventListener('click', () => this.fullScreen());
    root.querySelector(`#colour-${n}`).addEventListener('change', (e) => { this.colour = e.target.value; });
    root.querySelector(`#fit-${n}`).addEventListener('change', (e) => {
      this.stage.classList.toggle('fit', e.target.value === 'fit');
      this.redraw();
    });
    new ResizeObserver(() => this.redraw()).observe(this.stage);
    const full = root.querySelector('[data-act="full"]');
    document.addEventListener('fullscreenchange', () => {
      full.textContent = document.fullscreenElement === root ? 'Exit full screen' : 'Full screen';
    });
    this.video.addEventListener('resize', () => this.redraw());
    this.pointer();
  }

  show(stream, title) {
    if (title) {
      this.title.textContent = title;
      this.video.setAttribute('aria-label', title);
    }
    if (this.video.srcObject !== stream) this.video.srcObject = stream;
    this.root.hidden = !stream;
    if (!stream) this.clear();
  }

  // Frames shown so far: how a test (and a curious person) knows the picture is live.
  frames() {
    return this.video.getVideoPlaybackQuality?.().totalVideoFrames || 0;
  }

  pick(tool) {
    this.tool = this.tool === tool ? null : tool;
    this.root.querySelectorAll('[data-tool]').forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.tool === this.tool)));
    this.stage.classList.toggle('drawing', !!this.tool);
  }

  // Where the picture is inside the stage (the video letterboxes it when scaled to fit).
  picture() {
    const v = this.video;
    const w = v.clientWidth;
    const h = v.clientHeight;
    const vw = v.videoWidth || w;
    const vh = v.videoHeight || h;
    const s = Math.min(w / vw, h / vh);
    return { x: v.offsetLeft + (w - vw * s) / 2, y: v.offsetTop + (h - vh * s) / 2, w: vw * s, h: vh * s };
  }

  // Where a pointer event falls on the picture, 0..1 each way (as strokes and control input
  // are sent).
  at(e) {
    const p = this.picture();
    // The canvas covers the stage's content, so it moves with it when actual size scrolls.
    const r = this.canvas.getBoundingClientRect();
    return [(e.clientX - r.left - p.x) / p.w, (e.clientY - r.top - p.y) / p.h];
  }

  pointer() {
    let last = null;
    const at = (e) => this.at(e);
    this.canvas.addEventListener('pointerdown', (e) => {
      if (!this.tool) return;
      this.canvas.setPointerCapture(e.pointerId);
      last = at(e);
    });
    this.canvas.addEventListener('pointermove', (e) => {
      if (!last) return;
      const next = at(e);
      const seg = { t: 'seg', tool: this.tool, c: this.colour, a: last, b: next };
      this.draw(seg);
      this.send(JSON.stringify(seg));
      last = next;
    });
    const end = () => { last = null; };
    this.canvas.addEventListener('pointerup', end);
    this.canvas.addEventListener('pointercancel', end);
  }

  // A message from another participant's annotation channel. Anything malformed is ignored.
  receive(text) {
    let m;
    try { m = JSON.parse(text); } catch { return; }
    if (m.t === 'clear') this.clear();
    else if (m.t === 'seg' && TOOLS[m.tool] && valid(m.a) && valid(m.b) && /^#[0-9a-f]{6}$/i.test(m.c)) this.draw(m);
  }

  draw(seg) {
    this.segments.push(seg);
    if (this.segments.length > 20000) this.segments.shift();
    this.stroke(seg);
  }

  stroke(seg) {
    const p = this.picture();
    const tool = TOOLS[seg.tool];
    const g = this.g;
    g.save();
    g.globalCompositeOperation = tool.mode;
    g.globalAlpha = tool.alpha;
    g.strokeStyle = seg.c;
    g.lineWidth = tool.width;
    g.lineCap = 'round';
    g.beginPath();
    g.moveTo(p.x + seg.a[0] * p.w, p.y + seg.a[1] * p.h);
    g.lineTo(p.x + seg.b[0] * p.w, p.y + seg.b[1] * p.h);
    g.stroke();
    g.restore();
  }

  redraw() {
    // The stage's own size, or the picture's when it is larger (actual size scrolls); never
    // the scroll size, which the canvas itself would make grow.
    this.canvas.width = Math.max(this.stage.clientWidth, this.video.offsetWidth);
    this.canvas.height = Math.max(this.stage.clientHeight, this.video.offsetHeight);
    for (const s of this.segments) this.stroke(s);
  }

  clear() {
    this.segments = [];
    this.g.clearRect(0, 0, this.canvas.width, this.canvas.height);
  }

  // The picture with the annotations on it, saved as a PNG file.
  screenshot() {
    const v = this.video;
    if (!v.videoWidth) { this.say('Nothing is shown yet.', 'error'); return; }
    const c = document.createElement('canvas');
    c.width = v.videoWidth;
    c.height = v.videoHeight;
    const g = c.getContext('2d');
    g.drawImage(v, 0, 0);
    const p = this.picture();
    g.drawImage(this.canvas, p.x, p.y, p.w, p.h, 0, 0, c.width, c.height);
    c.toBlob((blob) => {
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = `tandem-screenshot-${new Date().toISOString().replace(/[:.]/g, '-')}.png`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      this.say('Screenshot saved.');
    }, 'image/png');
  }

  // The viewer with its tools fills the screen, so annotating and leaving full screen stay at hand.
  fullScreen() {
    if (document.fullscreenElement) document.exitFullscreen();
    else this.root.requestFullscreen().catch((err) => this.say(`Full screen is not available: ${err.message}`, 'error'));
  }
}

const valid = (p) => Array.isArray(p) && p.length === 2 && p.every((v) => Number.isFinite(v) && v > -1 && v < 2);
