/**
 * The PWA's sync engine: `createSyncClient()` is the only thing views import.
 *
 * It knows no view. Views write through `enqueue`/`addPhoto` (instant, offline), read
 * through `get`/`all`, and listen for `status`, `changes`, `rejected`, `typing`,
 * `presence` and `session` events. Everything else — pushing, pulling, photo uploads, the
 * live tail, tokens, which tab does the work — happens here.
 */
import { Attempts } from './backoff.js';
import { openDeviceDb, openUserDb, readMeta } from './db.js';
import { Auth } from './auth.js';
import { LeaderDuties } from './duties.js';
import { SyncError } from './errors.js';
import { Exchange } from './exchange.js';
import { TabChannel, holdLeadership } from './leader.js';
import * as outbox from './outbox.js';
import { pendingPhotoCount, photoBlob, preparePhoto, queuePhoto } from './photos.js';
import { allRecords, getRecord, resetReadModel } from './readmodel.js';
import { createTransport } from './transport.js';

export { newId } from './outbox.js';

const BACKGROUND_SYNC_TAG = 'loopline-outbox';

/** `pullLimit`: changes per pull page (at most 500); smaller pages suit very slow links, and tests. */
export function createSyncClient({ baseUrl = '', pullLimit = 500 } = {}) {
  return new SyncClient(baseUrl, pullLimit);
}

class SyncClient extends EventTarget {
  #baseUrl;
  #pullLimit;
  #send;
  #channel;
  #auth = null;
  #authReady = null;
  #started = false;
  // The signed-in user's part: their database and client id, and `resign` while this tab
  // leads or waits to lead their sync (null once the session ended: reads and writes go on).
  #user = null;
  // The leader's machinery, null in follower tabs.
  #leading = null;
  #status = {
    online: navigator.onLine,
    outboxCount: 0,
    oldestUnsentAt: null,
    lastSyncedAt: null,
    syncing: false,
    rejected: [],
    photosPending: 0,
    lastError: null,
    retryAt: null,
    stopped: null,
    sessionEnded: false,
    leader: false,
    live: false,
  };

  constructor(baseUrl, pullLimit) {
    super();
    this.#baseUrl = baseUrl;
    this.#pullLimit = pullLimit;
    this.#send = createTransport(baseUrl);
    this.#channel = new TabChannel('loopline-sync', (message) => this.#onTabMessage(message));
    // Open the device database now, while the page's other modules still load: the browser
    // opens it off the main thread, and the first read of the session no longer waits for it.
    // A failure surfaces at that first read (this promise is kept), not as an unhandled one.
    this.#authorities().catch(() => {});
  }

  // -- session ---------------------------------------------------------------------

  #authorities() {
    this.#authReady ??= openDeviceDb().then((deviceDb) => {
      this.#auth = new Auth(this.#send, deviceDb, (error) => this.#sessionEnded(error));
      return this.#auth;
    });
    return this.#authReady;
  }

  async signIn(username, password) {
    const auth = await this.#authorities();
    const session = await auth.signIn(username, password);
    this.#report({ sessionEnded: false, stopped: null, lastError: null, online: true });
    if (this.#started) await this.#activate(session);
    this.#post({ type: 'session' });
    this.#emit('session', { user: session.user });
    return { user: session.user };
  }

  /** `{user}` of the session this device holds, or null (a Promise: it is read from IndexedDB). */
  async getSession() {
    const auth = await this.#authorities();
    const session = auth.session ?? (await auth.load());
    return session ? { user: session.user } : null;
  }

  /**
   * Signing out with unsent changes needs `{force: true}`. Either way the unsent changes,
   * queued photos and rejected entries stay on this device, under this user: they are sent
   * when the same user signs in here again. The read model is cleared (a shared tablet must
   * not show one user's customers to the next); it comes back with the next sign-in's pull.
   */
  async signOut({ force = false } = {}) {
    const auth = await this.#authorities();
    const user = this.#user;
    if (user) {
      const unsent = (await user.db.count('outbox')) + (await pendingPhotoCount(user.db));
      if (unsent && !force) {
        throw new SyncError('unsent_changes', `${unsent} change(s) are not sent yet.`, { unsent });
      }
    }
    await auth.logout();
    await auth.forget();
    this.#post({ type: 'session', signedOut: true });
    this.#stopSyncing();
    if (user) await resetReadModel(user.db);
    await this.#deactivate();
    this.#emit('session', null);
  }

  /** The refresh token was refused or the server closed the socket as signed out. */
  #sessionEnded(error) {
    this.#report({ sessionEnded: true, stopped: { code: error.code, message: error.message } });
    this.#post({ type: 'session' });
    // Leave the machinery from outside the failing call's own stack.
    queueMicrotask(() => {
      this.#stopSyncing();
      this.#emit('session', null);
    });
  }

  // -- lifecycle -------------------------------------------------------------------

  /** Start syncing (if signed in) and keep at it: in this tab, or by following the leading tab. */
  async start() {
    if (this.#started) return;
    this.#started = true;
    navigator.storage?.persist?.().catch(() => {});
    addEventListener('online', () => this.#nudge(true));
    addEventListener('offline', () => this.#report({ online: false }));
    document.addEventListener('visibilitychange', () => {
      const visible = document.visibilityState === 'visible';
      if (visible) this.#nudge(true);
      this.#sendFrame({ type: 'presence', state: visible ? 'active' : 'idle' });
    });
    navigator.serviceWorker?.addEventListener('message', (event) => {
      if (event.data?.type === 'loopline-drain') this.#nudge(true);
    });
    const session = await (await this.#authorities()).load();
    if (session) await this.#activate(session);
  }

  async #activate(session) {
    if (this.#user?.userId !== session.userId) {
      await this.#deactivate();
      const db = await openUserDb(session.userId);
      this.#user = { userId: session.userId, db, clientId: await readMeta(db, 'client_id'), resign: null };
    }
    const user = this.#user;
    user.resign ??= holdLeadership(`loopline-sync-${user.userId}`, () => this.#lead());
    await this.#refreshStatus();
  }

  #stopSyncing() {
    this.#user?.resign?.();
    if (this.#user) this.#user.resign = null;
    this.#report({ syncing: false, live: false, retryAt: null });
    this.#applyStatus({ leader: false });
  }

  async #deactivate() {
    const user = this.#user;
    if (!user) return;
    this.#stopSyncing();
    this.#user = null;
    user.db.close();
  }

  /** This tab now leads: start the queues. Returns how to stop. */
  async #lead() {
    const user = this.#user;
    if (!user) return async () => {};
    const duties = new LeaderDuties({
      user,
      auth: this.#auth,
      send: this.#send,
      baseUrl: this.#baseUrl,
      pullLimit: this.#pullLimit,
      report: (patch) => this.#report(patch),
      isStopped: () => this.#status.stopped !== null,
      refreshStatus: () => this.#refreshStatus(),
      changed: (detail) => this.#changed(detail),
      acknowledged: (results) => this.#acknowledged(results),
      signal: (frame) => this.#signal(frame),
      sessionEnded: (error) => this.#sessionEnded(error),
    });
    this.#leading = duties;
    this.#applyStatus({ leader: true }); // this tab's own: not broadcast
    duties.start();
    return async () => {
      duties.stop();
      if (this.#leading === duties) this.#leading = null;
    };
  }

  /** Something worth syncing for happened; `urgent` (online, visible) also cuts backoff waits short. */
  #nudge(urgent) {
    if (urgent) this.#report({ online: navigator.onLine });
    this.#leading?.nudge(urgent);
  }

  /** Tabs of one device share one channel; messages about another user's data are not ours. */
  #post(message) {
    this.#channel.post({ ...message, userId: this.#user?.userId ?? null });
  }

  #onTabMessage(message) {
    if (message.type === 'session') {
      this.#followSession(message.signedOut);
      return;
    }
    if (!this.#user || message.userId !== this.#user.userId) return;
    switch (message.type) {
      case 'outbox':
        this.#leading?.drain();
        this.#refreshStatus();
        break;
      case 'photos':
        this.#leading?.upload();
        this.#refreshStatus();
        break;
      case 'changes':
        this.#emit('changes', message.detail);
        break;
      case 'status':
        // The leader's work shows in IndexedDB too (outbox, last sync): read it again.
        this.#applyStatus(message.patch);
        this.#refreshStatus();
        break;
      case 'signal':
        this.#emit(message.frame.type, message.frame);
        break;
      case 'frame':
        this.#leading?.sendFrame(message.frame);
        break;
      case 'rejected':
        this.#refreshStatus().then(() => this.#emit('rejected', message.detail));
        break;
    }
  }

  /** Another tab signed in, out, or saw the session end: do the same here. */
  async #followSession(signedOut) {
    const session = await (await this.#authorities()).load();
    if (session) {
      this.#report({ sessionEnded: false, stopped: null });
      if (this.#started) await this.#activate(session);
    } else if (signedOut) {
      await this.#deactivate();
    } else {
      this.#report({ sessionEnded: true });
      this.#stopSyncing();
    }
    this.#emit('session', session ? { user: session.user } : null);
  }

  // -- writes ----------------------------------------------------------------------

  #requireUser() {
    if (!this.#user) throw new SyncError('signed_out', 'Sign in first.');
    return this.#user;
  }

  /** Queue a mutation (works offline). Resolves with `{id, mid}` once it is on disk. */
  async enqueue(name, args) {
    const { db, clientId } = this.#requireUser();
    const entry = await outbox.enqueue(db, clientId, name, args);
    this.#post({ type: 'outbox' });
    this.#leading?.drain();
    this.#registerBackgroundSync();
    await this.#refreshStatus();
    return { id: entry.id, mid: entry.mid };
  }

  /** Downscale, strip metadata, hash and queue a photo (works offline); reference `sha256` from mutations. */
  async addPhoto(fileOrBlob) {
    const { db } = this.#requireUser();
    const photo = await preparePhoto(fileOrBlob);
    await queuePhoto(db, photo);
    this.#post({ type: 'photos' });
    this.#leading?.upload();
    this.#registerBackgroundSync();
    await this.#refreshStatus();
    return { sha256: photo.sha256 };
  }

  /**
   * A URL for an `<img>` (a Promise: the server wants a bearer token, which `<img>` cannot
   * send). A photo still queued on this device is shown from there, offline too. Revoke
   * the URL with `URL.revokeObjectURL` when the image is gone.
   */
  async photoUrl(sha256, size = 'display') {
    const { db } = this.#requireUser();
    const local = await photoBlob(db, sha256);
    if (local) return URL.createObjectURL(local);
    const path = `/api/v1/blobs/${encodeURIComponent(sha256)}?size=${encodeURIComponent(size)}`;
    const reply = await this.#onlineGet(path, { as: 'blob' });
    if (reply?.status !== 200) throw new SyncError('photo_unavailable', `The photo could not be loaded (${reply?.status ?? 'offline'}).`);
    return URL.createObjectURL(reply.body);
  }

  /**
   * GET a server read that is not in the read model (`/api/v1/…`), online only: the parsed
   * JSON, or an Error with `.code` (`offline`, the server's error code, or `http_<status>`).
   */
  async fetchJson(path) {
    this.#requireUser();
    // A view's read fails at once offline: the view shows what it kept, it does not wait out a backoff.
    if (!navigator.onLine) throw new SyncError('offline', `GET ${path}: offline`);
    const reply = await this.#onlineGet(path);
    if (!reply) throw new SyncError('offline', `GET ${path}: no answer from the server.`);
    const body = reply.json();
    if (reply.status !== 200 || body === undefined) {
      const { code, message } = reply.error();
      throw new SyncError(code ?? `http_${reply.status}`, message || `GET ${path} answered ${reply.status}`);
    }
    return body;
  }

  /** One GET with the bearer token; a second try covers a token that expired (the first answer renewed it). */
  async #onlineGet(path, options = {}) {
    const attempts = new Attempts();
    const exchange = new Exchange({ auth: await this.#authorities(), send: this.#send, report: () => {} });
    return (
      (await exchange.call(attempts, 'GET', path, options)) ?? (await exchange.call(attempts, 'GET', path, options))
    );
  }

  #registerBackgroundSync() {
    // Background Sync exists only in Chromium; elsewhere start, online, visibility and the timer do it.
    navigator.serviceWorker?.ready
      .then((registration) => registration.sync?.register(BACKGROUND_SYNC_TAG))
      .catch(() => {});
  }

  async discardRejected(id) {
    const { db } = this.#requireUser();
    await outbox.discardRejected(db, id);
    this.#post({ type: 'rejected', detail: { discarded: id } });
    await this.#refreshStatus();
  }

  // -- reads -----------------------------------------------------------------------

  async get(entity, id) {
    return getRecord(this.#requireUser().db, entity, id);
  }

  async all(entity) {
    return allRecords(this.#requireUser().db, entity);
  }

  /** The queued (unsent) mutations, oldest first: what a view shows as "not sent yet". */
  async queued() {
    return outbox.queued(this.#requireUser().db);
  }

  get status() {
    return structuredClone(this.#status);
  }

  // -- live signals ----------------------------------------------------------------

  /** Typing is ephemeral: throttled, and dropped (never queued) while offline. */
  sendTyping(threadId, state) {
    this.#sendFrame({ type: 'typing', thread_id: threadId, state });
  }

  /** Which thread is on screen (null: none), so the server does not notify about it. */
  setViewing(threadId) {
    this.#sendFrame({ type: 'viewing', thread_id: threadId ?? null });
  }

  #sendFrame(frame) {
    if (this.#leading) this.#leading.sendFrame(frame);
    else this.#post({ type: 'frame', frame });
  }

  #signal(frame) {
    this.#emit(frame.type, frame);
    this.#post({ type: 'signal', frame });
  }

  // -- status and events -------------------------------------------------------------

  #changed(detail) {
    this.#emit('changes', detail);
    this.#post({ type: 'changes', detail });
  }

  async #acknowledged(results) {
    const rejected = results.filter((r) => r.status === 'rejected' || r.original_status === 'rejected');
    await this.#refreshStatus();
    if (!rejected.length) return;
    const detail = { mids: rejected.map((r) => r.mid) };
    this.#emit('rejected', detail);
    this.#post({ type: 'rejected', detail });
  }

  /** Leader-side status fields; followers receive them over the channel. */
  #report(patch) {
    if (this.#applyStatus(patch)) this.#post({ type: 'status', patch });
  }

  #applyStatus(patch) {
    const changed = Object.entries(patch).some(([key, value]) => JSON.stringify(this.#status[key]) !== JSON.stringify(value));
    if (!changed) return false;
    Object.assign(this.#status, patch);
    this.#emit('status', this.status);
    return true;
  }

  /** The fields every tab reads from IndexedDB itself: the outbox is the truth for "unsent". */
  async #refreshStatus() {
    const user = this.#user;
    if (!user) return;
    const { db } = user;
    const [summary, rejected, photosPending, lastSyncedAt] = await Promise.all([
      outbox.outboxSummary(db),
      outbox.rejectedEntries(db),
      pendingPhotoCount(db),
      readMeta(db, 'last_synced_at'),
    ]);
    if (this.#user !== user) return;
    this.#applyStatus({
      outboxCount: summary.count,
      oldestUnsentAt: summary.oldestQueuedAt,
      lastSyncedAt: lastSyncedAt ?? null,
      rejected,
      photosPending,
    });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
