/**
 * What the leading tab runs for the signed-in user: the outbox (push/pull engine), the
 * photo queue and the live tail, and when they run — at once, on every nudge, and on a
 * timer, so a quiet device still drains its queue and catches up if no event ever fires.
 *
 * The outbox and the photo queue each get their own Exchange: a photo's backoff wait must
 * never hold back the mutations queued behind it, nor the other way round.
 */
import { SyncEngine } from './engine.js';
import { SyncStopped } from './errors.js';
import { Closed, Exchange } from './exchange.js';
import { LiveTail } from './live.js';
import { PhotoUploader } from './photos.js';

const DRAIN_INTERVAL_MS = 60_000;

/** `fn` run one at a time; a call while it runs asks for exactly one more run afterwards. */
function coalescing(fn) {
  let running = null;
  let again = false;
  const run = async () => {
    do {
      again = false;
      await fn();
    } while (again);
  };
  return () => {
    if (running) {
      again = true;
      return running;
    }
    running = run().finally(() => {
      running = null;
    });
    return running;
  };
}

/**
 * `context`: user ({db, clientId}), auth, send, baseUrl, pullLimit, and the client's
 * callbacks — report(patch), isStopped(), refreshStatus(), changed(detail),
 * acknowledged(results), signal(frame), sessionEnded(error).
 */
export class LeaderDuties {
  #context;
  #exchanges;
  #live;
  #timer;

  constructor(context) {
    this.#context = context;
    const { user, auth, send, baseUrl, pullLimit, report } = context;
    const exchange = new Exchange({ auth, send, report });
    const photoExchange = new Exchange({ auth, send, report });
    this.#exchanges = [exchange, photoExchange];
    const engine = new SyncEngine({
      db: user.db,
      clientId: user.clientId,
      exchange,
      pullLimit,
      hooks: { report, changed: context.changed, acknowledged: context.acknowledged },
    });
    const uploader = new PhotoUploader({ db: user.db, exchange: photoExchange, onSettled: context.refreshStatus });
    this.#live = new LiveTail({
      db: user.db,
      clientId: user.clientId,
      auth,
      send,
      baseUrl,
      hooks: {
        connected: (live) => report({ live }),
        changed: context.changed,
        signal: context.signal,
        resetRequired: () => this.drain(),
        sessionEnded: (error) => auth.forget().then(() => context.sessionEnded(error)),
      },
    });
    this.drain = coalescing(() => this.#guard(() => engine.sync(), 'syncing'));
    this.upload = coalescing(() => this.#guard(() => uploader.uploadAll(), null));
  }

  start() {
    this.#timer = setInterval(() => this.nudge(false), DRAIN_INTERVAL_MS);
    // The tail follows from the cursor the first pull leaves behind.
    this.drain().then(() => this.#live.start());
    this.upload();
  }

  stop() {
    clearInterval(this.#timer);
    for (const exchange of this.#exchanges) exchange.close();
    this.#live.stop();
  }

  /** Something worth syncing for happened; `urgent` (online, visible) also cuts backoff waits short. */
  nudge(urgent) {
    if (urgent) {
      for (const exchange of this.#exchanges) exchange.wake();
      this.#live.reconnectNow();
    }
    this.drain();
    this.upload();
  }

  sendFrame(frame) {
    this.#live.sendFrame(frame);
  }

  /** One queue pass; stops are shown in the status, the closing of a queue is no error. */
  async #guard(work, flag) {
    const { report, isStopped, refreshStatus } = this.#context;
    if (isStopped()) return;
    if (flag) report({ [flag]: true });
    try {
      await work();
      report({ lastError: null });
    } catch (error) {
      if (error instanceof Closed) return;
      if (error instanceof SyncStopped) report({ stopped: { code: error.code, message: error.message } });
      // Anything else (IndexedDB full, a bug) must not end the queue: the next nudge retries it.
      else report({ lastError: { code: error.code ?? error.name, message: error.message } });
    } finally {
      if (flag) report({ [flag]: false });
      await refreshStatus();
    }
  }
}
