// Threads I take part in, most recently active first, with unread counts and the last words.
import { html } from '../../html.js';
import { t } from '../../i18n/index.js';
import { formatDateTime } from '../../i18n/format.js';
import { useQueued, useRecords, byId } from '../../state/records.js';
import { href } from '../../state/route.js';
import { user } from '../../state/session.js';
import { messagesByThread, participantsByThread, summarize } from './model.js';

const ENTITIES = ['thread', 'thread_participant', 'message', 'user'];

export function ThreadsScreen() {
  const { ready, data } = useRecords(ENTITIES);
  const queued = useQueued('message.post');
  const me = user.value.id;
  const messages = messagesByThread(data.message);
  const participants = participantsByThread(data.thread_participant);
  const people = byId(data.user);
  const rows = (data.thread ?? [])
    .map((thread) => summarize(thread, messages.get(thread.id), participants.get(thread.id), me))
    .sort((a, b) => b.activeAt - a.activeAt);

  return html`
    <section class="screen">
      <h1>${t('threads.title')}</h1>
      ${!ready && html`<p class="loading">${t('app.loading')}</p>`}
      ${ready && !rows.length && html`<p class="notice notice--info">${t('threads.empty')}</p>`}
      <ul class="rows" aria-label=${t('threads.list')}>
        ${rows.map(({ thread, last, unread }) => {
          const waiting = queued.filter((entry) => entry.args.thread_id === thread.id).length;
          const author = last && (last.author_id === me ? t('thread.you') : (people.get(last.author_id)?.display_name ?? t('thread.someone')));
          return html`
            <li key=${thread.id}>
              <a class="row ${unread ? 'row--unread' : ''}" href=${href('threads', thread.id)}>
                <span class="row__main">
                  <span class="row__title">${thread.title}</span>
                  <span class="row__meta">
                    ${last ? html`<span class="row__preview" lang="">${author}: ${last.body}</span> · ${formatDateTime(last.created_at)}` : t('threads.no_messages')}
                  </span>
                </span>
                <span class="row__flags">
                  ${waiting > 0 && html`<span class="chip chip--warn">${t('threads.waiting', { count: waiting })}</span>`}
                  ${unread > 0 && html`<span class="count" aria-label=${t('threads.unread', { count: unread })}>${unread}</span>`}
                </span>
              </a>
            </li>
          `;
        })}
      </ul>
    </section>
  `;
}
