// SPEC M5 on the CSR's console: restart the selected customer's computer (asked in their
// Tandem Helper's window); the console says it is restarting, then that it is back.
import { $, onComputer, say } from '/assets/tandem.js';

export class RestartPanel {
  constructor(box, { conn, panel }) {
    this.box = box;
    this.conn = conn;
    this.panel = panel;
    $('[data-act="restart-computer"]', box).addEventListener('click', () => {
      const who = this.panel.name(this.panel.view.selected_customer);
      if (!confirm(`Restart ${who}'s computer? Every program there closes; ${who} is asked first.`)) return;
      this.conn.act({ type: 'request_activity', activity: 'reboot' });
    });
  }

  event(ev) {
    const name = (id) => this.panel.name(id);
    if (ev.type === 'computer_restarting') say(`${name(ev.customer)}'s computer is restarting; Tandem Helper rejoins by itself afterwards.`);
    // Called before the event is applied: the view still says it was restarting.
    if (ev.type === 'computer_attached' && (this.panel.view?.restarting || []).includes(ev.customer)) say(`${name(ev.customer)}'s computer is back after restarting: ask again to view or control it.`);
  }

  render() {
    if (!this.panel.view) return;
    const { primary, customer, who, computer, able, asking } = onComputer(this.panel, 'reboot');
    const restarting = (this.panel.view.restarting || []).includes(customer);
    $('.restart-state', this.box).textContent = !customer ? 'No customer yet.'
      : restarting ? `${who}'s computer is restarting; Tandem Helper rejoins by itself afterwards.`
        : !computer ? `Restarting ${who}'s computer needs Tandem Helper there.`
          : !able ? `${who}'s Tandem Helper cannot restart the computer.`
            : asking ? `Waiting for ${who} to allow the restart in Tandem Helper.`
              : `Restart ${who}'s computer; Tandem Helper rejoins this session by itself afterwards.`;
    $('[data-act="restart-computer"]', this.box).hidden = !primary || !able || restarting;
    $('[data-act="restart-computer"]', this.box).disabled = asking;
  }
}
