// A screen of the navigation whose content arrives in a later version.
import { html } from '../html.js';
import { t } from '../i18n/index.js';

export function ComingScreen({ name }) {
  return html`
    <section class="screen">
      <h1>${t(`nav.${name}`)}</h1>
      <p class="notice notice--info">${t('screen.later')}</p>
    </section>
  `;
}
