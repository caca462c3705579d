// A status shown by colour AND word: the word comes from the i18n table, the tone from the
// status, so "On hold" is red text on a red tint with a dot — never colour alone.
import { html } from '../html.js';
import { t } from '../i18n/index.js';

const TONES = {
  // batches
  in_production: 'info',
  released: 'ok',
  on_hold: 'danger',
  under_advisory: 'warn',
  recalled: 'danger',
  scrapped: 'plain',
  // inspections
  pass: 'ok',
  fail: 'danger',
  // defects and nonconformances
  open: 'danger',
  contained: 'warn',
  investigating: 'warn',
  dispositioned: 'info',
  closed: 'plain',
  // measured values
  in_spec: 'ok',
  out_of_spec: 'danger',
  warning: 'warn',
  // messages and queued work
  internal: 'plain',
  customer: 'info',
  pending: 'warn',
};

// `tone` names the tone outright, for a screen whose statuses share words with others here.
export function Badge({ status, label, tone }) {
  return html`<span class="chip chip--${tone ?? TONES[status] ?? 'plain'}">${label ?? t(`status.${status}`)}</span>`;
}
