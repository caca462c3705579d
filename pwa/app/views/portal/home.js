// The portal's start: the customer's account, the advisories it received (those still
// waiting for my answer say so), its cases, and the one action a customer comes for —
// filing a complaint.
import { html } from '../../html.js';
import { t } from '../../i18n/index.js';
import { formatDate, formatDateTime } from '../../i18n/format.js';
import { byId, useQueued, useRecords } from '../../state/records.js';
import { href } from '../../state/route.js';
import { sync, user } from '../../state/session.js';
import { Badge } from '../../ui/badge.js';
import { ANSWER_TONES, CASE_TONES, advisoriesOf, myContact, newestFirst } from './model.js';
import { ScreenLoading } from '../../ui/loading.js';

const ENTITIES = ['account', 'contact', 'user', 'case', 'advisory', 'advisory_recipient'];

function AdvisoryRow({ advisory, recipients, mine }) {
  const sentAt = (mine ?? recipients[0])?.sent_at;
  return html`
    <li>
      <a class="row" href=${href('portal', 'advisory', advisory.id)}>
        <span class="row__main">
          <span class="row__title">${advisory.number}</span>
          <span class="row__meta">${sentAt ? t('portal.advisory.sent_at', { date: formatDateTime(sentAt) }) : ''}</span>
        </span>
        <span class="row__flags">
          <${Badge} tone=${advisory.severity === 'minor' ? 'warn' : 'danger'} label=${t(`severity.${advisory.severity}`)} />
          ${mine && html`<${Badge} tone=${ANSWER_TONES[mine.state]} label=${t(`portal.answer.${mine.state}`)} />`}
        </span>
      </a>
    </li>
  `;
}

function CaseRow({ row }) {
  return html`
    <li>
      <a class="row" href=${href('portal', 'case', row.id)}>
        <span class="row__main">
          <span class="row__title">${row.number} · ${row.title}</span>
          <span class="row__meta">
            ${t('portal.case.opened', { date: formatDate(row.created_at) })}${row.lot_no_reported ? html` · <span class="num">${t('portal.case.lot', { lot: row.lot_no_reported })}</span>` : ''}
          </span>
        </span>
        <span class="row__flags"><${Badge} tone=${CASE_TONES[row.status]} label=${t(`portal.case.status.${row.status}`)} /></span>
      </a>
    </li>
  `;
}

// A complaint filed on this device that the server has not taken yet.
function QueuedCaseRow({ entry, online }) {
  return html`
    <li>
      <a class="row" href=${href('portal', 'case', entry.args.id)}>
        <span class="row__main">
          <span class="row__title">${entry.args.title}</span>
          <span class="row__meta">${entry.args.lot_no ? t('portal.case.lot', { lot: entry.args.lot_no }) : ''}</span>
        </span>
        <span class="row__flags"><${Badge} status="pending" label=${online ? t('queue.sending') : t('queue.not_sent')} /></span>
      </a>
    </li>
  `;
}

export function PortalHome() {
  const { ready, data } = useRecords(ENTITIES);
  const queued = useQueued('case.open');
  if (!ready) return html`<${ScreenLoading} />`;
  const me = byId(data.user).get(user.value.id);
  const [account] = data.account ?? [];
  const advisories = advisoriesOf(data, myContact(data.contact, me));
  const cases = newestFirst(data.case);
  const known = new Set(cases.map((row) => row.id));
  const waiting = queued.filter((entry) => !known.has(entry.args.id));

  return html`
    <section class="screen portal">
      <div class="screen__head">
        <div>
          <h1>${account?.name ?? t('nav.portal')}</h1>
          <p class="muted">${t('portal.signed_in_as', { name: me?.display_name ?? user.value.display_name ?? '' })}</p>
        </div>
        <a class="button button--primary" href=${href('portal', 'complaint')}>${t('portal.complaint.start')}</a>
      </div>

      <h2 id="portal-advisories">${t('portal.advisories')}</h2>
      ${advisories.length
        ? html`<ul class="rows" aria-labelledby="portal-advisories">
            ${advisories.map((entry) => html`<${AdvisoryRow} key=${entry.advisory.id} ...${entry} />`)}
          </ul>`
        : html`<p class="notice notice--info">${t('portal.advisories.none')}</p>`}

      <h2 id="portal-cases">${t('portal.cases')}</h2>
      ${cases.length || waiting.length
        ? html`<ul class="rows" aria-labelledby="portal-cases">
            ${waiting.map((entry) => html`<${QueuedCaseRow} key=${entry.id} entry=${entry} online=${sync.value.online} />`)}
            ${cases.map((row) => html`<${CaseRow} key=${row.id} row=${row} />`)}
          </ul>`
        : html`<p class="notice notice--info">${t('portal.cases.none')}</p>`}
    </section>
  `;
}
