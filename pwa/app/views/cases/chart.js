// A run chart of one characteristic's measured values against its specification limits (LSL,
// USL) and the line's control limits (LCL, UCL), drawn by uPlot. The canvas is for the eye;
// the values table beside it (quality.js) carries the same numbers for everyone, so the
// figure gets a one-line summary as its accessible name.
import uPlot from 'uplot';
import { useEffect, useRef } from 'preact/hooks';
import { html } from '../../html.js';
import { t } from '../../i18n/index.js';
import { formatNumber } from '../../i18n/format.js';

const HEIGHT = 240;

const token = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

// A horizontal line at `value` across every sample: a series uPlot draws like any other.
function level(label, value, colour, dash) {
  return { series: { label, stroke: colour, width: 2, dash, points: { show: false } }, values: (n) => Array(n).fill(value) };
}

export function RunChart({ values, outOfSpec, unit, lsl, usl, limits, caption }) {
  const box = useRef(null);
  useEffect(() => {
    const n = values.length;
    const lines = [
      lsl !== null && lsl !== undefined && level(t('quality.lsl'), lsl, token('--c-danger'), [8, 4]),
      usl !== null && usl !== undefined && level(t('quality.usl'), usl, token('--c-danger'), [8, 4]),
      limits && level(t('quality.lcl'), limits.lcl, token('--c-warn'), [2, 4]),
      limits && level(t('quality.ucl'), limits.ucl, token('--c-warn'), [2, 4]),
    ].filter(Boolean);
    const measured = {
      label: t('quality.measured'),
      stroke: token('--c-brand'),
      width: 2,
      points: { show: true, size: 8, fill: token('--c-brand') },
    };
    const outside = {
      label: t('quality.out_of_spec'),
      stroke: token('--c-danger'),
      width: 0,
      paths: () => null,
      points: { show: true, size: 12, fill: token('--c-danger') },
    };
    const data = [
      values.map((_, i) => i + 1),
      values,
      values.map((value, i) => (outOfSpec[i] ? value : null)),
      ...lines.map((line) => line.values(n)),
    ];
    const width = () => Math.max(240, box.current.clientWidth);
    const plot = new uPlot(
      {
        width: width(),
        height: HEIGHT,
        scales: { x: { time: false } },
        axes: [
          { label: t('quality.sample'), stroke: token('--c-text-muted'), incrs: [1, 2, 5, 10, 20, 50] },
          { label: unit ?? '', stroke: token('--c-text-muted'), values: (_, ticks) => ticks.map((tick) => formatNumber(tick)) },
        ],
        cursor: { show: false },
        legend: { show: true, live: false },
        series: [{}, measured, outside, ...lines.map((line) => line.series)],
      },
      data,
      box.current,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: width(), height: HEIGHT }));
    resize.observe(box.current);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [values.join(','), outOfSpec.join(','), lsl, usl, limits?.lcl, limits?.ucl, unit, t('quality.measured')]);
  return html`
    <figure class="chart">
      <div class="chart__plot" ref=${box} role="img" aria-label=${caption}></div>
      <figcaption class="chart__caption">${caption}</figcaption>
    </figure>
  `;
}
