/**
 * One authorised request with the retry rules every queue shares (the outbox and the photo
 * queue alike): a network failure or a 429/5xx waits a jittered backoff (at least the
 * server's `Retry-After`); a 401 renews the token across tabs and asks for the same request
 * again. `call` resolves null for "send the same again", or the reply for its caller to judge.
 */
import { Pause, backoffDelay, parseRetryAfter } from './backoff.js';
import { SyncError, SyncStopped } from './errors.js';

/** Raised inside a queue that was closed (sign-out, another tab took over): not an error. */
export class Closed extends Error {}

export class Exchange {
  #closed = false;
  #pause = new Pause();

  /** `report(patch)` receives status fields: online, lastError, retryAt. */
  constructor({ auth, send, report }) {
    Object.assign(this, { auth, send, report });
  }

  close() {
    this.#closed = true;
    this.#pause.wake();
  }

  /** A better moment to retry than the backoff timer: the network is back, the page is visible. */
  wake() {
    this.#pause.wake();
  }

  checkOpen() {
    if (this.#closed) throw new Closed('sync closed');
  }

  async call(attempts, method, path, options = {}) {
    this.checkOpen();
    let token;
    let reply;
    try {
      token = await this.auth.token();
      reply = await this.send(method, path, { ...options, token });
    } catch (error) {
      if (error instanceof SyncStopped) throw error;
      await this.fail(attempts, error);
      return null;
    }
    this.checkOpen();
    if (reply.status === 401) {
      await this.#renew(token, attempts);
      return null;
    }
    attempts.unauthorized = 0;
    if (reply.status === 429 || reply.status >= 500) {
      const retryAfterMs = parseRetryAfter(reply.headers.get('retry-after'));
      const code = reply.error().code ?? `http_${reply.status}`;
      await this.fail(attempts, new SyncError(code, `${method} ${path} answered ${reply.status}`, { retryAfterMs }));
      return null;
    }
    return reply;
  }

  /** 401: renew the token; the caller resends. No queue is touched. */
  async #renew(token, attempts) {
    attempts.unauthorized += 1;
    if (attempts.unauthorized > 1) {
      // A fresh token was refused too: back off before asking again.
      await this.fail(attempts, new SyncError('unauthorized', 'access token rejected again'));
    }
    try {
      await this.auth.renew(token);
    } catch (error) {
      if (error instanceof SyncStopped) throw error;
      await this.fail(attempts, error);
    }
  }

  /** Count a transient failure and wait its backoff delay. */
  async fail(attempts, error) {
    this.checkOpen();
    attempts.failures += 1;
    const delay = backoffDelay(attempts.failures, error.retryAfterMs);
    const offline = error.code === 'network' || error.code === 'not_protocol_json';
    this.report({
      lastError: { code: error.code, message: error.message },
      retryAt: Date.now() + delay,
      ...(offline ? { online: false } : {}),
    });
    await this.#pause.wait(delay, { floorMs: error.retryAfterMs ?? 0 });
    this.report({ retryAt: null });
    this.checkOpen();
  }
}
