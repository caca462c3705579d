// The bridge between the sync client and the views: its session and status as signals.
// Views read these; only the actions below talk to the client.
import { signal, computed } from '@preact/signals';
import { client } from './client.js';
import { redirect } from './route.js';

export const user = signal(null);
export const ready = signal(false); // false until the stored session has been read
export const sync = signal(client.status);

export const unsent = computed(() => sync.value.outboxCount ?? 0);

client.addEventListener('status', () => {
  sync.value = client.status;
});
// The session can end without this page asking (expired, revoked, signed out in another tab).
client.addEventListener('session', (event) => {
  user.value = event.detail?.user ?? null;
});

// Syncing runs from start-up on; the client takes up each session as it begins.
// The screens read the device's data as soon as they show, so the client takes the stored
// session up (opens that user's database) before the first screen of it appears.
export async function restoreSession() {
  const session = await client.getSession();
  await client.start();
  user.value = session?.user ?? null;
  ready.value = true;
}

// Throws the client's Error (with `.code`) so the sign-in view can say what went wrong.
export async function signIn(username, password) {
  const { user: signedIn } = await client.signIn(username, password);
  user.value = signedIn;
}

// Without `force`, the client refuses while changes are unsent (`.code === 'unsent_changes'`).
// The next person on a shared tablet starts on their own home screen, not the last one's.
export async function signOut({ force = false } = {}) {
  await client.signOut({ force });
  user.value = null;
  redirect('');
}
