// The current time as a signal, so "synced 3 min ago" and outbox ages stay true on screen.
import { signal } from '@preact/signals';

const TICK_MS = 15_000;

export const now = signal(Date.now());
setInterval(() => {
  now.value = Date.now();
}, TICK_MS);
