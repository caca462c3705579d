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

// "C1, C2 and C3" / "C1、C2和C3": a list in the locale's own words.
export function formatList(items) {
  return new Intl.ListFormat(locale.value, { style: 'long', type: 'conjunction' }).format(items.map(String));
}

// An amount of money in its currency: "€1,440.00", "1.440,00 €", "€1,440.00" (zh-CN: "€1,440.00").
export function formatMoney(amount, currency = 'EUR') {
  if (amount === null || amount === undefined || amount === '') return '';
  return new Intl.NumberFormat(locale.value, { style: 'currency', currency }).format(Number(amount));
}

// A countdown as a clock, "1:59:32", with days when longer than two: "3 days, 4:12:05".
// The sign is the caller's words ("due in …", "overdue by …"), so this takes the magnitude.
export function formatCountdown(ms) {
  const total = Math.floor(Math.abs(ms) / 1000);
  const days = total >= 48 * 3600 ? Math.floor(total / 86400) : 0;
  const hours = Math.floor((total - days * 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  if (typeof Intl.DurationFormat === 'function') {
    return new Intl.DurationFormat(locale.value, { style: 'digital', hoursDisplay: 'always' }).format({ days, hours, minutes, seconds });
  }
  const clock = `${hours}:${String(minutes).padStart(2, '0')}:${String(seconds).padStart(2, '0')}`;
  return days ? `${new Intl.NumberFormat(locale.value, { style: 'unit', unit: 'day', unitDisplay: 'long' }).format(days)}, ${clock}` : clock;
}
