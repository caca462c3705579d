/**
 * Push the outbox, pull the change log: the client rules of the sync protocol, ported
 * decision by decision from the Python engine (sync/loopline_sync/engine.py).
 *
 * - The outbox shrinks only on a real acknowledgement: a push answer that parses, for our
 *   own client id — never on a status code alone, never on auth trouble, never on a 200
 *   page from a captive portal.
 * - A pulled page, its cursor and the acknowledged outbox entries change in one IndexedDB
 *   transaction (readmodel.js).
 * - Transient trouble is retried with jittered backoff, forever: a quiet device still
 *   drains its queue. A 401 renews the token and resends the same batch, same mids.
 * - What waiting cannot heal (another user's client id, an app too old, a server that lost
 *   acknowledged work, an ended session) throws SyncStopped, outbox untouched.
 *
 * Only the leading tab runs an engine, so one exchange at a time per device needs no lock.
 */
import { Attempts } from './backoff.js';
import { readMeta, write } from './db.js';
import { SyncError, SyncStopped } from './errors.js';
import {
  MAX_MUTATIONS_PER_PUSH,
  SCHEMA_VERSION,
  acknowledge,
  heldMids,
  pendingBatch,
  wire,
} from './outbox.js';
import { applyChanges, areChanges, describeChanges } from './readmodel.js';

const PUSH_PATH = '/api/v1/sync/push';
const PULL_PATH = '/api/v1/sync/pull';
const MAX_PULL_LIMIT = 500;
const BATCH_SIZE = 100;
// A server that answers reset_required to a pull from cursor null, again and again, is broken.
const MAX_RESETS_PER_PULL = 3;

function pushAck(reply, clientId) {
  const body = reply.json();
  const valid =
    body?.client_id === clientId &&
    typeof body.server_epoch === 'string' &&
    Number.isInteger(body.last_mid) &&
    Array.isArray(body.results);
  return valid ? body : null;
}

function pullPage(reply) {
  const body = reply.json();
  const valid =
    typeof body?.cursor === 'string' &&
    Number.isInteger(body.last_mid) &&
    typeof body.has_more === 'boolean' &&
    typeof body.reset_required === 'boolean' &&
    areChanges(body.changes);
  return valid ? body : null;
}

export class SyncEngine {
  /**
   * `hooks`: `report(patch)` for status fields, `changed(detail)` after read-model writes,
   * `acknowledged(results)` after the outbox shrank on a push answer.
   */
  constructor({ db, clientId, exchange, pullLimit, hooks }) {
    Object.assign(this, { db, clientId, exchange, hooks });
    this.pullLimit = Math.max(1, Math.min(MAX_PULL_LIMIT, pullLimit));
  }

  /** Push, then pull: our own writes come back in the pull with the server's versions. */
  async sync() {
    await this.push();
    await this.pull();
  }

  async push() {
    const attempts = new Attempts();
    let limit = BATCH_SIZE;
    let fromMid = 1; // moved by a mutation_gap: resend from the mid the server expects
    for (;;) {
      this.exchange.checkOpen();
      const batch = await pendingBatch(this.db, this.clientId, Math.min(limit, MAX_MUTATIONS_PER_PUSH), fromMid);
      if (!batch.length) return;
      this.#checkGapless(batch);
      const payload = { client_id: this.clientId, schema_version: SCHEMA_VERSION, mutations: batch.map(wire) };
      const reply = await this.#request(PUSH_PATH, payload, attempts);
      if (!reply) continue; // the same batch again, same mids
      if (reply.status === 413) {
        if (batch.length > 1) limit = Math.max(1, Math.floor(batch.length / 2));
        // One mutation always fits our own limit (checked when queued), so a 413 at one is a
        // middlebox with a smaller limit: wait and retry rather than drop anything.
        else await this.exchange.fail(attempts, new SyncError('payload_too_large', 'push too large at one mutation'));
        continue;
      }
      if (reply.status === 409) {
        fromMid = await this.#onGap(reply, batch, attempts);
        continue;
      }
      const ack = pushAck(reply, this.clientId);
      if (!ack) {
        await this.exchange.fail(attempts, new SyncError('not_protocol_json', 'push answered 200 without an acknowledgement'));
        continue;
      }
      await acknowledge(this.db, ack.last_mid, ack.results);
      this.hooks.acknowledged(ack.results);
      if (ack.last_mid < batch[0].mid) {
        await this.exchange.fail(attempts, new SyncError('no_progress', 'push acknowledged nothing of the batch'));
        continue;
      }
      attempts.progressed();
      fromMid = 1;
    }
  }

  #checkGapless(batch) {
    if (batch.some((entry, i) => entry.mid !== batch[0].mid + i)) {
      throw new SyncStopped('outbox_inconsistent', `The local outbox has a gap at mids ${batch.map((e) => e.mid)}.`);
    }
  }

  /** `409 mutation_gap`: the server is behind; the mid to resend from. */
  async #onGap(reply, batch, attempts) {
    const { code, details } = reply.error();
    const expected = details.expected_mid;
    if (code !== 'mutation_gap' || !Number.isInteger(expected)) {
      throw new SyncStopped(code ?? 'http_409', `push answered 409 ${code}`, { details });
    }
    const { oldest, highest } = await heldMids(this.db);
    if (expected < oldest || expected > highest) {
      throw new SyncStopped(
        'outbox_inconsistent',
        `The server expects mid ${expected}; this device holds mids ${oldest} to ${highest}: the server lost changes the device cannot resend.`,
        { details: { expected_mid: expected, oldest, highest } },
      );
    }
    if (expected === batch[0].mid) {
      // A batch starting at the expected mid cannot have a gap: a confused server. Wait.
      await this.exchange.fail(attempts, new SyncError('mutation_gap', 'contradictory mutation_gap', { details }));
      return 1;
    }
    return expected;
  }

  async pull() {
    const attempts = new Attempts();
    let cursor = await readMeta(this.db, 'cursor');
    let resets = 0;
    let rebuilding = false;
    for (;;) {
      this.exchange.checkOpen();
      const payload = { client_id: this.clientId, schema_version: SCHEMA_VERSION, cursor, limit: this.pullLimit };
      const reply = await this.#request(PULL_PATH, payload, attempts);
      if (!reply) continue;
      if (reply.status !== 200) {
        const { code, details } = reply.error();
        throw new SyncStopped(code ?? `http_${reply.status}`, `pull answered ${reply.status} ${code}`, { details });
      }
      const page = pullPage(reply);
      if (!page) {
        await this.exchange.fail(attempts, new SyncError('not_protocol_json', 'pull answered 200 without a page'));
        continue;
      }
      if (page.reset_required) {
        resets += 1;
        if (resets > MAX_RESETS_PER_PULL) throw new SyncStopped('reset_loop', 'The server keeps answering reset_required.');
        // The page's changes (if any) are relative to the old cursor: ignore them, rebuild from null.
        cursor = null;
        rebuilding = true;
        attempts.progressed();
        continue;
      }
      await applyChanges(this.db, page.changes, page.cursor, { lastMid: page.last_mid, replace: rebuilding });
      this.hooks.changed({ ...describeChanges(page.changes), reset: rebuilding });
      rebuilding = false;
      attempts.progressed();
      cursor = page.cursor;
      if (!page.has_more) {
        await write(this.db, ['meta'], (tx) => tx.objectStore('meta').put(Date.now(), 'last_synced_at'));
        return;
      }
    }
  }

  /**
   * POST once. 200, 409 and 413 go back to the caller; null means "nothing usable came
   * back, send the same again"; stops are thrown.
   */
  async #request(path, payload, attempts) {
    const reply = await this.exchange.call(attempts, 'POST', path, { json: payload });
    if (!reply || reply.status === 413) return reply;
    if (reply.json() === undefined) {
      // A captive portal's page, a proxy's error: not an answer from the server at all.
      await this.exchange.fail(attempts, new SyncError('not_protocol_json', `${path} answered ${reply.status} without JSON`));
      return null;
    }
    this.hooks.report({ online: true });
    if (reply.status === 200 || reply.status === 409) return reply;
    const { code, details, message } = reply.error();
    if (reply.status === 403 && code === 'client_owned_by_other_user') {
      throw new SyncStopped(code, 'This device’s queue belongs to another user; it stays here until they sign in again.', { details });
    }
    if (reply.status === 426) {
      throw new SyncStopped('client_too_old', 'This app is too old for the server: reload to update it.', { details });
    }
    throw new SyncStopped(code ?? `http_${reply.status}`, message || `${path} answered ${reply.status}`, { details });
  }
}
