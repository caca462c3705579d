// An in-app confirmation: a modal <dialog> with the question, "Cancel" and the act named on
// its button. It replaces `confirm()`, which cannot be styled, translated in its buttons, or
// driven by tests (Playwright dismisses native dialogs). The modal dialog traps focus, Escape
// cancels, and focus returns to where it was.
//
//   const [dialog, ask] = useConfirm();
//   if (!(await ask({ title, message, confirm: 'Send to customer' }))) return;
//   … html`${dialog}`
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from '../html.js';
import { t } from '../i18n/index.js';

let dialogs = 0;

function ConfirmDialog({ title, message, confirm, tone = 'primary', onClose }) {
  const ref = useRef(null);
  const [id] = useState(() => `confirm-${++dialogs}`);
  useEffect(() => {
    const opener = document.activeElement;
    ref.current.showModal();
    return () => opener?.focus?.();
  }, []);
  const close = (answer) => {
    ref.current?.close();
    onClose(answer);
  };
  return html`
    <dialog
      class="dialog dialog--${tone}"
      ref=${ref}
      aria-labelledby=${`${id}-title`}
      aria-describedby=${`${id}-message`}
      onCancel=${(event) => {
        event.preventDefault();
        close(false);
      }}
    >
      <h2 class="dialog__title" id=${`${id}-title`}>${title}</h2>
      <p id=${`${id}-message`}>${message}</p>
      <div class="dialog__actions">
        <button class="button button--secondary" type="button" onClick=${() => close(false)}>${t('dialog.cancel')}</button>
        <button class="button button--primary" type="button" autofocus onClick=${() => close(true)}>${confirm}</button>
      </div>
    </dialog>
  `;
}

/** `[dialog, ask]`: render `dialog`; `ask({title, message, confirm, tone})` resolves true or false. */
export function useConfirm() {
  const [request, setRequest] = useState(null);
  const ask = (options) => new Promise((resolve) => setRequest({ ...options, resolve }));
  const dialog =
    request &&
    html`<${ConfirmDialog}
      ...${request}
      onClose=${(answer) => {
        request.resolve(answer);
        setRequest(null);
      }}
    />`;
  return [dialog, ask];
}
