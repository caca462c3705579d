// Role-aware navigation: each role sees its own screens, first one is home.
import { html } from '../html.js';
import { t } from '../i18n/index.js';
import { route } from '../state/route.js';

const SCREENS_BY_ROLE = {
  inspector: ['batches', 'threads'],
  service_rep: ['cases', 'threads'],
  supervisor: ['overview', 'cases', 'threads'], // cases: remedies above a cap wait for them
  admin: ['overview', 'cases', 'threads'],
  customer: ['portal'],
};

export function screensFor(role) {
  return SCREENS_BY_ROLE[role] ?? ['threads'];
}

export function Nav({ role }) {
  return html`
    <nav class="tabs" aria-label=${t('nav.label')}>
      ${screensFor(role).map(
        (name) => html`
          <a class="tabs__item" href=${`#/${name}`} aria-current=${route.value === name ? 'page' : undefined}>
            ${t(`nav.${name}`)}
          </a>
        `,
      )}
    </nav>
  `;
}
