// One case: what it is and how its SLA clocks stand, the one obvious next step (the first
// response while none was given, else the status), who it is with, its remedies, the
// advisory, the quality evidence behind it, and its conversation (the threads' own view).
import { useState } from 'preact/hooks';
import { html } from '../../html.js';
import { t } from '../../i18n/index.js';
import { now, useTick } from '../../state/clock.js';
import { byId, useQueued, useRecords } from '../../state/records.js';
import { href } from '../../state/route.js';
import { ThreadView } from '../threads/thread.js';
import { AdvisoryPanel } from './advisory.js';
import { BreachedBadge, CaseStatusBadge } from './chips.js';
import { isBreached, isOpen, slaOf } from './model.js';
import { AccountPanel, ContactPanel, LotsPanel } from './parties.js';
import { QualityPanel } from './quality.js';
import { RemediesPanel } from './remedies.js';
import { SlaClock } from './sla.js';
import { StatusActions } from './status.js';
import { ScreenLoading } from '../../ui/loading.js';

const ENTITIES = ['case', 'account', 'contact', 'user', 'remedy', 'advisory', 'advisory_recipient', 'thread', 'characteristic', 'shipment', 'shipment_line'];

function FirstResponse({ kase, sla, onAnswer }) {
  if (kase.first_response_at || !isOpen(kase)) return null;
  const breached = sla.firstResponse.state === 'breached';
  return html`
    <div class="callout ${breached ? 'callout--danger' : 'callout--info'}">
      <p><strong>${t('case.first_response.needed')}</strong> <${SlaClock} which="first_response" clock=${sla.firstResponse} /></p>
      <button class="button button--primary" type="button" onClick=${onAnswer}>${t('case.first_response.write')}</button>
    </div>
  `;
}

export function CaseScreen({ caseId }) {
  useTick(1000); // the SLA countdowns show seconds
  const { ready, data } = useRecords(ENTITIES);
  const queuedStatus = useQueued('case.set_status');
  const queuedDecisions = useQueued('remedy.decide');
  const queuedExecutions = useQueued('remedy.execute');
  const [answer, setAnswer] = useState(0);
  const kase = (data.case ?? []).find((row) => row.id === caseId);
  if (!ready) return html`<${ScreenLoading} />`;
  if (!kase) {
    return html`<section class="screen"><p class="notice notice--warn">${t('case.missing')}</p><a class="button button--secondary" href=${href('cases')}>${t('case.back')}</a></section>`;
  }
  const account = byId(data.account).get(kase.account_id);
  const people = byId(data.user);
  const sla = slaOf(kase, now.value);
  const thread = (data.thread ?? []).find((row) => row.subject_type === 'case' && row.subject_id === kase.id);
  const advisory = (data.advisory ?? []).find((row) => row.id === kase.advisory_id);
  const remedies = (data.remedy ?? []).filter((row) => row.case_id === kase.id).sort((a, b) => a.number.localeCompare(b.number));
  const breached = isOpen(kase) && isBreached(sla);

  function answerCustomer() {
    setAnswer((n) => n + 1);
    document.getElementById('case-thread')?.scrollIntoView({ block: 'start' });
  }

  return html`
    <section class="screen case">
      <a class="back" href=${href('cases')}>${t('case.back')}</a>
      <header class="screen__head case__head ${breached ? 'case__head--breached' : ''}">
        <div>
          <p class="case__number">${kase.number} · ${t(`case.origin.${kase.origin}`)} · ${t(`severity.${kase.severity}`)}</p>
          <h1>${kase.title}</h1>
          <p class="case__clocks">
            <${SlaClock} which="first_response" clock=${sla.firstResponse} />
            <${SlaClock} which="resolution" clock=${sla.resolution} />
          </p>
        </div>
        <div class="row__flags">
          ${breached && html`<${BreachedBadge} />`}
          <${CaseStatusBadge} status=${kase.status} />
        </div>
      </header>
      ${kase.description && html`<p class="case__description">${kase.description}</p>`}
      ${kase.resolution && html`<p class="notice notice--info">${t('case.resolution', { text: kase.resolution })}</p>`}
      <${FirstResponse} kase=${kase} sla=${sla} onAnswer=${answerCustomer} />
      <div class="case__grid">
        <div class="case__side">
          <${StatusActions} kase=${kase} queued=${queuedStatus} />
          <${AccountPanel} account=${account} manager=${people.get(account?.account_manager_id)} />
          <${ContactPanel} kase=${kase} contacts=${data.contact ?? []} />
          <${LotsPanel} kase=${kase} shipments=${data.shipment ?? []} lines=${data.shipment_line ?? []} />
          <${RemediesPanel} remedies=${remedies} people=${people} queued=${[...queuedDecisions, ...queuedExecutions]} />
          <${AdvisoryPanel} advisory=${advisory} recipients=${data.advisory_recipient ?? []} contacts=${data.contact ?? []} />
        </div>
        <div class="case__main">
          <${QualityPanel} kase=${kase} characteristics=${data.characteristic ?? []} />
          <div id="case-thread">
            ${thread ? html`<${ThreadView} threadId=${thread.id} embedded answer=${answer} />` : html`<p class="muted">${t('case.no_thread')}</p>`}
          </div>
        </div>
      </div>
    </section>
  `;
}
