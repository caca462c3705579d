// One batch: its hold, its nonconformances (with their threads), inspections and defects —
// those still waiting on this device included, marked as not sent yet.
import { html } from '../../html.js';
import { t } from '../../i18n/index.js';
import { formatDate, formatDateTime } from '../../i18n/format.js';
import { byId, useQueued, useRecords } from '../../state/records.js';
import { href } from '../../state/route.js';
import { Badge } from '../../ui/badge.js';
import { ScreenLoading } from '../../ui/loading.js';

const ENTITIES = ['batch', 'inspection', 'defect', 'nonconformance', 'product_model', 'thread'];

const newestFirst = (a, b) => Date.parse(b.captured_at) - Date.parse(a.captured_at);

export function BatchScreen({ batchId }) {
  const { ready, data } = useRecords(ENTITIES);
  const queuedInspections = useQueued('inspection.submit');
  const queuedDefects = useQueued('defect.report');
  const batch = (data.batch ?? []).find((row) => row.id === batchId);
  if (!ready) return html`<${ScreenLoading} />`;
  if (!batch) {
    return html`<section class="screen"><p class="notice notice--warn">${t('batch.missing')}</p><a class="button button--secondary" href=${href('batches')}>${t('batch.back')}</a></section>`;
  }
  const model = byId(data.product_model).get(batch.product_model_id);
  const threadBySubject = new Map((data.thread ?? []).map((thread) => [thread.subject_id, thread]));
  const ncs = (data.nonconformance ?? []).filter((nc) => nc.batch_ids?.includes(batchId));
  const sentIds = new Set((data.inspection ?? []).map((row) => row.id));
  const inspections = (data.inspection ?? []).filter((row) => row.batch_id === batchId).sort(newestFirst);
  const pendingInspections = queuedInspections.filter((entry) => entry.args.batch_id === batchId && !sentIds.has(entry.args.id));
  const defects = (data.defect ?? []).filter((row) => row.batch_id === batchId).sort(newestFirst);
  const pendingDefects = queuedDefects.filter((entry) => entry.args.batch_id === batchId);

  return html`
    <section class="screen">
      <a class="back" href=${href('batches')}>${t('batch.back')}</a>
      <header class="screen__head">
        <div>
          <h1>${batch.lot_no}</h1>
          <p class="muted num">
            ${[
              model && `${model.sku} — ${model.name}`,
              t('batches.line', { line: batch.line }),
              t('batches.qty', { qty: batch.qty }),
              `${formatDate(batch.produced_from)} – ${formatDate(batch.produced_to)}`,
            ]
              .filter(Boolean)
              .join(' · ')}
          </p>
        </div>
        <${Badge} status=${batch.status} />
      </header>
      ${batch.status === 'on_hold' && html`<p class="notice notice--danger" role="status">${t('batch.on_hold')}</p>`}
      <div class="actions">
        <a class="button button--primary" href=${href('batches', batchId, 'inspect')}>${t('batch.new_inspection')}</a>
        <a class="button button--secondary" href=${href('batches', batchId, 'defect')}>${t('batch.report_defect')}</a>
      </div>

      ${ncs.length > 0 &&
      html`
        <h2>${t('batch.ncs')}</h2>
        <ul class="rows">
          ${ncs.map((nc) => {
            const thread = threadBySubject.get(nc.id);
            return html`
              <li key=${nc.id} class="row row--static">
                <span class="row__main">
                  <span class="row__title">${nc.number} · ${nc.defect_code}</span>
                  <span class="row__meta">${t(`severity.${nc.severity}`)} · ${t(`batch.nc_from.${nc.source}`)}</span>
                </span>
                <span class="row__flags">
                  <${Badge} status=${nc.status} />
                  ${thread && html`<a class="button button--secondary" href=${href('threads', thread.id)}>${t('batch.open_thread')}</a>`}
                </span>
              </li>
            `;
          })}
        </ul>
      `}

      <h2>${t('batch.inspections')}</h2>
      ${!inspections.length && !pendingInspections.length && html`<p class="muted">${t('batch.no_inspections')}</p>`}
      <ul class="rows">
        ${pendingInspections.map(
          (entry) => html`
            <li key=${entry.id} class="row row--static">
              <span class="row__main">
                <span class="row__title">${t(`inspection.kind.${entry.args.kind}`)}</span>
                <span class="row__meta">${formatDateTime(entry.args.captured_at)}</span>
              </span>
              <${Badge} status="pending" label=${t('queue.not_sent')} />
            </li>
          `,
        )}
        ${inspections.map(
          (inspection) => html`
            <li key=${inspection.id} class="row row--static">
              <span class="row__main">
                <span class="row__title">${[inspection.number, t(`inspection.kind.${inspection.kind}`)].filter(Boolean).join(' · ')}</span>
                <span class="row__meta">${formatDateTime(inspection.captured_at)}</span>
              </span>
              <${Badge} status=${inspection.result} />
            </li>
          `,
        )}
      </ul>

      <h2>${t('batch.defects')}</h2>
      ${!defects.length && !pendingDefects.length && html`<p class="muted">${t('batch.no_defects')}</p>`}
      <ul class="rows">
        ${pendingDefects.map(
          (entry) => html`
            <li key=${entry.id} class="row row--static">
              <span class="row__main">
                <span class="row__title">${entry.args.defect_code}</span>
                <span class="row__meta">${entry.args.description}</span>
              </span>
              <${Badge} status="pending" label=${t('queue.not_sent')} />
            </li>
          `,
        )}
        ${defects.map(
          (defect) => html`
            <li key=${defect.id} class="row row--static">
              <span class="row__main">
                <span class="row__title">${defect.defect_code} · ${t(`severity.${defect.severity}`)}</span>
                <span class="row__meta">${defect.description} · ${formatDateTime(defect.captured_at)}</span>
              </span>
              <${Badge} status=${defect.status} />
            </li>
          `,
        )}
      </ul>
    </section>
  `;
}
