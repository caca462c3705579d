// The plant's batches: holds and open nonconformances first, then the newest. A batch is
// found by typing its lot number, from the list, or by scanning the lot label.
import { useState } from 'preact/hooks';
import { html } from '../../html.js';
import { t } from '../../i18n/index.js';
import { formatDate } from '../../i18n/format.js';
import { byId, useRecords } from '../../state/records.js';
import { go, href } from '../../state/route.js';
import { Badge } from '../../ui/badge.js';

// The scanner loads when "Scan" is pressed, not with the list: it pulls in the vendored
// barcode reader (two more module levels, about 17 KB gzipped) that most visits never use.
const loadScanner = () => import('../../ui/scanner.js').then((module) => module.Scanner);

const ENTITIES = ['batch', 'nonconformance', 'product_model'];

export const isOpen = (nc) => nc.status !== 'closed';

export function openNcsByBatch(ncs = []) {
  const result = new Map();
  for (const nc of ncs.filter(isOpen)) for (const batchId of nc.batch_ids ?? []) result.set(batchId, [...(result.get(batchId) ?? []), nc]);
  return result;
}

// Trouble first (a hold, an open NC), then the most recently produced.
function rank(batch, ncsByBatch) {
  const trouble = (batch.status === 'on_hold' ? 2 : 0) + (ncsByBatch.has(batch.id) ? 1 : 0);
  return [-trouble, -(Date.parse(batch.produced_to ?? batch.produced_from ?? 0) || 0)];
}

const compareRanks = ([a1, a2], [b1, b2]) => a1 - b1 || a2 - b2;

export function findBatchByLot(batches, lotNo) {
  const wanted = lotNo.trim().toUpperCase();
  return batches.find((batch) => batch.lot_no.toUpperCase() === wanted) ?? null;
}

export function BatchesScreen() {
  const { ready, data } = useRecords(ENTITIES);
  const [query, setQuery] = useState('');
  const [notFound, setNotFound] = useState(null);
  // The Scanner component once loaded and asked for; null while closed.
  const [Scanner, setScanner] = useState(null);
  const batches = data.batch ?? [];
  const models = byId(data.product_model);
  const ncsByBatch = openNcsByBatch(data.nonconformance);
  const needle = query.trim().toUpperCase();
  const shown = batches
    .filter((batch) => !needle || batch.lot_no.toUpperCase().includes(needle))
    .map((batch) => ({ batch, rank: rank(batch, ncsByBatch) }))
    .sort((a, b) => compareRanks(a.rank, b.rank) || a.batch.lot_no.localeCompare(b.batch.lot_no))
    .map(({ batch }) => batch);

  function open(lotNo) {
    const batch = findBatchByLot(batches, lotNo);
    if (batch) go('batches', batch.id);
    else setNotFound(lotNo.trim());
  }

  async function scan() {
    const component = await loadScanner();
    // A component as state is set through a function, or Preact would call it as an updater.
    setScanner(() => component);
  }

  function submit(event) {
    event.preventDefault();
    if (needle) open(query);
  }

  return html`
    <section class="screen">
      <h1>${t('batches.title')}</h1>
      <form class="finder" onSubmit=${submit} role="search">
        <div class="field finder__field">
          <label class="field__label" for="lot-number">${t('batches.lot')}</label>
          <input
            class="field__input"
            id="lot-number"
            name="lot"
            autocomplete="off"
            autocapitalize="characters"
            spellcheck="false"
            placeholder="CN-SZ-L2-…"
            value=${query}
            onInput=${(event) => {
              setQuery(event.currentTarget.value);
              setNotFound(null);
            }}
          />
        </div>
        <button class="button button--secondary" type="submit">${t('batches.open')}</button>
        <button class="button button--primary" type="button" onClick=${scan}>${t('batches.scan')}</button>
      </form>
      ${notFound && html`<p class="notice notice--warn" role="alert">${t('batches.not_found', { lot: notFound })}</p>`}
      ${Scanner &&
      html`<${Scanner}
        onResult=${(text) => {
          setScanner(null);
          open(text);
        }}
        onClose=${() => setScanner(null)}
      />`}
      ${!ready && html`<p class="loading">${t('app.loading')}</p>`}
      ${ready && !batches.length && html`<p class="notice notice--info">${t('batches.empty')}</p>`}
      <ul class="rows" aria-label=${t('batches.list')}>
        ${shown.map((batch) => {
          const ncs = ncsByBatch.get(batch.id) ?? [];
          const model = models.get(batch.product_model_id);
          return html`
            <li key=${batch.id}>
              <a class="row" href=${href('batches', batch.id)}>
                <span class="row__main">
                  <span class="row__title">${batch.lot_no}</span>
                  <span class="row__meta num">
                    ${[model?.sku, t('batches.line', { line: batch.line }), t('batches.qty', { qty: batch.qty }), formatDate(batch.produced_to ?? batch.produced_from)]
                      .filter(Boolean)
                      .join(' · ')}
                  </span>
                </span>
                <span class="row__flags">
                  ${ncs.map((nc) => html`<${Badge} status="open" label=${`${nc.number} ${t('status.open')}`} />`)}
                  <${Badge} status=${batch.status} />
                </span>
              </a>
            </li>
          `;
        })}
      </ul>
    </section>
  `;
}
