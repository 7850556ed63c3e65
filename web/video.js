// The camera panel of both consoles (VI1, VI2): one's own camera shown small and the other
// side's large. The server decides who may send (start_camera) and forwards only theirs; the
// page starts the device only once the server has agreed.
import { $, say } from '/assets/tandem.js';

let panels = 0;

export class CameraPanel {
  constructor(root, { conn, link, panel, staff }) {
    const n = ++panels;
    this.conn = conn;
    this.link = link;
    this.panel = panel;
    this.staff = staff;
    this.streams = new Map(); // participant id -> received camera stream
    this.track = null;
    root.setAttribute('aria-labelledby', `video-title-${n}`);
    root.innerHTML = `
      <h3 id="video-title-${n}">Video</h3>
      <p class="camera-state" aria-live="polite"></p>
      <div class="row">
        <button type="button" data-act="start">Start my camera</button>
        <button type="button" data-act="stop" class="secondary">Stop my camera</button>
        ${staff ? '<button type="button" data-act="ask" class="secondary">Ask the customer to start their camera</button>' : ''}
      </div>
      <div class="cameras">
        <figure class="large" hidden><video autoplay playsinline muted></video><figcaption></figcaption></figure>
        <figure class="small" hidden><video autoplay playsinline muted></video><figcaption>You</figcaption></figure>
      </div>`;
    this.root = root;
    $('[data-act="start"]', root).addEventListener('click', () => this.start());
    $('[data-act="stop"]', root).addEventListener('click', () => conn.act({ type: 'stop_camera' }));
    $('[data-act="ask"]', root)?.addEventListener('click', () => {
      const customer = panel.view.selected_customer;
      if (!customer) say('No customer is selected.', 'error');
      else conn.act({ type: 'chat', to: customer, text: 'Please start your camera: press "Start my camera".' }, 'Asked the customer to start their camera.');
    });
  }

  async start() {
    if (!(await this.conn.act({ type: 'start_camera' }))) return;
    try {
      const s = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640, max: 640 }, height: { ideal: 360, max: 360 } } });
      this.track = s.getVideoTracks()[0];
      this.link.send(this.track, 'camera');
      this.render();
    } catch (err) {
      say(`Your camera could not be used: ${err.message}`, 'error');
      this.conn.act({ type: 'stop_camera' });
    }
  }

  // A received stream whose id says it is someone's camera.
  received(id, stream) {
    if (!id.startsWith('camera-')) return false;
    if (stream) this.streams.set(id.slice(7), stream);
    else this.streams.delete(id.slice(7));
    this.render();
    return true;
  }

  render() {
    const v = this.panel.view;
    const me = this.panel.me;
    const on = v.cameras.includes(me);
    if (!on && this.track) {
      // The server stopped it (or we did): stop sending.
      this.link.unsend(this.track);
      this.track = null;
    }
    const primaryOn = v.primary && v.cameras.includes(v.primary);
    const show = (act, yes) => { const b = $(`[data-act="${act}"]`, this.root); if (b) b.hidden = !yes; };
    show('start', !on);
    show('stop', on);
    show('ask', primaryOn && me === v.primary && v.selected_customer && !v.cameras.includes(v.selected_customer));
    const other = v.cameras.find((id) => id !== me && this.streams.has(id));
    const large = $('.large', this.root);
    large.hidden = !other;
    const lv = $('video', large);
    const stream = other ? this.streams.get(other) : null;
    if (lv.srcObject !== stream) lv.srcObject = stream;
    $('figcaption', large).textContent = other ? `${this.panel.name(other)}'s camera` : '';
    lv.setAttribute('aria-label', other ? `${this.panel.name(other)}'s camera` : 'camera');
    const small = $('.small', this.root);
    small.hidden = !this.track;
    const sv = $('video', small);
    const mine = this.track ? new MediaStream([this.track]) : null;
    if (!!sv.srcObject !== !!mine) sv.srcObject = mine;
    let text = '';
    if (!this.staff && primaryOn && !on && v.selected_customer === me) text = `${this.panel.name(v.primary)}'s camera is on. You may start yours.`;
    else if (on) text = 'Your camera is on.';
    $('.camera-state', this.root).textContent = text;
  }

  // Frames of the other side's camera shown so far.
  frames() {
    return $('.large video', this.root).getVideoPlaybackQuality?.().totalVideoFrames || 0;
  }
}
