// The case's remedies as the entitlement rules priced them. A remedy above its rule's cap
// waits for the rule's named approver, who approves or declines it here; an approved remedy
// is marked carried out once the replacement shipped or the credit note went out.
import { html } from '../../html.js';
import { t } from '../../i18n/index.js';
import { formatMoney } from '../../i18n/format.js';
import { client } from '../../state/client.js';
import { sync, user } from '../../state/session.js';
import { useConfirm } from '../../ui/confirm.js';
import { RemedyBadge } from './chips.js';

const CASE_STAFF = new Set(['service_rep', 'supervisor', 'admin']);

function Remedy({ remedy, approverName, queued, ask }) {
  const me = user.value;
  const mayDecide = remedy.status === 'proposed' && (me.role === 'admin' || remedy.details?.approver_id === me.id);
  const mayExecute = remedy.status === 'approved' && CASE_STAFF.has(me.role);
  const waiting = queued.find((entry) => entry.args.id === remedy.id);
  const amount = formatMoney(remedy.amount, remedy.currency);
  const label = t(`remedy.kind.${remedy.kind}`, { count: remedy.qty });

  async function decide(decision) {
    const confirmed = await ask({
      title: t(`remedy.${decision}.title`, { number: remedy.number }),
      message: t(`remedy.${decision}.message`, { remedy: label, amount }),
      confirm: t(`remedy.${decision}`),
    });
    if (confirmed) await client.enqueue('remedy.decide', { id: remedy.id, decision });
  }

  return html`
    <li class="row row--static remedy">
      <span class="row__main">
        <span class="row__title">${remedy.number} · ${label}</span>
        <span class="row__meta num">
          <strong class="money">${amount}</strong>${remedy.details?.rule ? ` · ${t('remedy.rule', { rule: remedy.details.rule })}` : ''}
        </span>
        ${remedy.status === 'proposed' &&
        !mayDecide &&
        html`<span class="row__meta">${t('remedy.waiting_for', { name: approverName ?? t('remedy.an_approver') })}</span>`}
      </span>
      <span class="row__flags">
        ${waiting
          ? html`<span class="chip chip--warn">${sync.value.online ? t('queue.sending') : t('queue.not_sent')}</span>`
          : html`
              <${RemedyBadge} status=${remedy.status} />
              ${mayDecide &&
              html`
                <button class="button button--primary" type="button" onClick=${() => decide('approve')}>${t('remedy.approve')}</button>
                <button class="button button--secondary" type="button" onClick=${() => decide('reject')}>${t('remedy.reject')}</button>
              `}
              ${mayExecute &&
              html`<button class="button button--secondary" type="button" onClick=${() => client.enqueue('remedy.execute', { id: remedy.id })}>
                ${t('remedy.execute')}
              </button>`}
            `}
      </span>
    </li>
  `;
}

export function RemediesPanel({ remedies, people, queued }) {
  const [dialog, ask] = useConfirm();
  return html`
    <section class="panel" aria-labelledby="remedies-title">
      <h2 id="remedies-title">${t('remedy.title')}</h2>
      ${!remedies.length && html`<p class="muted">${t('remedy.none')}</p>`}
      <ul class="rows">
        ${remedies.map(
          (remedy) => html`<${Remedy}
            key=${remedy.id}
            remedy=${remedy}
            approverName=${people.get(remedy.details?.approver_id)?.display_name}
            queued=${queued}
            ask=${ask}
          />`,
        )}
      </ul>
      ${dialog}
    </section>
  `;
}
