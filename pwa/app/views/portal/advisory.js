// One advisory as my account received it: when it was sent, my answer (Acknowledge, then
// Accept or Decline; each queued like any change, so it works offline), my colleagues'
// answers, and our cases it speaks to. The server keeps the advisory's wording for staff;
// the cases carry what the customer is told.
import { html } from '../../html.js';
import { t } from '../../i18n/index.js';
import { formatDateTime } from '../../i18n/format.js';
import { client } from '../../state/client.js';
import { byId, useQueued, useRecords } from '../../state/records.js';
import { href } from '../../state/route.js';
import { sync, user } from '../../state/session.js';
import { Badge } from '../../ui/badge.js';
import { ANSWER_TONES, CASE_TONES, advisoriesOf, answersFrom, myContact } from './model.js';
import { ScreenLoading } from '../../ui/loading.js';

const ENTITIES = ['contact', 'user', 'case', 'advisory', 'advisory_recipient'];
const ANSWERED = { acknowledge: 'acknowledged', accept: 'accepted', decline: 'declined' };
const BUTTONS = { acknowledge: 'button--secondary', accept: 'button--primary', decline: 'button--quiet' };

function Answer({ recipient }) {
  const queued = useQueued('advisory.respond').filter((entry) => entry.args.recipient_id === recipient.id);
  const last = queued[queued.length - 1];
  // Until the server has it, the answer given on this device is the one that counts here.
  const state = last ? ANSWERED[last.args.response] : recipient.state;
  const open = answersFrom(state);
  const answer = (response) => client.enqueue('advisory.respond', { recipient_id: recipient.id, response });

  return html`
    <section class="portal__answer" aria-labelledby="portal-answer">
      <h2 id="portal-answer">${t('portal.answer.title')}</h2>
      <p class="portal__state" role="status">
        <${Badge} tone=${ANSWER_TONES[state]} label=${t(`portal.answer.${state}`)} />
        ${last
          ? html`<${Badge} status="pending" label=${sync.value.online ? t('queue.sending') : t('queue.not_sent')} />`
          : recipient.responded_at && html`<span class="muted">${formatDateTime(recipient.responded_at)}</span>`}
      </p>
      ${open.length > 0 &&
      html`<p>${t(`portal.answer.hint.${state}`)}</p>
        <div class="actions portal__buttons">
          ${open.map((response) => html`<button type="button" class="button ${BUTTONS[response]}" onClick=${() => answer(response)}>${t(`portal.answer.${response}`)}</button>`)}
        </div>`}
    </section>
  `;
}

export function AdvisoryScreen({ advisoryId }) {
  const { ready, data } = useRecords(ENTITIES);
  if (!ready) return html`<${ScreenLoading} />`;
  const me = byId(data.user).get(user.value.id);
  const entry = advisoriesOf(data, myContact(data.contact, me)).find((row) => row.advisory.id === advisoryId);
  if (!entry) {
    return html`<section class="screen"><a class="back" href=${href('portal')}>${t('portal.back')}</a><p class="notice notice--warn">${t('portal.advisory.missing')}</p></section>`;
  }
  const { advisory, recipients, mine } = entry;
  const contacts = byId(data.contact);
  const others = recipients.filter((row) => row !== mine);
  const cases = (data.case ?? []).filter((row) => row.advisory_id === advisory.id);
  const sentAt = (mine ?? recipients[0])?.sent_at;

  return html`
    <section class="screen portal">
      <a class="back" href=${href('portal')}>${t('portal.back')}</a>
      <header class="portal__head">
        <span class="thread__kind">${t('subject.advisory')}</span>
        <h1>${advisory.number}</h1>
        <${Badge} tone=${advisory.severity === 'minor' ? 'warn' : 'danger'} label=${t(`severity.${advisory.severity}`)} />
        <${Badge} tone=${advisory.status === 'sent' ? 'info' : 'plain'} label=${t(`portal.advisory.status.${advisory.status}`)} />
      </header>
      ${sentAt && html`<p class="muted">${t('portal.advisory.sent_at', { date: formatDateTime(sentAt) })}</p>`}
      <p>${t('portal.advisory.intro')}</p>

      ${mine ? html`<${Answer} recipient=${mine} />` : html`<p class="notice notice--info">${t('portal.answer.not_yours')}</p>`}

      ${others.length > 0 &&
      html`<h2 id="portal-colleagues">${t('portal.answer.colleagues')}</h2>
        <ul class="rows" aria-labelledby="portal-colleagues">
          ${others.map(
            (row) => html`<li class="row" key=${row.id}>
              <span class="row__main"><span class="row__title">${contacts.get(row.contact_id)?.name ?? t('thread.someone')}</span></span>
              <span class="row__flags"><${Badge} tone=${ANSWER_TONES[row.state]} label=${t(`portal.answer.${row.state}`)} /></span>
            </li>`,
          )}
        </ul>`}

      <h2 id="portal-advisory-cases">${t('portal.advisory.cases')}</h2>
      ${cases.length
        ? html`<ul class="rows" aria-labelledby="portal-advisory-cases">
            ${cases.map(
              (row) => html`<li key=${row.id}>
                <a class="row" href=${href('portal', 'case', row.id)}>
                  <span class="row__main"><span class="row__title">${row.number} · ${row.title}</span></span>
                  <span class="row__flags"><${Badge} tone=${CASE_TONES[row.status]} label=${t(`portal.case.status.${row.status}`)} /></span>
                </a>
              </li>`,
            )}
          </ul>`
        : html`<p class="muted">${t('portal.advisory.no_cases')}</p>`}
    </section>
  `;
}
