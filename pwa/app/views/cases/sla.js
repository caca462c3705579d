// An SLA clock in words and colour: "First response due in 1:59:32" (running), "… overdue by
// 0:12:03" (breached, red), "… met" (green) or "… late" (done after the due time, red).
import { html } from '../../html.js';
import { t } from '../../i18n/index.js';
import { formatCountdown, formatDateTime } from '../../i18n/format.js';

const TONE = { running: 'info', breached: 'danger', met: 'ok', late: 'danger', none: 'plain' };

export function SlaClock({ which, clock }) {
  if (clock.state === 'none') return null;
  const text =
    clock.state === 'running'
      ? t(`sla.${which}.due_in`, { time: formatCountdown(clock.left) })
      : clock.state === 'breached'
        ? t(`sla.${which}.overdue`, { time: formatCountdown(clock.left ?? 0) })
        : t(`sla.${which}.${clock.state}`, { at: formatDateTime(clock.at) });
  return html`<span class="sla sla--${TONE[clock.state]} num">${text}</span>`;
}
