// What the thread screens compute from the read model: per thread, my read position, the
// unread count, the last message and when it was last active.

export const isLive = (message) => !message.deleted_at;

export function messagesByThread(messages = []) {
  const result = new Map();
  for (const message of messages) result.set(message.thread_id, [...(result.get(message.thread_id) ?? []), message]);
  for (const list of result.values()) list.sort((a, b) => a.thread_seq - b.thread_seq);
  return result;
}

export function participantsByThread(participants = []) {
  const result = new Map();
  for (const row of participants) result.set(row.thread_id, [...(result.get(row.thread_id) ?? []), row]);
  return result;
}

export function summarize(thread, messages = [], participants = [], me) {
  const mine = participants.find((row) => row.user_id === me);
  const readSeq = mine?.read_seq ?? 0;
  const live = messages.filter(isLive);
  const last = live[live.length - 1] ?? null;
  return {
    thread,
    last,
    readSeq,
    unread: live.filter((message) => message.thread_seq > readSeq && message.author_id !== me).length,
    activeAt: Date.parse(last?.created_at ?? thread.updated_at ?? thread.created_at) || 0,
  };
}
