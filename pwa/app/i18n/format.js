// Dates, times and measured values in the current locale, through Intl.
import { locale } from './index.js';

const dateTimeFormats = new Map();

function dateTimeFormat(options) {
  const key = `${locale.value}|${JSON.stringify(options)}`;
  if (!dateTimeFormats.has(key)) dateTimeFormats.set(key, new Intl.DateTimeFormat(locale.value, options));
  return dateTimeFormats.get(key);
}

// "17 Jun 2024, 08:10": when something happened, in the device's time zone.
export function formatDateTime(value) {
  if (!value) return '';
  return dateTimeFormat({ dateStyle: 'medium', timeStyle: 'short' }).format(new Date(value));
}

export function formatDate(value) {
  if (!value) return '';
  return dateTimeFormat({ dateStyle: 'medium' }).format(new Date(value));
}

export function formatTime(value) {
  if (!value) return '';
  return dateTimeFormat({ timeStyle: 'short' }).format(new Date(value));
}

// A number with at most `digits` decimals, grouped for the locale: 5,000 · 52.1.
export function formatNumber(value, digits = 2) {
  if (value === null || value === undefined || value === '') return '';
  return new Intl.NumberFormat(locale.value, { maximumFractionDigits: digits }).format(Number(value));
}

// A measured value with its unit: "24.8 µm", "700 mA", "25 %".
export function formatMeasure(value, unit) {
  const number = formatNumber(value);
  return unit ? `${number} ${unit}` : number;
}

// "Lena, Marcus and Wang Lei" / "Lena、Marcus和Wang Lei": names or codes as a list of the locale.
export function formatList(items) {
  return new Intl.ListFormat(locale.value, { style: 'long', type: 'conjunction' }).format(items.map(String));
}
