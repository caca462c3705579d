// The sync status, always in view: connection, unsent changes (count and age of the oldest),
// refused changes, and when this device last synced. Each item is a word with a colour.
import { html } from '../html.js';
import { t, formatAgo, formatDuration } from '../i18n/index.js';
import { now } from '../state/clock.js';
import { sync, unsent } from '../state/session.js';

const JUST_NOW_MS = 60_000;

function Chip({ tone, children, ...rest }) {
  return html`<span class="chip chip--${tone}" ...${rest}>${children}</span>`;
}

function unsentText(status) {
  if (!unsent.value) return t('status.unsent.none');
  const age = formatDuration(now.value - Date.parse(status.oldestUnsentAt ?? now.value));
  return t('status.unsent.some', { count: unsent.value, age });
}

function syncedText(status) {
  if (!status.lastSyncedAt) return t('status.synced.never');
  const elapsed = now.value - Date.parse(status.lastSyncedAt);
  return elapsed < JUST_NOW_MS ? t('status.synced.now') : t('status.synced.ago', { ago: formatAgo(elapsed) });
}

export function StatusBar() {
  const status = sync.value;
  const rejected = status.rejected?.length ?? 0;
  return html`
    <div class="statusbar" role="group" aria-label=${t('status.label')}>
      <${Chip} tone=${status.online ? 'ok' : 'offline'}>
        ${status.online ? t('status.online') : t('status.offline')}
      <//>
      <${Chip} tone=${unsent.value ? 'warn' : 'ok'} role="status" aria-label=${t('status.unsent.label')}>
        ${unsentText(status)}
      <//>
      ${rejected > 0 && html`<${Chip} tone="danger">${t('status.rejected', { count: rejected })}<//>`}
      <${Chip} tone="plain">${syncedText(status)}<//>
    </div>
  `;
}
