// The x̄-chart's control limits as the server estimates them (backend quality/spc.py,
// `estimate_limits`), so the lines drawn are the lines the run rules were judged against:
// centre = grand mean; sigma of x̄ from the spread WITHIN subgroups (s̄/c4(n)/√n), or for
// single values from the mean moving range (/d2 = 2/√π). A drift between subgroups is what
// the rules detect, so it must not widen the limits.

const D2_MOVING_RANGE = 2 / Math.sqrt(Math.PI);

const mean = (values) => values.reduce((sum, value) => sum + value, 0) / values.length;

function stdev(values) {
  const m = mean(values);
  return Math.sqrt(values.reduce((sum, value) => sum + (value - m) ** 2, 0) / (values.length - 1));
}

// c4(n) = √(2/(n-1))·Γ(n/2)/Γ((n-1)/2). The gamma ratio r(n) follows r(2) = 1/√π and
// r(n+1) = ((n-1)/2)/r(n), which stays finite for any plan's subgroup size.
const c4Cache = new Map();
export function c4(n) {
  if (!c4Cache.has(n)) {
    let ratio = 1 / Math.sqrt(Math.PI);
    for (let k = 2; k < n; k += 1) ratio = (k - 1) / 2 / ratio;
    c4Cache.set(n, Math.sqrt(2 / (n - 1)) * ratio);
  }
  return c4Cache.get(n);
}

/** `{centre, sigma, lcl, ucl}` from subgroups of one size, or null when they give no limits yet. */
export function estimateLimits(subgroups) {
  if (!subgroups.length) return null;
  const size = subgroups[0].length;
  const means = subgroups.map(mean);
  let processSigma;
  if (size === 1) {
    if (means.length < 2) return null;
    processSigma = mean(means.slice(1).map((value, i) => Math.abs(value - means[i]))) / D2_MOVING_RANGE;
  } else {
    processSigma = mean(subgroups.map(stdev)) / c4(size);
  }
  if (!(processSigma > 0)) return null;
  const centre = mean(means);
  const sigma = processSigma / Math.sqrt(size);
  return { centre, sigma, lcl: centre - 3 * sigma, ucl: centre + 3 * sigma };
}

export { mean };
