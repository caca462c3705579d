// Entry point: register the service worker, read the stored session, show the right screen.
import { render } from 'preact';
import { html } from './html.js';
import { t } from './i18n/index.js';
import { ready, user, restoreSession } from './state/session.js';
import { registerServiceWorker } from './state/update.js';
import './state/locale.js'; // the user's language follows them: listens from start-up on
import { AppShell } from './views/app.js';
import { SignIn } from './views/sign-in.js';

function Root() {
  if (!ready.value) return html`<p class="loading">${t('app.loading')}</p>`;
  return user.value ? html`<${AppShell} />` : html`<${SignIn} />`;
}

render(html`<${Root} />`, document.getElementById('app'));
registerServiceWorker();
restoreSession();
