/**
 * The outbox: mutations queued under gapless mids, dropped only on a real acknowledgement.
 *
 * A mutation is checked when it is queued, not when it is sent: a malformed entry at the
 * head of the queue would be resent unchanged forever, and a stuck queue is the worst
 * failure a sync system has.
 */
import { readMeta, write } from './db.js';
import { SyncError, SyncStopped } from './errors.js';

export const SCHEMA_VERSION = 1;
export const MAX_MUTATIONS_PER_PUSH = 500;
export const MAX_PUSH_BYTES = 1024 * 1024;
const MAX_NAME_LENGTH = 64;
// As the server (and the Python engine): args nested deeper are refused, so never queued.
const MAX_ARGS_DEPTH = 32;
const encoder = new TextEncoder();

/** The byte length of `value` as the transport will send it. */
export function jsonBytes(value) {
  return encoder.encode(JSON.stringify(value)).length;
}

/** A UUIDv7: made offline, unique, roughly time-ordered (kind to the server's indexes). */
export function newId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  const now = Date.now();
  for (let i = 0; i < 6; i += 1) bytes[i] = Math.floor(now / 2 ** (8 * (5 - i))) % 256;
  bytes[6] = (bytes[6] & 0x0f) | 0x70;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Refuses what JSON would silently change (undefined, NaN, Dates, Blobs, class instances)
 * or cannot encode (cycles, BigInt): the server must receive exactly what the view queued.
 */
function checkPlainJson(value, path, seen, depth = 1) {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw unsendable(`${path} is ${value}, which JSON cannot carry`);
    return;
  }
  if (typeof value !== 'object') throw unsendable(`${path} is a ${typeof value}, which JSON cannot carry`);
  if (seen.has(value)) throw unsendable(`${path} refers back to itself`);
  if (depth > MAX_ARGS_DEPTH) throw unsendable(`${path} nests deeper than ${MAX_ARGS_DEPTH} levels`);
  const proto = Object.getPrototypeOf(value);
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) {
    throw unsendable(`${path} is a ${value.constructor?.name ?? 'non-plain object'}; photos go through addPhoto()`);
  }
  seen.add(value);
  for (const [key, item] of Object.entries(value)) checkPlainJson(item, `${path}.${key}`, seen, depth + 1);
  seen.delete(value);
}

function unsendable(message) {
  return new SyncError('unsendable', message);
}

/** The mutation exactly as pushed (and re-pushed, byte for byte). */
export function wire(entry) {
  return { mid: entry.mid, id: entry.id, name: entry.name, args: entry.args, client_ts: entry.client_ts };
}

function envelopeBytes(clientId) {
  return jsonBytes({ client_id: clientId, schema_version: SCHEMA_VERSION, mutations: [] });
}

/** Queue a mutation (works offline); resolves with the entry once it is on disk. */
export async function enqueue(db, clientId, name, args) {
  if (typeof name !== 'string' || !name || name.length > MAX_NAME_LENGTH) {
    throw unsendable('a mutation needs a name of 1 to 64 characters');
  }
  if (args === null || typeof args !== 'object' || Array.isArray(args)) throw unsendable('args must be an object');
  checkPlainJson(args, 'args', new Set());
  const entry = { id: newId(), name, args, client_ts: new Date().toISOString(), queuedAt: Date.now() };
  // The largest mid a device could ever reach: the size check holds whatever mid it gets.
  if (jsonBytes(wire({ ...entry, mid: 2 ** 53 })) + envelopeBytes(clientId) > MAX_PUSH_BYTES) {
    throw new SyncError('too_large', `${name} exceeds the ${MAX_PUSH_BYTES}-byte push limit; send photos as blobs`);
  }
  return write(db, ['meta', 'outbox'], async (tx) => {
    const meta = tx.objectStore('meta');
    // Read, insert and advance in one transaction: IndexedDB runs overlapping readwrite
    // transactions one after another, so two tabs never share or skip a mid.
    entry.mid = await meta.get('next_mid');
    await tx.objectStore('outbox').add(entry);
    await meta.put(entry.mid + 1, 'next_mid');
    return entry;
  });
}

/** The oldest queued mutations from `fromMid` on, trimmed to what fits one push request. */
export async function pendingBatch(db, clientId, limit, fromMid = 1) {
  const entries = await db.getAll('outbox', IDBKeyRange.lowerBound(fromMid), limit);
  let budget = MAX_PUSH_BYTES - envelopeBytes(clientId);
  const batch = [];
  for (const entry of entries) {
    budget -= jsonBytes(wire(entry)) + 1;
    if (batch.length && budget < 0) break;
    batch.push(entry);
  }
  return batch;
}

export async function outboxSummary(db) {
  const [count, cursor] = await Promise.all([db.count('outbox'), db.transaction('outbox').store.openCursor()]);
  return { count, oldestQueuedAt: cursor?.value.queuedAt ?? null };
}

export function queued(db) {
  return db.getAll('outbox');
}

/**
 * Inside `tx` (stores meta, outbox, rejected): drop the entries up to `lastMid`, keeping
 * the rejected ones among them with the server's reason. Refuses acknowledgements that
 * would drop what was never sent, or that go back on an earlier one (a restored server).
 */
export async function acknowledgeIn(tx, lastMid, results = []) {
  const meta = tx.objectStore('meta');
  const [nextMid, ackedMid] = await Promise.all([meta.get('next_mid'), meta.get('acked_mid')]);
  if (lastMid >= nextMid) {
    throw new SyncStopped('outbox_inconsistent', `The server acknowledges mid ${lastMid}; this device issued only up to ${nextMid - 1}.`);
  }
  if (lastMid < ackedMid) {
    throw new SyncStopped('outbox_inconsistent', `The server acknowledges mid ${lastMid} after ${ackedMid}: it lost acknowledged changes.`);
  }
  const outbox = tx.objectStore('outbox');
  const rejectedStore = tx.objectStore('rejected');
  for (const result of results) {
    const rejected = result.status === 'rejected' || (result.status === 'duplicate' && result.original_status === 'rejected');
    if (!rejected || result.mid > lastMid) continue;
    const entry = await outbox.get(result.mid);
    if (!entry) continue; // kept already, from the first answer
    await rejectedStore.put({
      id: entry.id,
      mid: entry.mid,
      name: entry.name,
      args: entry.args,
      queuedAt: entry.queuedAt,
      rejectedAt: Date.now(),
      // A resend's `duplicate` answer does not repeat the reason: say so rather than invent one.
      error: result.error ?? { code: 'rejected', message: 'The server refused this change when it first arrived.', details: {} },
    });
  }
  await outbox.delete(IDBKeyRange.upperBound(lastMid));
  await meta.put(Math.max(ackedMid, lastMid), 'acked_mid');
}

export async function acknowledge(db, lastMid, results) {
  await write(db, ['meta', 'outbox', 'rejected'], (tx) => acknowledgeIn(tx, lastMid, results));
}

export function rejectedEntries(db) {
  return db.getAll('rejected');
}

export async function discardRejected(db, id) {
  await write(db, ['rejected'], (tx) => tx.objectStore('rejected').delete(id));
}

/** The mids the device issued and still holds: `{oldest, highest}` (oldest undefined when empty). */
export async function heldMids(db) {
  const [nextMid, [oldest]] = await Promise.all([readMeta(db, 'next_mid'), db.getAllKeys('outbox', null, 1)]);
  return { oldest, highest: nextMid - 1 };
}
