// The quality panel of a case: the lot and its hold, the batch's measurements on a run chart
// against the specification and control limits with the values in a table, the inspection
// photos, the nonconformances and the lot's trace. Read online (context.js); offline it shows
// the last answer kept on this device, marked with its age.
import { html } from '../../html.js';
import { t, formatAgo } from '../../i18n/index.js';
import { formatDate, formatDateTime, formatMeasure } from '../../i18n/format.js';
import { now } from '../../state/clock.js';
import { Badge } from '../../ui/badge.js';
import { Photo } from '../../ui/photos.js';
import { controlLimits } from '../inspector/spec.js';
import { RunChart } from './chart.js';
import { useCaseContext } from './context.js';

function Freshness({ state }) {
  if (state.fresh) return html`<p class="freshness freshness--fresh">${t('quality.fresh')}</p>`;
  if (state.context) {
    const ago = formatAgo(now.value - state.fetchedAt);
    return html`<p class="freshness freshness--stale" role="status">${t('quality.kept', { ago, at: formatDateTime(state.fetchedAt) })}</p>`;
  }
  if (state.loading) return html`<p class="loading">${t('app.loading')}</p>`;
  return html`<p class="notice notice--warn" role="status">${t(state.error?.code === 'offline' || state.error?.code === 'network' ? 'quality.offline_none' : 'quality.unavailable')}</p>`;
}

// Each characteristic that has measurements: its samples in capture order across inspections.
function series(context, characteristics) {
  const byCode = new Map();
  for (const { inspection, measurements } of context.inspections) {
    for (const m of [...measurements].sort((a, b) => a.sample_index - b.sample_index)) {
      if (!byCode.has(m.characteristic_code)) byCode.set(m.characteristic_code, []);
      byCode.get(m.characteristic_code).push({ ...m, inspection });
    }
  }
  const limitsOf = new Map(context.capability?.map((snapshot) => [snapshot.characteristic_code, snapshot]) ?? []);
  return [...byCode.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([code, samples]) => {
      const planId = samples[samples.length - 1].inspection.plan_id;
      const spec = characteristics.find((row) => row.code === code && row.plan_id === planId) ?? characteristics.find((row) => row.code === code) ?? { code };
      const snapshot = limitsOf.get(code);
      return { code, spec, samples, snapshot, limits: controlLimits(snapshot) };
    });
}

function Characteristic({ spec, samples, snapshot, limits }) {
  const unit = spec.unit || '';
  const out = samples.filter((s) => s.out_of_spec).length;
  const values = samples.map((s) => s.value);
  const caption = t('quality.summary', {
    code: spec.code,
    name: spec.name ?? spec.code,
    count: samples.length,
    out,
    min: formatMeasure(Math.min(...values), unit),
    max: formatMeasure(Math.max(...values), unit),
  });
  const specText = [
    spec.lsl !== null && spec.lsl !== undefined && t('quality.lsl_value', { value: formatMeasure(spec.lsl, unit) }),
    spec.nominal !== null && spec.nominal !== undefined && t('quality.nominal_value', { value: formatMeasure(spec.nominal, unit) }),
    spec.usl !== null && spec.usl !== undefined && t('quality.usl_value', { value: formatMeasure(spec.usl, unit) }),
  ].filter(Boolean);
  const inspections = [];
  for (const sample of samples) {
    const last = inspections[inspections.length - 1];
    if (last?.inspection.id === sample.inspection.id) last.samples.push(sample);
    else inspections.push({ inspection: sample.inspection, samples: [sample] });
  }
  return html`
    <section class="characteristic-panel" aria-labelledby=${`char-${spec.code}`}>
      <h3 id=${`char-${spec.code}`}>${spec.code} · ${spec.name ?? ''}</h3>
      <p class="limits num">
        ${specText.join(' · ')}
        ${limits &&
        html`<br />${t('quality.control_limits', {
            lcl: formatMeasure(limits.lcl, unit),
            ucl: formatMeasure(limits.ucl, unit),
            date: formatDate(snapshot.created_at),
          })}`}
      </p>
      <${RunChart}
        values=${values}
        outOfSpec=${samples.map((s) => s.out_of_spec)}
        unit=${unit}
        lsl=${spec.lsl}
        usl=${spec.usl}
        limits=${limits}
        caption=${caption}
      />
      <div class="table-scroll" tabindex="0" role="region" aria-label=${t('quality.values', { code: spec.code })}>
        <table class="values">
          <caption>${t('quality.values', { code: spec.code })}</caption>
          <thead>
            <tr>
              <th scope="col">${t('quality.inspection')}</th>
              <th scope="col">${t('quality.result')}</th>
              <th scope="col">${t('quality.samples')}</th>
            </tr>
          </thead>
          <tbody>
            ${inspections.map(
              ({ inspection, samples: taken }) => html`
                <tr key=${inspection.id}>
                  <th scope="row">
                    ${inspection.number ?? t(`inspection.kind.${inspection.kind}`)}
                    <span class="values__when">${formatDateTime(inspection.captured_at)}</span>
                  </th>
                  <td><${Badge} status=${inspection.result} /></td>
                  <td>
                    <ul class="values__list num">
                      ${taken.map(
                        (s) => html`<li key=${s.id} class=${s.out_of_spec ? 'value value--out' : 'value'}>
                          ${formatMeasure(s.value, unit)}${s.out_of_spec ? html` <span class="value__flag">${t('quality.out_of_spec')}</span>` : ''}
                        </li>`,
                      )}
                    </ul>
                  </td>
                </tr>
              `,
            )}
          </tbody>
        </table>
      </div>
    </section>
  `;
}

function Photos({ context }) {
  const numberOf = new Map([
    ...context.inspections.map(({ inspection }) => [inspection.id, inspection.number ?? t(`inspection.kind.${inspection.kind}`)]),
    ...context.nonconformances.map((nc) => [nc.id, nc.number]),
    [context.case.id, context.case.number],
  ]);
  const groups = new Map();
  for (const attachment of context.attachments.filter((row) => row.state !== 'rejected')) {
    const owner = numberOf.get(attachment.entity_id) ?? attachment.entity_type;
    groups.set(owner, [...(groups.get(owner) ?? []), attachment]);
  }
  if (!groups.size) return html`<p class="muted">${t('quality.no_photos')}</p>`;
  return [...groups.entries()].map(
    ([owner, attachments]) => html`
      <figure class="evidence" key=${owner}>
        <figcaption>${t('quality.photos_of', { owner })}</figcaption>
        <div class="evidence__photos">
          ${attachments.map((a, i) => html`<${Photo} key=${a.sha256} sha256=${a.sha256} size="display" alt=${t('quality.photo_alt', { owner, count: i + 1 })} />`)}
        </div>
      </figure>
    `,
  );
}

function Trace({ trace, me }) {
  if (!trace) return null;
  return html`
    <h3>${t('quality.trace')}</h3>
    <ul class="rows">
      ${trace.accounts.map(
        (account) => html`
          <li key=${account.account_id} class="row row--static">
            <span class="row__main">
              <span class="row__title">${account.code} · ${account.name}</span>
              <span class="row__meta num">${account.shipments.map((s) => t('quality.shipment', { number: s.number, qty: s.qty, date: formatDate(s.shipped_at) })).join(' · ')}</span>
            </span>
            <span class="row__flags num">${t('quality.units', { count: account.qty })}</span>
          </li>
        `,
      )}
    </ul>
    <p class="muted num">
      ${[
        trace.other_accounts_qty > 0 && t('quality.trace_others', { count: trace.other_accounts_qty }),
        t('quality.trace_unshipped', { count: trace.unshipped_qty }),
      ]
        .filter(Boolean)
        .join(' · ')}
    </p>
  `;
}

export function QualityPanel({ kase, characteristics }) {
  const state = useCaseContext(kase.id, kase.version);
  const { context } = state;
  return html`
    <section class="panel quality" aria-labelledby="quality-title">
      <h2 id="quality-title">${t('quality.title')}</h2>
      <${Freshness} state=${state} />
      ${context &&
      html`
        ${context.batch &&
        html`
          <div class="lot">
            <p class="lot__title"><strong>${context.batch.lot_no}</strong> ${context.product_model && html`<span class="muted">${context.product_model.sku} — ${context.product_model.name}</span>`}</p>
            <p class="num muted">${t('quality.lot_facts', { line: context.batch.line, qty: context.batch.qty, from: formatDate(context.batch.produced_from), to: formatDate(context.batch.produced_to) })}</p>
            <${Badge} status=${context.batch.status} />
            ${context.batch.status === 'on_hold' && html`<p class="notice notice--danger">${t('quality.on_hold')}</p>`}
          </div>
        `}
        ${series(context, characteristics).map((item) => html`<${Characteristic} key=${item.code} ...${item} />`)}
        ${!context.inspections.length && html`<p class="muted">${t('quality.no_inspections')}</p>`}
        <h3>${t('quality.photos')}</h3>
        <${Photos} context=${context} />
        <h3>${t('quality.ncs')}</h3>
        ${!context.nonconformances.length && html`<p class="muted">${t('quality.no_ncs')}</p>`}
        <ul class="rows">
          ${context.nonconformances.map(
            (nc) => html`
              <li key=${nc.id} class="row row--static">
                <span class="row__main">
                  <span class="row__title">${nc.number} · ${nc.defect_code}</span>
                  <span class="row__meta">${t(`severity.${nc.severity}`)}${nc.containment ? ` · ${nc.containment}` : ''}</span>
                </span>
                <${Badge} status=${nc.status} />
              </li>
            `,
          )}
        </ul>
        <${Trace} trace=${context.trace} />
      `}
    </section>
  `;
}
