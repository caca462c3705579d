/**
 * The IndexedDB layout. Two kinds of database:
 *
 * - `loopline-device`: the session (tokens, who is signed in) — one per origin;
 * - `loopline-user-<user id>`: one per user who ever signed in on this device — identity
 *   (client_id, mid counters), outbox, read model, cursor, rejected entries and photo queue.
 *
 * Why one database per user: the server binds a client_id to the first user who syncs
 * with it and refuses it to anyone else, and a user's unsent outbox must wait, untouched,
 * until that user signs in again. A shift tablet shared by three inspectors therefore keeps
 * three queues under three client ids, each made once and kept for good.
 *
 * Every write that matters goes through `write()` with `durability: 'strict'`: it
 * resolves only once the browser reports the data on disk, so "queued" means queued even
 * if the tablet's battery dies a second later.
 */
import { openDB } from 'idb';

const DEVICE_DB = 'loopline-device';
const USER_DB_PREFIX = 'loopline-user-';

export function openDeviceDb() {
  return openDB(DEVICE_DB, 1, {
    upgrade(db) {
      db.createObjectStore('kv');
    },
  });
}

export async function openUserDb(userId) {
  const db = await openDB(USER_DB_PREFIX + userId, 1, {
    upgrade(db) {
      db.createObjectStore('meta');
      db.createObjectStore('outbox', { keyPath: 'mid' });
      db.createObjectStore('records', { keyPath: ['entity', 'id'] }).createIndex('entity', 'entity');
      db.createObjectStore('rejected', { keyPath: 'id' });
      db.createObjectStore('photos', { keyPath: 'sha256' }).createIndex('state', 'state');
    },
    // A tab of a newer build upgrading the schema waits until this connection closes: step
    // aside rather than block it (this tab's writes then fail loudly until it reloads).
    blocking() {
      db.close();
    },
  });
  await write(db, ['meta'], async (tx) => {
    const meta = tx.objectStore('meta');
    // Made once: a second tab opening the database at the same moment finds the first one's id.
    if ((await meta.get('client_id')) === undefined) {
      await meta.put(crypto.randomUUID(), 'client_id');
      // The next mid to hand out; never derived from the outbox, which drains to empty.
      await meta.put(1, 'next_mid');
      // The highest last_mid the server ever acknowledged; a smaller one later means it lost work.
      await meta.put(0, 'acked_mid');
      await meta.put(null, 'cursor');
    }
  });
  return db;
}

/**
 * One readwrite transaction that commits on disk (`strict`) or not at all. `work(tx)` may
 * only await requests of `tx` — never a fetch or a timer, or the transaction auto-commits
 * half-way (see idb's "Transaction lifetime").
 */
export async function write(db, storeNames, work) {
  const tx = db.transaction(storeNames, 'readwrite', { durability: 'strict' });
  let result;
  try {
    result = await work(tx);
  } catch (error) {
    try {
      tx.abort();
    } catch {
      // Already finished or aborted by the failing request itself.
    }
    tx.done.catch(() => {});
    throw error;
  }
  await tx.done;
  return result;
}

export async function readMeta(db, key) {
  return db.get('meta', key);
}
