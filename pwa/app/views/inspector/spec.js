// Checking a measured value against its characteristic as it is typed: out of spec beyond
// LSL/USL; a warning inside the spec but beyond the line's control limits (mean ± 3σ of the
// latest capability snapshot, where SPC has one); in spec otherwise.

// Accepts a decimal comma too: gloved thumbs on a German or Chinese keyboard type "24,5".
export function parseValue(text) {
  const cleaned = String(text ?? '').trim().replace(',', '.');
  if (!cleaned) return null;
  const value = Number(cleaned);
  return Number.isFinite(value) ? value : Number.NaN;
}

export function controlLimits(snapshot) {
  if (!snapshot || !Number.isFinite(snapshot.sigma) || snapshot.sigma <= 0) return null;
  return { lcl: snapshot.mean - 3 * snapshot.sigma, ucl: snapshot.mean + 3 * snapshot.sigma };
}

/** 'empty' | 'invalid' | 'out_of_spec' | 'warning' | 'in_spec' */
export function checkValue(value, characteristic, limits) {
  if (value === null) return 'empty';
  if (Number.isNaN(value)) return 'invalid';
  const { lsl, usl } = characteristic;
  if ((lsl !== null && lsl !== undefined && value < lsl) || (usl !== null && usl !== undefined && value > usl)) return 'out_of_spec';
  if (limits && (value < limits.lcl || value > limits.ucl)) return 'warning';
  return 'in_spec';
}

// The latest snapshot of each characteristic on this plant's line.
export function latestSnapshots(snapshots = [], plantId, line) {
  const latest = new Map();
  for (const snapshot of snapshots) {
    if (snapshot.plant_id !== plantId || snapshot.line !== line) continue;
    const known = latest.get(snapshot.characteristic_code);
    if (!known || Date.parse(snapshot.created_at) > Date.parse(known.created_at)) latest.set(snapshot.characteristic_code, snapshot);
  }
  return latest;
}

// The plan an inspection of this product follows: the released one of the highest version.
export function releasedPlan(plans = [], productModelId) {
  return plans
    .filter((plan) => plan.product_model_id === productModelId && plan.status === 'released')
    .sort((a, b) => b.plan_version - a.plan_version)[0];
}
