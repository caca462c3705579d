// Who the case is with: the account (tier, region, account manager, SLA policy), the contact
// (consents shown; an erased contact shows as erased, never by its pseudonym), and the lots of
// the case as this account received them.
import { html } from '../../html.js';
import { t } from '../../i18n/index.js';
import { formatDate, formatDateTime } from '../../i18n/format.js';
import { TierBadge } from './chips.js';

export function AccountPanel({ account, manager }) {
  if (!account) return null;
  const policy = account.sla_policy ?? {};
  return html`
    <section class="panel" aria-labelledby="account-title">
      <h2 id="account-title">${t('case.account')}</h2>
      <p class="panel__lead"><strong>${account.name}</strong> <span class="muted">${account.code}</span> <${TierBadge} tier=${account.tier} /></p>
      <dl class="facts">
        <dt>${t('case.account.manager')}</dt>
        <dd>${manager?.display_name ?? t('case.account.no_manager')}</dd>
        <dt>${t('case.account.region')}</dt>
        <dd>${account.region} · ${account.country}</dd>
        ${policy.first_response_h !== undefined &&
        html`<dt>${t('case.account.sla')}</dt>
          <dd class="num">${t('case.account.sla_value', { first: policy.first_response_h, resolution: policy.resolution_h })}</dd>`}
      </dl>
    </section>
  `;
}

export function ContactCard({ contact }) {
  if (contact.pseudonymized_at) {
    return html`<li class="contact contact--erased">
      <strong>${t('contact.erased')}</strong>
      <span class="muted">${t('contact.erased_on', { date: formatDate(contact.pseudonymized_at) })}</span>
    </li>`;
  }
  const consented = contact.consents?.service_notices === true;
  return html`<li class="contact">
    <strong>${contact.name}</strong>
    ${contact.email && html`<a href=${`mailto:${contact.email}`} class="contact__link">${contact.email}</a>`}
    ${contact.phone && html`<a href=${`tel:${contact.phone}`} class="contact__link">${contact.phone}</a>`}
    <span class="chip chip--${consented ? 'ok' : 'warn'}">${t(consented ? 'contact.consent.given' : 'contact.consent.none')}</span>
  </li>`;
}

export function ContactPanel({ kase, contacts }) {
  const own = contacts.find((row) => row.id === kase.contact_id);
  const shown = own ? [own] : contacts.filter((row) => row.account_id === kase.account_id);
  return html`
    <section class="panel" aria-labelledby="contact-title">
      <h2 id="contact-title">${t(own ? 'case.contact' : 'case.contacts')}</h2>
      ${!shown.length && html`<p class="muted">${t('case.no_contact')}</p>`}
      <ul class="contacts">
        ${shown.map((contact) => html`<${ContactCard} key=${contact.id} contact=${contact} />`)}
      </ul>
    </section>
  `;
}

export function LotsPanel({ kase, shipments, lines }) {
  const received = lines.filter((line) => line.batch_id === kase.batch_id && line.account_id === kase.account_id);
  const shipmentOf = new Map(shipments.map((row) => [row.id, row]));
  if (!kase.batch_id && !kase.lot_no_reported) return null;
  return html`
    <section class="panel" aria-labelledby="lots-title">
      <h2 id="lots-title">${t('case.lots')}</h2>
      ${kase.lot_no_reported && html`<p>${t('case.lot_reported', { lot: kase.lot_no_reported })}</p>`}
      ${!received.length && html`<p class="muted">${t('case.lot_not_received')}</p>`}
      <ul class="plain-list num">
        ${received.map((line) => {
          const shipment = shipmentOf.get(line.shipment_id);
          return html`<li key=${line.id}>${t('case.shipment_line', { number: shipment?.number ?? '', qty: line.qty, date: formatDateTime(shipment?.shipped_at) })}</li>`;
        })}
      </ul>
    </section>
  `;
}
