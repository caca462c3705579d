// The sync status, always in view: connection, when this device last synced, unsent changes
// (count and age of the oldest), photos still uploading, and refused changes. Each item is a
// word with a colour. The connection and the unsent count are live regions (side by side,
// never nested), so a screen reader hears going offline and changes piling up; the "synced
// ago" chip is not, or it would speak every minute.
import { html } from '../html.js';
import { t, formatAgo, formatDuration } from '../i18n/index.js';
import { now } from '../state/clock.js';
import { sync, unsent } from '../state/session.js';

const JUST_NOW_MS = 60_000;

// The client gives times as epoch milliseconds or ISO strings; both read the same here.
const timeOf = (value) => new Date(value).getTime();

function Chip({ tone, children, ...rest }) {
  return html`<span class="chip chip--${tone}" ...${rest}>${children}</span>`;
}

function unsentText(status) {
  if (!unsent.value) return t('status.unsent.none');
  const age = formatDuration(now.value - timeOf(status.oldestUnsentAt ?? now.value));
  return t('status.unsent.some', { count: unsent.value, age });
}

function syncedText(status) {
  if (!status.lastSyncedAt) return t('status.synced.never');
  const elapsed = now.value - timeOf(status.lastSyncedAt);
  return elapsed < JUST_NOW_MS ? t('status.synced.now') : t('status.synced.ago', { ago: formatAgo(elapsed) });
}

export function StatusBar() {
  const status = sync.value;
  const rejected = status.rejected?.length ?? 0;
  const photos = status.photosPending ?? 0;
  return html`
    <div class="statusbar" role="group" aria-label=${t('status.label')}>
      <${Chip} tone=${status.online ? 'ok' : 'offline'} role="status" aria-label=${t('status.connection')}>
        ${status.online ? t('status.online') : t('status.offline')}
      <//>
      <${Chip} tone="plain">${syncedText(status)}<//>
      <${Chip} tone=${unsent.value ? 'warn' : 'ok'} role="status" aria-label=${t('status.unsent.label')}>
        ${unsentText(status)}
      <//>
      ${photos > 0 && html`<${Chip} tone="warn">${t('status.photos', { count: photos })}<//>`}
      ${rejected > 0 && html`<a class="chip chip--danger chip--link" href="#/outbox">${t('status.rejected', { count: rejected })}</a>`}
      ${(unsent.value > 0 || rejected > 0) && html`<a class="statusbar__link" href="#/outbox">${t('status.review')}</a>`}
    </div>
  `;
}
