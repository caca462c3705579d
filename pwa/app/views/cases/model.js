// What the case screens compute from a case: its two SLA clocks, how urgent it is, and which
// status it may move to next (the server's CASE_TRANSITIONS, so only allowed moves are offered).

export const OPEN_STATUSES = ['new', 'triaged', 'in_progress', 'awaiting_customer'];
export const STATUSES = [...OPEN_STATUSES, 'resolved', 'closed'];

export const NEXT_STATUSES = {
  new: ['triaged', 'in_progress', 'resolved'],
  triaged: ['in_progress', 'awaiting_customer', 'resolved'],
  in_progress: ['awaiting_customer', 'resolved'],
  awaiting_customer: ['in_progress', 'resolved'],
  resolved: ['closed', 'in_progress'],
  closed: [],
};

export const isOpen = (kase) => OPEN_STATUSES.includes(kase.status);

const time = (value) => (value ? Date.parse(value) : null);

/**
 * One SLA clock: `{state, due, at, left}` where state is 'running' (left ≥ 0), 'breached'
 * (running past due, or flagged by the server's sweep), 'met', 'late' (done after due) or
 * 'none' (no due time). `left` is the time to the due moment (negative once past).
 */
function clock(due, doneAt, flagged, now, open) {
  const dueMs = time(due);
  const doneMs = time(doneAt);
  if (doneMs !== null) return { state: flagged || (dueMs !== null && doneMs > dueMs) ? 'late' : 'met', due, at: doneAt, left: null };
  if (dueMs === null) return { state: 'none', due, at: null, left: null };
  const left = dueMs - now;
  if (!open) return { state: flagged ? 'late' : 'none', due, at: null, left: null };
  return { state: left < 0 || flagged ? 'breached' : 'running', due, at: null, left };
}

export function slaOf(kase, now) {
  const open = isOpen(kase);
  const flags = kase.flags ?? [];
  return {
    firstResponse: clock(kase.sla_first_response_due, kase.first_response_at, flags.includes('first_response_breached'), now, open),
    resolution: clock(kase.sla_resolution_due, kase.resolved_at, flags.includes('resolution_breached'), now, open),
  };
}

export const isBreached = (sla) => sla.firstResponse.state === 'breached' || sla.resolution.state === 'breached';

// The clock that runs out next: a missing first response is due before the resolution.
export function nextDeadline(sla) {
  const running = [sla.firstResponse, sla.resolution].filter((c) => c.left !== null);
  return running.length ? Math.min(...running.map((c) => c.left)) : null;
}

/**
 * Urgency: open cases before done ones; among open, breached first (the longest overdue on
 * top), then the nearest deadline, VIP before key before standard on a tie; done cases by
 * when they were resolved, newest first.
 */
const TIER_RANK = { vip: 0, key: 1, standard: 2 };

export function byUrgency(rows) {
  return [...rows].sort((a, b) => {
    const openA = isOpen(a.kase);
    const openB = isOpen(b.kase);
    if (openA !== openB) return openA ? -1 : 1;
    if (!openA) return (time(b.kase.resolved_at ?? b.kase.updated_at) ?? 0) - (time(a.kase.resolved_at ?? a.kase.updated_at) ?? 0);
    const breachedA = isBreached(a.sla);
    const breachedB = isBreached(b.sla);
    if (breachedA !== breachedB) return breachedA ? -1 : 1;
    const leftA = nextDeadline(a.sla) ?? Infinity;
    const leftB = nextDeadline(b.sla) ?? Infinity;
    if (leftA !== leftB) return leftA - leftB;
    return (TIER_RANK[a.account?.tier] ?? 3) - (TIER_RANK[b.account?.tier] ?? 3) || a.kase.number.localeCompare(b.kase.number);
  });
}
