// The customer portal's routes: `#/portal`, `#/portal/advisory/<id>`, `#/portal/case/<id>`,
// `#/portal/complaint`.
import { html } from '../../html.js';
import { routeArgs } from '../../state/route.js';
import { PortalHome } from './home.js';
import { AdvisoryScreen } from './advisory.js';
import { CaseScreen } from './case.js';
import { ComplaintScreen } from './complaint.js';

export function PortalScreen() {
  const [kind, id] = routeArgs.value;
  if (kind === 'advisory' && id) return html`<${AdvisoryScreen} key=${id} advisoryId=${id} />`;
  if (kind === 'case' && id) return html`<${CaseScreen} key=${id} caseId=${id} />`;
  if (kind === 'complaint') return html`<${ComplaintScreen} />`;
  return html`<${PortalHome} />`;
}
