// One x̄ control chart (uPlot): the subgroup means, the centre line and ±3σ control limits,
// and each point where the server's run rules fired, marked and labelled with its rules. The
// canvas is drawn only when its chart object changes (once per change batch that touched
// it); its content is also given as words: a summary and the list of signalled points.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { html } from '../../html.js';
import { locale, t } from '../../i18n/index.js';
import { formatDateTime, formatMeasure, formatNumber } from '../../i18n/format.js';
import { ruleNames } from './sections.js';

const HEIGHT = 260;

// Cpk is read to two decimals, trailing zero included: 0.60 beside a target of 1.33.
const twoDecimals = (value) => new Intl.NumberFormat(locale.value, { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(value);

// The x axis names days briefly ("Jun 8", "6月8日"): a year's dates at full length overlap.
const axisDate = (value) => new Intl.DateTimeFormat(locale.value, { month: 'short', day: 'numeric' }).format(new Date(value));

const token = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

function capabilityState(snapshot) {
  if (snapshot?.cpk == null) return null;
  if (snapshot.cpk_target == null) return { tone: 'plain', word: 'no_target' };
  if (snapshot.meets_target) return { tone: 'ok', word: 'ok' };
  return snapshot.cpk >= 1 ? { tone: 'warn', word: 'below' } : { tone: 'danger', word: 'not_capable' };
}

function Capability({ snapshot }) {
  const state = capabilityState(snapshot);
  if (!state) return html`<p class="muted">${t('overview.spc.cpk_none')}</p>`;
  const cpk = twoDecimals(snapshot.cpk);
  return html`
    <p class="overview__verdict">
      <span class="chip chip--${state.tone}">${t(`overview.spc.capability.${state.word}`)}</span>
      <span class="num overview__cpk">
        ${snapshot.cpk_target == null ? t('overview.spc.cpk', { cpk }) : t('overview.spc.cpk_target', { cpk, target: twoDecimals(snapshot.cpk_target) })}
      </span>
    </p>
  `;
}

// Rule labels drawn above the marked points ("N3", "WE1, N3").
function labelSignals(subgroups) {
  return (u) => {
    const { ctx } = u;
    ctx.save();
    ctx.fillStyle = token('--c-danger');
    ctx.font = `700 ${Math.round(12 * devicePixelRatio)}px ${token('--font')}`;
    ctx.textAlign = 'center';
    subgroups.forEach((subgroup, i) => {
      if (!subgroup.signals.length) return;
      const x = u.valToPos(i, 'x', true);
      const y = u.valToPos(subgroup.mean, 'y', true) - 12 * devicePixelRatio;
      ctx.fillText(subgroup.signals.map((rule) => t(`overview.rule.short.${rule}`)).join(' '), x, y);
    });
    ctx.restore();
  };
}

function plotOptions(chart, width) {
  const { subgroups } = chart;
  const brand = token('--c-brand');
  const danger = token('--c-danger');
  const muted = token('--c-text-muted');
  const limitLine = { stroke: danger, width: 1.5, dash: [6, 4], points: { show: false } };
  const axis = { stroke: muted, grid: { stroke: token('--c-border'), width: 1 }, ticks: { stroke: token('--c-border') }, font: `12px ${token('--font')}` };
  return {
    width,
    height: HEIGHT,
    padding: [28, 48, 0, 8], // room for the rule labels and the last date
    legend: { show: false },
    cursor: { show: false },
    scales: { x: { time: false } },
    axes: [
      { ...axis, incrs: [1, 2, 5, 10, 20, 50], values: (u, splits) => splits.map((i) => (subgroups[i] ? axisDate(subgroups[i].at) : '')) },
      { ...axis, size: 56, values: (u, splits) => splits.map((v) => formatNumber(v, 1)) },
    ],
    series: [
      {},
      { stroke: brand, width: 2, points: { show: true, size: 7, fill: brand, stroke: brand } },
      { ...limitLine },
      { stroke: muted, width: 1, points: { show: false } },
      { ...limitLine },
      // The signalled points: no line, large hollow rings around the means.
      { stroke: danger, width: 3, paths: () => null, points: { show: true, size: 16, width: 3, stroke: danger, fill: 'transparent' } },
    ],
    hooks: { draw: [labelSignals(subgroups)] },
  };
}

function plotData({ subgroups, limits }) {
  const xs = subgroups.map((_, i) => i);
  const flat = (value) => subgroups.map(() => value ?? null);
  return [
    xs,
    subgroups.map((s) => s.mean),
    flat(limits?.ucl),
    flat(limits?.centre),
    flat(limits?.lcl),
    subgroups.map((s) => (s.signals.length ? s.mean : null)),
  ];
}

function Plot({ chart, label }) {
  const box = useRef(null);
  useEffect(() => {
    const element = box.current;
    const plot = new uPlot(plotOptions(chart, element.clientWidth || 600), plotData(chart), element);
    const resize = new ResizeObserver(() => plot.setSize({ width: element.clientWidth, height: HEIGHT }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [chart, locale.value]);
  return html`<div class="overview__plot" ref=${box} role="img" aria-label=${label}></div>`;
}

export function SpcChart({ chart, plantName }) {
  const { code, line, characteristic: spec, subgroups, limits, capability } = chart;
  const unit = spec?.unit ?? '';
  const signalled = subgroups.filter((s) => s.signals.length);
  const where = { code, plant: plantName, line };
  const summary = limits
    ? t('overview.spc.summary', {
        ...where,
        count: subgroups.length,
        centre: formatMeasure(limits.centre, unit),
        lcl: formatMeasure(limits.lcl, unit),
        ucl: formatMeasure(limits.ucl, unit),
        signals: t('overview.spc.signal_count', { count: signalled.length }),
      })
    : t('overview.spc.summary_no_limits', { ...where, count: subgroups.length });
  const specText = [spec?.lsl, spec?.nominal, spec?.usl].some((v) => v != null)
    ? [spec.lsl != null && t('inspect.lsl', { value: formatMeasure(spec.lsl, unit) }), spec.nominal != null && t('inspect.nominal', { value: formatMeasure(spec.nominal, unit) }), spec.usl != null && t('inspect.usl', { value: formatMeasure(spec.usl, unit) })]
        .filter(Boolean)
        .join(' · ')
    : '—';
  const listId = `spc-signals-${chart.key.replace(/[^\w-]/g, '-')}`;
  return html`
    <figure class="overview__chart" aria-labelledby=${`${listId}-title`}>
      <figcaption class="overview__chart-head">
        <h3 id=${`${listId}-title`}>${t('overview.spc.chart', { ...where, name: spec?.name ?? '' })}</h3>
        <${Capability} snapshot=${capability} />
        <p class="muted num">${t('overview.spc.spec', { spec: specText, rules: spec?.spc_rules?.length ? ruleNames(spec.spc_rules) : t('overview.spc.no_rules') })}</p>
      </figcaption>
      <${Plot} chart=${chart} label=${summary} />
      <ul class="overview__key" aria-hidden="true">
        <li><span class="overview__swatch overview__swatch--means"></span>${t('overview.spc.key.means')}</li>
        <li><span class="overview__swatch overview__swatch--centre"></span>${t('overview.spc.key.centre')}</li>
        <li><span class="overview__swatch overview__swatch--limits"></span>${t('overview.spc.key.limits')}</li>
        <li><span class="overview__swatch overview__swatch--signal"></span>${t('overview.spc.key.signal')}</li>
      </ul>
      ${!signalled.length && html`<p class="muted">${t('overview.spc.no_signals')}</p>`}
      <ul class="overview__signals" aria-label=${t('overview.spc.signals', { code, line })}>
        ${signalled.map(
          (s) => html`
            <li key=${s.inspectionId} class="num">
              ${t('overview.spc.signal', {
                number: s.number ?? t('overview.spc.unnamed'),
                when: formatDateTime(s.at),
                mean: formatMeasure(s.mean, unit),
                rules: ruleNames(s.signals),
              })}
            </li>
          `,
        )}
      </ul>
    </figure>
  `;
}
