// Hash routing: `#/batches/<id>/inspect` → route "batches", routeArgs ["<id>", "inspect"].
// Hash routes keep every screen on the one shell page the service worker stores, so any
// screen opens offline.
import { signal } from '@preact/signals';

const segments = () => location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);

export const route = signal(segments()[0]);
export const routeArgs = signal(segments().slice(1));
addEventListener('hashchange', () => {
  const [name, ...args] = segments();
  route.value = name;
  routeArgs.value = args;
});

// Replaces the address (no history entry), for a route that is not allowed here.
export function redirect(name) {
  history.replaceState(null, '', `#/${name}`);
  route.value = name;
  routeArgs.value = [];
}

export const href = (...parts) => `#/${parts.map(encodeURIComponent).join('/')}`;

export function go(...parts) {
  location.hash = href(...parts);
}
