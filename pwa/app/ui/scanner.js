// Scanning a lot label with the camera: a modal dialog showing the camera's picture until a
// QR code or Data Matrix is read. The browser's own BarcodeDetector is used where it exists,
// the vendored zxing-wasm polyfill elsewhere (the import map's "barcode-detector").
import { useEffect, useRef, useState } from 'preact/hooks';
import { BarcodeDetector } from 'barcode-detector';
import { html } from '../html.js';
import { t } from '../i18n/index.js';

const FORMATS = ['qr_code', 'data_matrix', 'code_128'];
const FRAME_GAP_MS = 150; // about 6 reads a second: quick to answer, light on a tablet's battery

export function Scanner({ onResult, onClose }) {
  const dialog = useRef(null);
  const video = useRef(null);
  const [error, setError] = useState(null);

  useEffect(() => {
    dialog.current.showModal();
    let stream = null;
    let timer = null;
    let stopped = false;
    const detector = new BarcodeDetector({ formats: FORMATS });

    async function read() {
      if (stopped) return;
      try {
        const [code] = await detector.detect(video.current);
        if (code?.rawValue && !stopped) {
          stopped = true;
          onResult(code.rawValue);
          return;
        }
      } catch {
        // A frame that is not ready yet: the next one is.
      }
      timer = setTimeout(read, FRAME_GAP_MS);
    }

    navigator.mediaDevices
      .getUserMedia({ video: { facingMode: 'environment' }, audio: false })
      .then(async (media) => {
        stream = media;
        if (stopped) return;
        video.current.srcObject = media;
        await video.current.play();
        read();
      })
      .catch(() => setError(t('scan.no_camera')));

    return () => {
      stopped = true;
      clearTimeout(timer);
      stream?.getTracks().forEach((track) => track.stop());
    };
  }, []);

  return html`
    <dialog ref=${dialog} class="scanner" aria-labelledby="scanner-title" onClose=${onClose}>
      <h2 id="scanner-title">${t('scan.title')}</h2>
      <p>${t('scan.hint')}</p>
      ${error ? html`<p class="notice notice--warn" role="alert">${error}</p>` : html`<video ref=${video} class="scanner__video" muted playsinline></video>`}
      <div class="dialog__actions">
        <button class="button button--secondary" type="button" onClick=${() => dialog.current.close()}>${t('scan.cancel')}</button>
      </div>
    </dialog>
  `;
}
