// Service worker registration and the "Update" offer.
//
// A new version installs beside the running one and waits. The page offers "Update" when a
// worker is waiting (checked on every load, not only on `updatefound`: the browser may have
// installed it while no page listened, medic/cht-core#7375). "Update" tells the *waiting*
// worker to take over (GoogleChrome/workbox#2394); when it does, the page reloads once into
// the new version.
import { signal } from '@preact/signals';

const UPDATE_CHECK_MS = 60 * 60 * 1000;
const RELOADED_FROM = 'loopline.reloaded-from-build';
const build = document.documentElement.dataset.build;

export const updateReady = signal(false);
let waiting = null;

export async function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  watchForTakeover();
  const registration = await navigator.serviceWorker.register('/sw.js', { updateViaCache: 'none' });
  if (registration.waiting) offer(registration.waiting);
  registration.addEventListener('updatefound', () => {
    const worker = registration.installing;
    worker?.addEventListener('statechange', () => {
      if (worker.state === 'installed') offer(worker);
    });
  });
  const check = () => registration.update().catch(() => {}); // offline: try again later
  setInterval(check, UPDATE_CHECK_MS);
  document.addEventListener('visibilitychange', () => document.visibilityState === 'visible' && check());
}

function offer(worker) {
  // With no controller this is the first install, which takes over by itself.
  if (!navigator.serviceWorker.controller) return;
  waiting = worker;
  updateReady.value = true;
}

export function applyUpdate() {
  waiting?.postMessage({ type: 'SKIP_WAITING' });
}

// A change of controller while one was in charge means a new version took over (from this
// tab's button or another's): reload to run it whole. The first install's takeover needs no
// reload. A reload that comes back on the same build must not reload again, or a broken
// update would loop (ahoek/katsu#67).
function watchForTakeover() {
  let controlled = Boolean(navigator.serviceWorker.controller);
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    const wasControlled = controlled;
    controlled = true;
    if (!wasControlled || sessionStorage.getItem(RELOADED_FROM) === build) return;
    sessionStorage.setItem(RELOADED_FROM, build);
    location.reload();
  });
}
