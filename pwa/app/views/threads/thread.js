// One thread: its subject on top, the messages (photos inline; internal notes and messages
// the customer sees told apart at a glance), who is typing, who has read what, and the
// composer. A message sent offline shows as not sent yet and goes when the network returns.
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from '../../html.js';
import { t } from '../../i18n/index.js';
import { errorText } from '../../i18n/errors.js';
import { formatDateTime, formatList } from '../../i18n/format.js';
import { client, newId } from '../../state/client.js';
import { byId, useQueued, useRecords } from '../../state/records.js';
import { href } from '../../state/route.js';
import { sync, user } from '../../state/session.js';
import { Badge } from '../../ui/badge.js';
import { useConfirm } from '../../ui/confirm.js';
import { Photo, PhotoPicker } from '../../ui/photos.js';
import { isLive, summarize } from './model.js';

const ENTITIES = ['thread', 'thread_participant', 'message', 'user', 'attachment', 'nonconformance'];
const TYPING_EXPIRES_MS = 12_000; // as the server: typing ends 12 s after its last refresh
const STAFF_WHO_PUBLISH = new Set(['service_rep', 'supervisor', 'admin']);
const CUSTOMER_SUBJECTS = new Set(['case', 'advisory']);

// Who is typing in this thread, from the live tail's `typing` frames.
function useTyping(threadId, me) {
  const [typing, setTyping] = useState(new Map());
  useEffect(() => {
    const timers = new Map();
    const stop = (userId) => {
      clearTimeout(timers.get(userId));
      timers.delete(userId);
      setTyping((current) => {
        const next = new Map(current);
        next.delete(userId);
        return next;
      });
    };
    const onTyping = ({ detail }) => {
      if (detail.thread_id !== threadId || detail.user_id === me) return;
      if (detail.state !== 'start') return stop(detail.user_id);
      clearTimeout(timers.get(detail.user_id));
      timers.set(detail.user_id, setTimeout(() => stop(detail.user_id), TYPING_EXPIRES_MS));
      setTyping((current) => new Map(current).set(detail.user_id, true));
    };
    client.addEventListener('typing', onTyping);
    return () => {
      client.removeEventListener('typing', onTyping);
      timers.forEach(clearTimeout);
    };
  }, [threadId, me]);
  return [...typing.keys()];
}

// Where the subject lives in the app (a nonconformance is shown on its batch's page).
function subjectLink(thread, records) {
  if (thread.subject_type === 'nonconformance') {
    const nc = records.nonconformance?.find((row) => row.id === thread.subject_id);
    if (nc?.batch_ids?.length) return href('batches', nc.batch_ids[0]);
  }
  return null;
}

// What people wrote is in whatever language they wrote it: `lang=""` says it is unknown, so
// neither a screen reader nor the app's language checks take it for the page's language.
function Message({ message, author, mine, photos, readers, showVisibility }) {
  return html`
    <li class="message message--${message.visibility} ${mine ? 'message--mine' : ''}">
      <div class="message__head">
        <strong>${author}</strong>
        <time datetime=${message.created_at}>${formatDateTime(message.created_at)}</time>
        ${showVisibility && html`<${Badge} status=${message.visibility} label=${t(`message.visibility.${message.visibility}`)} />`}
      </div>
      <p class="message__body" lang="">${message.body}</p>
      ${photos.length > 0 &&
      html`<div class="message__photos">${photos.map((hash, i) => html`<${Photo} key=${hash} sha256=${hash} size="display" alt=${t('photos.nth', { count: i + 1 })} />`)}</div>`}
      ${readers && html`<p class="message__read">${readers}</p>`}
    </li>
  `;
}

function PendingMessage({ entry, online }) {
  return html`
    <li class="message message--${entry.args.visibility} message--mine message--pending">
      <div class="message__head">
        <strong>${t('thread.you')}</strong>
        <${Badge} status="pending" label=${online ? t('queue.sending') : t('queue.not_sent')} />
      </div>
      <p class="message__body" lang="">${entry.args.body}</p>
      ${entry.args.photo_hashes?.length > 0 &&
      html`<div class="message__photos">${entry.args.photo_hashes.map((hash, i) => html`<${Photo} key=${hash} sha256=${hash} size="thumb" alt=${t('photos.nth', { count: i + 1 })} />`)}</div>`}
    </li>
  `;
}

// `answer` (a number that grows) asks the composer for a reply to the customer: the case
// view's "first response" sets "Visible to customer" and puts the cursor in the message.
// A customer's every message is for the other side; staff write internal notes unless they publish.
function Composer({ thread, canPublish, isCustomer, answer = 0 }) {
  const [body, setBody] = useState('');
  const [toCustomer, setToCustomer] = useState(false);
  const [photos, setPhotos] = useState([]);
  const [error, setError] = useState(null);
  const [dialog, ask] = useConfirm();
  const field = useRef(null);

  useEffect(() => {
    if (!answer || !canPublish) return;
    setToCustomer(true);
    field.current?.focus();
  }, [answer]);

  async function send(event) {
    event.preventDefault();
    const text = body.trim();
    if (!text) return;
    // Publishing is a deliberate act: asked in the app, named on the button.
    if (toCustomer && !(await ask({ title: t('thread.publish.title'), message: t('thread.publish.confirm'), confirm: t('thread.publish.yes') }))) return;
    try {
      await client.enqueue('message.post', {
        id: newId(),
        thread_id: thread.id,
        body: text,
        visibility: toCustomer || isCustomer ? 'customer' : 'internal',
        photo_hashes: photos,
      });
      client.sendTyping(thread.id, 'stop');
      setBody('');
      setPhotos([]);
      setToCustomer(false);
      setError(null);
    } catch (failure) {
      setError(errorText(failure));
    }
  }

  return html`
    <form class="composer ${toCustomer ? 'composer--customer' : ''}" onSubmit=${send}>
      <label class="field__label" for="message-body">${t('thread.message')}</label>
      <textarea
        class="field__input field__input--area"
        id="message-body"
        ref=${field}
        rows="2"
        value=${body}
        onInput=${(event) => {
          setBody(event.currentTarget.value);
          client.sendTyping(thread.id, event.currentTarget.value ? 'start' : 'stop');
        }}
        onKeyDown=${(event) => {
          if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) send(event);
        }}
      ></textarea>
      ${canPublish &&
      html`<label class="check">
        <input type="checkbox" checked=${toCustomer} onChange=${(event) => setToCustomer(event.currentTarget.checked)} />
        ${t('thread.publish')}
      </label>`}
      ${toCustomer && html`<p class="notice notice--info">${t('thread.publish.notice')}</p>`}
      <div class="composer__actions">
        <${PhotoPicker} hashes=${photos} onChange=${setPhotos} />
        <button class="button button--primary" type="submit">${t('thread.send')}</button>
      </div>
      ${error && html`<p class="notice notice--danger" role="alert">${error}</p>`}
      ${dialog}
    </form>
  `;
}

export function ThreadScreen({ threadId }) {
  return html`<section class="screen"><a class="back" href=${href('threads')}>${t('thread.back')}</a><${ThreadView} threadId=${threadId} /></section>`;
}

/**
 * The thread itself: subject, messages, typing, composer. The threads screen shows it whole;
 * a case view (the rep's, the portal's) embeds it (`embedded`: a section with an h2, no link
 * back to its own subject). `othersName` names an author this device has no card of (a
 * customer has none of the staff's).
 */
export function ThreadView({ threadId, embedded = false, answer = 0, othersName = null }) {
  const { ready, data } = useRecords(ENTITIES);
  const queued = useQueued('message.post');
  const me = user.value.id;
  const typing = useTyping(threadId, me);
  const log = useRef(null);
  const readUpTo = useRef(0);
  const thread = (data.thread ?? []).find((row) => row.id === threadId);
  const messages = (data.message ?? []).filter((row) => row.thread_id === threadId && isLive(row)).sort((a, b) => a.thread_seq - b.thread_seq);
  const participants = (data.thread_participant ?? []).filter((row) => row.thread_id === threadId);
  // A message the server already holds shows once, as the server's, even while its push
  // answer is still on the way.
  const held = new Set(messages.map((message) => message.id));
  const pending = queued.filter((entry) => entry.args.thread_id === threadId && !held.has(entry.args.id));
  const lastSeq = messages[messages.length - 1]?.thread_seq ?? 0;

  useEffect(() => {
    client.setViewing(threadId);
    return () => client.setViewing(null);
  }, [threadId]);

  // Reading the thread on screen marks it read (queued like any change, so offline too).
  useEffect(() => {
    if (!thread) return;
    const { readSeq } = summarize(thread, messages, participants, me);
    if (lastSeq > Math.max(readSeq, readUpTo.current) && document.visibilityState === 'visible') {
      readUpTo.current = lastSeq;
      client.enqueue('thread.read', { thread_id: threadId, up_to_seq: lastSeq }).catch(() => {});
    }
  }, [thread, lastSeq]);

  useEffect(() => {
    log.current?.scrollTo({ top: log.current.scrollHeight });
  }, [messages.length, pending.length]);

  if (!ready) return html`<p class="loading">${t('app.loading')}</p>`;
  if (!thread && embedded) return html`<p class="muted">${t('thread.empty')}</p>`;
  if (!thread) return html`<p class="notice notice--warn">${t('thread.missing')}</p>`;

  const people = byId(data.user);
  const nameOf = (id) => (id === me ? t('thread.you') : (people.get(id)?.display_name ?? othersName ?? t('thread.someone')));
  // Everything a customer reads is meant for them: the word would only be noise there.
  const isCustomer = user.value.role === 'customer';
  const photosOf = (messageId) =>
    (data.attachment ?? []).filter((row) => row.entity_type === 'message' && row.entity_id === messageId && row.state !== 'rejected').map((row) => row.sha256);
  const lastMine = [...messages].reverse().find((message) => message.author_id === me);
  const readersOfLastMine =
    lastMine &&
    participants.filter((row) => row.user_id !== me && row.read_seq >= lastMine.thread_seq).map((row) => nameOf(row.user_id));
  const subject = !embedded && subjectLink(thread, data);
  const canPublish = STAFF_WHO_PUBLISH.has(user.value.role) && CUSTOMER_SUBJECTS.has(thread.subject_type);

  const Heading = embedded ? 'h2' : 'h1';
  return html`
    <section class=${embedded ? 'panel thread thread--embedded' : 'thread'} aria-labelledby=${`thread-${threadId}`}>
      <header class="thread__subject">
        ${!embedded && html`<span class="thread__kind">${t(`subject.${thread.subject_type}`)}</span>`}
        <${Heading} id=${`thread-${threadId}`}>${embedded ? t('thread.conversation') : thread.title}</${Heading}>
        ${subject && html`<a class="button button--secondary" href=${subject}>${t('thread.open_subject')}</a>`}
      </header>
      <div class="thread__log" ref=${log} role="log" aria-live="polite" aria-relevant="additions" aria-label=${t('thread.messages')} tabindex="0">
        <ol class="thread__messages">
        ${!messages.length && !pending.length && html`<li class="muted">${t('thread.empty')}</li>`}
        ${messages.map(
          (message) => html`<${Message}
            key=${message.id}
            message=${message}
            author=${nameOf(message.author_id)}
            mine=${message.author_id === me}
            photos=${photosOf(message.id)}
            showVisibility=${!isCustomer}
            readers=${message === lastMine && readersOfLastMine.length ? t('thread.read_by', { names: formatList(readersOfLastMine) }) : null}
          />`,
        )}
        ${pending.map((entry) => html`<${PendingMessage} key=${entry.id} entry=${entry} online=${sync.value.online} />`)}
        </ol>
      </div>
      <p class="thread__typing" aria-live="polite">${typing.length ? t('thread.typing', { names: formatList(typing.map(nameOf)) }) : ''}</p>
      <${Composer} thread=${thread} canPublish=${canPublish} isCustomer=${isCustomer} answer=${answer} />
    </section>
  `;
}
