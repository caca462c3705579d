// The sign-in screen. Errors say what happened and what to do; the error's code picks the
// message: the sign-in's own words (`signin.error.*`) first, then the server's (errors.js).
import { useState } from 'preact/hooks';
import { html } from '../html.js';
import { t, hasString } from '../i18n/index.js';
import { errorText as serverErrorText } from '../i18n/errors.js';
import { signIn, sync } from '../state/session.js';
import { LanguageSelect } from '../ui/language-select.js';
import { UpdateBanner } from '../ui/update-banner.js';

function errorText({ code, retryAfter }) {
  if (code === 'rate_limited' && retryAfter > 0) {
    return t('signin.error.rate_limited_wait', { count: Math.ceil(retryAfter / 60) });
  }
  if (hasString(`signin.error.${code}`)) return t(`signin.error.${code}`);
  return hasString(`error.${code}`) ? serverErrorText({ code }) : t('signin.error.server_error');
}

export function SignIn() {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  async function submit(event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const username = String(form.get('username')).trim();
    const password = String(form.get('password'));
    if (!username || !password) return setError({ code: 'missing' });
    setBusy(true);
    setError(null);
    try {
      await signIn(username, password);
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  }

  return html`
    <div class="signin">
      <${UpdateBanner} />
      <main class="signin__main">
        <form class="card signin__card" onSubmit=${submit} novalidate>
          <img class="signin__logo" src=${new URL('../../icons/icon-192.png', import.meta.url).href} alt="" width="64" height="64" />
          <h1>${t('signin.title')}</h1>
          ${!sync.value.online && html`<p class="notice notice--info">${t('signin.offline.notice')}</p>`}
          ${error && html`<p class="notice notice--danger" role="alert">${errorText(error)}</p>`}
          <div class="field">
            <label class="field__label" for="username">${t('signin.username')}</label>
            <input class="field__input" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required />
          </div>
          <div class="field">
            <label class="field__label" for="password">${t('signin.password')}</label>
            <input class="field__input" id="password" name="password" type="password" autocomplete="current-password" required />
          </div>
          <button class="button button--primary button--block" type="submit" disabled=${busy}>
            ${busy ? t('signin.busy') : t('signin.submit')}
          </button>
        </form>
        <${LanguageSelect} id="signin-language" />
      </main>
    </div>
  `;
}
