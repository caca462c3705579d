// "Sign out". With unsent changes the client refuses; then a dialog says how many changes
// have not been sent and what could lose them, and offers to stay, which is the default.
import { useRef, useState } from 'preact/hooks';
import { html } from '../html.js';
import { t } from '../i18n/index.js';
import { signOut } from '../state/session.js';

export function SignOutButton() {
  const dialog = useRef(null);
  const [unsentCount, setUnsentCount] = useState(0);
  const [failed, setFailed] = useState(false);

  async function attempt(force) {
    setFailed(false);
    try {
      await signOut({ force });
      dialog.current?.close();
    } catch (refusal) {
      if (refusal.code !== 'unsent_changes') return setFailed(true);
      setUnsentCount(refusal.unsent);
      dialog.current.showModal();
    }
  }

  return html`
    <button type="button" class="button button--quiet topbar__signout" onClick=${() => attempt(false)}>
      ${t('signout.button')}
    </button>
    ${failed && html`<span class="visually-hidden" role="alert">${t('signout.error')}</span>`}
    <dialog ref=${dialog} aria-labelledby="signout-title" aria-describedby="signout-body">
      <h2 id="signout-title">${t('signout.confirm.title')}</h2>
      <p id="signout-body" class="notice notice--danger">${t('signout.confirm.body', { count: unsentCount })}</p>
      <p>${t('signout.confirm.loss')}</p>
      <p><strong>${t('signout.confirm.hint')}</strong></p>
      <div class="dialog__actions">
        <button type="button" class="button button--danger" onClick=${() => attempt(true)}>${t('signout.confirm.discard')}</button>
        <button type="button" class="button button--primary" autofocus onClick=${() => dialog.current.close()}>
          ${t('signout.confirm.stay')}
        </button>
      </div>
    </dialog>
  `;
}
