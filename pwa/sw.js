// The service worker: keeps one whole version of the app (its shell and every module) for
// offline use, and nothing else. The server prepends `const BUILD = {id, shell, assets}`
// (see backend/loopline/webapp/build.py), so every build is a byte-different sw.js and the
// browser installs it as an update.
//
// Data never lives here: the read model, the outbox and photos are in IndexedDB, which an
// update does not touch. `/api/` requests are never answered from a cache.

const CACHE_PREFIX = 'loopline-shell-';
const CACHE = CACHE_PREFIX + BUILD.id;

self.addEventListener('install', (event) => {
  event.waitUntil(precache());
});

// Store the whole version before this worker may take over; a missing file fails the install
// (the browser retries later) instead of leaving a version with holes.
async function precache() {
  const cache = await caches.open(CACHE);
  // `reload` skips the HTTP cache, which could hand over a file of another version.
  const shell = await fetch(BUILD.shell, { cache: 'reload' });
  if (!shell.ok || shell.headers.get('X-Loopline-Build') !== BUILD.id) {
    throw new Error(`the server no longer serves build ${BUILD.id}`);
  }
  await cache.put(BUILD.shell, shell);
  await cache.addAll(BUILD.assets.map((url) => new Request(url, { cache: 'reload' })));
}

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      const names = await caches.keys();
      await Promise.all(
        names.filter((name) => name.startsWith(CACHE_PREFIX) && name !== CACHE).map((name) => caches.delete(name)),
      );
      // Control the pages that loaded before the first install, so they work offline at once.
      await self.clients.claim();
    })(),
  );
});

// Only the page's "Update" button activates a waiting version, so no open page is switched
// under its feet.
self.addEventListener('message', (event) => {
  if (event.data?.type === 'SKIP_WAITING') self.skipWaiting();
});

self.addEventListener('fetch', (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (request.mode === 'navigate' && url.pathname === BUILD.shell) {
    event.respondWith(fromCache(BUILD.shell, request));
  } else if (url.pathname.startsWith(`/app/${BUILD.id}/`)) {
    event.respondWith(fromCache(url.pathname, request));
  }
  // Everything else, `/api/` above all, goes to the network as if there were no worker.
});

// Background Sync (Chromium only) wakes the pages, whose sync client drains the outbox; the
// outbox and the engine live with the page, not here.
self.addEventListener('sync', (event) => {
  if (event.tag !== 'loopline-outbox') return;
  event.waitUntil(
    self.clients.matchAll({ type: 'window' }).then((pages) => {
      for (const page of pages) page.postMessage({ type: 'loopline-drain' });
    }),
  );
});

async function fromCache(key, request) {
  const cache = await caches.open(CACHE);
  return (await cache.match(key)) ?? fetch(request);
}
