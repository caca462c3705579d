// Photos in views: the picker that takes them (camera or files) and the thumbnail that shows
// one by its hash — from this device while it waits to upload, else from the server.
import { useEffect, useState } from 'preact/hooks';
import { html } from '../html.js';
import { t } from '../i18n/index.js';
import { client } from '../state/client.js';

// "Add photo": the file input is the control (screen readers and tests find it by this
// name); the label around it is the large touch target. `capture` opens the camera on
// tablets and phones, the picker elsewhere.
export function PhotoPicker({ hashes, onChange }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  async function take(event) {
    const files = [...event.currentTarget.files];
    event.currentTarget.value = '';
    setBusy(true);
    setError(null);
    const added = [];
    try {
      for (const file of files) added.push((await client.addPhoto(file)).sha256);
    } catch (failure) {
      setError(failure);
    }
    setBusy(false);
    if (added.length) onChange([...hashes, ...added.filter((hash) => !hashes.includes(hash))]);
  }

  return html`
    <div class="photos">
      <ul class="photos__list" aria-label=${t('photos.label')}>
        ${hashes.map(
          (hash, index) => html`
            <li class="photos__item" key=${hash}>
              <${Photo} sha256=${hash} size="thumb" alt=${t('photos.nth', { count: index + 1 })} />
              <button type="button" class="button button--quiet photos__remove" onClick=${() => onChange(hashes.filter((h) => h !== hash))}>
                ${t('photos.remove')}
              </button>
            </li>
          `,
        )}
      </ul>
      <label class="button button--secondary photos__add">
        <input type="file" accept="image/*" capture="environment" multiple onChange=${take} disabled=${busy} />
        ${busy ? t('photos.adding') : t('photos.add')}
      </label>
      ${error && html`<p class="notice notice--danger" role="alert">${t('photos.error')}</p>`}
    </div>
  `;
}

export function Photo({ sha256, size = 'thumb', alt }) {
  const [url, setUrl] = useState(null);
  const [missing, setMissing] = useState(false);
  useEffect(() => {
    let current = true;
    let made = null;
    client
      .photoUrl(sha256, size)
      .then((objectUrl) => {
        made = objectUrl;
        if (current) setUrl(objectUrl);
        else URL.revokeObjectURL(objectUrl);
      })
      .catch(() => current && setMissing(true));
    return () => {
      current = false;
      if (made) URL.revokeObjectURL(made);
    };
  }, [sha256, size]);
  if (missing) return html`<span class="photo photo--missing" role="img" aria-label=${alt}>${t('photos.unavailable')}</span>`;
  if (!url) return html`<span class="photo photo--loading" role="img" aria-label=${alt}></span>`;
  return html`<img class="photo" src=${url} alt=${alt} loading="lazy" />`;
}
