// The advisory that covers the case's lot, and each recipient's answer: who was told, when,
// and whether they acknowledged, accepted or declined. A rep sees their own accounts' recipients.
import { html } from '../../html.js';
import { t } from '../../i18n/index.js';
import { formatDateTime } from '../../i18n/format.js';
import { RecipientBadge } from './chips.js';

export function AdvisoryPanel({ advisory, recipients, contacts }) {
  if (!advisory) return null;
  const contactOf = new Map(contacts.map((row) => [row.id, row]));
  const mine = recipients.filter((row) => row.advisory_id === advisory.id);
  return html`
    <section class="panel" aria-labelledby="advisory-title">
      <h2 id="advisory-title">${t('advisory.title', { number: advisory.number })}</h2>
      <p class="panel__lead">
        <span class="chip chip--${advisory.status === 'sent' ? 'warn' : 'plain'}">${t(`advisory.status.${advisory.status}`)}</span>
        <span class="num">${t('advisory.facts', { severity: t(`severity.${advisory.severity}`), qty: advisory.affected_qty })}</span>
      </p>
      ${advisory.summary && html`<p>${advisory.summary}</p>`}
      <h3>${t('advisory.recipients')}</h3>
      ${!mine.length && html`<p class="muted">${t('advisory.no_recipients')}</p>`}
      <ul class="rows">
        ${mine.map((recipient) => {
          const contact = contactOf.get(recipient.contact_id);
          const name = !contact ? t('thread.someone') : contact.pseudonymized_at ? t('contact.erased') : contact.name;
          return html`
            <li key=${recipient.id} class="row row--static">
              <span class="row__main">
                <span class="row__title">${name}</span>
                <span class="row__meta">
                  ${[recipient.sent_at && t('advisory.sent_at', { at: formatDateTime(recipient.sent_at) }), recipient.responded_at && t('advisory.responded_at', { at: formatDateTime(recipient.responded_at) })]
                    .filter(Boolean)
                    .join(' · ')}
                </span>
              </span>
              <${RecipientBadge} state=${recipient.state} />
            </li>
          `;
        })}
      </ul>
    </section>
  `;
}
