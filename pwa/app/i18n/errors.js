// An error from the server or the sync client, in the reader's language, chosen by its `code`
// (tables: errors.en.js, errors.zh-CN.js). Details fill the placeholders; a status in them
// (`current`) is shown in the words the screens use for it.
import { t, hasString } from './index.js';

function values(code, details = {}) {
  const filled = { code };
  for (const [name, value] of Object.entries(details ?? {})) {
    if (typeof value === 'string' || typeof value === 'number') filled[name] = value;
  }
  if (typeof filled.current === 'string' && hasString(`status.${filled.current}`)) {
    filled.current = t(`status.${filled.current}`);
  }
  return filled;
}

// `error`: `{code, details?}` (a rejection stored in the outbox) or the client's Error with `.code`.
export function errorText(error) {
  const code = error?.code ?? 'unknown';
  const key = hasString(`error.${code}`) ? `error.${code}` : 'error.unknown';
  return t(key, values(code, error?.details));
}
