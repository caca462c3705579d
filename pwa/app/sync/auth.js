/**
 * Sign-in and bearer tokens, shared by every tab of the origin.
 *
 * Refresh tokens rotate, and the server ends the whole session when a spent one comes back.
 * Two tabs refreshing at once would do exactly that, so refreshes run under a Web Lock and
 * re-read the stored session first: a tab whose rejected token another tab already replaced
 * adopts the replacement instead of refreshing again.
 *
 * The password is never stored. When the refresh token is refused (expired, revoked, reused)
 * the session is over and the user signs in again; nothing here ever touches the outbox.
 * Tokens live in IndexedDB so a reload (or a tablet waking up) keeps syncing without a prompt.
 */
import { parseRetryAfter } from './backoff.js';
import { write } from './db.js';
import { SyncError, SyncStopped } from './errors.js';

const LOGIN_PATH = '/api/v1/auth/login';
const REFRESH_PATH = '/api/v1/auth/refresh';
const LOGOUT_PATH = '/api/v1/auth/logout';
const ME_PATH = '/api/v1/me';
const SESSION_KEY = 'session';
const AUTH_LOCK = 'loopline-auth';
// Refresh a little early, so a request does not leave with a token that expires on the way.
const REFRESH_MARGIN_MS = 30_000;

function tokensOf(reply) {
  const body = reply.status === 200 ? reply.json() : undefined;
  const valid =
    body &&
    typeof body.access_token === 'string' &&
    typeof body.refresh_token === 'string' &&
    Number.isFinite(body.expires_in) &&
    String(body.token_type).toLowerCase() === 'bearer';
  return valid ? body : null;
}

function expiresAt(tokens) {
  return Date.now() + tokens.expires_in * 1000;
}

/** Transient answers (429, 5xx, a 200 that is not ours) as a retryable error, else null. */
function transientError(reply, what) {
  if (reply.status === 429 || reply.status >= 500) {
    return new SyncError(reply.error().code ?? `http_${reply.status}`, `${what} answered ${reply.status}`, {
      retryAfterMs: parseRetryAfter(reply.headers.get('retry-after')),
    });
  }
  if (reply.status === 200) return new SyncError('not_protocol_json', `${what} answered 200 without tokens`);
  return null;
}

export class Auth {
  #send;
  #deviceDb;
  #onSessionEnded;
  session = null;

  constructor(send, deviceDb, onSessionEnded) {
    this.#send = send;
    this.#deviceDb = deviceDb;
    this.#onSessionEnded = onSessionEnded;
  }

  async load() {
    this.session = (await this.#deviceDb.get('kv', SESSION_KEY)) ?? null;
    return this.session;
  }

  async signIn(username, password) {
    let reply;
    try {
      reply = await this.#send('POST', LOGIN_PATH, { json: { username, password } });
    } catch {
      throw new SyncError('offline', 'The server cannot be reached; signing in needs the network.');
    }
    if (reply.status === 429) {
      const retryAfterMs = parseRetryAfter(reply.headers.get('retry-after'));
      const retryAfter = retryAfterMs == null ? (reply.error().details.retry_after_s ?? null) : retryAfterMs / 1000;
      throw new SyncError('rate_limited', 'Too many sign-in attempts; wait and try again.', { retryAfter });
    }
    if (reply.status >= 400 && reply.status < 500) {
      throw new SyncError('invalid_credentials', 'Unknown username or wrong password.');
    }
    const tokens = tokensOf(reply);
    if (!tokens) {
      // A 200 page that is not ours is a captive portal: the network is not really there.
      if (reply.status === 200) throw new SyncError('offline', 'The network answered with a sign-in page of its own.');
      throw new SyncError('server_error', `Sign-in failed: the server answered ${reply.status}.`);
    }
    const me = await this.#me(tokens.access_token);
    this.session = {
      userId: me.user.id,
      user: { ...me.user, plant_ids: me.plant_ids, account_ids: me.account_ids },
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token,
      expiresAt: expiresAt(tokens),
    };
    await this.#save(this.session);
    return this.session;
  }

  async #me(token) {
    let reply;
    try {
      reply = await this.#send('GET', ME_PATH, { token });
    } catch {
      throw new SyncError('offline', 'The connection dropped while signing in.');
    }
    const me = reply.status === 200 ? reply.json() : undefined;
    if (!me?.user?.id) throw new SyncError('server_error', `Sign-in failed: /me answered ${reply.status}.`);
    return me;
  }

  /** A usable access token (refreshed when about to expire). Throws `network`-like errors or SyncStopped. */
  async token() {
    const session = this.#require();
    if (Date.now() < session.expiresAt - REFRESH_MARGIN_MS) return session.accessToken;
    await this.renew(session.accessToken);
    return this.#require().accessToken;
  }

  /** A request was answered 401 with `rejectedToken`: get a new token, once per rejected token, across tabs. */
  async renew(rejectedToken) {
    await navigator.locks.request(AUTH_LOCK, async () => {
      const stored = await this.load();
      if (!stored) throw this.#ended('You were signed out.');
      if (stored.accessToken !== rejectedToken) return; // another tab renewed it already
      await this.#refresh(stored);
    });
  }

  async #refresh(stored) {
    const reply = await this.#send('POST', REFRESH_PATH, { json: { refresh_token: stored.refreshToken } });
    const tokens = tokensOf(reply);
    if (tokens) {
      this.session = {
        ...stored,
        accessToken: tokens.access_token,
        refreshToken: tokens.refresh_token,
        expiresAt: expiresAt(tokens),
      };
      await this.#save(this.session);
      return;
    }
    const transient = transientError(reply, 'refresh');
    if (transient) throw transient;
    await this.forget();
    throw this.#ended('Your session has ended; sign in again. Unsent changes stay on this device.');
  }

  #ended(message) {
    const error = new SyncStopped('session_ended', message);
    this.#onSessionEnded(error);
    return error;
  }

  /** Ends the session on the server when it can be reached; a failure there only lets the refresh token expire. */
  async logout() {
    const token = this.session?.accessToken;
    if (!token) return;
    try {
      await this.#send('POST', LOGOUT_PATH, { token });
    } catch {
      // Offline: the tokens are forgotten here; the server's copy expires on its own.
    }
  }

  async forget() {
    this.session = null;
    await write(this.#deviceDb, ['kv'], (tx) => tx.objectStore('kv').delete(SESSION_KEY));
  }

  #require() {
    if (!this.session) throw new SyncStopped('session_ended', 'Not signed in.');
    return this.session;
  }

  async #save(session) {
    await write(this.#deviceDb, ['kv'], (tx) => tx.objectStore('kv').put(session, SESSION_KEY));
  }
}
