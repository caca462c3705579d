// A case's quality context (`GET /api/v1/cases/{id}/context`): the batch's inspections and
// measurements, the line's control limits, photos, nonconformances and the lot's trace. Reps
// do not hold the plant's records on the device, so this is read online, and the last answer
// per case is kept on the device (with when it was fetched) so the panel still shows offline.
import { openDB } from 'idb';
import { useEffect, useState } from 'preact/hooks';
import { client } from '../../state/client.js';
import { user } from '../../state/session.js';

const STORE = 'context';
let database = null;

function db() {
  database ??= openDB('loopline-case-context', 1, {
    upgrade(upgrading) {
      upgrading.createObjectStore(STORE);
    },
  });
  return database;
}

// Kept per user: another person signing in on this tablet never gets what was kept for you.
const keyOf = (caseId) => `${user.value?.id}:${caseId}`;

// A session that ends takes its kept contexts with it, as the sync client clears its read model.
client.addEventListener('session', (event) => {
  if (!event.detail) db().then((opened) => opened.clear(STORE)).catch(() => {});
});

/** `{context, fetchedAt, fresh, loading, error}`: fresh once the server answered on this visit. */
export function useCaseContext(caseId, version) {
  const [state, setState] = useState({ context: null, fetchedAt: null, fresh: false, loading: true, error: null });
  useEffect(() => {
    let current = true;
    const update = (patch) => current && setState((before) => ({ ...before, ...patch }));
    (async () => {
      const kept = await db()
        .then((opened) => opened.get(STORE, keyOf(caseId)))
        .catch(() => null);
      if (kept) update({ context: kept.context, fetchedAt: kept.fetchedAt });
      try {
        const context = await client.fetchJson(`/api/v1/cases/${encodeURIComponent(caseId)}/context`);
        const fetchedAt = Date.now();
        update({ context, fetchedAt, fresh: true, loading: false, error: null });
        await db()
          .then((opened) => opened.put(STORE, { context, fetchedAt }, keyOf(caseId)))
          .catch(() => {});
      } catch (error) {
        update({ loading: false, error });
      }
    })();
    return () => {
      current = false;
    };
    // A new version of the case (its status, a remedy's effect) is worth a fresh look.
  }, [caseId, version]);
  return state;
}
