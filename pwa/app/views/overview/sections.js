// The overview's lists: cases against their SLA, open nonconformances and holds, quality
// watches, and CAPA with the gate that lets a nonconformance close. Each gets its rows
// ready-made from model.js; here they are only laid out.
import { html } from '../../html.js';
import { t } from '../../i18n/index.js';
import { formatDateTime, formatList } from '../../i18n/format.js';
import { href } from '../../state/route.js';
import { Badge } from '../../ui/badge.js';

const TONE = { breached: 'danger', at_risk: 'warn', late: 'danger', ok: 'ok', shut: 'warn', passed: 'ok', failed: 'danger', pending: 'warn' };
export const Word = ({ tone, label }) => html`<span class="chip chip--${TONE[tone] ?? tone}">${label}</span>`;

function Empty({ text }) {
  return html`<p class="muted">${text}</p>`;
}

function CaseRow({ kase, account, word, tone, facts }) {
  return html`
    <li class="row row--static overview__item">
      <span class="row__main">
        <span class="row__title">${kase.number} <span class="overview__inline">· ${account?.code ?? ''}</span></span>
        <span class="row__meta">${kase.title}</span>
        <span class="row__meta num">${facts}</span>
      </span>
      <${Word} tone=${tone} label=${word} />
    </li>
  `;
}

export function SlaCard({ sla, accounts }) {
  const open = (entry, tone) => html`
    <${CaseRow}
      key=${entry.kase.id}
      kase=${entry.kase}
      account=${accounts.get(entry.kase.account_id)}
      tone=${tone}
      word=${t(`overview.sla.word.${tone}`)}
      facts=${t(`overview.sla.${entry.kind}`, { when: formatDateTime(entry.due) })}
    />
  `;
  return html`
    <section class="card overview__card" aria-labelledby="ov-sla">
      <h2 id="ov-sla">${t('overview.sla.title')}</h2>
      ${!sla.breached.length && !sla.atRisk.length && html`<${Empty} text=${t('overview.sla.none')} />`}
      ${sla.breached.length > 0 &&
      html`<h3 id="ov-sla-breached">${t('overview.sla.breached')}</h3>
        <ul class="rows" aria-labelledby="ov-sla-breached">${sla.breached.map((entry) => open(entry, 'breached'))}</ul>`}
      ${sla.atRisk.length > 0 &&
      html`<h3 id="ov-sla-risk">${t('overview.sla.at_risk')}</h3>
        <ul class="rows" aria-labelledby="ov-sla-risk">${sla.atRisk.map((entry) => open(entry, 'at_risk'))}</ul>`}
      ${sla.resolvedLate.length > 0 &&
      html`<h3 id="ov-sla-late">${t('overview.sla.resolved_late')}</h3>
        <ul class="rows" aria-labelledby="ov-sla-late">
          ${sla.resolvedLate.map(
            (kase) => html`
              <${CaseRow}
                key=${kase.id}
                kase=${kase}
                account=${accounts.get(kase.account_id)}
                tone="late"
                word=${t('overview.sla.word.late')}
                facts=${t('overview.sla.resolved', { when: formatDateTime(kase.resolved_at), due: formatDateTime(kase.sla_resolution_due) })}
              />
            `,
          )}
        </ul>`}
    </section>
  `;
}

export function NcCard({ ncs, holds, batches, models, threadBySubject }) {
  const lots = (ids = []) => formatList(ids.map((id) => batches.get(id)?.lot_no).filter(Boolean));
  return html`
    <section class="card overview__card" aria-labelledby="ov-ncs">
      <h2 id="ov-ncs">${t('overview.ncs.title')}</h2>
      <h3 id="ov-ncs-open">${t('overview.ncs.open')}</h3>
      ${!ncs.length && html`<${Empty} text=${t('overview.ncs.none')} />`}
      <ul class="rows" aria-labelledby="ov-ncs-open">
        ${ncs.map((nc) => {
          const thread = threadBySubject.get(nc.id);
          return html`
            <li key=${nc.id} class="row row--static overview__item">
              <span class="row__main">
                <span class="row__title">
                  ${thread ? html`<a href=${href('threads', thread.id)} aria-label=${t('overview.ncs.open_thread', { number: nc.number })}>${nc.number}</a>` : nc.number}
                </span>
                <span class="row__meta">${t('overview.ncs.facts', { code: nc.defect_code, severity: t(`severity.${nc.severity}`), lots: lots(nc.batch_ids) })}</span>
              </span>
              <${Badge} status=${nc.status} />
            </li>
          `;
        })}
      </ul>
      <h3 id="ov-holds">${t('overview.holds.title')}</h3>
      ${!holds.length && html`<${Empty} text=${t('overview.holds.none')} />`}
      <ul class="rows" aria-labelledby="ov-holds">
        ${holds.map(
          (batch) => html`
            <li key=${batch.id} class="row row--static overview__item">
              <span class="row__main">
                <span class="row__title">${batch.lot_no}</span>
                <span class="row__meta num">${t('overview.holds.facts', { model: models.get(batch.product_model_id)?.sku ?? '', line: batch.line, qty: batch.qty })}</span>
              </span>
              <${Badge} status=${batch.status} />
            </li>
          `,
        )}
      </ul>
    </section>
  `;
}

export const ruleNames = (rules = []) => formatList(rules.map((rule) => t(`overview.rule.${rule}`)));

export function WatchCard({ watches, batches }) {
  return html`
    <section class="card overview__card" aria-labelledby="ov-watches">
      <h2 id="ov-watches">${t('overview.watches.title')}</h2>
      ${!watches.length && html`<${Empty} text=${t('overview.watches.none')} />`}
      <ul class="rows" aria-labelledby="ov-watches">
        ${watches.map(
          (watch) => html`
            <li key=${watch.id} class="row row--static overview__item">
              <span class="row__main">
                <span class="row__title">${watch.number}</span>
                <span class="row__meta">
                  ${t('overview.watches.facts', {
                    code: watch.characteristic_code,
                    line: watch.line,
                    lot: batches.get(watch.batch_id)?.lot_no ?? '',
                    rules: ruleNames(watch.rules),
                    when: formatDateTime(watch.created_at),
                  })}
                </span>
              </span>
              <${Badge} status="warning" label=${t('status.open')} />
            </li>
          `,
        )}
      </ul>
    </section>
  `;
}

function Gate({ gate, effectiveness }) {
  const number = gate.nc?.number ?? t('overview.capa.unknown_nc');
  const values = { number, resolved: gate.resolved, total: gate.total, effectiveness: t(`overview.capa.effectiveness.${effectiveness}`) };
  return html`
    <li class="overview__gate">
      <${Word} tone=${gate.open ? 'ok' : 'shut'} label=${t(`overview.capa.gate.word.${gate.open ? 'open' : 'shut'}`)} />
      <span class="num">${t(`overview.capa.gate.${gate.open ? 'open' : 'shut'}`, values)}</span>
    </li>
  `;
}

export function CapaCard({ capas }) {
  return html`
    <section class="card overview__card" aria-labelledby="ov-capa">
      <h2 id="ov-capa">${t('overview.capa.title')}</h2>
      ${!capas.length && html`<${Empty} text=${t('overview.capa.none')} />`}
      <ul class="rows" aria-labelledby="ov-capa">
        ${capas.map(({ capa, effectiveness, gates }) => {
          const done = (capa.actions ?? []).filter((action) => action.status === 'done').length;
          return html`
            <li key=${capa.id} class="row row--static overview__item overview__capa">
              <span class="row__main">
                <span class="row__title">${capa.number}</span>
                <span class="row__meta num">
                  ${t('overview.capa.actions', { done, total: (capa.actions ?? []).length })}${capa.effectiveness?.evidence ? ` · ${capa.effectiveness.evidence}` : ''}
                </span>
                <ul class="overview__gates">
                  ${gates.map((gate) => html`<${Gate} key=${gate.ncId} gate=${gate} effectiveness=${effectiveness} />`)}
                </ul>
              </span>
              <span class="row__flags">
                <${Word} tone=${effectiveness} label=${t(`overview.capa.effectiveness.${effectiveness}`)} />
                <${Badge} status=${capa.status === 'closed' ? 'closed' : 'investigating'} label=${t(`overview.capa.status.${capa.status}`)} />
              </span>
            </li>
          `;
        })}
      </ul>
    </section>
  `;
}
