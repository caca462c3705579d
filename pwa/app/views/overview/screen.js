// The supervisor's overview: what is on fire, in ten seconds. A tally on top; below it the
// advisories waiting (the one action here), cases against their SLA, nonconformances and
// holds, quality watches, CAPA and its closing gate; beside them the SPC charts and the
// audit chain. Every list follows the read model live (useRecords); the derived lists are
// computed once per change batch (useMemo on the rows), not on every render.
import { useMemo } from 'preact/hooks';
import { html } from '../../html.js';
import { t } from '../../i18n/index.js';
import { now } from '../../state/clock.js';
import { byId, useRecords } from '../../state/records.js';
import { AdvisoriesCard } from './advisories.js';
import { AuditCard } from './audit.js';
import { accountsByAdvisory, advisoriesWaiting, batchesOnHold, capaGates, openNonconformances, openWatches, slaWatch } from './model.js';
import { CapaCard, NcCard, SlaCard, WatchCard } from './sections.js';
import { SpcChart } from './spc-chart.js';
import { useSpcCharts } from './spc-store.js';
import { ScreenLoading } from '../../ui/loading.js';

const ENTITIES = ['nonconformance', 'batch', 'advisory', 'advisory_recipient', 'case', 'account', 'quality_watch', 'capa', 'thread', 'product_model', 'plant'];

function Tally({ items }) {
  return html`
    <ul class="overview__tally" aria-label=${t('overview.glance')}>
      ${items.map(({ key, count, tone }) => html`<li key=${key} class="overview__tile overview__tile--${count ? tone : 'ok'} num">${t(`overview.tally.${key}`, { count })}</li>`)}
    </ul>
  `;
}

export function OverviewScreen() {
  const { ready, data } = useRecords(ENTITIES);
  const spc = useSpcCharts();
  const lists = useMemo(
    () => ({
      ncs: openNonconformances(data.nonconformance),
      holds: batchesOnHold(data.batch),
      advisories: advisoriesWaiting(data.advisory),
      accountsByAdvisory: accountsByAdvisory(data.advisory_recipient),
      watches: openWatches(data.quality_watch),
      capas: capaGates(data.capa, data.nonconformance, data.case),
      batches: byId(data.batch),
      accounts: byId(data.account),
      models: byId(data.product_model),
      plants: byId(data.plant),
      threadBySubject: new Map((data.thread ?? []).map((thread) => [thread.subject_id, thread])),
    }),
    [data],
  );
  // The clock ticks every 15 s; SLA states follow it without re-deriving the other lists.
  const sla = useMemo(() => slaWatch(data.case, now.value), [data, now.value]);
  if (!ready) return html`<${ScreenLoading} />`;
  const tally = [
    { key: 'advisories', count: lists.advisories.drafts.length, tone: 'warn' },
    { key: 'breached', count: sla.breached.length, tone: 'danger' },
    { key: 'at_risk', count: sla.atRisk.length, tone: 'warn' },
    { key: 'ncs', count: lists.ncs.length, tone: 'danger' },
    { key: 'holds', count: lists.holds.length, tone: 'danger' },
    { key: 'watches', count: lists.watches.length, tone: 'warn' },
  ];
  return html`
    <section class="screen overview">
      <h1>${t('overview.title')}</h1>
      <${Tally} items=${tally} />
      <div class="overview__grid">
        <div class="overview__column">
          <${AdvisoriesCard} waiting=${lists.advisories} accountsByAdvisory=${lists.accountsByAdvisory} threadBySubject=${lists.threadBySubject} />
          <${SlaCard} sla=${sla} accounts=${lists.accounts} />
          <${NcCard} ncs=${lists.ncs} holds=${lists.holds} batches=${lists.batches} models=${lists.models} threadBySubject=${lists.threadBySubject} />
          <${WatchCard} watches=${lists.watches} batches=${lists.batches} />
          <${CapaCard} capas=${lists.capas} />
        </div>
        <div class="overview__column">
          <section class="card overview__card" aria-labelledby="ov-spc">
            <h2 id="ov-spc">${t('overview.spc.title')}</h2>
            ${spc.ready && !spc.charts.length && html`<p class="muted">${t('overview.spc.none')}</p>`}
            ${!spc.ready && html`<p class="loading">${t('app.loading')}</p>`}
            ${spc.charts.map((chart) => html`<${SpcChart} key=${chart.key} chart=${chart} plantName=${lists.plants.get(chart.plantId)?.code ?? ''} />`)}
          </section>
          <${AuditCard} />
        </div>
      </div>
    </section>
  `;
}
