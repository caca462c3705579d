// The service rep's home: their cases by SLA urgency. Breached cases stand apart at the top
// (red, with the word, in their own group); open cases follow by the nearest deadline with
// live countdowns; resolved and closed ones last. Filters by status and by account.
import { useState } from 'preact/hooks';
import { html } from '../../html.js';
import { t } from '../../i18n/index.js';
import { now, useTick } from '../../state/clock.js';
import { byId, useRecords } from '../../state/records.js';
import { href } from '../../state/route.js';
import { byUrgency, isBreached, isOpen, slaOf, STATUSES } from './model.js';
import { SlaClock } from './sla.js';
import { BreachedBadge, CaseStatusBadge, TierBadge } from './chips.js';

const ENTITIES = ['case', 'account'];

function matches(kase, status, account) {
  if (account !== 'all' && kase.account_id !== account) return false;
  if (status === 'all') return true;
  if (status === 'open') return isOpen(kase);
  return kase.status === status;
}

function CaseRow({ row }) {
  const { kase, account, sla } = row;
  const breached = isBreached(sla);
  return html`
    <li>
      <a class="row case-row ${breached ? 'case-row--breached' : ''}" href=${href('cases', kase.id)}>
        <span class="row__main">
          <span class="row__title">${kase.number} · ${kase.title}</span>
          <span class="row__meta">${account?.name ?? ''}</span>
          <span class="case-row__clocks">
            <${SlaClock} which="first_response" clock=${sla.firstResponse} />
            <${SlaClock} which="resolution" clock=${sla.resolution} />
          </span>
        </span>
        <span class="row__flags">
          ${breached && html`<${BreachedBadge} />`}
          <${TierBadge} tier=${account?.tier} />
          <${CaseStatusBadge} status=${kase.status} />
        </span>
      </a>
    </li>
  `;
}

function Group({ title, rows, tone }) {
  if (!rows.length) return null;
  return html`
    <h2 class=${tone ? `group-title group-title--${tone}` : 'group-title'}>${title}</h2>
    <ul class="rows" aria-label=${title}>
      ${rows.map((row) => html`<${CaseRow} key=${row.kase.id} row=${row} />`)}
    </ul>
  `;
}

export function CasesScreen() {
  useTick(1000); // the countdowns show seconds
  const { ready, data } = useRecords(ENTITIES);
  const [status, setStatus] = useState('open');
  const [account, setAccount] = useState('all');
  const accounts = byId(data.account);
  const rows = byUrgency(
    (data.case ?? [])
      .filter((kase) => matches(kase, status, account))
      .map((kase) => ({ kase, account: accounts.get(kase.account_id), sla: slaOf(kase, now.value) })),
  );
  const breached = rows.filter((row) => isOpen(row.kase) && isBreached(row.sla));
  const open = rows.filter((row) => isOpen(row.kase) && !isBreached(row.sla));
  const done = rows.filter((row) => !isOpen(row.kase));

  return html`
    <section class="screen cases" aria-labelledby="cases-title">
      <h1 id="cases-title">${t('cases.title')}</h1>
      <div class="filters" role="group" aria-label=${t('cases.filters')}>
        <div class="field">
          <label class="field__label" for="case-status">${t('cases.filter.status')}</label>
          <select class="field__input" id="case-status" value=${status} onChange=${(event) => setStatus(event.currentTarget.value)}>
            <option value="open">${t('cases.filter.open')}</option>
            <option value="all">${t('cases.filter.all')}</option>
            ${STATUSES.map((name) => html`<option value=${name}>${t(`case.status.${name}`)}</option>`)}
          </select>
        </div>
        <div class="field">
          <label class="field__label" for="case-account">${t('cases.filter.account')}</label>
          <select class="field__input" id="case-account" value=${account} onChange=${(event) => setAccount(event.currentTarget.value)}>
            <option value="all">${t('cases.filter.all_accounts')}</option>
            ${[...accounts.values()]
              .sort((a, b) => a.code.localeCompare(b.code))
              .map((row) => html`<option value=${row.id}>${row.code} · ${row.name}</option>`)}
          </select>
        </div>
      </div>
      <p class="muted" aria-live="polite">${ready ? t('cases.count', { count: rows.length }) : t('app.loading')}</p>
      ${ready && !rows.length && html`<p class="notice notice--info">${t('cases.empty')}</p>`}
      <${Group} title=${t('cases.group.breached')} rows=${breached} tone="danger" />
      <${Group} title=${t('cases.group.open')} rows=${open} />
      <${Group} title=${t('cases.group.done')} rows=${done} />
    </section>
  `;
}
