/** Errors carry a machine-readable `code`, so views switch on codes rather than on wording. */
export class SyncError extends Error {
  constructor(code, message, extra = {}) {
    super(message);
    this.name = 'SyncError';
    this.code = code;
    Object.assign(this, extra);
  }
}

/**
 * Conditions that waiting cannot heal (another user's device, an app too old, a server that
 * lost acknowledged work, a session that ended): sync stops loudly, the outbox untouched.
 */
export class SyncStopped extends SyncError {
  constructor(code, message, extra = {}) {
    super(code, message, extra);
    this.name = 'SyncStopped';
  }
}
