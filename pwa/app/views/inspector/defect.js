// Reporting a defect on a batch, with photos. Queued on this device; works offline.
import { useState } from 'preact/hooks';
import { html } from '../../html.js';
import { t } from '../../i18n/index.js';
import { newId } from '../../state/client.js';
import { useQueueing } from '../../state/queueing.js';
import { useRecords } from '../../state/records.js';
import { go, href } from '../../state/route.js';
import { PhotoPicker } from '../../ui/photos.js';
import { ScreenLoading } from '../../ui/loading.js';

const ENTITIES = ['batch', 'defect_code'];
const SEVERITIES = ['minor', 'major', 'critical'];

export function DefectScreen({ batchId }) {
  const { ready, data } = useRecords(ENTITIES);
  const [code, setCode] = useState('');
  const [severity, setSeverity] = useState('');
  const [qty, setQty] = useState('1');
  const [description, setDescription] = useState('');
  const [photos, setPhotos] = useState([]);
  const { busy, error, setError, queue } = useQueueing();

  if (!ready) return html`<${ScreenLoading} />`;
  const batch = (data.batch ?? []).find((row) => row.id === batchId);
  if (!batch) return html`<section class="screen"><p class="notice notice--warn">${t('batch.missing')}</p></section>`;
  const codes = (data.defect_code ?? []).sort((a, b) => a.code.localeCompare(b.code));
  // The code's own severity until the inspector says otherwise.
  const chosenSeverity = severity || codes.find((row) => row.code === code)?.severity || 'minor';

  async function submit(event) {
    event.preventDefault();
    const quantity = Number(qty);
    if (!code) return setError(t('defect.error.code'));
    if (!Number.isInteger(quantity) || quantity < 0) return setError(t('defect.error.qty'));
    await queue(
      'defect.report',
      {
        id: newId(),
        batch_id: batch.id,
        defect_code: code,
        severity: chosenSeverity,
        qty_affected: quantity,
        description,
        photo_hashes: photos,
        captured_at: new Date().toISOString(),
      },
      () => go('batches', batch.id),
    );
  }

  return html`
    <section class="screen">
      <a class="back" href=${href('batches', batch.id)}>${t('inspect.back', { lot: batch.lot_no })}</a>
      <h1>${t('defect.title', { lot: batch.lot_no })}</h1>
      <form onSubmit=${submit} novalidate>
        <div class="field">
          <label class="field__label" for="defect-code">${t('defect.code')}</label>
          <select class="select" id="defect-code" value=${code} onChange=${(event) => setCode(event.currentTarget.value)}>
            <option value="">${t('defect.code.choose')}</option>
            ${codes.map((row) => html`<option value=${row.code}>${row.code} — ${row.name}</option>`)}
          </select>
        </div>
        <div class="field">
          <label class="field__label" for="defect-severity">${t('defect.severity')}</label>
          <select class="select" id="defect-severity" value=${chosenSeverity} onChange=${(event) => setSeverity(event.currentTarget.value)}>
            ${SEVERITIES.map((name) => html`<option value=${name}>${t(`severity.${name}`)}</option>`)}
          </select>
        </div>
        <div class="field">
          <label class="field__label" for="defect-qty">${t('defect.qty')}</label>
          <input class="field__input num" id="defect-qty" inputmode="numeric" value=${qty} onInput=${(event) => setQty(event.currentTarget.value)} />
        </div>
        <div class="field">
          <label class="field__label" for="defect-description">${t('defect.description')}</label>
          <textarea class="field__input field__input--area" id="defect-description" rows="3" value=${description} onInput=${(event) => setDescription(event.currentTarget.value)}></textarea>
        </div>
        <${PhotoPicker} hashes=${photos} onChange=${setPhotos} />
        ${error && html`<p class="notice notice--danger" role="alert">${error}</p>`}
        <button class="button button--primary button--block" type="submit" disabled=${busy}>${t('defect.submit')}</button>
      </form>
    </section>
  `;
}
