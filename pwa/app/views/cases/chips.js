// The case screens' status words on colours (ui/badge.js holds the batch and quality ones):
// an account's tier (VIP and key accounts stand out), a case's status, a breached SLA, a
// remedy's and an advisory recipient's state.
import { html } from '../../html.js';
import { t } from '../../i18n/index.js';

const CASE_TONES = { new: 'info', triaged: 'info', in_progress: 'warn', awaiting_customer: 'plain', resolved: 'ok', closed: 'plain' };
const REMEDY_TONES = { proposed: 'warn', approved: 'info', executed: 'ok', rejected: 'danger' };
const RECIPIENT_TONES = { pending: 'plain', sent: 'warn', acknowledged: 'ok', accepted: 'ok', declined: 'danger' };

const chip = (tone, label, extra = '') => html`<span class="chip chip--${tone} ${extra}">${label}</span>`;

export function TierBadge({ tier }) {
  if (!tier) return null;
  return chip(tier === 'standard' ? 'plain' : 'tier', t(`tier.${tier}`), `tier--${tier}`);
}

export const CaseStatusBadge = ({ status }) => chip(CASE_TONES[status] ?? 'plain', t(`case.status.${status}`));
export const BreachedBadge = () => chip('danger', t('sla.breached'), 'chip--strong');
export const RemedyBadge = ({ status }) => chip(REMEDY_TONES[status] ?? 'plain', t(`remedy.status.${status}`));
export const RecipientBadge = ({ state }) => chip(RECIPIENT_TONES[state] ?? 'plain', t(`recipient.state.${state}`));
