// What the overview shows, derived from the read model's rows: pure functions, no view, so
// each is computed once per change batch (useMemo on the rows) rather than per render.

const CASE_DONE = new Set(['resolved', 'closed']);
// A due time is "at risk" in the last quarter of its SLA window (2 h VIP: the last 30 min).
const AT_RISK_SHARE = 0.25;
// Resolved cases that missed their SLA: the newest few, as a reminder, not an archive.
const LATE_SHOWN = 5;

const time = (value) => (value ? Date.parse(value) : NaN);
const newestFirst = (field) => (a, b) => (time(b[field]) || 0) - (time(a[field]) || 0);

export const openNonconformances = (ncs = []) => ncs.filter((nc) => nc.status !== 'closed').sort(newestFirst('created_at'));

export const batchesOnHold = (batches = []) => batches.filter((batch) => batch.status === 'on_hold').sort(newestFirst('updated_at'));

export const openWatches = (watches = []) => watches.filter((watch) => watch.status === 'open').sort(newestFirst('created_at'));

/** Drafts wait for approval; approved ones wait to be sent. */
export function advisoriesWaiting(advisories = []) {
  const sorted = [...advisories].sort(newestFirst('created_at'));
  return {
    drafts: sorted.filter((advisory) => advisory.status === 'draft'),
    approved: sorted.filter((advisory) => advisory.status === 'approved'),
  };
}

/** The SLA deadline a case still owes: the first response until it is given, then the resolution. */
function pendingDeadline(kase) {
  if (!kase.first_response_at && kase.sla_first_response_due) {
    const firstDue = time(kase.sla_first_response_due);
    const resolutionDue = time(kase.sla_resolution_due);
    // A first response that is still due may be later than a resolution already missed.
    if (!(resolutionDue < firstDue)) return { kind: 'first_response', due: firstDue };
  }
  return kase.sla_resolution_due ? { kind: 'resolution', due: time(kase.sla_resolution_due) } : null;
}

function lateBy(kase) {
  const firstLate = kase.first_response_at && time(kase.first_response_at) > time(kase.sla_first_response_due);
  const resolvedLate = kase.resolved_at && time(kase.resolved_at) > time(kase.sla_resolution_due);
  return firstLate || resolvedLate;
}

/**
 * Open cases past a deadline (`breached`) or in its last quarter (`atRisk`), soonest first;
 * and the newest resolved cases that missed one (`resolvedLate`).
 */
export function slaWatch(cases = [], now = Date.now()) {
  const breached = [];
  const atRisk = [];
  const resolvedLate = [];
  for (const kase of cases) {
    if (CASE_DONE.has(kase.status)) {
      if (lateBy(kase)) resolvedLate.push(kase);
      continue;
    }
    const deadline = pendingDeadline(kase);
    if (!deadline || Number.isNaN(deadline.due)) continue;
    const entry = { kase, ...deadline };
    if (deadline.due < now) breached.push(entry);
    else if (deadline.due - now <= AT_RISK_SHARE * (deadline.due - time(kase.created_at))) atRisk.push(entry);
  }
  const soonest = (a, b) => a.due - b.due;
  return {
    breached: breached.sort(soonest),
    atRisk: atRisk.sort(soonest),
    resolvedLate: resolvedLate.sort(newestFirst('resolved_at')).slice(0, LATE_SHOWN),
  };
}

/**
 * The closing gate of each nonconformance a CAPA answers: it may close only when the
 * CAPA's effectiveness check passed and every case linked to it is resolved.
 */
export function capaGates(capas = [], ncs = [], cases = []) {
  const ncById = new Map(ncs.map((nc) => [nc.id, nc]));
  const casesByNc = new Map();
  for (const kase of cases) if (kase.nc_id) casesByNc.set(kase.nc_id, [...(casesByNc.get(kase.nc_id) ?? []), kase]);
  const rank = (capa) => (capa.status === 'closed' ? 1 : 0);
  return [...capas]
    .sort((a, b) => rank(a) - rank(b) || (time(b.updated_at) || 0) - (time(a.updated_at) || 0))
    .map((capa) => {
      const effectiveness = capa.effectiveness?.result ?? 'pending';
      const gates = (capa.nc_ids ?? []).map((ncId) => {
        const linked = casesByNc.get(ncId) ?? [];
        const resolved = linked.filter((kase) => CASE_DONE.has(kase.status)).length;
        const nc = ncById.get(ncId);
        return {
          nc,
          ncId,
          resolved,
          total: linked.length,
          open: effectiveness === 'passed' && resolved === linked.length,
        };
      });
      return { capa, effectiveness, gates };
    });
}

/** Recipients per advisory: how many accounts an advisory speaks to. */
export function accountsByAdvisory(recipients = []) {
  const accounts = new Map();
  for (const recipient of recipients) {
    const set = accounts.get(recipient.advisory_id) ?? new Set();
    set.add(recipient.account_id);
    accounts.set(recipient.advisory_id, set);
  }
  return accounts;
}
