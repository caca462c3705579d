// A new inspection, generated from the plan's characteristics: one field per sample, each
// checked against its limits as it is typed, the result shown before it is submitted. It is
// queued on this device and works offline exactly as online.
import { useState } from 'preact/hooks';
import { html } from '../../html.js';
import { t } from '../../i18n/index.js';
import { formatMeasure, formatList } from '../../i18n/format.js';
import { newId } from '../../state/client.js';
import { useQueueing } from '../../state/queueing.js';
import { useRecords } from '../../state/records.js';
import { go, href } from '../../state/route.js';
import { Badge } from '../../ui/badge.js';
import { PhotoPicker } from '../../ui/photos.js';
import { checkValue, controlLimits, latestSnapshots, parseValue, releasedPlan } from './spec.js';
import { ScreenLoading } from '../../ui/loading.js';

const ENTITIES = ['batch', 'inspection_plan', 'characteristic', 'capability_snapshot'];
const KINDS = ['final', 'in_process', 'incoming', 'audit', 'field_return'];

function limitsText(characteristic) {
  const { lsl, usl, nominal, unit } = characteristic;
  const parts = [];
  if (nominal !== null && nominal !== undefined) parts.push(t('inspect.nominal', { value: formatMeasure(nominal, unit) }));
  if (lsl !== null && lsl !== undefined) parts.push(t('inspect.lsl', { value: formatMeasure(lsl, unit) }));
  if (usl !== null && usl !== undefined) parts.push(t('inspect.usl', { value: formatMeasure(usl, unit) }));
  return parts.join(' · ');
}

export function InspectScreen({ batchId }) {
  const { ready, data } = useRecords(ENTITIES);
  const [values, setValues] = useState({});
  const [kind, setKind] = useState('final');
  const [notes, setNotes] = useState('');
  const [photos, setPhotos] = useState([]);
  const { busy, error, setError, queue } = useQueueing();

  if (!ready) return html`<${ScreenLoading} />`;
  const batch = (data.batch ?? []).find((row) => row.id === batchId);
  const plan = batch && releasedPlan(data.inspection_plan, batch.product_model_id);
  if (!batch || !plan) return html`<section class="screen"><p class="notice notice--warn">${t(batch ? 'inspect.no_plan' : 'batch.missing')}</p></section>`;
  const characteristics = (data.characteristic ?? []).filter((row) => row.plan_id === plan.id).sort((a, b) => a.code.localeCompare(b.code));
  const snapshots = latestSnapshots(data.capability_snapshot, batch.plant_id, batch.line);

  const fields = characteristics.flatMap((characteristic) =>
    Array.from({ length: characteristic.sample_n }, (_, index) => {
      const key = `${characteristic.code}:${index}`;
      const value = parseValue(values[key]);
      return { key, characteristic, index, value, check: checkValue(value, characteristic, controlLimits(snapshots.get(characteristic.code))) };
    }),
  );
  const entered = fields.filter((field) => field.check !== 'empty');
  const invalid = fields.filter((field) => field.check === 'invalid');
  const failing = [...new Set(entered.filter((field) => field.check === 'out_of_spec').map((field) => field.characteristic.code))];
  const warned = [...new Set(entered.filter((field) => field.check === 'warning').map((field) => field.characteristic.code))];
  const result = failing.length ? 'fail' : 'pass';

  async function submit(event) {
    event.preventDefault();
    if (!entered.length) return setError(t('inspect.error.empty'));
    if (invalid.length) return setError(t('inspect.error.invalid'));
    await queue(
      'inspection.submit',
      {
        id: newId(),
        batch_id: batch.id,
        plan_id: plan.id,
        kind,
        captured_at: new Date().toISOString(),
        measurements: entered.map((field) => ({ characteristic: field.characteristic.code, value: field.value })),
        notes,
        photo_hashes: photos,
      },
      () => go('batches', batch.id),
    );
  }

  return html`
    <section class="screen">
      <a class="back" href=${href('batches', batch.id)}>${t('inspect.back', { lot: batch.lot_no })}</a>
      <h1>${t('inspect.title', { lot: batch.lot_no })}</h1>
      <p class="muted">${t('inspect.plan', { plan: plan.code, version: plan.plan_version })}</p>
      <form class="inspect" onSubmit=${submit} novalidate>
        <div class="field">
          <label class="field__label" for="inspection-kind">${t('inspect.kind')}</label>
          <select class="select" id="inspection-kind" value=${kind} onChange=${(event) => setKind(event.currentTarget.value)}>
            ${KINDS.map((name) => html`<option value=${name}>${t(`inspection.kind.${name}`)}</option>`)}
          </select>
        </div>
        ${characteristics.map(
          (characteristic) => html`
            <fieldset class="characteristic" key=${characteristic.code}>
              <legend>
                <span class="characteristic__code">${characteristic.code}</span> ${characteristic.name}
                <span class="characteristic__limits">${limitsText(characteristic)}</span>
              </legend>
              <div class="samples">
                ${fields
                  .filter((field) => field.characteristic === characteristic)
                  .map(
                    (field) => html`
                      <div class="sample sample--${field.check}" key=${field.key}>
                        <label class="field__label" for=${`m-${field.key}`}>${t('inspect.sample', { code: characteristic.code, n: field.index + 1 })}</label>
                        <div class="sample__entry">
                          <input
                            class="field__input sample__input num"
                            id=${`m-${field.key}`}
                            inputmode="decimal"
                            autocomplete="off"
                            aria-describedby=${`s-${field.key}`}
                            aria-invalid=${field.check === 'out_of_spec' || field.check === 'invalid' ? 'true' : undefined}
                            value=${values[field.key] ?? ''}
                            onInput=${(event) => setValues({ ...values, [field.key]: event.currentTarget.value })}
                          />
                          <span class="sample__unit">${characteristic.unit}</span>
                        </div>
                        <span id=${`s-${field.key}`} class="sample__check">
                          ${field.check !== 'empty' && html`<${Badge} status=${field.check} label=${t(`check.${field.check}`)} />`}
                        </span>
                      </div>
                    `,
                  )}
              </div>
            </fieldset>
          `,
        )}
        <div class="field">
          <label class="field__label" for="inspection-notes">${t('inspect.notes')}</label>
          <textarea class="field__input field__input--area" id="inspection-notes" rows="3" value=${notes} onInput=${(event) => setNotes(event.currentTarget.value)}></textarea>
        </div>
        <${PhotoPicker} hashes=${photos} onChange=${setPhotos} />
        <div class="summary summary--${entered.length ? result : 'empty'}" role="status" aria-live="polite">
          ${entered.length
            ? html`
                <${Badge} status=${result} label=${t(`inspect.result.${result}`)} />
                <span>${t('inspect.entered', { count: entered.length, total: fields.length })}</span>
                ${failing.length > 0 && html`<span>${t('inspect.failing', { codes: formatList(failing) })}</span>`}
                ${warned.length > 0 && html`<span>${t('inspect.warned', { codes: formatList(warned) })}</span>`}
              `
            : html`<span>${t('inspect.nothing_yet')}</span>`}
        </div>
        ${error && html`<p class="notice notice--danger" role="alert">${error}</p>`}
        <button class="button button--primary button--block" type="submit" disabled=${busy}>${t('inspect.submit')}</button>
      </form>
    </section>
  `;
}
