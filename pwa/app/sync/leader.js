/**
 * One tab leads sync per origin and user; the others follow.
 *
 * The leader holds a Web Lock for as long as it leads; when its tab closes (or signs out)
 * the browser hands the lock to the next waiting tab, with no heartbeat or timeout to tune.
 * Tabs talk over a BroadcastChannel: followers announce "outbox changed" / "photo queued"
 * so the leader drains, and the leader announces new data and its status so followers
 * re-read and show the same thing.
 */

/** Lead while holding `lockName`: `lead()` runs once the lock is granted and returns its `stop`. */
export function holdLeadership(lockName, lead) {
  const abort = new AbortController();
  let resign;
  const resigned = new Promise((resolve) => {
    resign = resolve;
  });
  navigator.locks
    .request(lockName, { signal: abort.signal }, async () => {
      const stop = await lead();
      await resigned;
      await stop();
    })
    .catch((error) => {
      if (error.name !== 'AbortError') throw error;
    });
  return () => {
    abort.abort(); // still waiting for the lock: stop waiting
    resign(); // leading: stop, then the lock goes to the next tab
  };
}

export class TabChannel {
  #channel;

  constructor(name, onMessage) {
    this.#channel = new BroadcastChannel(name);
    this.#channel.onmessage = (event) => onMessage(event.data);
  }

  post(message) {
    this.#channel.postMessage(message);
  }

  close() {
    this.#channel.close();
  }
}
