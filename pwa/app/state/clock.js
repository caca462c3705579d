// The current time as a signal, so "synced 3 min ago", outbox ages and SLA countdowns stay
// true on screen. It ticks every 15 s; a screen that shows seconds asks for a faster tick
// while it is mounted (`useTick`), and the pace falls back when it goes — so screens that
// only show minutes are not woken every second. Hidden pages are not woken at all beyond
// the browser's own timer throttling.
import { signal } from '@preact/signals';
import { useEffect } from 'preact/hooks';

const IDLE_MS = 15_000;

export const now = signal(Date.now());

const wanted = new Map(); // request token → interval asked for
let timer = null;
let pace = null;

function schedule() {
  const next = Math.min(IDLE_MS, ...wanted.values());
  if (next === pace) return;
  clearInterval(timer);
  pace = next;
  now.value = Date.now();
  timer = setInterval(() => {
    now.value = Date.now();
  }, pace);
}
schedule();

/** Tick at least every `ms` while the calling component is mounted. */
export function useTick(ms) {
  useEffect(() => {
    const token = Symbol('tick');
    wanted.set(token, ms);
    schedule();
    return () => {
      wanted.delete(token);
      schedule();
    };
  }, [ms]);
}
