// The language switch; each language is listed by its own name. The choice is the user's
// (state/locale.js): it follows them to their other devices.
import { html } from '../html.js';
import { t, locale, LOCALES } from '../i18n/index.js';
import { chooseLocale } from '../state/locale.js';

export function LanguageSelect({ id = 'language' }) {
  return html`
    <label class="language">
      <span class="visually-hidden">${t('lang.label')}</span>
      <select id=${id} class="select" value=${locale.value} onChange=${(e) => chooseLocale(e.currentTarget.value)}>
        ${LOCALES.map(({ tag, name }) => html`<option value=${tag} lang=${tag}>${name}</option>`)}
      </select>
    </label>
  `;
}
