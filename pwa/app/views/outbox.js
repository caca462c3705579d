// What this device holds for the server: changes not sent yet (oldest first) and changes the
// server refused, each with the server's reason. A refused change is never dropped silently:
// it stays here until the person who made it discards it.
import { useEffect, useState } from 'preact/hooks';
import { html } from '../html.js';
import { t, hasString, formatDuration } from '../i18n/index.js';
import { formatDateTime } from '../i18n/format.js';
import { errorText } from '../i18n/errors.js';
import { client } from '../state/client.js';
import { now } from '../state/clock.js';
import { sync } from '../state/session.js';
import { Badge } from '../ui/badge.js';

// A line that says what a queued change is, in the words of the screen that made it.
function describe(entry) {
  const { name, args } = entry;
  const label = hasString(`mutation.${name}`) ? t(`mutation.${name}`) : name;
  const detail = args.body ?? args.description ?? args.lot_no ?? args.to ?? '';
  return detail ? t('outbox.change', { label, detail }) : label;
}

/**
 * Refused changes, each with the server's reason and "Discard". The outbox lists them all; a
 * screen lists those about what it shows (a case's status change that came too late).
 */
export function RefusedList({ entries }) {
  return html`
    <ul class="rows" aria-label=${t('outbox.refused')}>
      ${entries.map(
        (entry) => html`
          <li key=${entry.id} class="row row--static row--refused">
            <span class="row__main">
              <span class="row__title">${describe(entry)}</span>
              <span class="row__meta">${t('outbox.reason', { reason: errorText(entry.error) })}</span>
              <span class="row__meta">${formatDateTime(entry.queuedAt)}</span>
            </span>
            <button class="button button--secondary" type="button" onClick=${() => client.discardRejected(entry.id)}>
              ${t('outbox.discard')}
            </button>
          </li>
        `,
      )}
    </ul>
  `;
}

export function OutboxScreen() {
  const [queued, setQueued] = useState([]);
  useEffect(() => {
    const load = () => client.queued().then(setQueued);
    load();
    client.addEventListener('status', load);
    return () => client.removeEventListener('status', load);
  }, []);
  const rejected = sync.value.rejected ?? [];

  return html`
    <section class="screen">
      <h1>${t('outbox.title')}</h1>
      <h2>${t('outbox.refused')}</h2>
      ${!rejected.length && html`<p class="muted">${t('outbox.refused.none')}</p>`}
      <${RefusedList} entries=${rejected} />
      <h2>${t('outbox.unsent')}</h2>
      ${!queued.length && html`<p class="muted">${t('status.unsent.none')}</p>`}
      <ul class="rows" aria-label=${t('outbox.unsent')}>
        ${queued.map(
          (entry) => html`
            <li key=${entry.id} class="row row--static">
              <span class="row__main">
                <span class="row__title">${describe(entry)}</span>
                <span class="row__meta">${t('outbox.waiting', { age: formatDuration(now.value - entry.queuedAt) })}</span>
              </span>
              <${Badge} status="pending" label=${t('queue.not_sent')} />
            </li>
          `,
        )}
      </ul>
    </section>
  `;
}
