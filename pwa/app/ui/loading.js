// A whole screen still reading its data: it says so in its level-one heading, so the page is
// never without one (screen readers announce it; axe's page-has-heading-one holds).
import { html } from '../html.js';
import { t } from '../i18n/index.js';

export function ScreenLoading() {
  return html`<h1 class="loading">${t('app.loading')}</h1>`;
}
