/**
 * The live tail: the change log over a WebSocket, from the stored cursor (realtime.md).
 *
 * It is not a second protocol: `changes` frames go through the same `applyChanges` as
 * pulled pages (changes and cursor in one transaction), so a frame lost with a dropped
 * connection is simply sent again after reconnecting from the stored cursor. It never
 * touches the outbox: a frame carries no last_mid, pushing stays the engine's job.
 *
 * Reconnects: at once on `online` and a visible page, after a server's clean close (1001
 * going away, 4008 too slow) when the connection had been stable; otherwise full-jitter
 * backoff capped at 30 s, whose count resets only after a connection that stayed up — a
 * server that accepts and then drops at once must not be hammered. Close 4401 means the
 * session ended: stop, do not loop. Each connection gets a fresh single-use ticket.
 *
 * Typing, viewing and presence are ephemeral: sent while connected, never queued offline.
 */
import { backoffDelay } from './backoff.js';
import { readMeta } from './db.js';
import { SyncStopped } from './errors.js';
import { SCHEMA_VERSION } from './outbox.js';
import { applyChanges, areChanges, describeChanges } from './readmodel.js';
import { socketUrl } from './transport.js';

const TICKET_PATH = '/api/v1/ws/ticket';
const SOCKET_PATH = '/api/v1/ws';
const RECONNECT_AT_ONCE = new Set([1001, 4008]);
const CLOSE_SESSION_ENDED = 4401;
const ACK_EVERY_CHANGES = 20;
const ACK_INTERVAL_MS = 2000;
// Handshakes that are rejected afterwards still fire `open`: only time up proves a connection.
const STABLE_AFTER_MS = 10_000;
// A typing "start" is refreshed at most this often (the server expires it after 12 s).
const TYPING_REFRESH_MS = 8_000;

export class LiveTail {
  #socket = null;
  #connecting = false;
  #stopped = true;
  #failures = 0;
  #retryTimer = null;
  // The ack timer of each socket, so a late close of an old socket never stops the new one's.
  #ackTimers = new WeakMap();
  #openedAt = 0;
  #cursor = null;
  #unacked = 0;
  #frames = Promise.resolve();
  #viewing = null;
  #presence = document.visibilityState === 'visible' ? 'active' : 'idle';
  #typingSentAt = new Map();

  /** `hooks`: connected(bool), changed(detail), signal(frame), resetRequired() → Promise, sessionEnded(error). */
  constructor({ db, clientId, auth, send, baseUrl, hooks }) {
    // The transport is `request`: `send(frame)` below is the socket's.
    Object.assign(this, { db, clientId, auth, request: send, baseUrl, hooks });
  }

  start() {
    this.#stopped = false;
    this.#connect();
  }

  stop() {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#socket?.close(1000, 'client stopped');
  }

  /** A better moment than the backoff timer: the network is back, the page is visible. */
  reconnectNow() {
    if (this.#stopped || this.#socket || this.#connecting) return;
    clearTimeout(this.#retryTimer);
    this.#connect();
  }

  /** A typing, viewing or presence frame; viewing and presence are repeated after a reconnect. */
  sendFrame(frame) {
    if (frame.type === 'viewing') this.#viewing = frame.thread_id;
    if (frame.type === 'presence') this.#presence = frame.state;
    if (frame.type === 'typing' && !this.#typingDue(frame)) return;
    this.#transmit(frame);
  }

  #typingDue({ thread_id: threadId, state }) {
    const last = this.#typingSentAt.get(threadId);
    if (state === 'stop') {
      this.#typingSentAt.delete(threadId);
      return last !== undefined; // nobody was told it started
    }
    if (last !== undefined && Date.now() - last < TYPING_REFRESH_MS) return false;
    if (this.#socket?.readyState === WebSocket.OPEN) this.#typingSentAt.set(threadId, Date.now());
    return true;
  }

  #transmit(frame) {
    if (this.#socket?.readyState === WebSocket.OPEN) this.#socket.send(JSON.stringify(frame));
  }

  async #connect() {
    if (this.#stopped || this.#socket || this.#connecting) return;
    this.#connecting = true;
    let ticket;
    try {
      ticket = await this.#ticket();
    } catch (error) {
      this.#connecting = false;
      if (error instanceof SyncStopped) return; // the engine reports ended sessions
      this.#scheduleRetry(false);
      return;
    }
    this.#connecting = false;
    if (this.#stopped) return;
    const socket = new WebSocket(`${socketUrl(this.baseUrl, SOCKET_PATH)}?ticket=${encodeURIComponent(ticket)}`);
    this.#socket = socket;
    socket.onopen = () => this.#onOpen(socket);
    socket.onmessage = (event) => {
      // Frames are applied one after another, in the order they came.
      this.#frames = this.#frames.then(() => this.#onFrame(socket, event.data)).catch((error) => {
        console.warn('live tail: a frame could not be applied; reconnecting from the stored cursor', error);
        socket.close(1000, 'reconnect');
      });
    };
    socket.onclose = (event) => this.#onClose(socket, event);
  }

  async #ticket() {
    let token = await this.auth.token();
    let reply = await this.request('POST', TICKET_PATH, { token });
    if (reply.status === 401) {
      await this.auth.renew(token);
      token = await this.auth.token();
      reply = await this.request('POST', TICKET_PATH, { token });
    }
    const ticket = reply.status === 201 ? reply.json()?.ticket : undefined;
    if (typeof ticket !== 'string') throw new Error(`ticket answered ${reply.status}`);
    return ticket;
  }

  async #onOpen(socket) {
    this.#openedAt = Date.now();
    this.#unacked = 0;
    const cursor = await readMeta(this.db, 'cursor');
    if (socket !== this.#socket) return;
    socket.send(JSON.stringify({ type: 'hello', client_id: this.clientId, cursor, schema_version: SCHEMA_VERSION }));
    if (this.#viewing) socket.send(JSON.stringify({ type: 'viewing', thread_id: this.#viewing }));
    socket.send(JSON.stringify({ type: 'presence', state: this.#presence }));
    this.#ackTimers.set(socket, setInterval(() => this.#ack(socket), ACK_INTERVAL_MS));
    this.hooks.connected(true);
  }

  async #onFrame(socket, raw) {
    if (socket !== this.#socket) return;
    const frame = JSON.parse(raw);
    if (frame.type === 'changes') {
      if (typeof frame.cursor !== 'string' || !areChanges(frame.changes)) throw new Error('malformed changes frame');
      await applyChanges(this.db, frame.changes, frame.cursor);
      this.#cursor = frame.cursor;
      this.#unacked += frame.changes.length;
      this.hooks.changed({ ...describeChanges(frame.changes), reset: false });
      if (this.#unacked >= ACK_EVERY_CHANGES) this.#ack(socket);
    } else if (frame.type === 'reset_required') {
      // The pull rebuilds the read model (keeping the outbox); then we follow from its cursor.
      this.#socket = null;
      this.hooks.connected(false);
      socket.close(1000, 'reset');
      await this.hooks.resetRequired();
      this.#connect();
    } else if (frame.type === 'typing' || frame.type === 'presence') {
      this.hooks.signal(frame);
    } else if (frame.type === 'error') {
      console.warn('live tail: the server says', frame.error);
    }
  }

  #ack(socket) {
    if (this.#unacked && this.#cursor && socket.readyState === WebSocket.OPEN) {
      this.#unacked = 0;
      socket.send(JSON.stringify({ type: 'ack', cursor: this.#cursor }));
    }
  }

  #onClose(socket, event) {
    clearInterval(this.#ackTimers.get(socket));
    if (socket !== this.#socket) return;
    this.#socket = null;
    this.hooks.connected(false);
    this.#typingSentAt.clear();
    if (this.#stopped) return;
    if (event.code === CLOSE_SESSION_ENDED) {
      this.#stopped = true;
      this.hooks.sessionEnded(new SyncStopped('session_ended', 'Your session has ended; sign in again.'));
      return;
    }
    const stable = this.#openedAt && Date.now() - this.#openedAt >= STABLE_AFTER_MS;
    this.#openedAt = 0;
    if (stable) this.#failures = 0;
    this.#scheduleRetry(RECONNECT_AT_ONCE.has(event.code) && stable);
  }

  #scheduleRetry(atOnce) {
    this.#failures += 1;
    // Offline, the `online` event brings us back; no timer needed.
    if (!navigator.onLine) return;
    this.#retryTimer = setTimeout(() => this.#connect(), atOnce ? 0 : backoffDelay(this.#failures));
  }
}
