// Advisories waiting on the supervisor: drafts to approve (the overview's one obvious
// action), then approved ones to send. Both are queued mutations, so they work offline; a
// row says "not sent yet" until the server has the step, then moves on by itself.
import { html } from '../../html.js';
import { t } from '../../i18n/index.js';
import { formatDateTime } from '../../i18n/format.js';
import { client } from '../../state/client.js';
import { useQueued } from '../../state/records.js';
import { href } from '../../state/route.js';
import { Badge } from '../../ui/badge.js';
import { useConfirm } from '../../ui/confirm.js';
import { Word } from './sections.js';

function AdvisoryRow({ advisory, accounts, thread, queued, action }) {
  return html`
    <li class="row row--static overview__item" data-advisory=${advisory.number}>
      <span class="row__main">
        <span class="row__title">
          ${thread ? html`<a href=${href('threads', thread.id)} aria-label=${t('overview.advisories.open_thread', { number: advisory.number })}>${advisory.number}</a>` : advisory.number}
          <span class="overview__inline"> · ${t(`severity.${advisory.severity}`)}</span>
        </span>
        <span class="row__meta">${advisory.summary}</span>
        <span class="row__meta num">
          ${t('overview.advisories.facts', { qty: advisory.affected_qty, count: accounts, when: formatDateTime(advisory.created_at) })}
        </span>
      </span>
      <span class="row__flags">
        <${Word} tone=${advisory.status === 'draft' ? 'warn' : 'ok'} label=${t(`overview.advisories.status.${advisory.status}`)} />
        ${queued ? html`<${Badge} status="pending" label=${queued} />` : action}
      </span>
    </li>
  `;
}

export function AdvisoriesCard({ waiting, accountsByAdvisory, threadBySubject }) {
  const approving = new Set(useQueued('advisory.approve').map((entry) => entry.args.id));
  const sending = new Set(useQueued('advisory.send').map((entry) => entry.args.id));
  const row = (advisory, queued, action) => html`
    <${AdvisoryRow}
      key=${advisory.id}
      advisory=${advisory}
      accounts=${accountsByAdvisory.get(advisory.id)?.size ?? 0}
      thread=${threadBySubject.get(advisory.id)}
      queued=${queued}
      action=${action}
    />
  `;
  // Sending notifies customers at once: asked in the app, the act named on its button.
  const [dialog, ask] = useConfirm();
  const send = async (advisory) => {
    const title = t('overview.advisories.send_title', { number: advisory.number });
    const message = t('overview.advisories.send_confirm', { number: advisory.number });
    if (await ask({ title, message, confirm: t('overview.advisories.send') })) client.enqueue('advisory.send', { id: advisory.id });
  };
  return html`
    <section class="card overview__card overview__card--lead" aria-labelledby="ov-advisories">
      <h2 id="ov-advisories">${t('overview.advisories.title')}</h2>
      <h3 id="ov-advisories-drafts">${t('overview.advisories.drafts')}</h3>
      ${!waiting.drafts.length && html`<p class="muted">${t('overview.advisories.none')}</p>`}
      <ul class="rows" aria-labelledby="ov-advisories-drafts">
        ${waiting.drafts.map((advisory) =>
          row(
            advisory,
            approving.has(advisory.id) && t('overview.advisories.approval_queued'),
            html`<button type="button" class="button button--primary" onClick=${() => client.enqueue('advisory.approve', { id: advisory.id })}>
              ${t('overview.advisories.approve')}
            </button>`,
          ),
        )}
      </ul>
      ${waiting.approved.length > 0 &&
      html`
        <h3 id="ov-advisories-approved">${t('overview.advisories.approved')}</h3>
        <ul class="rows" aria-labelledby="ov-advisories-approved">
          ${waiting.approved.map((advisory) =>
            row(
              advisory,
              sending.has(advisory.id) && t('overview.advisories.sending_queued'),
              html`<button type="button" class="button button--secondary" onClick=${() => send(advisory)}>${t('overview.advisories.send')}</button>`,
            ),
          )}
        </ul>
      `}
      ${dialog}
    </section>
  `;
}
