// The language switch; each language is listed by its own name.
import { html } from '../html.js';
import { t, locale, setLocale, LOCALES } from '../i18n/index.js';

export function LanguageSelect({ id = 'language' }) {
  return html`
    <label class="language">
      <span class="visually-hidden">${t('lang.label')}</span>
      <select id=${id} class="select" value=${locale.value} onChange=${(e) => setLocale(e.currentTarget.value)}>
        ${LOCALES.map(({ tag, name }) => html`<option value=${tag} lang=${tag}>${name}</option>`)}
      </select>
    </label>
  `;
}
