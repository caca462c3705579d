// "A new version is ready. [Update]", shown while a new version waits.
import { html } from '../html.js';
import { t } from '../i18n/index.js';
import { updateReady, applyUpdate } from '../state/update.js';

export function UpdateBanner() {
  if (!updateReady.value) return null;
  return html`
    <div class="update-banner" role="region" aria-label=${t('update.ready')}>
      <span>${t('update.ready')}</span>
      <button type="button" class="button button--secondary" onClick=${applyUpdate}>${t('update.apply')}</button>
    </div>
  `;
}
