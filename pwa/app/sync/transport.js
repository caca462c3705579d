/**
 * The one place that calls `fetch`. Everything above it sees a `Reply` (status, headers,
 * body text) or a `network` SyncError: "no answer arrived" is the only failure it reports,
 * so the engine's rules about what counts as an acknowledgement live in the engine.
 */
import { SyncError } from './errors.js';

export class Reply {
  /** `body` is a Blob for a successful request made with `as: 'blob'`, else null. */
  constructor(status, headers, text, body = null) {
    this.status = status;
    this.headers = headers;
    this.text = text;
    this.body = body;
  }

  /** The parsed JSON body, or undefined when it is not JSON (a captive portal, a proxy page). */
  json() {
    try {
      return JSON.parse(this.text);
    } catch {
      return undefined;
    }
  }

  /** `{code, details, message}` of the protocol's error body; code null when it is not one. */
  error() {
    const error = this.json()?.error;
    if (!error || typeof error.code !== 'string') return { code: null, details: {}, message: '' };
    const details = error.details && typeof error.details === 'object' ? error.details : {};
    return { code: error.code, details, message: String(error.message ?? '') };
  }
}

/**
 * `send(method, path, {json, body, headers, token, as})` → Reply (`as: 'blob'` for photos). `baseUrl` is '' for the
 * PWA's own origin. Requests skip the HTTP cache: a cached sync answer would be a lie.
 */
export function createTransport(baseUrl = '') {
  return async function send(method, path, { json, body, headers = {}, token, as = 'text' } = {}) {
    const init = { method, headers: { ...headers }, cache: 'no-store', credentials: 'omit' };
    if (token) init.headers.Authorization = `Bearer ${token}`;
    if (json !== undefined) {
      init.body = JSON.stringify(json);
      init.headers['Content-Type'] = 'application/json';
    } else if (body !== undefined) {
      init.body = body;
    }
    try {
      const response = await fetch(baseUrl + path, init);
      // The body is part of the answer: a connection lost while reading it is no answer.
      if (as === 'blob' && response.ok) return new Reply(response.status, response.headers, '', await response.blob());
      return new Reply(response.status, response.headers, await response.text());
    } catch (error) {
      throw new SyncError('network', `${method} ${path}: ${error.message}`);
    }
  };
}

/** The WebSocket URL for `path` on the same server as `baseUrl` (or this page). */
export function socketUrl(baseUrl, path) {
  const url = new URL(baseUrl + path, location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}
