// Which view shows a route: `#/batches`, `#/batches/<id>`, `#/batches/<id>/inspect`,
// `#/batches/<id>/defect`, `#/threads`, `#/threads/<id>`, `#/cases`, `#/cases/<id>`, `#/overview`, `#/outbox`,
// `#/portal/…` (views/portal/).
import { html } from '../html.js';
import { routeArgs } from '../state/route.js';
import { ComingScreen } from './coming.js';
import { BatchesScreen } from './inspector/batches.js';
import { BatchScreen } from './inspector/batch.js';
import { InspectScreen } from './inspector/inspect.js';
import { DefectScreen } from './inspector/defect.js';
import { ThreadsScreen } from './threads/list.js';
import { ThreadScreen } from './threads/thread.js';
import { OutboxScreen } from './outbox.js';
import { lazy } from '../ui/lazy.js';

// The floor's screens (batches, threads, the outbox) come with the shell; the desk's, the
// rep's and the customer's load when first opened.
const OverviewScreen = lazy(() => import('./overview/screen.js'), 'OverviewScreen');
const PortalScreen = lazy(() => import('./portal/index.js'), 'PortalScreen');
const CasesScreen = lazy(() => import('./cases/inbox.js'), 'CasesScreen');
const CaseScreen = lazy(() => import('./cases/case.js'), 'CaseScreen');

const BATCH_SCREENS = { inspect: InspectScreen, defect: DefectScreen };

export function Screen({ name }) {
  const [id, sub] = routeArgs.value;
  switch (name) {
    case 'batches': {
      if (!id) return html`<${BatchesScreen} />`;
      const View = BATCH_SCREENS[sub] ?? BatchScreen;
      return html`<${View} key=${`${id}/${sub ?? ''}`} batchId=${id} />`;
    }
    case 'threads':
      return id ? html`<${ThreadScreen} key=${id} threadId=${id} />` : html`<${ThreadsScreen} />`;
    case 'overview':
      return html`<${OverviewScreen} />`;
    case 'cases':
      return id ? html`<${CaseScreen} key=${id} caseId=${id} />` : html`<${CasesScreen} />`;
    case 'outbox':
      return html`<${OutboxScreen} />`;
    case 'portal':
      return html`<${PortalScreen} />`;
    default:
      return html`<${ComingScreen} name=${name} />`;
  }
}
