// Translation and formatting. Every user-facing string goes through `t(key, values)`; dates,
// numbers and durations through Intl, in the current locale. Views that read `t` re-render
// when the locale signal changes.
import { signal, effect } from '@preact/signals';
import en from './en.js';
import zhCN from './zh-CN.js';

const TABLES = { en, 'zh-CN': zhCN };
// Each language named in itself, so anyone can find their own in the switcher.
export const LOCALES = [
  { tag: 'en', name: 'English' },
  { tag: 'zh-CN', name: '中文' },
];
const STORAGE_KEY = 'loopline.locale';

export const locale = signal(pickLocale());

function pickLocale() {
  const wanted = [localStorage.getItem(STORAGE_KEY), ...navigator.languages].filter(Boolean);
  for (const tag of wanted) {
    if (TABLES[tag]) return tag;
    if (tag.toLowerCase().startsWith('zh')) return 'zh-CN';
    if (tag.toLowerCase().startsWith('en')) return 'en';
  }
  return 'en';
}

export const isLocale = (tag) => Boolean(TABLES[tag]);

// Shows the app in `tag` on this device at once; state/locale.js also keeps it on the user.
export function setLocale(tag) {
  if (!TABLES[tag]) return;
  localStorage.setItem(STORAGE_KEY, tag);
  locale.value = tag;
}

// The document's language follows the app's, for screen readers and CJK font selection.
effect(() => {
  document.documentElement.lang = locale.value;
});

export const hasString = (key) => key in en;

export function t(key, values = {}) {
  const tag = locale.value;
  let message = TABLES[tag][key] ?? en[key];
  if (message === undefined) {
    console.error(`i18n: no string for "${key}"`);
    return key;
  }
  if (typeof message === 'object') {
    const category = new Intl.PluralRules(tag).select(values.count ?? 0);
    message = message[category] ?? message.other;
  }
  return message.replace(/\{(\w+)\}/g, (_, name) => format(values[name], tag));
}

function format(value, tag) {
  return typeof value === 'number' ? new Intl.NumberFormat(tag).format(value) : String(value ?? '');
}

// A span of time in the largest unit that is at least 1 (below a minute counts as 0 minutes).
function largestUnit(ms) {
  const minutes = Math.max(0, Math.floor(ms / 60_000));
  if (minutes < 60) return [minutes, 'minute'];
  if (minutes < 48 * 60) return [Math.floor(minutes / 60), 'hour'];
  return [Math.floor(minutes / 1440), 'day'];
}

// "under 1 min", "12 min", "3 hr", "2 days": how long something has waited.
export function formatDuration(ms) {
  const [value, unit] = largestUnit(ms);
  if (value === 0) return t('time.under_a_minute');
  return new Intl.NumberFormat(locale.value, { style: 'unit', unit, unitDisplay: 'short' }).format(value);
}

// "5 minutes ago", "2 hours ago".
export function formatAgo(ms) {
  const [value, unit] = largestUnit(ms);
  return new Intl.RelativeTimeFormat(locale.value, { numeric: 'auto' }).format(-value, unit);
}
