// What the portal screens compute from a customer's read model. The server sends a customer
// only their account's rows, in the allow-listed shapes of customer/projections.py: no
// drafts, no internal messages, no staff fields. These helpers only pick and sort.

// Status words come from i18n; the tones say at a glance what needs the customer.
export const CASE_TONES = {
  new: 'info',
  triaged: 'info',
  in_progress: 'warn',
  awaiting_customer: 'danger',
  resolved: 'ok',
  closed: 'plain',
};
export const ANSWER_TONES = { sent: 'danger', acknowledged: 'warn', accepted: 'ok', declined: 'plain' };
export const REMEDY_TONES = { approved: 'info', executed: 'ok' };

// A recipient moves forward only (customer/advisories.py ANSWERABLE): the answers still open.
const NEXT_ANSWERS = {
  sent: ['acknowledge', 'accept', 'decline'],
  acknowledged: ['accept', 'decline'],
};
export const answersFrom = (state) => NEXT_ANSWERS[state] ?? [];

// The newest first: what happened last is what a customer looks for.
export const newestFirst = (rows = []) => [...rows].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));

// The contact that is me: the one of my account with my e-mail address (how the server ties a
// portal login to its person, compliance/erasure.py).
export function myContact(contacts = [], me) {
  const email = me?.email?.toLowerCase();
  return email ? (contacts.find((contact) => contact.email?.toLowerCase() === email) ?? null) : null;
}

// Each advisory my account received, with every recipient of my account and mine among them.
export function advisoriesOf(data, contact) {
  const recipients = data.advisory_recipient ?? [];
  return newestFirst(data.advisory)
    .map((advisory) => {
      const ours = recipients.filter((row) => row.advisory_id === advisory.id);
      return { advisory, recipients: ours, mine: ours.find((row) => row.contact_id === contact?.id) ?? null };
    })
    .filter((entry) => entry.recipients.length > 0);
}

export function caseThread(threads = [], caseId) {
  return threads.find((thread) => thread.subject_type === 'case' && thread.subject_id === caseId) ?? null;
}

export const categoryLabel = (category, lang) =>
  category.labels?.[lang] ?? category.labels?.[lang.split('-')[0]] ?? category.labels?.en ?? category.code;
