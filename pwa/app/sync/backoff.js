/**
 * The retry policy: full-jitter exponential backoff that honours `Retry-After`, as the
 * Python engine's backoff.py. Full jitter spreads a fleet of tablets that lost the network
 * at the same moment, so they do not come back in lock-step.
 */

const BASE_MS = 500;
export const CAP_MS = 30_000;
// A broken proxy answering `Retry-After: 86400` must not park a device for a day.
const MAX_RETRY_AFTER_MS = 300_000;

/** Milliseconds to wait after `failures` consecutive failures (1 = the first). */
export function backoffDelay(failures, retryAfterMs = null) {
  const ceiling = Math.min(CAP_MS, BASE_MS * 2 ** Math.min(30, Math.max(0, failures - 1)));
  const wait = Math.random() * ceiling;
  return retryAfterMs > 0 ? Math.max(wait, Math.min(retryAfterMs, MAX_RETRY_AFTER_MS)) : wait;
}

/** `Retry-After` in delta-seconds, as milliseconds; HTTP dates and garbage leave the backoff in charge. */
export function parseRetryAfter(value) {
  if (value == null || !/^\s*\d+(\.\d+)?\s*$/.test(value)) return null;
  return Number(value) * 1000;
}

/**
 * A wait that a better moment can cut short (`online`, the page becoming visible): a device
 * that just got its network back should not sit out a 30 s backoff. A server's own
 * `Retry-After` is a floor no wake-up cuts through: the network coming back does not make a
 * busy server less busy.
 */
export class Pause {
  #wake = null;

  wait(ms, { floorMs = 0 } = {}) {
    const started = Date.now();
    return new Promise((resolve) => {
      let timer = setTimeout(finish, ms);
      const wake = () => {
        clearTimeout(timer);
        timer = setTimeout(finish, Math.max(0, started + floorMs - Date.now()));
      };
      const self = this;
      function finish() {
        if (self.#wake === wake) self.#wake = null;
        resolve();
      }
      this.#wake = wake;
    });
  }

  wake() {
    this.#wake?.();
  }
}

/** Consecutive failures within one push, pull or photo upload; progress resets the count. */
export class Attempts {
  failures = 0;
  unauthorized = 0;

  progressed() {
    this.failures = 0;
    this.unauthorized = 0;
  }
}
