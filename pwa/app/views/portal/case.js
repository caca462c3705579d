// One of my account's cases: what it is about, where it stands, what we are granted, the
// photos our side attached, and the conversation with the service team (the threads' own
// view, embedded; the server sends a customer only the messages meant for them).
import { useEffect, useRef } from 'preact/hooks';
import { html } from '../../html.js';
import { locale, t } from '../../i18n/index.js';
import { formatDateTime, formatNumber } from '../../i18n/format.js';
import { client } from '../../state/client.js';
import { useQueued, useRecords } from '../../state/records.js';
import { href } from '../../state/route.js';
import { sync } from '../../state/session.js';
import { Badge } from '../../ui/badge.js';
import { Photo } from '../../ui/photos.js';
import { ThreadView } from '../threads/thread.js';
import { CASE_TONES, REMEDY_TONES, caseThread, categoryLabel } from './model.js';
import { ScreenLoading } from '../../ui/loading.js';

const ENTITIES = ['case', 'advisory', 'remedy', 'attachment', 'thread', 'complaint_category', 'product_model'];

function Fact({ label, children }) {
  return html`<div class="portal__fact"><dt>${label}</dt><dd>${children}</dd></div>`;
}

// A complaint this device has filed that the server has not taken yet: what was filed.
function QueuedCase({ entry }) {
  const { args } = entry;
  return html`
    <section class="screen portal">
      <a class="back" href=${href('portal')}>${t('portal.back')}</a>
      <header class="portal__head">
        <span class="thread__kind">${t('subject.case')}</span>
        <h1>${args.title}</h1>
        <${Badge} status="pending" label=${sync.value.online ? t('queue.sending') : t('queue.not_sent')} />
      </header>
      <p class="notice notice--info" role="status">${t('portal.complaint.queued')}</p>
      ${args.lot_no && html`<dl class="portal__facts"><${Fact} label=${t('portal.complaint.lot')}><span class="num">${args.lot_no}</span><//></dl>`}
      ${args.description && html`<p class="portal__description">${args.description}</p>`}
    </section>
  `;
}

// A customer reads a case's messages as a participant of its thread; whoever did not file the
// case joins it on opening it here (`case.follow`, once; queued like any change).
// Asked once per visit: the thread arrives with a later pull, and a second ask would change nothing.
function useFollow(caseId, needed) {
  const asked = useRef(false);
  useEffect(() => {
    if (!needed || asked.current) return;
    asked.current = true;
    client.enqueue('case.follow', { id: caseId }).catch(() => {});
  }, [caseId, needed]);
}

export function CaseScreen({ caseId }) {
  const { ready, data } = useRecords(ENTITIES);
  const queued = useQueued('case.open').find((entry) => entry.args.id === caseId);
  const known = ready && (data.case ?? []).some((item) => item.id === caseId);
  useFollow(caseId, known && !caseThread(data.thread, caseId));
  if (!ready) return html`<${ScreenLoading} />`;
  const row = (data.case ?? []).find((item) => item.id === caseId);
  if (!row && queued) return html`<${QueuedCase} entry=${queued} />`;
  if (!row) {
    return html`<section class="screen"><a class="back" href=${href('portal')}>${t('portal.back')}</a><p class="notice notice--warn">${t('portal.case.missing')}</p></section>`;
  }
  const advisory = (data.advisory ?? []).find((item) => item.id === row.advisory_id);
  const category = (data.complaint_category ?? []).find((item) => item.code === row.category_code);
  const product = (data.product_model ?? []).find((item) => item.id === row.product_model_id);
  const remedies = (data.remedy ?? []).filter((item) => item.case_id === row.id);
  const photos = (data.attachment ?? []).filter((item) => item.entity_type === 'case' && item.entity_id === row.id && item.state !== 'rejected');
  const thread = caseThread(data.thread, row.id);

  return html`
    <section class="screen portal">
      <a class="back" href=${href('portal')}>${t('portal.back')}</a>
      <header class="portal__head">
        <span class="thread__kind">${t('portal.case.kind', { number: row.number })}</span>
        <h1>${row.title}</h1>
        <${Badge} tone=${CASE_TONES[row.status]} label=${t(`portal.case.status.${row.status}`)} />
      </header>
      <dl class="portal__facts">
        <${Fact} label=${t('portal.case.opened_at')}>${formatDateTime(row.created_at)}<//>
        ${row.lot_no_reported && html`<${Fact} label=${t('portal.complaint.lot')}><span class="num">${row.lot_no_reported}</span><//>`}
        ${product && html`<${Fact} label=${t('portal.case.product')}>${product.sku} · ${product.name}<//>`}
        ${category && html`<${Fact} label=${t('portal.complaint.category')}>${categoryLabel(category, locale.value)}<//>`}
        ${advisory && html`<${Fact} label=${t('subject.advisory')}><a href=${href('portal', 'advisory', advisory.id)}>${advisory.number}</a><//>`}
        ${row.resolved_at && html`<${Fact} label=${t('portal.case.resolved_at')}>${formatDateTime(row.resolved_at)}<//>`}
      </dl>
      ${row.description && html`<p class="portal__description">${row.description}</p>`}
      ${row.resolution && html`<p class="notice notice--info">${row.resolution}</p>`}

      ${remedies.length > 0 &&
      html`<h2 id="portal-remedies">${t('portal.remedies')}</h2>
        <ul class="rows" aria-labelledby="portal-remedies">
          ${remedies.map(
            (remedy) => html`<li class="row" key=${remedy.id}>
              <span class="row__main">
                <span class="row__title">${remedy.number} · ${t(`portal.remedy.kind.${remedy.kind}`)}</span>
                <span class="row__meta num">${t('portal.remedy.qty', { qty: formatNumber(remedy.qty, 0) })}</span>
              </span>
              <span class="row__flags"><${Badge} tone=${REMEDY_TONES[remedy.status]} label=${t(`portal.remedy.status.${remedy.status}`)} /></span>
            </li>`,
          )}
        </ul>`}

      ${photos.length > 0 &&
      html`<h2>${t('portal.case.photos')}</h2>
        <div class="message__photos">${photos.map((item, i) => html`<${Photo} key=${item.id} sha256=${item.sha256} size="display" alt=${t('photos.nth', { count: i + 1 })} />`)}</div>`}

      <h2>${t('portal.case.messages')}</h2>
      ${thread ? html`<${ThreadView} key=${thread.id} threadId=${thread.id} embedded othersName=${t('portal.case.service_team')} />` : html`<p class="muted">${t('thread.empty')}</p>`}
    </section>
  `;
}
