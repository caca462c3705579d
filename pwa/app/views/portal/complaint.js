// Filing a complaint: what happened, the lot number from the label, how many units failed,
// and photos. It goes through the same loop rules as a complaint a service rep files
// (`case.open`): the lot is checked against what my account received, and a lot under an
// advisory links the case to it. Queued on this device, so it works offline; the photos
// follow as `attachment.link`s of the new case, in the order they were queued.
import { useState } from 'preact/hooks';
import { html } from '../../html.js';
import { locale, t } from '../../i18n/index.js';
import { client, newId } from '../../state/client.js';
import { byId, useRecords } from '../../state/records.js';
import { go, href } from '../../state/route.js';
import { user } from '../../state/session.js';
import { PhotoPicker } from '../../ui/photos.js';
import { categoryLabel, myContact } from './model.js';
import { ScreenLoading } from '../../ui/loading.js';

const ENTITIES = ['complaint_category', 'contact', 'user'];

function Field({ id, label, hint, children }) {
  return html`
    <div class="field">
      <label class="field__label" for=${id}>${label}</label>
      ${hint && html`<span class="portal__hint muted" id=${`${id}-hint`}>${hint}</span>`}
      ${children}
    </div>
  `;
}

export function ComplaintScreen() {
  const { ready, data } = useRecords(ENTITIES);
  const [form, setForm] = useState({ title: '', lot: '', category: '', failed: '', description: '' });
  const [photos, setPhotos] = useState([]);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (name) => (event) => setForm({ ...form, [name]: event.currentTarget.value });

  if (!ready) return html`<${ScreenLoading} />`;
  const categories = [...(data.complaint_category ?? [])].sort((a, b) => a.code.localeCompare(b.code));
  const contact = myContact(data.contact, byId(data.user).get(user.value.id));

  async function submit(event) {
    event.preventDefault();
    const title = form.title.trim();
    const failed = form.failed.trim() === '' ? 0 : Number(form.failed);
    if (!title) return setError(t('portal.complaint.error.title'));
    if (!Number.isInteger(failed) || failed < 0) return setError(t('portal.complaint.error.failed'));
    setBusy(true);
    setError(null);
    const id = newId();
    try {
      await client.enqueue('case.open', {
        id,
        kind: 'complaint',
        title,
        description: form.description.trim(),
        lot_no: form.lot.trim() || null,
        category_code: form.category || null,
        qty_failed: failed,
        contact_id: contact?.id ?? null,
      });
      for (const sha256 of photos) await client.enqueue('attachment.link', { entity: 'case', entity_id: id, sha256 });
      go('portal', 'case', id);
    } catch (failure) {
      setError(failure.message);
      setBusy(false);
    }
  }

  return html`
    <section class="screen portal">
      <a class="back" href=${href('portal')}>${t('portal.back')}</a>
      <h1>${t('portal.complaint.title')}</h1>
      <p class="muted">${t('portal.complaint.intro')}</p>
      <form class="portal__form" onSubmit=${submit} novalidate>
        <${Field} id="complaint-title" label=${t('portal.complaint.what')}>
          <input class="field__input" id="complaint-title" required value=${form.title} onInput=${set('title')} />
        <//>
        <${Field} id="complaint-lot" label=${t('portal.complaint.lot')} hint=${t('portal.complaint.lot.hint')}>
          <input class="field__input num" id="complaint-lot" aria-describedby="complaint-lot-hint" autocapitalize="characters" autocomplete="off" spellcheck="false" value=${form.lot} onInput=${set('lot')} />
        <//>
        <${Field} id="complaint-category" label=${t('portal.complaint.category')}>
          <select class="select" id="complaint-category" value=${form.category} onChange=${set('category')}>
            <option value="">${t('portal.complaint.category.unknown')}</option>
            ${categories.map((row) => html`<option value=${row.code}>${categoryLabel(row, locale.value)}</option>`)}
          </select>
        <//>
        <${Field} id="complaint-failed" label=${t('portal.complaint.failed')}>
          <input class="field__input num portal__qty" id="complaint-failed" inputmode="numeric" value=${form.failed} onInput=${set('failed')} />
        <//>
        <${Field} id="complaint-description" label=${t('portal.complaint.description')}>
          <textarea class="field__input field__input--area" id="complaint-description" rows="4" value=${form.description} onInput=${set('description')}></textarea>
        <//>
        <${PhotoPicker} hashes=${photos} onChange=${setPhotos} />
        ${error && html`<p class="notice notice--danger" role="alert">${error}</p>`}
        <button class="button button--primary button--block" type="submit" disabled=${busy}>${t('portal.complaint.submit')}</button>
      </form>
    </section>
  `;
}
