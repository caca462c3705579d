// Hash routing: `#/threads` → route "threads". Hash routes keep every screen on the one
// shell page the service worker stores, so any screen opens offline.
import { signal } from '@preact/signals';

const read = () => location.hash.replace(/^#\/?/, '').split('/')[0];

export const route = signal(read());
addEventListener('hashchange', () => {
  route.value = read();
});

// Replaces the address (no history entry), for a route that is not allowed here.
export function redirect(name) {
  history.replaceState(null, '', `#/${name}`);
  route.value = name;
}
