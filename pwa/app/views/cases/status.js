// Moving a case along its lifecycle: one button per allowed next status. The change is queued
// with the status it starts from, so a case someone else moved meanwhile is refused as stale
// rather than overwritten; the refusal shows here with the server's reason, as in the outbox.
import { html } from '../../html.js';
import { t } from '../../i18n/index.js';
import { client } from '../../state/client.js';
import { sync } from '../../state/session.js';
import { RefusedList } from '../outbox.js';
import { NEXT_STATUSES } from './model.js';

export function StatusActions({ kase, queued }) {
  const waiting = queued.filter((entry) => entry.args.id === kase.id);
  const refused = (sync.value.rejected ?? []).filter((entry) => entry.name.startsWith('case.') && entry.args.id === kase.id);
  const next = NEXT_STATUSES[kase.status] ?? [];
  return html`
    <section class="panel" aria-labelledby="status-title">
      <h2 id="status-title">${t('case.status.title')}</h2>
      ${waiting.map(
        (entry) => html`<p class="notice notice--warn" key=${entry.id} role="status">
          ${t(sync.value.online ? 'case.status.sending' : 'case.status.queued', { status: t(`case.status.${entry.args.to}`) })}
        </p>`,
      )}
      ${refused.length > 0 && html`<div role="alert"><${RefusedList} entries=${refused} /></div>`}
      ${!waiting.length && next.length > 0 &&
      html`<div class="actions actions--tight">
        ${next.map(
          (to) => html`<button
            class="button ${to === 'resolved' ? 'button--primary' : 'button--secondary'}"
            type="button"
            onClick=${() => client.enqueue('case.set_status', { id: kase.id, from: kase.status, to })}
          >
            ${t(kase.status === 'resolved' && to === 'in_progress' ? 'case.move.reopen' : `case.move.${to}`)}
          </button>`,
        )}
      </div>`}
      ${!next.length && html`<p class="muted">${t('case.status.final')}</p>`}
    </section>
  `;
}
