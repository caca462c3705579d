// The language is the user's, not the device's. Choosing one shows it at once and keeps it on
// the user's row through the sync push (`user.set_locale`), so it works offline like any
// change; signing in, and the user's row arriving from the server (a choice made on another
// device), bring it to this device. Until the user chooses, the row's locale is empty and
// each device follows its browser's language (i18n/index.js).
import { locale, setLocale, isLocale } from '../i18n/index.js';
import { client } from './client.js';
import { user } from './session.js';

// A language chosen while signed out (on the sign-in screen) becomes the user's at sign-in.
const CHOSEN_SIGNED_OUT = 'loopline.locale.chosen-signed-out';

export async function chooseLocale(tag) {
  if (!isLocale(tag)) return;
  setLocale(tag);
  if (!user.value) {
    localStorage.setItem(CHOSEN_SIGNED_OUT, tag);
    return;
  }
  await client.enqueue('user.set_locale', { id: user.value.id, locale: tag });
}

// A choice still in the outbox is newer than any row the server sends until it is applied.
async function choiceUnsent() {
  return (await client.queued()).some((entry) => entry.name === 'user.set_locale');
}

async function follow(stored) {
  if (!isLocale(stored) || stored === locale.value || (await choiceUnsent())) return;
  setLocale(stored);
}

async function onSignIn(signedIn) {
  const chosen = localStorage.getItem(CHOSEN_SIGNED_OUT);
  localStorage.removeItem(CHOSEN_SIGNED_OUT);
  if (isLocale(chosen) && chosen === locale.value) {
    if (chosen !== signedIn.locale) await client.enqueue('user.set_locale', { id: signedIn.id, locale: chosen });
    return;
  }
  await follow(signedIn.locale);
}

client.addEventListener('session', ({ detail }) => {
  if (detail?.user) onSignIn(detail.user).catch((error) => console.error('locale: sign-in', error));
});

client.addEventListener('changes', ({ detail }) => {
  const me = user.value?.id;
  if (!me || !detail?.entities?.includes('user')) return;
  client
    .get('user', me)
    .then((row) => row && follow(row.locale))
    .catch((error) => console.error('locale: user row', error));
});
