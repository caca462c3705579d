/**
 * The read model: the server's rows this user may read, as pulled pages and live frames
 * deliver them. Both arrive here through `applyChanges`, so the WebSocket is not a second
 * way of writing the read model, only a faster way of receiving the same log.
 */
import { write } from './db.js';
import { acknowledgeIn } from './outbox.js';

/**
 * Apply a page, store its cursor and — for a pull (`lastMid` not null) — drop the
 * acknowledged outbox entries, in ONE transaction. If anything fails half-way nothing
 * changes: the cursor still points before the page, which is simply fetched again.
 *
 * Ties go to the later change: the log arrives in seq order, so at an equal version the
 * later fact wins (a delete when a scope is lost, then the same version put again when it
 * comes back). Only a strictly older version is ignored. A delete keeps a tombstone
 * (data null) with its version, so a late older put cannot bring the row back.
 *
 * `replace` (the first page of a rebuild after `reset_required`) clears the old rows in
 * the same transaction: until the new snapshot arrives, the device keeps showing the old
 * data instead of nothing — it may be offline for hours between the two.
 */
export async function applyChanges(db, changes, cursor, { lastMid = null, replace = false } = {}) {
  const stores = lastMid === null ? ['records', 'meta'] : ['records', 'meta', 'outbox', 'rejected'];
  await write(db, stores, async (tx) => {
    const records = tx.objectStore('records');
    if (replace) await records.clear();
    const current = await Promise.all(changes.map((change) => records.get([change.entity, change.id])));
    const newest = new Map();
    changes.forEach((change, i) => {
      const key = `${change.entity}\u0000${change.id}`;
      const base = newest.get(key) ?? current[i];
      if (base && change.version < base.version) return;
      newest.set(key, {
        entity: change.entity,
        id: change.id,
        version: change.version,
        data: change.op === 'delete' ? null : (change.data ?? {}),
      });
    });
    await Promise.all([...newest.values()].map((row) => records.put(row)));
    await tx.objectStore('meta').put(cursor, 'cursor');
    if (lastMid !== null) await acknowledgeIn(tx, lastMid);
  });
}

/** Forget the read model and its cursor (at sign-out). The outbox stays. */
export async function resetReadModel(db) {
  await write(db, ['records', 'meta'], async (tx) => {
    await tx.objectStore('records').clear();
    await tx.objectStore('meta').put(null, 'cursor');
  });
}

export async function getRecord(db, entity, id) {
  const row = await db.get('records', [entity, id]);
  return row?.data ?? null;
}

export async function allRecords(db, entity) {
  const rows = await db.getAllFromIndex('records', 'entity', entity);
  return rows.filter((row) => row.data !== null).map((row) => row.data);
}

/** True for a list of change-log entries as pull pages and live frames carry them. */
export function areChanges(changes) {
  return (
    Array.isArray(changes) &&
    changes.every(
      (change) =>
        typeof change?.entity === 'string' &&
        typeof change.id === 'string' &&
        (change.op === 'put' || change.op === 'delete') &&
        Number.isInteger(change.version),
    )
  );
}

/** What changed, for the `changes` event: entity names and, per entity, the ids. */
export function describeChanges(changes) {
  const ids = {};
  for (const change of changes) (ids[change.entity] ??= []).push(change.id);
  return { entities: Object.keys(ids), ids };
}
