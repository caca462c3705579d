// The audit chain's state, asked of the server (it walks the whole chain; the device holds
// none of it): verified when the overview opens and on request. Offline says so plainly.
import { useEffect, useState } from 'preact/hooks';
import { html } from '../../html.js';
import { t } from '../../i18n/index.js';
import { formatDateTime } from '../../i18n/format.js';
import { client } from '../../state/client.js';

const VERIFY_PATH = '/api/v1/compliance/audit/verify';

function useAuditChain() {
  const [state, setState] = useState({ checking: true, report: null, error: null, at: null });
  const [round, setRound] = useState(0);
  useEffect(() => {
    let current = true;
    setState((before) => ({ ...before, checking: true }));
    client
      .fetchJson(VERIFY_PATH)
      .then((report) => current && setState({ checking: false, report, error: null, at: Date.now() }))
      .catch((error) => current && setState({ checking: false, report: null, error, at: Date.now() }));
    return () => {
      current = false;
    };
  }, [round]);
  return [state, () => setRound((n) => n + 1)];
}

function Outcome({ report, error }) {
  if (error) {
    const offline = error.code === 'offline' || error.code === 'network';
    return html`<p class="notice notice--warn">${offline ? t('overview.audit.offline') : t('overview.audit.failed', { code: error.code })}</p>`;
  }
  if (report.ok) {
    return html`
      <p class="overview__verdict">
        <span class="chip chip--ok">${t('overview.audit.word.ok')}</span>
        <span class="num">${t('overview.audit.ok', { count: report.events })}</span>
      </p>
      <p class="muted overview__hash">${t('overview.audit.head', { hash: report.head_hash.slice(0, 16) })}</p>
    `;
  }
  return html`
    <p class="overview__verdict">
      <span class="chip chip--danger">${t('overview.audit.word.broken')}</span>
      <span class="num">${t('overview.audit.broken', { seq: report.first_broken_seq ?? '?', reason: report.reason ?? '' })}</span>
    </p>
  `;
}

export function AuditCard() {
  const [{ checking, report, error, at }, verify] = useAuditChain();
  return html`
    <section class="card overview__card" aria-labelledby="ov-audit">
      <h2 id="ov-audit">${t('overview.audit.title')}</h2>
      <div role="status" aria-live="polite" aria-busy=${checking ? 'true' : 'false'}>
        ${checking ? html`<p class="loading">${t('overview.audit.checking')}</p>` : html`<${Outcome} report=${report} error=${error} />`}
      </div>
      <div class="overview__actions">
        <button type="button" class="button button--secondary" disabled=${checking} onClick=${verify}>${t('overview.audit.verify')}</button>
        ${at && html`<span class="muted">${t('overview.audit.checked', { when: formatDateTime(at) })}</span>`}
      </div>
    </section>
  `;
}
