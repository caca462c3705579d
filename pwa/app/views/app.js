// The signed-in shell: header (brand, navigation, user, sync status) and the current screen.
import { useEffect } from 'preact/hooks';
import { html } from '../html.js';
import { t } from '../i18n/index.js';
import { route, redirect } from '../state/route.js';
import { user } from '../state/session.js';
import { Nav, screensFor } from '../ui/nav.js';
import { StatusBar } from '../ui/status-bar.js';
import { UpdateBanner } from '../ui/update-banner.js';
import { LanguageSelect } from '../ui/language-select.js';
import { SignOutButton } from './sign-out.js';
import { Screen } from './screens.js';

// The routes live in the address's hash, so the skip link moves focus itself, not the address.
function skipToMain(event) {
  event.preventDefault();
  document.getElementById('main')?.focus();
}

export function AppShell() {
  const { display_name: name, role } = user.value;
  const screens = screensFor(role);
  // The outbox is every role's, reached from the status bar rather than the navigation.
  const current = [...screens, 'outbox'].includes(route.value) ? route.value : screens[0];
  // An unknown or another role's screen in the address leads to this role's home.
  useEffect(() => {
    if (current !== route.value) redirect(current);
  }, [current]);
  return html`
    <div class="shell">
      <a class="skip-link" href="#main" onClick=${skipToMain}>${t('skip.to_main')}</a>
      <header class="shell__header">
        <div class="topbar">
          <a class="brand" href=${`#/${screens[0]}`}>
            <img class="brand__mark" src=${new URL('../../icons/icon-192.png', import.meta.url).href} alt="" width="32" height="32" />
            <span class="brand__name">${t('app.name')}</span>
          </a>
          <${Nav} role=${role} />
          <div class="topbar__user">
            <span class="topbar__who"><strong>${name}</strong> <span class="topbar__role">${t(`role.${role}`)}</span></span>
            <${LanguageSelect} id="header-language" />
            <${SignOutButton} />
          </div>
        </div>
        <${StatusBar} />
        <${UpdateBanner} />
      </header>
      <main class="shell__main" id="main" tabindex="-1">
        <${Screen} name=${current} />
        <footer class="shell__footer"><${LanguageSelect} id="footer-language" /></footer>
      </main>
    </div>
  `;
}
