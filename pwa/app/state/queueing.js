// A form that queues one change: its busy flag and its error, and `queue(name, args, then)`,
// which puts the change in the outbox (works offline) and then moves on, or says in the
// reader's language why the change could not be queued.
import { useState } from 'preact/hooks';
import { errorText } from '../i18n/errors.js';
import { client } from './client.js';

export function useQueueing() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  async function queue(name, args, then) {
    setBusy(true);
    setError(null);
    try {
      await client.enqueue(name, args);
      then();
    } catch (failure) {
      setError(errorText(failure));
      setBusy(false);
    }
  }

  return { busy, error, setError, queue };
}
